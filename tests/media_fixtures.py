"""Bad media made on the fly, for the media and validate tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from m2v_bench.media import write_video


def good_video(path: Path, frames: int = 24, fps: int = 8) -> Path:
    rng = np.random.default_rng(1)
    return write_video(path, (rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(frames)), fps=fps)


def zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def truncated_copy(source: Path, path: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def text_file(path: Path) -> Path:
    path.write_text("this is not a video, just text\n" * 20)
    return path


def audio_only(path: Path) -> Path:
    """An MP4 with one AAC stream and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path
