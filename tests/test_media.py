import av
import numpy as np
import pytest
from media_fixtures import audio_only, good_video, text_file, truncated_copy, zero_byte
from PIL import Image

from m2v_bench.media import (
    CorruptMedia,
    EmptyMedia,
    MediaError,
    MissingMedia,
    NoFrames,
    NotAnImage,
    NotAVideo,
    probe_image,
    probe_video,
)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return good_video(tmp_path_factory.mktemp("media") / "good.mp4", frames=40, fps=8)


def test_probe_good_video(video):
    info = probe_video(video)
    assert (info.width, info.height, info.frames) == (64, 48, 40)
    assert info.duration == pytest.approx(5.0, abs=0.2)
    assert probe_video(video, deep=True).frames == 40


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9, 0.97])
@pytest.mark.parametrize("deep", [False, True])
def test_truncated_video_is_corrupt(video, tmp_path, fraction, deep):
    with pytest.raises(CorruptMedia, match="truncated") as info:
        probe_video(truncated_copy(video, tmp_path / "cut.mp4", fraction), deep=deep)
    assert info.value.path.name == "cut.mp4" and info.value.reason == "corrupt-or-truncated"


@pytest.mark.parametrize(
    ("make", "error", "reason"),
    [
        (lambda p: zero_byte(p), EmptyMedia, "zero-byte"),
        (lambda p: text_file(p), NotAVideo, "not-a-video"),
        (lambda p: p, MissingMedia, "missing"),
    ],
)
def test_bad_video_files(tmp_path, make, error, reason):
    path = make(tmp_path / "bad.mp4")
    with pytest.raises(error) as info:
        probe_video(path)
    assert str(path) in str(info.value) and info.value.reason == reason
    assert isinstance(info.value, MediaError)


def test_container_without_video_stream(tmp_path):
    path = audio_only(tmp_path / "audio_only.mp4")
    with pytest.raises(NotAVideo, match="no video stream"):
        probe_video(path)


def test_video_stream_without_frames(tmp_path):
    path = tmp_path / "zero_frames.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    with pytest.raises(NoFrames, match="zero frames"):
        probe_video(path)


def test_single_frame_video_is_fine(tmp_path):
    assert probe_video(good_video(tmp_path / "one.mp4", frames=1)).frames == 1


def test_images(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 200, 3), dtype=np.uint8)).save(good)
    assert probe_image(good) == (200, 100)
    with pytest.raises(NotAnImage):
        probe_image(text_file(tmp_path / "text.png"))
    with pytest.raises(CorruptMedia):
        probe_image(truncated_copy(good, tmp_path / "cut.png"))
    with pytest.raises(EmptyMedia):
        probe_image(zero_byte(tmp_path / "empty.png"))


def test_truncated_image_is_corrupt_even_after_lmms_eval_is_imported(tmp_path, monkeypatch):
    from PIL import ImageFile

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 200, 3), dtype=np.uint8)).save(good)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what `import lmms_eval.api.task` does
    with pytest.raises(CorruptMedia, match="cut.png"):
        probe_image(truncated_copy(good, tmp_path / "cut.png"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for lmms-eval
