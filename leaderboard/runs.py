"""lmms-eval's output folders: how a run's files are named, and which run is the newest (the one rule the
leaderboard's submit and its workers share)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from m2v_bench.errors import M2VError

RUN = re.compile(r"(?P<stamp>\d{8}_\d{6})_samples_(?P<task>.+)\.jsonl")
"""A per-sample log, ``<timestamp>_samples_<task>.jsonl`` (lmms-eval ``--log_samples``)."""
RESULTS = re.compile(r"\d{8}_\d{6}_results\.json")
"""A run's ``<timestamp>_results.json``."""


@dataclass(frozen=True)
class Run:
    """One lmms-eval run: its timestamp, its folder, its ``<stamp>_results.json`` and its per-sample logs."""

    stamp: str
    folder: Path
    logs: dict[str, Path]
    """task -> per-sample log."""

    @property
    def results(self) -> Path:
        return self.folder / f"{self.stamp}_results.json"  # the name RESULTS matches

    def files(self) -> list[Path]:
        """The run's files that exist: its results.json and its per-sample logs."""
        return [p for p in (self.results, *self.logs.values()) if p.is_file()]


def newest_run(folder: Path, error: type[M2VError] = M2VError) -> Run:
    """The newest run in an lmms-eval output folder. Runs are told apart, and ordered, by the timestamp lmms-eval
    puts in front of every file it writes (``20261126_050143_...``) and the folder it writes them to; only the
    newest counts, whatever the files' modification times. A per-sample log with another name, or no run at all,
    raises ``error``."""
    if not folder.is_dir():
        raise error(f"{folder}: no such lmms-eval output folder")
    runs: dict[tuple[str, Path], dict[str, Path]] = {}
    for path in sorted(folder.rglob("*_samples_*.jsonl")):
        match = RUN.fullmatch(path.name)
        if match is None:
            raise error(f"{path}: not an lmms-eval per-sample log name (<timestamp>_samples_<task>.jsonl)")
        runs.setdefault((match["stamp"], path.parent), {})[match["task"]] = path
    if not runs:
        raise error(f"{folder}: no per-sample log (*_samples_<task>.jsonl); run lmms-eval --log_samples")
    (stamp, where), logs = max(runs.items(), key=lambda run: run[0][0])
    return Run(stamp, where, logs)
