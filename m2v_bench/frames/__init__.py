"""Frame views: what a model sees of a video, decoded once and cached.

- :mod:`.views`: the paper's two views (``keyframe`` for LLaMA-3.2-Vision, ``uniform`` k frames for
  LLaVA-NeXT-Video), their index rules and the :class:`Frames` they give.
- :mod:`.decoders`: PyAV (planned runs of seeks and forward decoding) and decord, and folders of extracted frames.
- :mod:`.cache`: the on-disk cache of (clip, view) results.
- :mod:`.sampler`: :class:`FrameSampler`, a view of a clip through the cache and the decoders.
- :mod:`.pool`: decoder processes beside the model (:class:`~m2v_bench.frames.pool.DecodePool`).
- :mod:`.commands`: ``m2v-bench frames cache``.
"""

from m2v_bench.frames.cache import CACHE_VERSION
from m2v_bench.frames.decoders import Backend, balance_runs, frame_files, plan_runs
from m2v_bench.frames.sampler import FrameSampler
from m2v_bench.frames.views import (
    Frames,
    FrameView,
    ViewError,
    grey_variance,
    log_fallback,
    parse_view,
    scan_keyframe,
    uniform_indices,
)
from m2v_bench.media import MediaError

__all__ = [
    "CACHE_VERSION",
    "Backend",
    "FrameSampler",
    "FrameView",
    "Frames",
    "MediaError",
    "ViewError",
    "balance_runs",
    "frame_files",
    "grey_variance",
    "log_fallback",
    "parse_view",
    "plan_runs",
    "scan_keyframe",
    "uniform_indices",
]
