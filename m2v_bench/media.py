"""Reading media safely: typed errors for bad files, and cheap probes used by ``m2v-bench validate``.

Every failure is a :class:`MediaError` subclass naming the file; callers decide to skip or fail. Nothing here
decodes more than needed: :func:`probe_video` decodes the first frame and the last second (a truncated file
fails there), and only ``deep=True`` decodes every frame.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image, ImageFile, UnidentifiedImageError

from m2v_bench.errors import M2VError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".flv", ".ts")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")

# Leading bytes of container formats; a file that starts like a container but does not open is corrupt or
# truncated rather than "not a video".
_CONTAINER_MAGIC = (
    (4, b"ftyp"),  # mp4 / mov
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm
    (0, b"RIFF"),  # avi
    (0, b"FLV"),
    (0, b"\x47"),  # mpeg-ts sync byte
)


class MediaError(M2VError):
    """A media file that cannot be used. ``reason`` is a short machine-friendly kind."""

    reason = "unreadable"

    def __init__(self, path: str | os.PathLike[str], detail: str):
        self.path = Path(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")

    def __reduce__(self):  # raised in a decoder process, re-raised in the caller's: keep path and detail
        return type(self), (self.path, self.detail)


class MissingMedia(MediaError):
    reason = "missing"


class EmptyMedia(MediaError):
    reason = "zero-byte"


class NotAVideo(MediaError):
    reason = "not-a-video"


class NotAnImage(MediaError):
    reason = "not-an-image"


class CorruptMedia(MediaError):
    reason = "corrupt-or-truncated"


class TooLarge(MediaError):
    reason = "too-large"


class NoFrames(MediaError):
    reason = "zero-frames"


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    """Frame count declared by the container (0 when unknown); exact when probed with ``deep=True``."""
    duration: float
    """Seconds."""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MissingMedia(path, "file does not exist")
    if not path.is_file():
        raise MissingMedia(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyMedia(path, "file is empty (0 bytes); re-download or re-extract it")


def _looks_like_container(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return any(head[offset : offset + len(magic)] == magic for offset, magic in _CONTAINER_MAGIC)


def open_video(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open a video container, raising a typed :class:`MediaError` instead of PyAV's errors."""
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.error.InvalidDataError, av.error.ValueError, UnicodeDecodeError) as exc:
        if _looks_like_container(path):
            raise CorruptMedia(path, f"container is truncated or corrupt ({exc.__class__.__name__})") from None
        raise NotAVideo(path, "not a video file (no known container format)") from None
    except av.error.EOFError:
        raise NoFrames(path, "the container ends before its first frame (zero frames)") from None
    except av.error.FFmpegError as exc:
        raise CorruptMedia(path, f"cannot open: {exc}") from None
    if not container.streams.video:
        container.close()
        raise NotAVideo(path, "has no video stream")
    if _is_image_format(container.format.name):
        name = container.format.name
        container.close()
        kind = name.removesuffix("_pipe")
        raise NotAVideo(path, f"an image ({kind}), not a video; a meme belongs in an image dataset")
    return container


def _is_image_format(demuxer: str) -> bool:
    """FFmpeg reads a still image as a one-frame "video" through an image demuxer (png_pipe, image2, gif, ...)."""
    return demuxer.endswith("_pipe") or demuxer in ("image2", "gif", "apng")


def probe_video(path: str | os.PathLike[str], deep: bool = False) -> VideoInfo:
    """Check that a video can be decoded from start to end.

    Quick mode decodes the first frame and the frames from about 95% of the duration on: a file truncated
    anywhere but the last frames fails. ``deep=True`` decodes every frame and reports the exact count.
    """
    path = Path(path)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = float(stream.time_base) if stream.time_base else 0.0
        if stream.duration is not None and time_base:
            duration = stream.duration * time_base
        else:
            duration = (container.duration or 0) / av.time_base
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        try:
            if deep:
                count = sum(1 for _ in container.decode(stream))
                if count == 0:
                    raise NoFrames(path, "video stream has no decodable frame")
                frames = count
            else:
                first = next(container.decode(stream), None)
                if first is None:
                    raise NoFrames(path, "video stream has no decodable frame")
                frames = stream.frames
                if duration > 1.0 and time_base:
                    _check_tail(container, stream, path, duration, time_base)
        except av.error.FFmpegError as exc:
            raise CorruptMedia(
                path, f"decoding failed ({exc.__class__.__name__}); the file is truncated or corrupt"
            ) from None
        return VideoInfo(stream.width, stream.height, fps, frames, float(duration))
    finally:
        container.close()


def _check_tail(container, stream, path: Path, duration: float, time_base: float) -> None:
    target = duration * 0.95
    container.seek(int(target / time_base) + (stream.start_time or 0), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        last = frame
    if last is None or last.pts is None:
        raise CorruptMedia(path, f"no frame decodes after {target:.1f}s of a {duration:.1f}s video; truncated?")
    last_time = (last.pts - (stream.start_time or 0)) * time_base
    slack = max(1.0, 3.0 / float(stream.average_rate or 1))
    if last_time < duration - slack:
        raise CorruptMedia(path, f"frames stop at {last_time:.1f}s of a declared {duration:.1f}s; truncated?")


_STRICT_IMAGES = threading.Lock()


@contextlib.contextmanager
def _strict_image_loading():
    """Let Pillow raise on truncated images while the block runs. lmms-eval sets the process-wide
    ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` when it is imported, which would make a truncated file look whole."""
    with _STRICT_IMAGES:
        lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def probe_image(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Check that an image decodes completely, whatever Pillow's truncation setting; returns (width, height)."""
    path = Path(path)
    _check_file(path)
    try:
        with _strict_image_loading(), Image.open(path) as image:
            image.load()
            return image.size
    except UnidentifiedImageError:
        raise NotAnImage(path, "not an image file") from None
    except Image.DecompressionBombError as exc:
        raise TooLarge(path, f"refused to decode: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptMedia(path, f"image is truncated or corrupt ({exc})") from None


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """An image file as RGB, decoded completely, with errors naming the file (Pillow's own say "image file is
    truncated" without a name)."""
    path = Path(path)
    _check_file(path)
    try:
        with _strict_image_loading(), Image.open(path) as image:
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise NotAnImage(path, "not an image file") from None
    except Image.DecompressionBombError as exc:
        raise TooLarge(path, f"refused to decode: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptMedia(path, f"image is truncated or corrupt ({exc})") from None


def write_video(path: str | os.PathLike[str], frames, fps: int = 8, gop: int | None = None, crf: int = 28) -> Path:
    """Encode RGB uint8 frames (an iterable of HxWx3 arrays) as H.264 mp4, deterministically (one encoder
    thread: the same frames give the same bytes). ``gop`` sets the keyframe interval."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        options = {"crf": str(crf), "preset": "veryfast"}
        if gop is not None:
            options.update({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
        stream.options = options
        for array in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
