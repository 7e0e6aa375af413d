import ast
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from media_fixtures import good_video, text_file, truncated_copy, zero_byte
from PIL import Image

from m2v_bench.errors import M2VError
from m2v_bench.frames import (
    FrameSampler,
    FrameView,
    balance_runs,
    frame_files,
    grey_variance,
    plan_runs,
    uniform_indices,
)
from m2v_bench.frames.pool import DecodePool, _answer, _Worker
from m2v_bench.media import CorruptMedia, EmptyMedia, MissingMedia, NoFrames, NotAnImage, NotAVideo, write_video
from m2v_bench.settings import FRAME_CACHE_ENV as CACHE_ENV

H, W = 48, 64


def flat(value):
    return np.full((H, W, 3), value, dtype=np.uint8)


def textured(seed):
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def low_noise(seed):
    """Grey-level variance ~25: below the paper's threshold of 100."""
    return np.clip(128 + np.random.default_rng(seed).normal(0, 5, (H, W, 1)), 0, 255).astype(np.uint8).repeat(3, 2)


# ------------------------------------------------------------------------------------------------ index rule


@pytest.mark.parametrize("total", [1, 5, 15, 16, 17, 100, 241, 1800, 1801])
def test_uniform_indices_follow_the_papers_rule(total):
    indices = uniform_indices(total, 16)
    assert indices == [int(i) for i in np.arange(0, total, total / 16)]
    assert len(indices) == 16 and indices[0] == 0 and indices == sorted(indices) and indices[-1] < total


def test_uniform_indices_examples():
    assert uniform_indices(100, 4) == [0, 25, 50, 75]
    assert uniform_indices(3, 6) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        uniform_indices(0, 16)


@pytest.mark.parametrize("seed", range(20))
def test_plan_never_decodes_more_than_sequential_or_seeking(seed):
    rng = np.random.default_rng(seed)
    total = int(rng.integers(20, 3000))
    keyframes = sorted({0, *rng.integers(1, total, size=int(rng.integers(0, 40))).tolist()})
    targets = sorted(set(uniform_indices(total, int(rng.integers(1, 32)))))
    runs = plan_runs(targets, keyframes)
    assert [t for _, ts in runs for t in ts] == targets

    def keyframe_of(t):
        return max(k for k in keyframes if k <= t)

    assert all(keyframe_of(ts[0]) == k for k, ts in runs)
    cost = sum(ts[-1] - k + 1 for k, ts in runs)
    assert cost <= targets[-1] + 1  # sequential from frame 0
    assert cost <= sum(t - keyframe_of(t) + 1 for t in targets)  # one seek per target
    groups = balance_runs(runs, 2)
    assert sorted(r for g in groups for r in g) == sorted(runs)


# ------------------------------------------------------------------------------------------- keyframe view


def test_grey_variance_is_pil_luma_variance():
    assert grey_variance(flat(200)) == 0
    rgb = textured(0)
    assert grey_variance(rgb) == pytest.approx(np.asarray(Image.fromarray(rgb).convert("L"), float).var())


@pytest.fixture(scope="module")
def keyframe_clip(tmp_path_factory):
    """Frames 0-2 black, 3-4 flat grey, 5-6 low noise, 7.. textured: the keyframe is frame 7."""
    frames = [flat(0)] * 3 + [flat(128)] * 2 + [low_noise(5), low_noise(6)] + [textured(i) for i in range(9)]
    return write_video(tmp_path_factory.mktemp("kf") / "clip.mp4", frames, fps=8, crf=18), frames


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_keyframe_is_first_frame_above_threshold(keyframe_clip, backend):
    path, frames = keyframe_clip
    result = FrameSampler(backend, threads=1).sample(path, FrameView.keyframe(size=None))
    assert result.indices == [7] and not result.fallback
    decoded = _all_frames(path)[7]
    assert np.abs(result.array[0].astype(int) - decoded).mean() < 3.0  # pyav: exact; decord: YUV->RGB rounding
    low = FrameSampler(backend).sample(path, FrameView.keyframe(threshold=10, size=(32, 32)))
    assert low.indices == [5] and low.array.shape == (1, 32, 32, 3)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_keyframe_falls_back_to_most_varied_frame_and_says_so(tmp_path, caplog, backend):
    frames = [flat(0), low_noise(1), flat(90), flat(128)]
    path = write_video(tmp_path / "dull.mp4", frames, fps=4, crf=18)
    with caplog.at_level(logging.WARNING, logger="m2v_bench.frames"):
        result = FrameSampler(backend).sample(path, FrameView.keyframe())
    assert result.fallback and result.indices == [1] and result.total_frames == 4
    assert result.array.shape == (1, 560, 560, 3)
    assert "using the most varied frame (1)" in caplog.text


def _frames_dir(folder, frames):
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i}.png")
    return folder


def test_frames_folder_natural_order_and_both_views(tmp_path):
    frames = [flat(0)] * 9 + [flat(50), textured(1), textured(2), textured(3)]  # files 0.png .. 12.png
    folder = _frames_dir(tmp_path / "frames", frames)
    assert [p.name for p in frame_files(folder)][8:11] == ["8.png", "9.png", "10.png"]
    key = FrameSampler().sample(folder, FrameView.keyframe(size=None))
    assert key.indices == [10] and np.array_equal(key.array[0], frames[10])
    view = FrameSampler().sample(folder, FrameView.uniform(4))
    assert view.indices == uniform_indices(13, 4) == [0, 3, 6, 9]
    assert np.array_equal(view.array, np.stack([frames[i] for i in view.indices]))


# -------------------------------------------------------------------------------------------- uniform view


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory):
    """100 frames, a keyframe every 10: the plan mixes sequential decoding and seeks."""
    frames = [np.roll(textured(0), 3 * i, axis=1) for i in range(100)]
    return write_video(tmp_path_factory.mktemp("gop") / "clip.mp4", frames, fps=25, gop=10, crf=18)


def _all_frames(path):
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_pyav_plan_gives_exactly_the_sequentially_decoded_frames(gop_clip, threads):
    reference = _all_frames(gop_clip)
    result = FrameSampler("pyav", threads=threads).sample(gop_clip, FrameView.uniform(16))
    assert result.total_frames == 100 and result.indices == uniform_indices(100, 16)
    assert np.array_equal(result.array, np.stack([reference[i] for i in result.indices]))


def test_backends_agree_within_codec_tolerance(gop_clip):
    view = FrameView.uniform(16, size=(32, 24))
    pyav = FrameSampler("pyav").sample(gop_clip, view)
    decord = FrameSampler("decord").sample(gop_clip, view)
    assert pyav.indices == decord.indices and pyav.total_frames == decord.total_frames
    assert pyav.array.shape == decord.array.shape == (16, 24, 32, 3)
    assert np.abs(pyav.array.astype(int) - decord.array.astype(int)).mean() < 3.0  # YUV->RGB conversion only


def test_images_are_pil(gop_clip):
    images = FrameSampler().sample(gop_clip, FrameView.uniform(2, size=(40, 30))).images()
    assert [im.size for im in images] == [(40, 30), (40, 30)]


# ---------------------------------------------------------------------------------------------- bad media


@pytest.fixture(scope="module")
def bad_media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    source = good_video(folder / "good.mp4", frames=40)
    empty_dir = folder / "empty_frames"
    empty_dir.mkdir()
    junk_dir = folder / "junk_frames"
    junk_dir.mkdir()
    text_file(junk_dir / "0.png")
    import av

    zero = folder / "zero_frames.mkv"
    with av.open(str(zero), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    return {
        "zero-byte": (zero_byte(folder / "zero.mp4"), EmptyMedia),
        "truncated": (truncated_copy(source, folder / "cut.mp4", 0.5), CorruptMedia),
        "not-a-video": (text_file(folder / "text.mp4"), NotAVideo),
        "zero-frames": (zero, NoFrames),
        "missing": (folder / "absent.mp4", MissingMedia),
        "missing-frames-dir": (folder / "absent_frames", MissingMedia),
        "empty-frames-dir": (empty_dir, NoFrames),
        "unreadable-frame": (junk_dir, NotAnImage),
    }


CASES = ["zero-byte", "truncated", "not-a-video", "zero-frames", "missing", "empty-frames-dir", "unreadable-frame"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("view", [FrameView.uniform(16), FrameView.keyframe()], ids=["uniform", "keyframe"])
def test_bad_media_gives_typed_errors_naming_the_file(bad_media, case, backend, view):
    path, error = bad_media[case]
    if backend == "decord" and case == "zero-frames":
        error = (NoFrames, CorruptMedia)  # decord cannot tell an empty stream from a broken one
    with pytest.raises(error) as info:
        FrameSampler(backend).sample(path, view)
    assert str(path) in str(info.value)


def test_folder_that_does_not_exist_is_missing_media(bad_media):
    with pytest.raises(MissingMedia, match="frames folder does not exist"):
        frame_files(bad_media["missing-frames-dir"][0])


# -------------------------------------------------------------------------------------------------- cache


def test_cache_returns_the_same_frames_without_decoding(gop_clip, tmp_path, monkeypatch):
    view = FrameView.uniform(8, size=(32, 24))
    sampler = FrameSampler(cache_dir=tmp_path / "cache")
    first = sampler.sample(gop_clip, view)
    assert "cached" not in first.meta and len(list((tmp_path / "cache").rglob("*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr("m2v_bench.frames.decoders.uniform_pyav", no_decoding)
    again = sampler.sample(gop_clip, view)
    assert again.meta == {"cached": True} and np.array_equal(again.array, first.array)
    assert (again.indices, again.total_frames, again.fallback) == (first.indices, first.total_frames, False)
    with pytest.raises(AssertionError, match="decoded although cached"):
        sampler.sample(gop_clip, FrameView.uniform(4))  # another view is another entry


def test_cache_is_keyed_by_content_and_survives_corruption(gop_clip, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env_cache"))
    sampler = FrameSampler()
    assert sampler.cache_dir == tmp_path / "env_cache"
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(gop_clip.read_bytes())
    first = sampler.sample(gop_clip, FrameView.uniform(4))
    assert sampler.sample(copy, FrameView.uniform(4)).meta == {"cached": True}  # same content, other path
    other = good_video(tmp_path / "other.mp4")
    assert "cached" not in sampler.sample(other, FrameView.uniform(4)).meta
    for npy in (tmp_path / "env_cache").rglob("*.npy"):
        npy.write_bytes(b"half written")
    again = sampler.sample(gop_clip, FrameView.uniform(4))
    assert "cached" not in again.meta and np.array_equal(again.array, first.array)


def test_cache_is_opt_in(monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert FrameSampler().cache_dir is None


# --------------------------------------------------------------------------------------- decoder processes


@pytest.fixture(scope="module")
def decode_pool():
    pool = DecodePool(FrameSampler(threads=1), 2)
    yield pool
    pool.close()


def _blocks(pool: DecodePool) -> set[str]:
    """The shared-memory blocks the pool's workers write into (other processes' blocks left aside)."""
    return {worker.block.name for worker in pool.workers if worker.block is not None}


def _exists(block: str) -> bool:
    return os.path.exists(f"/dev/shm/{block.lstrip('/')}")


def test_decoder_processes_give_what_the_sampler_gives(decode_pool, gop_clip, keyframe_clip, tmp_path, caplog):
    folder = _frames_dir(tmp_path / "frames", [flat(0)] * 3 + [textured(1), textured(2)])
    dull = write_video(tmp_path / "dull.mp4", [flat(0), low_noise(1), flat(90)], fps=4, crf=18)
    cases = [
        (gop_clip, FrameView.uniform(16)),
        (gop_clip, FrameView.uniform(4, size=(32, 24))),
        (keyframe_clip[0], FrameView.keyframe(size=None)),
        (folder, FrameView.keyframe(size=None)),
        (folder, FrameView.uniform(4)),
        (dull, FrameView.keyframe()),
        (gop_clip, FrameView.uniform(16)),  # again, into blocks written before
    ]
    for source, view in cases:
        with caplog.at_level(logging.WARNING, logger="m2v_bench.frames"):
            caplog.clear()
            got = decode_pool.sample(source, view)
        want = FrameSampler(threads=1).sample(source, view)
        assert np.array_equal(got.array, want.array), (source, view)
        assert (got.indices, got.total_frames, got.fallback) == (want.indices, want.total_frames, want.fallback)
        # the fallback warning is logged where the frames are used, not lost in a worker
        assert ("using the most varied frame (1)" in caplog.text) == (source == dull)


@pytest.mark.parametrize("case", CASES)
def test_decoder_processes_raise_the_samplers_typed_errors(decode_pool, bad_media, case):
    path, error = bad_media[case]
    with pytest.raises(error) as info:
        decode_pool.sample(path, FrameView.uniform(16))
    assert str(path) in str(info.value) and str(info.value.path).startswith(str(path))  # kept across processes


def test_decoder_processes_read_and_write_the_cache(gop_clip, tmp_path):
    pool = DecodePool(FrameSampler(cache_dir=tmp_path / "cache", threads=1), 1)
    try:
        first = pool.sample(gop_clip, FrameView.uniform(8))
        assert "cached" not in first.meta and len(list((tmp_path / "cache").rglob("*.npy"))) == 1
        again = pool.sample(gop_clip, FrameView.uniform(8))
        assert again.meta == {"cached": True} and np.array_equal(again.array, first.array)
        assert pool.fill(gop_clip, FrameView.uniform(8)) == ("cached", None)
        assert pool.fill(gop_clip, FrameView.uniform(3)) == ("decoded", None)
        assert pool.fill(tmp_path / "absent.mp4", FrameView.uniform(3))[0] == "failed"
    finally:
        pool.close()


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="shared memory is not a folder on this OS")
def test_shared_memory_blocks_are_reused_never_aliased_and_freed(gop_clip, tmp_path):
    small = write_video(tmp_path / "small.mp4", [textured(i)[:16, :16] for i in range(4)], fps=4)
    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        tiny = pool.sample(small, FrameView.uniform(2))  # through the pipe; then a block that fits it
        (first,) = _blocks(pool)
        pool.sample(gop_clip, FrameView.uniform(16))  # outgrows it: through the pipe, the block replaced
        (second,) = _blocks(pool)
        assert second != first and not _exists(first) and _exists(second)
        results = [pool.sample(gop_clip, FrameView.uniform(16)) for _ in range(3)]
        assert _blocks(pool) == {second}, "the large block is reused"
        want = FrameSampler(threads=1).sample(gop_clip, FrameView.uniform(16)).array
        assert all(np.array_equal(r.array, want) for r in results)
        other = pool.sample(gop_clip, FrameView.uniform(16, size=(32, 24)))  # written into the same block ...
        assert np.array_equal(results[0].array, want) and other.array.shape == (16, 24, 32, 3)  # ... no alias
        assert tiny.array.shape == (2, 16, 16, 3)
    finally:
        pool.close()
    assert not _exists(second)


def test_frames_come_through_the_pipe_when_shared_memory_has_no_room(gop_clip, monkeypatch):
    monkeypatch.setattr("m2v_bench.frames.pool._room_in_shared_memory", lambda nbytes: False)
    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        want = FrameSampler(threads=1).sample(gop_clip, FrameView.uniform(4)).array
        for _ in range(2):
            assert np.array_equal(pool.sample(gop_clip, FrameView.uniform(4)).array, want)
        assert pool.workers[0].block is None  # no block made: every clip came through the pipe
    finally:
        pool.close()


def test_an_unexpected_decoder_error_keeps_its_type_and_traceback(gop_clip):
    class Broken(FrameSampler):
        def take(self, source, view):
            raise ZeroDivisionError("a bug")

    kind, error, text = _answer(Broken(), ("take", os.getcwd(), str(gop_clip), FrameView.uniform(4), None, 0), {})
    assert kind == "raise" and isinstance(error, ZeroDivisionError) and "Traceback" in text and "a bug" in text


def test_an_internal_error_from_a_worker_is_raised_as_it_is_with_the_workers_traceback(gop_clip, monkeypatch):
    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        monkeypatch.setattr(_Worker, "ask", lambda self, *a: ("raise", ZeroDivisionError("a bug"), "Traceback: here"))
        with pytest.raises(ZeroDivisionError, match="a bug") as info:
            pool.sample(gop_clip, FrameView.uniform(4))
        assert info.value.__notes__ == ["raised in a decoder process:\nTraceback: here"]
        monkeypatch.setattr(_Worker, "ask", lambda self, *a: ("raise", NoFrames(gop_clip, "no frames"), "tb"))
        with pytest.raises(NoFrames) as info:  # a user-facing error stays one line
            pool.sample(gop_clip, FrameView.uniform(4))
        assert not getattr(info.value, "__notes__", None)
    finally:
        pool.close()


def test_relative_paths_mean_what_they_mean_to_the_caller(gop_clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = DecodePool(FrameSampler(cache_dir="cache", threads=1), 1)
    try:
        (tmp_path / "clips").mkdir()
        (tmp_path / "clips" / "c.mp4").write_bytes(gop_clip.read_bytes())
        monkeypatch.chdir(tmp_path / "clips")  # after the workers started
        assert pool.sample("c.mp4", FrameView.uniform(4)).array.shape == (4, H, W, 3)
        assert len(list((tmp_path / "clips" / "cache").rglob("*.npy"))) == 1
        with pytest.raises(MissingMedia, match="^absent.mp4: "):
            pool.sample("absent.mp4", FrameView.uniform(4))
    finally:
        pool.close()


def test_a_killed_decoder_process_is_one_error_naming_the_clip_and_is_replaced(gop_clip):
    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        pool.workers[0].process.kill()
        pool.workers[0].process.wait()
        # died while idle: replaced before the clip is sent, nothing fails
        assert pool.sample(gop_clip, FrameView.uniform(4)).array.shape == (4, H, W, 3)
        worker = pool.workers[0]
        killer = threading.Timer(0.3, worker.process.kill)
        killer.start()
        with pytest.raises(M2VError, match="a decoder process died") as info:
            while True:  # until the kill lands mid-clip
                pool.sample(gop_clip, FrameView.uniform(16))
        killer.join()
        assert str(gop_clip) in str(info.value) and "decode_workers=0" in str(info.value)
        assert pool.workers[0] is not worker
        assert pool.sample(gop_clip, FrameView.uniform(4)).array.shape == (4, H, W, 3)  # a new worker took over
        assert pool.fill(gop_clip, FrameView.uniform(5)) == ("decoded", None)
        pool.workers[0].process.kill()
        pool.workers[0].process.wait()
        time.sleep(0.1)
    finally:
        pool.close()
    with pytest.raises(M2VError, match="decode pool is closed"):
        pool.sample(gop_clip, FrameView.uniform(4))


def test_a_worker_that_cannot_start_says_so(gop_clip, monkeypatch):
    monkeypatch.setattr("m2v_bench.frames.pool._SERVE", "import sys; sys.exit(3)  # {root}")
    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        with pytest.raises(M2VError, match=r"failed to start \(exit code 3"):
            pool.sample(gop_clip, FrameView.uniform(4))
        assert pool.fill(gop_clip, FrameView.uniform(4))[0] == "failed"
    finally:
        pool.close()


def test_closing_the_pool_under_a_running_clip_is_one_clear_error(gop_clip):
    pool = DecodePool(FrameSampler(threads=1), 1)
    errors = []

    def decode_forever():
        try:
            while True:
                pool.sample(gop_clip, FrameView.uniform(16))
        except M2VError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=decode_forever)
    thread.start()
    time.sleep(0.3)
    pool.close()
    thread.join(timeout=30)
    assert not thread.is_alive() and len(errors) == 1 and "closed" in errors[0]
    assert pool.workers == []


def test_decoder_processes_exit_when_their_caller_is_killed(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(
        "import time\nfrom m2v_bench.frames.pool import DecodePool\nfrom m2v_bench.frames import FrameSampler\n"
        "pool = DecodePool(FrameSampler(), 2)\n"
        "print(' '.join(str(w.process.pid) for w in pool.workers), flush=True)\ntime.sleep(120)\n"
    )
    caller = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(pid) for pid in caller.stdout.readline().split()]
    assert len(pids) == 2
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_running(pid) for pid in pids), "a decoder process outlived its killed caller"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_no_block_to_be_had_keeps_the_pipe_and_the_worker(gop_clip, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(24, "Too many open files")

    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        worker = pool.workers[0]
        monkeypatch.setattr("m2v_bench.frames.pool.shared_memory.SharedMemory", refuse)
        for _ in range(2):
            assert pool.sample(gop_clip, FrameView.uniform(4)).array.shape == (4, H, W, 3)
        assert pool.workers[0] is worker and worker.block is None  # not taken for a dead worker
    finally:
        pool.close()


def test_a_decoder_worker_imports_the_callers_m2v_bench_and_leaves_the_path_alone():
    """The worker's start-up code (pool._SERVE) finds this m2v_bench without putting its package folder on sys.path
    (which would make m2v_bench's sub-packages, e.g. datasets, shadow top-level modules of the same name)."""
    import m2v_bench
    from m2v_bench.frames import pool

    package = Path(m2v_bench.__file__).resolve().parent
    assert Path(pool.source_root()) == package.parent
    start = pool._SERVE.format(root=pool.source_root()).replace("serve()", "")
    probe = start + "import m2v_bench, sys\nprint(m2v_bench.__file__)\nprint(repr(sys.path))\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    origin, path = result.stdout.splitlines()
    assert Path(origin).resolve().parent == package
    assert str(package) not in ast.literal_eval(path)
