"""Decoders: the frames of a view, from a video file (PyAV or decord) or a folder of extracted frames.

Decoding (backend ``"pyav"``, the default): one demux pass (no decoding) reads every frame's timestamp and which
frames are keyframes. :func:`plan_runs` then groups the targets into runs -- seek to a keyframe once, decode forward
through the run's targets -- starting a new run exactly where a seek skips frames that decoding on would go through.
A short clip or one with long keyframe intervals becomes one sequential run, a long clip with frequent keyframes
one run per target, and anything between a mix. Runs are independent, so they are spread over ``threads``
decoders (PyAV releases the GIL inside libav's calls). ``backend="decord"`` uses decord's ``get_batch`` with the same
indices. Measurements: ``bench/frames.py`` and bench/README.md.
"""

from __future__ import annotations

import bisect
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

from m2v_bench.frames.views import scan_keyframe, uniform_indices
from m2v_bench.media import (
    IMAGE_EXTENSIONS,
    CorruptMedia,
    MissingMedia,
    NoFrames,
    NotAVideo,
    _check_file,
    _looks_like_container,
    load_image,
    open_video,
)

Backend = Literal["pyav", "decord"]


@dataclass(frozen=True)
class _Index:
    pts: list[int]
    """Presentation timestamps of all frames, sorted: position j = frame j."""
    keyframes: list[int]
    """Frame indices of keyframes, sorted."""
    position: dict[int, int]
    """Timestamp -> frame index."""

    @property
    def total(self) -> int:
        return len(self.pts)


def _build_index(container, stream, path: Path) -> _Index:
    pts, key_pts = [], []
    try:
        for packet in container.demux(stream):
            if packet.pts is None:  # the flush packet at the end
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                key_pts.append(packet.pts)
    except av.error.FFmpegError as exc:
        raise CorruptMedia(
            path, f"demuxing failed ({exc.__class__.__name__}); the file is truncated or corrupt"
        ) from None
    if not pts:
        raise NoFrames(path, "video stream has no frames")
    if stream.frames and len(pts) < stream.frames:
        raise CorruptMedia(path, f"the container declares {stream.frames} frames but holds {len(pts)}; truncated?")
    pts.sort()
    position = {p: j for j, p in enumerate(pts)}
    keyframes = sorted(position[p] for p in key_pts) or [0]
    return _Index(pts, keyframes, position)


def plan_runs(targets: list[int], keyframes: list[int]) -> list[tuple[int, list[int]]]:
    """Group sorted target frames into runs: seek to the run's keyframe once, then decode forward through its
    targets. A new run starts wherever seeking to the target's keyframe skips frames that decoding on from the
    previous target would have to go through; so no plan decodes more frames than sequential or seek-per-index."""
    runs: list[tuple[int, list[int]]] = []
    for target in targets:
        keyframe = keyframes[bisect.bisect_right(keyframes, target) - 1]
        if not runs or keyframe > runs[-1][1][-1]:
            runs.append((keyframe, [target]))
        else:
            runs[-1][1].append(target)
    return runs


def _decode_runs(container, path: Path, index: _Index, runs) -> dict[int, np.ndarray]:
    stream = container.streams.video[0]
    frames: dict[int, np.ndarray] = {}
    try:
        for keyframe, targets in runs:
            container.seek(index.pts[keyframe], stream=stream, backward=True)
            decoder = container.decode(stream)
            current = keyframe - 1
            for target in targets:
                for frame in decoder:
                    current = index.position.get(frame.pts, current + 1)
                    if current >= target:
                        frames[target] = frame.to_ndarray(format="rgb24")
                        break
                else:
                    raise CorruptMedia(path, f"frame {target} of {index.total} does not decode; truncated?")
    except av.error.FFmpegError as exc:
        raise CorruptMedia(
            path, f"decoding failed ({exc.__class__.__name__}); the file is truncated or corrupt"
        ) from None
    return frames


def balance_runs(runs, workers: int) -> list[list[tuple[int, list[int]]]]:
    """Spread runs over workers by decode cost (frames from keyframe to last target), largest first."""
    bins: list[tuple[int, list]] = [(0, []) for _ in range(workers)]
    for run in sorted(runs, key=lambda r: r[1][-1] - r[0], reverse=True):
        cost, members = min(bins, key=lambda b: b[0])
        bins.remove((cost, members))
        bins.append((cost + run[1][-1] - run[0] + 1, [*members, run]))
    return [members for _, members in bins if members]


_PARALLEL_MIN_FRAMES = 60
"""Below this many frames to decode, a second decoder costs more than it saves."""


def stream_fps(stream) -> float | None:
    """A video stream's average frame rate, or None when the container does not say."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def uniform_pyav(path: Path, k: int, threads: int) -> tuple[dict[int, np.ndarray], list[int], int, float | None]:
    """Decode the uniform view's frames: one demux pass, a plan of runs, runs decoded on ``threads`` decoders.
    Returns (frame index -> RGB, the view's indices, the clip's frame count, its frame rate)."""
    container = open_video(path)
    try:
        fps = stream_fps(container.streams.video[0])
        index = _build_index(container, container.streams.video[0], path)
        indices = uniform_indices(index.total, k)
        runs = plan_runs(sorted(set(indices)), index.keyframes)
        cost = sum(targets[-1] - keyframe + 1 for keyframe, targets in runs)
        groups = balance_runs(runs, threads) if threads > 1 and cost >= _PARALLEL_MIN_FRAMES else [runs]
        if len(groups) == 1:
            return _decode_runs(container, path, index, runs), indices, index.total, fps

        def work(group):
            if group is groups[0]:
                return _decode_runs(container, path, index, group)
            with open_video(path) as own:
                return _decode_runs(own, path, index, group)

        with ThreadPoolExecutor(max_workers=len(groups)) as pool:  # PyAV releases the GIL inside libav's calls
            frames: dict[int, np.ndarray] = {}
            for part in pool.map(work, groups):
                frames.update(part)
        return frames, indices, index.total, fps
    finally:
        container.close()


def keyframe_pyav(path: Path, threshold: float):
    """The keyframe, decoding forward only as far as needed (after the demux pass, which gives the frame count and
    catches truncated files)."""
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        index = _build_index(container, stream, path)
        container.seek(index.pts[0], stream=stream, backward=True)
        decoded = ((n, frame.to_ndarray(format="rgb24")) for n, frame in enumerate(container.decode(stream)))
        found = scan_keyframe(decoded, threshold)
    except av.error.FFmpegError as exc:
        raise CorruptMedia(
            path, f"decoding failed ({exc.__class__.__name__}); the file is truncated or corrupt"
        ) from None
    finally:
        container.close()
    if found is None:
        raise NoFrames(path, "video stream has no decodable frame")
    return (*found, index.total)


def decord_reader(path: Path):
    import decord  # imported here: decord is the optional backend, and its import is slow

    _check_file(path)
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception as exc:  # decord raises RuntimeError/DECORDError without a type per cause
        if _looks_like_container(path):
            raise CorruptMedia(path, f"decord cannot read it ({str(exc).splitlines()[0][:120]})") from None
        raise NotAVideo(path, "not a video file (no known container format)") from None


def uniform_decord(path: Path, k: int) -> tuple[dict[int, np.ndarray], list[int], int, float | None]:
    reader = decord_reader(path)
    if len(reader) == 0:
        raise NoFrames(path, "video stream has no frames")
    indices = uniform_indices(len(reader), k)
    wanted = sorted(set(indices))
    try:
        batch = reader.get_batch(wanted).asnumpy()
    except Exception as exc:
        raise CorruptMedia(path, f"decord failed to decode ({str(exc).splitlines()[0][:120]})") from None
    fps = float(reader.get_avg_fps()) or None
    return dict(zip(wanted, batch, strict=True)), indices, len(reader), fps


def keyframe_decord(path: Path, threshold: float):
    reader = decord_reader(path)
    try:
        found = scan_keyframe(((n, reader[n].asnumpy()) for n in range(len(reader))), threshold)
    except Exception as exc:
        raise CorruptMedia(path, f"decord failed to decode ({str(exc).splitlines()[0][:120]})") from None
    if found is None:
        raise NoFrames(path, "video stream has no frames")
    return (*found, len(reader))


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    """The images of a folder of extracted frames, in natural order."""
    if not folder.is_dir():
        raise MissingMedia(folder, "frames folder does not exist")
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    except OSError as exc:
        raise MissingMedia(folder, f"frames folder cannot be read ({exc.strerror})") from None
    if not files:
        raise NoFrames(folder, f"frames folder has no image ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files, key=_natural_key)


def load_frame(path: Path) -> np.ndarray:
    return np.asarray(load_image(path))  # typed errors for empty / truncated / non-image files
