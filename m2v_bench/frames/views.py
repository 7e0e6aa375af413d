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
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

from m2v_bench.errors import M2VError

logger = logging.getLogger("m2v_bench.frames")


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
    fps: float | None = None
    """The clip's average frame rate (None for a folder of frames): with ``indices`` and ``total_frames``, the
    sampling metadata that native-video processors (Qwen-VL) turn into timestamps."""

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


def resize(array: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (array.shape[1], array.shape[0]) == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize(tuple(size), Image.Resampling.BICUBIC))


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
