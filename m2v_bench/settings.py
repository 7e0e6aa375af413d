"""What the environment tells m2v-bench: where prepared data and caches live, and how many cores it may use.

A leaf module (it imports nothing of m2v-bench but its errors), so every layer can read these settings. Where the
data are *found* (the bundled sample data made on first use, the test set's identity) is
:mod:`m2v_bench.data_dir`, a layer above the datasets and the sample data.
"""

from __future__ import annotations

import os
from pathlib import Path

from m2v_bench.errors import M2VError, ManifestError

DATA_DIR_ENV = "M2V_DATA_DIR"
SAMPLE = "sample"
"""``M2V_DATA_DIR=sample``: the bundled synthetic sample data."""
SAMPLE_MARKER = "M2V_SAMPLE_DATA"
"""A file at the root of generated sample data; `prepare` records that the data are synthetic."""
CACHE_ENV = "M2V_CACHE"
FRAME_CACHE_ENV = "M2V_FRAME_CACHE"
"""The default frame cache folder of evaluation and training (``frame_cache=`` in model args overrides it)."""
BAD_MEDIA_ENV = "M2V_BAD_MEDIA"
"""What unusable media do to an evaluation or a training run: ``error`` (the default) stops it before any model
call, listing every bad sample; ``invalid`` scores them invalid (evaluation) or leaves them out, counted in the
provenance (training)."""
BAD_MEDIA_POLICIES = ("error", "invalid")


def bad_media_policy() -> str:
    """``$M2V_BAD_MEDIA``, checked."""
    policy = os.environ.get(BAD_MEDIA_ENV, "error")
    if policy not in BAD_MEDIA_POLICIES:
        raise M2VError(f"{BAD_MEDIA_ENV}={policy!r}: expected one of {', '.join(BAD_MEDIA_POLICIES)}")
    return policy


def cache_home() -> Path:
    """Where m2v-bench keeps what it can make again (sample data, media probe results): ``$M2V_CACHE``, else
    ``~/.cache/m2v-bench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "m2v-bench").expanduser()


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/m2v-bench`` (``~/.local/share/m2v-bench``): where `prepare` writes without ``--out``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "m2v-bench"


def configured_data_dir() -> Path:
    """The prepared-data folder ``M2V_DATA_DIR`` names (it must exist), else the default location. The value
    ``sample`` is :func:`m2v_bench.data_dir.data_dir`'s to resolve; here it is an error naming the fix."""
    value = os.environ.get(DATA_DIR_ENV)
    if value == SAMPLE:
        raise ManifestError(f"{DATA_DIR_ENV}={SAMPLE} names the bundled sample data; give a folder instead")
    if value:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise ManifestError(
                f"{DATA_DIR_ENV}={value} is not a folder; prepare data into it with "
                f"`m2v-bench prepare <dataset> --root RAW --out {value}`, or set {DATA_DIR_ENV}={SAMPLE} for the "
                "bundled synthetic sample data"
            )
        return path
    return default_data_dir()


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one): the one core count that sizes
    every pool of workers (decoders, media probes, the demo's jobs)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
