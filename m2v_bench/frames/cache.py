"""The frame cache: each (clip, view) result kept on disk, so training epochs 2..n and repeated evaluations do not
decode again. ``FrameSampler(cache_dir=...)``, ``frame_cache=DIR`` in model args or ``M2V_FRAME_CACHE=DIR`` turn
it on; ``m2v-bench frames cache`` fills it ahead of a run.

An entry is keyed by a content fingerprint of the clip (size + first and last 256 KiB, or a frame folder's names
and sizes), the view and :data:`CACHE_VERSION`. It is two files, ``<key>.npy`` (the frames) and ``<key>.json``
(indices, frame count, fallback), each written to a temporary file and renamed, so a run killed mid-write leaves no
entry that reads as complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from m2v_bench.atomic import make_dirs
from m2v_bench.frames.decoders import frame_files
from m2v_bench.frames.views import Frames, FrameView, uniform_indices
from m2v_bench.media import _check_file

logger = logging.getLogger("m2v_bench.frames")

CACHE_VERSION = 2
"""Bump when sampling changes what a view gives: cached frames and keyframe scans of older versions are not used.
2: entries record the clip's frame rate (``fps``)."""
_FINGERPRINT_CHUNK = 256 * 1024


def mismatch(frames: Frames, view: FrameView) -> str | None:
    """What makes cached ``frames`` not a ``view`` of their clip (None: they are one): the frame count the view
    takes, the indices its rule gives for the clip's length, the array's shape, type and size."""
    array, total = frames.array, frames.total_frames
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        return f"array {array.dtype} {tuple(array.shape)}, not uint8 (k, H, W, 3)"
    if array.shape[0] != len(frames.indices):
        return f"{array.shape[0]} frames stored for {len(frames.indices)} indices"
    if total < 1 or any(type(i) is not int or not 0 <= i < total for i in frames.indices):
        return f"indices {frames.indices[:4]} outside a clip of {total} frames"
    if view.kind == "uniform" and frames.indices != uniform_indices(total, view.k):
        return f"indices {frames.indices[:4]}..., not the {view.k} uniform frames of {total}"
    if view.kind == "keyframe" and len(frames.indices) != 1:
        return f"{len(frames.indices)} frames, not one keyframe"
    if view.size is not None and (array.shape[2], array.shape[1]) != tuple(view.size):
        return f"frames of {array.shape[2]}x{array.shape[1]}, not the view's {view.size[0]}x{view.size[1]}"
    return None


class FrameCache:
    """The on-disk frame cache below ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def key(self, source: Path, view: FrameView) -> str:
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

    def paths(self, key: str) -> tuple[Path, Path]:
        folder = self.folder / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def holds(self, key: str, view: FrameView) -> bool:
        """Whether the entry is there and is ``view`` (its metadata and the array's header; the frames are not read),
        so `frames cache` decodes again what :meth:`read` would refuse."""
        array_path, meta_path = self.paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(array_path, mmap_mode="r", allow_pickle=False)
            frames = Frames(array, list(meta["indices"]), int(meta["total_frames"]), bool(meta["fallback"]))
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return mismatch(frames, view) is None

    def read(self, key: str, view: FrameView) -> Frames | None:
        """The cached frames of ``view``, or None when the entry is absent, damaged or not what ``view`` asks for
        (the caller decodes again and rewrites it; a damaged or mismatched entry is logged)."""
        array_path, meta_path = self.paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(array_path, allow_pickle=False)
        except (OSError, ValueError):  # absent, or half-written by a killed run: decode again
            return None
        try:
            fps = meta.get("fps")
            frames = Frames(array, list(meta["indices"]), int(meta["total_frames"]), bool(meta["fallback"]),
                            {"cached": True}, None if fps is None else float(fps))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            logger.warning("%s: a frame-cache entry without its keys (indices, total_frames, fallback); decoding the "
                           "clip again and rewriting it", meta_path)  # fmt: skip
            return None
        problem = mismatch(frames, view)
        if problem is not None:
            logger.warning("%s: a frame-cache entry that does not match the request (%s); decoding the clip again "
                           "and rewriting it", array_path, problem)  # fmt: skip
            return None
        return frames

    def write(self, key: str, frames: Frames) -> None:
        array_path, meta_path = self.paths(key)
        make_dirs(array_path.parent)
        tmp = array_path.with_name(f"{array_path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, frames.array, allow_pickle=False)
        os.replace(tmp, array_path)
        meta = {"indices": frames.indices, "total_frames": frames.total_frames, "fallback": frames.fallback,
                "fps": frames.fps}  # fmt: skip
        tmp_meta = meta_path.with_name(f"{meta_path.stem}.{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, meta_path)
