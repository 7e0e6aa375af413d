"""Bad input to the frame sampler (views, videos, frame folders, the cache), a library call."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from m2v_bench.errors import M2VError

from .harness import bomb_png, png, truncated_png, write


def _video(path: Path) -> Path:
    import numpy as np

    from m2v_bench.media import write_video

    return write_video(path, [np.full((16, 16, 3), 30 * i, np.uint8) for i in range(4)], fps=4)


def frames_case(case_id: str, act: Callable[[Path], object], match: Callable[[Path], str]) -> tuple:
    return pytest.param(act, match, id=case_id)


def _view(**kwargs):
    from m2v_bench.frames import FrameView

    return lambda w: FrameView(**kwargs)


def _sample(make: Callable[[Path], Path], view=None, cache: Callable[[Path], Path] | None = None):
    def act(w):
        from m2v_bench.frames import FrameSampler, FrameView

        source = make(w)
        sampler = FrameSampler(cache_dir=cache(w) if cache else None)
        return sampler.sample(source, view or FrameView.uniform(2))

    return act


def _frames_folder(w: Path, bad: Callable[[Path], object]) -> Path:
    folder = w / "frames"
    png(folder / "0001.png")
    bad(folder / "0002.png")
    return folder


FRAMES = [
    frames_case(
        "keyframe-size-0x0",
        lambda w: __import__("m2v_bench.frames").frames.FrameView.keyframe(size=(0, 0)),
        lambda w: r"size .*\(0, 0\)",
    ),  # fmt: skip
    frames_case("keyframe-size-negative", _view(kind="keyframe", size=(-1, 5)), lambda w: "size"),
    frames_case("keyframe-size-one-number", _view(kind="keyframe", size=(5,)), lambda w: "size"),
    frames_case("keyframe-size-float", _view(kind="keyframe", size=(5.5, 5)), lambda w: "size"),
    frames_case("keyframe-threshold-nan", _view(kind="keyframe", threshold=float("nan")), lambda w: "threshold"),
    frames_case("keyframe-threshold-negative", _view(kind="keyframe", threshold=-1.0), lambda w: "threshold"),
    frames_case("uniform-k-0", _view(kind="uniform", k=0), lambda w: "k >= 1"),
    frames_case("uniform-k-negative", _view(kind="uniform", k=-3), lambda w: "k >= 1"),
    frames_case("view-kind-unknown", _view(kind="random"), lambda w: "'random'"),
    frames_case(
        "cache-dir-is-a-file",
        _sample(lambda w: _video(w / "v.mp4"), cache=lambda w: write(w / "cache", "x")),
        lambda w: re.escape(str(w / "cache")),
    ),  # fmt: skip
    frames_case("video-missing", _sample(lambda w: w / "none.mp4"), lambda w: re.escape(str(w / "none.mp4"))),
    frames_case("video-zero-byte", _sample(lambda w: write(w / "z.mp4", b"")), lambda w: re.escape(str(w / "z.mp4"))),
    frames_case(
        "video-is-text", _sample(lambda w: write(w / "t.mp4", "hello")), lambda w: re.escape(str(w / "t.mp4"))
    ),
    frames_case(
        "video-truncated",
        _sample(lambda w: write(w / "v.mp4", _video(w / "full.mp4").read_bytes()[:600])),
        lambda w: re.escape(str(w / "v.mp4")),
    ),  # fmt: skip
    frames_case(
        "frame-folder-truncated-png",
        _sample(lambda w: _frames_folder(w, truncated_png)),
        lambda w: re.escape(str(w / "frames" / "0002.png")),
    ),  # fmt: skip
    frames_case(
        "frame-folder-bomb-png",
        _sample(lambda w: _frames_folder(w, bomb_png)),
        lambda w: re.escape(str(w / "frames" / "0002.png")),
    ),  # fmt: skip
    frames_case(
        "frame-folder-empty",
        _sample(lambda w: (w / "frames").mkdir() or w / "frames"),
        lambda w: re.escape(str(w / "frames")),
    ),  # fmt: skip
]


@pytest.mark.parametrize(("act", "match"), FRAMES)
def test_frame_sampler(act, match, tmp_path):
    with pytest.raises(M2VError, match=match(tmp_path)):
        act(tmp_path)


def test_cache_dir_from_the_environment_that_is_a_file_is_named(tmp_path, monkeypatch):
    from m2v_bench.frames import FrameSampler
    from m2v_bench.settings import FRAME_CACHE_ENV as CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(write(tmp_path / "c", "x")))
    with pytest.raises(M2VError, match=f"{CACHE_ENV}={re.escape(str(tmp_path / 'c'))}"):
        FrameSampler()


@pytest.mark.parametrize("broken", ["missing-keys", "not-json", "wrong-types", "array-mismatch"])
def test_a_broken_frame_cache_entry_is_decoded_again(tmp_path, broken, caplog):
    from m2v_bench.frames import FrameSampler, FrameView

    video = _video(tmp_path / "v.mp4")
    sampler = FrameSampler(cache_dir=tmp_path / "cache")
    first = sampler.sample(video, FrameView.uniform(2))
    (meta,) = (tmp_path / "cache").rglob("*.json")
    value = {"missing-keys": json.dumps({"indices": [0, 3]}), "not-json": "{",
             "wrong-types": json.dumps({"indices": 5, "total_frames": "x", "fallback": 0}),
             "array-mismatch": json.dumps({"indices": [0, 1, 2], "total_frames": 4, "fallback": 0})}  # fmt: skip
    meta.write_text(value[broken])
    again = sampler.sample(video, FrameView.uniform(2))
    assert again.indices == first.indices and not again.meta.get("cached")
    assert json.loads(meta.read_text())["indices"] == first.indices  # rewritten whole


@pytest.mark.parametrize(
    ("case", "view", "stored", "problem"),
    [
        # the case: one frame stored where 4 uniform frames are asked for (array and meta agree)
        ("one-frame-for-four", "uniform4", lambda a: (a[:1], [0]), "not the 4 uniform frames of 4"),
        ("other-indices", "uniform4", lambda a: (a, [3, 2, 1, 0]), "not the 4 uniform frames"),
        ("index-past-the-end", "uniform4", lambda a: (a, [0, 1, 2, 9]), "outside a clip of 4 frames"),
        ("other-size", "uniform4", lambda a: (a[:, :8, :8], [0, 1, 2, 3]), "frames of 8x8, not the view's 16x16"),
        ("grey-frames", "uniform4", lambda a: (a[..., 0], [0, 1, 2, 3]), "not uint8 (k, H, W, 3)"),
        ("float-frames", "uniform4", lambda a: (a.astype("float32"), [0, 1, 2, 3]), "not uint8 (k, H, W, 3)"),
        ("two-keyframes", "keyframe", lambda a: (a.repeat(2, axis=0), [0, 1]), "not one keyframe"),
    ],
)  # fmt: skip
def test_a_cache_entry_that_is_not_the_requested_view_is_decoded_again(tmp_path, caplog, case, view, stored, problem):
    import numpy as np

    from m2v_bench.frames import FrameSampler, FrameView

    view = (
        FrameView.uniform(4, size=(16, 16)) if view == "uniform4" else FrameView.keyframe(threshold=0, size=(16, 16))
    )
    video = _video(tmp_path / "v.mp4")
    sampler = FrameSampler(cache_dir=tmp_path / "cache")
    first = sampler.sample(video, view)
    (array_path,) = (tmp_path / "cache").rglob("*.npy")
    array, indices = stored(np.load(array_path))
    np.save(array_path, array, allow_pickle=False)
    meta_path = array_path.with_suffix(".json")
    meta_path.write_text(json.dumps({"indices": indices, "total_frames": 4, "fallback": False}))
    assert not sampler.is_cached(video, view)  # so `frames cache` decodes it again too
    caplog.clear()
    again = sampler.sample(video, view)
    assert not again.meta.get("cached"), "a mismatched entry was returned as if valid"
    assert again.indices == first.indices and (again.array == first.array).all()
    assert "does not match the request" in caplog.text and str(array_path) in caplog.text
    assert problem in caplog.text
    assert json.loads(meta_path.read_text())["indices"] == first.indices  # rewritten from the decoded frames
    assert sampler.is_cached(video, view) and sampler.sample(video, view).meta.get("cached")  # and read after
