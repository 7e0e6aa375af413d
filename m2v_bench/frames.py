"""Frame views: what a model sees of a video.

Two views, the paper's:

* ``FrameView.keyframe(threshold=100, size=(560, 560))`` -- LLaMA-3.2-Vision sees ONE frame: the first frame whose
  grey-level variance exceeds ``threshold``. Grey level = PIL's ``"L"`` conversion of the RGB frame (ITU-R 601-2
  luma), variance over all its pixels. When no frame passes, the most varied frame is used instead and the
  result says so (``Frames.fallback``, plus a logged warning).
* ``FrameView.uniform(k=16)`` -- LLaVA-NeXT-Video sees ``k`` frames. **Index rule**: for a clip of ``n`` frames,
  frame ``i`` of the view is frame ``floor(i * n / k)`` for ``i = 0 .. k-1`` (``np.arange(0, n, n / k)``, the rule of
  the model's reference code). A clip shorter than ``k`` repeats frames.

Frame ``j`` of a clip is the ``j``-th frame in presentation order (sorted timestamps), whichever backend decodes it;
for a folder of extracted frames it is the ``j``-th image file in natural order (``0.png, 1.png, ..., 10.png``).
Frames are returned as one ``uint8`` array ``(k, H, W, 3)`` (``Frames.array``) or PIL images (``Frames.images()``),
resized to the view's ``size`` with PIL bicubic resampling when it has one.

Decoding (backend ``"pyav"``, the default): one demux pass (no decoding) reads every frame's timestamp and which
frames are keyframes. :func:`plan_runs` then groups the targets into runs -- seek to a keyframe once, decode forward
through the run's targets -- starting a new run exactly where a seek skips frames that decoding on would go through.
A short clip or one with long keyframe intervals becomes one sequential run, a long clip with frequent keyframes
one run per target, and anything between a mix. Runs are independent, so they are spread over ``threads``
decoders (PyAV releases the GIL inside libav's calls). ``backend="decord"`` uses decord's ``get_batch`` with the same
indices. Measurements: ``bench/frames.py`` and bench/README.md.

Cache: ``FrameSampler(cache_dir=...)`` or ``M2V_FRAME_CACHE=DIR`` keeps each (clip, view) result on disk, keyed by a
content fingerprint of the clip (size + first and last 256 KiB, or a frame folder's names and sizes) and the view,
so training epochs 2..n and repeated evaluations do not decode again.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image

from m2v_bench.atomic import make_dirs
from m2v_bench.errors import M2VError
from m2v_bench.media import (
    IMAGE_EXTENSIONS,
    CorruptMedia,
    MediaError,
    MissingMedia,
    NoFrames,
    NotAVideo,
    _check_file,
    _looks_like_container,
    load_image,
    open_video,
)

logger = logging.getLogger(__name__)

CACHE_ENV = "M2V_FRAME_CACHE"
CACHE_VERSION = 1
"""Bump when sampling changes what a view gives: cached frames and keyframe scans of older versions are not used."""
_FINGERPRINT_CHUNK = 256 * 1024
Backend = Literal["pyav", "decord"]


class ViewError(M2VError, ValueError):
    """A frame view that cannot be taken (no frames, a size of zero pixels); the message says which setting."""


@dataclass(frozen=True)
class FrameView:
    """Which frames of a clip a model sees, and at what size (``(width, height)``; None keeps the clip's)."""

    kind: Literal["keyframe", "uniform"]
    k: int = 1
    threshold: float = 100.0
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("keyframe", "uniform"):
            raise ViewError(f"frame view kind must be 'keyframe' or 'uniform', got {self.kind!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ViewError(f"{self.kind} view needs k >= 1 frames, got {self.k!r}")
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ViewError(f"keyframe threshold must be a finite number >= 0, got {self.threshold!r}")
        if self.size is not None:
            size = tuple(self.size)
            if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size):
                raise ViewError(
                    f"frame size must be (width, height) with both >= 1 pixels, or None, got {self.size!r}"
                )
            object.__setattr__(self, "size", size)

    @classmethod
    def keyframe(cls, threshold: float = 100.0, size: tuple[int, int] | None = (560, 560)) -> FrameView:
        return cls("keyframe", 1, float(threshold), size)

    @classmethod
    def uniform(cls, k: int = 16, size: tuple[int, int] | None = None) -> FrameView:
        return cls("uniform", k, 0.0, size)

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Frames:
    """The frames of one view of one clip."""

    array: np.ndarray
    """``(k, H, W, 3)`` uint8, RGB."""
    indices: list[int]
    total_frames: int
    fallback: bool = False
    """Keyframe view only: no frame passed the threshold, so the most varied frame was used."""
    meta: dict = field(default_factory=dict)

    def images(self) -> list[Image.Image]:
        return [Image.fromarray(frame) for frame in self.array]


def uniform_indices(total: int, k: int) -> list[int]:
    """The index rule of the uniform view: ``floor(i * total / k)`` for ``i < k``."""
    if total < 1:
        raise ValueError("a clip needs at least one frame")
    return [math.floor(i * total / k) for i in range(k)]


def grey_variance(rgb: np.ndarray) -> float:
    """Variance of PIL's grey level ("L": ITU-R 601-2 luma) of an RGB frame: the paper's keyframe criterion."""
    return float(np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64).var())


def _resize(array: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (array.shape[1], array.shape[0]) == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize(tuple(size), Image.Resampling.BICUBIC))


# --------------------------------------------------------------------------------------------------- PyAV backend


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


def _uniform_pyav(path: Path, k: int, threads: int) -> tuple[dict[int, np.ndarray], list[int], int]:
    """Decode the uniform view's frames: one demux pass, a plan of runs, runs decoded on ``threads`` decoders."""
    container = open_video(path)
    try:
        index = _build_index(container, container.streams.video[0], path)
        indices = uniform_indices(index.total, k)
        runs = plan_runs(sorted(set(indices)), index.keyframes)
        cost = sum(targets[-1] - keyframe + 1 for keyframe, targets in runs)
        groups = balance_runs(runs, threads) if threads > 1 and cost >= _PARALLEL_MIN_FRAMES else [runs]
        if len(groups) == 1:
            return _decode_runs(container, path, index, runs), indices, index.total

        def work(group):
            if group is groups[0]:
                return _decode_runs(container, path, index, group)
            with open_video(path) as own:
                return _decode_runs(own, path, index, group)

        with ThreadPoolExecutor(max_workers=len(groups)) as pool:  # PyAV releases the GIL inside libav's calls
            frames: dict[int, np.ndarray] = {}
            for part in pool.map(work, groups):
                frames.update(part)
        return frames, indices, index.total
    finally:
        container.close()


def scan_keyframe(frames: Iterable[tuple[int, np.ndarray]], threshold: float) -> tuple[np.ndarray, int, bool] | None:
    """The paper's keyframe rule, the one place it is written: the first ``(index, rgb)`` frame whose grey-level
    variance exceeds ``threshold``, consuming the frames only that far; else the most varied frame, flagged as a
    fallback. Returns (rgb, index, fallback), or None when there is no frame at all."""
    best, best_var = None, -1.0
    for index, rgb in frames:
        variance = grey_variance(rgb)
        if variance > threshold:
            return rgb, index, False
        if variance > best_var:
            best, best_var = (rgb, index), variance
    return None if best is None else (best[0], best[1], True)


def _keyframe_pyav(path: Path, threshold: float):
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


# ------------------------------------------------------------------------------------------------- decord backend


def _decord_reader(path: Path):
    import decord

    _check_file(path)
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception as exc:  # decord raises RuntimeError/DECORDError without a type per cause
        if _looks_like_container(path):
            raise CorruptMedia(path, f"decord cannot read it ({str(exc).splitlines()[0][:120]})") from None
        raise NotAVideo(path, "not a video file (no known container format)") from None


def _uniform_decord(path: Path, k: int) -> tuple[dict[int, np.ndarray], list[int], int]:
    reader = _decord_reader(path)
    if len(reader) == 0:
        raise NoFrames(path, "video stream has no frames")
    indices = uniform_indices(len(reader), k)
    wanted = sorted(set(indices))
    try:
        batch = reader.get_batch(wanted).asnumpy()
    except Exception as exc:
        raise CorruptMedia(path, f"decord failed to decode ({str(exc).splitlines()[0][:120]})") from None
    return dict(zip(wanted, batch, strict=True)), indices, len(reader)


def _keyframe_decord(path: Path, threshold: float):
    reader = _decord_reader(path)
    try:
        found = scan_keyframe(((n, reader[n].asnumpy()) for n in range(len(reader))), threshold)
    except Exception as exc:
        raise CorruptMedia(path, f"decord failed to decode ({str(exc).splitlines()[0][:120]})") from None
    if found is None:
        raise NoFrames(path, "video stream has no frames")
    return (*found, len(reader))


# ----------------------------------------------------------------------------------------------- frame folders


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


def _load_frame(path: Path) -> np.ndarray:
    return np.asarray(load_image(path))  # typed errors for empty / truncated / non-image files


# ------------------------------------------------------------------------------------------------------- sampler


class FrameSampler:
    """Takes a view of a clip (video file or folder of frames), with an optional on-disk cache."""

    def __init__(
        self,
        backend: Backend = "pyav",
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
    ):
        """``threads``: decoders working on one clip's runs in parallel (pyav backend; default: the CPU count,
        at most 4). Use 1 inside DataLoader workers that already run in parallel."""
        if backend not in ("pyav", "decord"):
            raise ValueError(f"backend must be 'pyav' or 'decord', got {backend!r}")
        self.backend = backend
        self.threads = threads if threads is not None else min(4, os.cpu_count() or 1)
        from_env = cache_dir is None and bool(os.environ.get(CACHE_ENV))
        cache_dir = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir is not None and self.cache_dir.exists() and not self.cache_dir.is_dir():
            named = f"{CACHE_ENV}={cache_dir}" if from_env else f"frame cache {cache_dir}"
            raise M2VError(f"{named}: is a file, not a folder; point the frame cache at a folder")

    def sample(self, source: str | os.PathLike[str], view: FrameView) -> Frames:
        frames = self.take(source, view)
        log_fallback(source, view, frames)
        return frames

    def take(self, source: str | os.PathLike[str], view: FrameView) -> Frames:
        """:meth:`sample` without the fallback warning (which the process that asked for the frames logs)."""
        source = Path(source)
        key = None
        if self.cache_dir is not None:
            key = self._cache_key(source, view)
            cached = self._cache_read(key)
            if cached is not None:
                return cached
        frames = self._sample(source, view)
        if key is not None:
            self._cache_write(key, frames)
        return frames

    # -- decoding

    def _sample(self, source: Path, view: FrameView) -> Frames:
        if source.is_dir():
            return self._sample_folder(source, view)
        if view.kind == "keyframe":
            take = _keyframe_pyav if self.backend == "pyav" else _keyframe_decord
            rgb, index, fallback, total = take(source, view.threshold)
            return self._keyframe_result(view, rgb, index, fallback, total)
        if self.backend == "pyav":
            decoded, indices, total = _uniform_pyav(source, view.k, self.threads)
        else:
            decoded, indices, total = _uniform_decord(source, view.k)
        return Frames(np.stack([_resize(decoded[i], view.size) for i in indices]), indices, total)

    def _keyframe_result(self, view, rgb, index, fallback, total) -> Frames:
        array = _resize(rgb, view.size)[None]
        return Frames(array, [index], total, fallback=fallback)

    def _sample_folder(self, folder: Path, view: FrameView) -> Frames:
        files = frame_files(folder)
        if view.kind == "uniform":
            indices = uniform_indices(len(files), view.k)
            loaded = {i: _load_frame(files[i]) for i in sorted(set(indices))}
            return Frames(np.stack([_resize(loaded[i], view.size) for i in indices]), indices, len(files))
        rgb, index, fallback = scan_keyframe(((n, _load_frame(path)) for n, path in enumerate(files)), view.threshold)
        return self._keyframe_result(view, rgb, index, fallback, len(files))

    # -- cache

    def _cache_key(self, source: Path, view: FrameView) -> str:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(f"m2v-frames-v{CACHE_VERSION}|{view.key()}|".encode())
        if source.is_dir():
            for path in frame_files(source):
                digest.update(f"{path.name}:{path.stat().st_size};".encode())
        else:
            _check_file(source)
            size = source.stat().st_size
            digest.update(f"{size}|".encode())
            with open(source, "rb") as fh:
                digest.update(fh.read(_FINGERPRINT_CHUNK))
                if size > _FINGERPRINT_CHUNK:
                    fh.seek(max(_FINGERPRINT_CHUNK, size - _FINGERPRINT_CHUNK))
                    digest.update(fh.read(_FINGERPRINT_CHUNK))
        return digest.hexdigest()

    def is_cached(self, source: str | os.PathLike[str], view: FrameView) -> bool:
        """Whether the cache already holds this view of this clip (both of its files: writes are atomic, so a run
        killed mid-write leaves none)."""
        if self.cache_dir is None:
            return False
        return all(path.is_file() for path in self._cache_paths(self._cache_key(Path(source), view)))

    def _cache_paths(self, key: str) -> tuple[Path, Path]:
        folder = self.cache_dir / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def _cache_read(self, key: str) -> Frames | None:
        array_path, meta_path = self._cache_paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(array_path, allow_pickle=False)
        except (OSError, ValueError):  # absent, or half-written by a killed run: decode again
            return None
        try:
            frames = Frames(array, list(meta["indices"]), int(meta["total_frames"]), bool(meta["fallback"]),
                            {"cached": True})  # fmt: skip
        except (KeyError, TypeError, ValueError):
            logger.warning("%s: a frame-cache entry without its keys (indices, total_frames, fallback); decoding the "
                           "clip again and rewriting it", meta_path)  # fmt: skip
            return None
        if array.ndim != 4 or array.shape[0] != len(frames.indices):
            logger.warning("%s: a frame-cache entry whose array does not match; decoding again", array_path)
            return None
        return frames

    def _cache_write(self, key: str, frames: Frames) -> None:
        array_path, meta_path = self._cache_paths(key)
        make_dirs(array_path.parent)
        tmp = array_path.with_name(f"{array_path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, frames.array, allow_pickle=False)
        os.replace(tmp, array_path)
        meta = {"indices": frames.indices, "total_frames": frames.total_frames, "fallback": frames.fallback}
        tmp_meta = meta_path.with_name(f"{meta_path.stem}.{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, meta_path)


def log_fallback(source, view: FrameView, frames: Frames) -> None:
    """The keyframe fallback's warning, logged where the frames are used (a decoder process's log is not seen)."""
    if frames.fallback and not frames.meta.get("cached"):
        logger.warning("%s: no frame has grey-level variance > %s; using the most varied frame (%d)", source,
                       view.threshold, frames.indices[0])  # fmt: skip


def parse_view(spec: str) -> FrameView:
    """``keyframe`` (the paper's, threshold 100 at 560x560), ``keyframe:THRESHOLD``, ``uniform`` (16 frames) or
    ``uniform:K``: the views the models take, so a cache filled with them is the one evaluation and training read."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "keyframe":
            return FrameView.keyframe(float(arg)) if arg else FrameView.keyframe()
        if kind == "uniform":
            return FrameView.uniform(int(arg)) if arg else FrameView.uniform()
    except ValueError:
        pass
    raise ValueError(f"view {spec!r}: expected keyframe, keyframe:THRESHOLD, uniform or uniform:K")


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


__all__ = [
    "available_cores",
    "parse_view",
    "FrameSampler",
    "FrameView",
    "Frames",
    "MediaError",
    "frame_files",
    "grey_variance",
    "uniform_indices",
]
