"""The frame sampler: a view of a clip (video file or folder of frames), decoded (:mod:`.decoders`) or read from
the on-disk cache (:mod:`.cache`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from m2v_bench.errors import M2VError
from m2v_bench.frames import decoders
from m2v_bench.frames.cache import FrameCache
from m2v_bench.frames.views import Frames, FrameView, log_fallback, resize, scan_keyframe, uniform_indices
from m2v_bench.settings import FRAME_CACHE_ENV, available_cores


class FrameSampler:
    """Takes a view of a clip (video file or folder of frames), with an optional on-disk cache."""

    def __init__(
        self,
        backend: decoders.Backend = "pyav",
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
    ):
        """``threads``: decoders working on one clip's runs in parallel (pyav backend; default: the cores this
        process may use, at most 4). Use 1 inside DataLoader workers that already run in parallel."""
        if backend not in ("pyav", "decord"):
            raise ValueError(f"backend must be 'pyav' or 'decord', got {backend!r}")
        self.backend = backend
        self.threads = threads if threads is not None else min(4, available_cores())
        from_env = cache_dir is None and bool(os.environ.get(FRAME_CACHE_ENV))
        cache_dir = cache_dir if cache_dir is not None else os.environ.get(FRAME_CACHE_ENV) or None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir is not None and self.cache_dir.exists() and not self.cache_dir.is_dir():
            named = f"{FRAME_CACHE_ENV}={cache_dir}" if from_env else f"frame cache {cache_dir}"
            raise M2VError(f"{named}: is a file, not a folder; point the frame cache at a folder")
        self.cache = FrameCache(self.cache_dir) if self.cache_dir is not None else None

    def sample(self, source: str | os.PathLike[str], view: FrameView) -> Frames:
        frames = self.take(source, view)
        log_fallback(source, view, frames)
        return frames

    def take(self, source: str | os.PathLike[str], view: FrameView) -> Frames:
        """:meth:`sample` without the fallback warning (which the process that asked for the frames logs)."""
        source = Path(source)
        key = None
        if self.cache is not None:
            key = self.cache.key(source, view)
            cached = self.cache.read(key, view)
            if cached is not None:
                return cached
        frames = self._decode(source, view)
        if key is not None:
            self.cache.write(key, frames)
        return frames

    def is_cached(self, source: str | os.PathLike[str], view: FrameView) -> bool:
        """Whether the cache already holds this view of this clip."""
        return self.cache is not None and self.cache.holds(self.cache.key(Path(source), view), view)

    def _decode(self, source: Path, view: FrameView) -> Frames:
        if source.is_dir():
            return self._sample_folder(source, view)
        if view.kind == "keyframe":
            take = decoders.keyframe_pyav if self.backend == "pyav" else decoders.keyframe_decord
            rgb, index, fallback, total = take(source, view.threshold)
            return Frames(resize(rgb, view.size)[None], [index], total, fallback=fallback)
        if self.backend == "pyav":
            decoded, indices, total, fps = decoders.uniform_pyav(source, view.k, self.threads)
        else:
            decoded, indices, total, fps = decoders.uniform_decord(source, view.k)
        return Frames(np.stack([resize(decoded[i], view.size) for i in indices]), indices, total, fps=fps)

    def _sample_folder(self, folder: Path, view: FrameView) -> Frames:
        files = decoders.frame_files(folder)
        if view.kind == "uniform":
            indices = uniform_indices(len(files), view.k)
            loaded = {i: decoders.load_frame(files[i]) for i in sorted(set(indices))}
            return Frames(np.stack([resize(loaded[i], view.size) for i in indices]), indices, len(files))
        frames = ((n, decoders.load_frame(path)) for n, path in enumerate(files))
        rgb, index, fallback = scan_keyframe(frames, view.threshold)
        return Frames(resize(rgb, view.size)[None], [index], len(files), fallback=fallback)
