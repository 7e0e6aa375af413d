"""Where the lmms-eval tasks (and anything else that evaluates) find prepared manifests, and which test set they are.

- ``M2V_DATA_DIR=DIR``: a prepared folder (``<DIR>/<dataset>/<split>.jsonl``, as ``m2v-bench prepare --out DIR``
  writes it).
- ``M2V_DATA_DIR=sample``: the bundled synthetic sample data (made on first use, see
  :func:`m2v_bench.sample_data.default_prepared_dir`). Only when asked for: its numbers mean nothing for a real model.
- unset: the default data location, ``$XDG_DATA_HOME/m2v-bench`` (``~/.local/share/m2v-bench``), which is also where
  ``m2v-bench prepare`` writes when ``--out`` is not given. A dataset not prepared there is an error that names the
  ``m2v-bench prepare`` command; nothing falls back to synthetic data.

Every evaluated sample carries its test set's identity (:func:`identify_test_set`): ``paper`` when the test split is
exactly the paper's (content hash of the bundled split table), ``sample`` for the synthetic sample data, ``custom``
otherwise.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from m2v_bench.datasets import DATASETS, bundled_paper_table
from m2v_bench.errors import ManifestError
from m2v_bench.manifest import split_hash
from m2v_bench.sample_data import default_prepared_dir
from m2v_bench.settings import DATA_DIR_ENV, SAMPLE, configured_data_dir, default_data_dir


def data_dir() -> Path:
    """The prepared-data folder the tasks read: the sample data for ``M2V_DATA_DIR=sample``, else
    :func:`m2v_bench.settings.configured_data_dir`."""
    if os.environ.get(DATA_DIR_ENV) == SAMPLE:
        return default_prepared_dir()
    return configured_data_dir()


def manifest_path(dataset: str, split: str = "test") -> Path:
    """The manifest of one split, with an error naming the `m2v-bench prepare` command that makes it."""
    folder = data_dir()
    path = folder / dataset / f"{split}.jsonl"
    if not path.is_file():
        out = "" if folder == default_data_dir() and not os.environ.get(DATA_DIR_ENV) else f" --out {folder}"
        raise ManifestError(
            f"{path} does not exist; make it with `m2v-bench prepare {dataset} --root RAW{out}` (RAW = the {dataset} "
            f"release), or set {DATA_DIR_ENV} to a prepared folder ({DATA_DIR_ENV}={SAMPLE}: synthetic sample data)"
        )
    return path


@functools.cache
def paper_test_hash(dataset: str) -> str | None:
    """The content hash of the paper's test split of a dataset, from the bundled split table (None: no table)."""
    spec = DATASETS.get(dataset)
    if spec is None or not spec.has_paper_table:
        return None
    # split_hash reads only (id, label, text), which the table's rows have as they are
    return split_hash(row for row in bundled_paper_table(dataset) if row.split == "test")


def identify_test_set(dataset: str, manifest: Path, test_sha256: str) -> str:
    """``paper``, ``sample`` or ``custom`` (see the module docstring)."""
    if test_sha256 == paper_test_hash(dataset):
        return "paper"
    report = manifest.parent / "prepare_report.json"
    try:
        synthetic = json.loads(report.read_text(encoding="utf-8")).get("synthetic") is True
    except (OSError, ValueError, AttributeError):
        synthetic = False
    return SAMPLE if synthetic else "custom"
