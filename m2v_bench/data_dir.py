"""Where the lmms-eval tasks (and anything else that evaluates) find prepared manifests.

``M2V_DATA_DIR`` names a prepared folder (``<dir>/<dataset>/<split>.jsonl``, as ``m2v-bench prepare --out <dir>``
writes it). Unset, the bundled synthetic sample data is used (made on first use, see
:func:`m2v_bench.sample_data.default_prepared_dir`), so a fresh install evaluates at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from m2v_bench.errors import ManifestError

DATA_DIR_ENV = "M2V_DATA_DIR"


def data_dir() -> Path:
    value = os.environ.get(DATA_DIR_ENV)
    if value:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise ManifestError(
                f"{DATA_DIR_ENV}={value} is not a folder; prepare data into it with "
                f"`m2v-bench prepare <dataset> --root RAW --out {value}`, or unset it to use the sample data"
            )
        return path
    from m2v_bench.sample_data import default_prepared_dir

    return default_prepared_dir()


def manifest_path(dataset: str, split: str = "test") -> Path:
    """The manifest of one split, with an error naming the `m2v-bench prepare` command that makes it."""
    folder = data_dir()
    path = folder / dataset / f"{split}.jsonl"
    if not path.is_file():
        raise ManifestError(
            f"{path} does not exist; make it with `m2v-bench prepare {dataset} --root RAW --out {folder}` "
            f"(RAW = the {dataset} release), or point {DATA_DIR_ENV} at a folder that has it"
        )
    return path
