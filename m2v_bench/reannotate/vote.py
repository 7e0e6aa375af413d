"""Stage 4, ``vote``: agreeing memes keep their label, conflicts take the human label (the 2-of-3 majority, since
the human breaks the tie between the two other votes); conflicts without a human label are reported, never
guessed. The result is an aligned manifest plus the paper's released CSV format."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from m2v_bench.atomic import atomic_write
from m2v_bench.csvio import read_csv_rows
from m2v_bench.errors import M2VError
from m2v_bench.manifest import Record, record_from_json, write_manifest
from m2v_bench.reannotate.human import HumanLabel
from m2v_bench.reannotate.memes import target_space
from m2v_bench.reannotate.predict import Prediction
from m2v_bench.reannotate.queue import conflicts
from m2v_bench.registry import aligned_name

REANNOTATED_CSV_COLUMNS = (
    "id", "image", "text", "type", "original_dataset_label", "model_prediction", "human_annotation", "majority_voting",
)  # fmt: skip
"""The columns of the paper's released re-annotation (``<meme>_aligned_with_<target>.csv``)."""


@dataclass
class VoteResult:
    rows: list[dict]
    """One row per resolved meme, in the paper's released CSV columns."""
    records: list[Record]
    """The aligned manifest: labels in the target's label space."""
    unresolved: list[str]


def vote(
    memes: list[Record], predictions: dict[str, Prediction], human: dict[str, HumanLabel], target: str
) -> VoteResult:
    space = target_space(target)
    conflicted = {m.id for m in conflicts(memes, predictions)}
    if predictions:
        found = next(iter(predictions.values())).target
        if found != target:
            raise M2VError(f"the predictions were made for target {found!r}, not {target!r}; predict for {target}")
    unknown = sorted(i for i in human if i not in conflicted)
    if unknown:
        raise M2VError(
            f"{len(unknown)} human label(s) for memes that are not in conflict or not in the manifest "
            f"(e.g. {unknown[:3]}); the human labels must come from this meme set's queue"
        )
    result = VoteResult([], [], [])
    for meme in memes:
        predicted = predictions[meme.id].prediction
        human_label = human[meme.id].label if meme.id in human else None
        if meme.id not in conflicted:
            final = meme.label
        elif human_label is None:
            result.unresolved.append(meme.id)
            continue
        else:
            final = human_label
        result.rows.append({
            "id": meme.id, "image": meme.media or "", "text": meme.text, "type": meme.split,
            "original_dataset_label": meme.label, "model_prediction": predicted,
            "human_annotation": human_label if meme.id in conflicted else "", "majority_voting": final,
        })  # fmt: skip
        result.records.append(
            replace(
                meme,
                dataset=aligned_name(meme.source, target),
                label=final,
                label_space=space.name,
                extra={
                    **meme.extra,
                    "original_label": meme.label,
                    "original_label_space": meme.label_space,
                    "model_prediction": predicted,
                    "human_annotation": human_label,
                },
            )  # fmt: skip
        )
    return result


def write_paper_csv(path: Path, rows: list[dict]) -> Path:
    """The paper's CSV, atomically, read back with :func:`read_paper_csv` first."""

    def write(fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=REANNOTATED_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    return atomic_write(path, write, read_paper_csv, newline="")


def read_paper_csv(path: Path) -> list[dict]:
    """The paper's released re-annotation (reference/upstream_dataset/reannotated_meme/*.csv) as typed rows."""
    rows = []
    for where, row in read_csv_rows(path, required=REANNOTATED_CSV_COLUMNS):
        typed = dict(row)
        for column in ("original_dataset_label", "model_prediction", "majority_voting"):
            value = row[column].strip()
            allowed = ("0", "1", "-1") if column == "model_prediction" else ("0", "1")
            if value not in allowed:
                raise M2VError(f"{where}: {column} must be {' or '.join(allowed)}, got {row[column]!r}")
            typed[column] = int(value)
        human = row["human_annotation"].strip()
        if human not in ("", "0", "1"):
            raise M2VError(f"{where}: human_annotation must be empty, 0 or 1, got {human!r}")
        typed["human_annotation"] = int(human) if human else None
        rows.append(typed)
    return rows


def write_aligned(
    out: Path, result: VoteResult, memes: Path, source: str, target: str, partial: bool = False
) -> tuple[Path, Path]:
    """Write a vote of the memes of manifest ``memes`` as the aligned manifest ``<out>/<aligned name>/train.jsonl``
    and as a CSV in the paper's format ``<out>/<aligned name>.csv``; both are checked before either is written.
    Unresolved conflicts are an error unless ``partial``; no resolved meme at all always is. Returns both paths."""
    if result.unresolved and not partial:
        raise M2VError(
            f"{len(result.unresolved)} conflict(s) have no human label yet (e.g. {', '.join(result.unresolved[:5])}); "
            "collect them (queue/import) or pass --partial to write only the resolved memes"
        )
    if not result.records:
        raise M2VError(
            f"{memes}: no meme is resolved ({len(result.unresolved)} conflict(s) without a human label); "
            "nothing written: import human labels first (`reannotate queue` / `reannotate import`)"
        )
    name = aligned_name(source, target)
    manifest = out / name / "train.jsonl"
    for number, record in enumerate(result.records, start=1):
        record_from_json(record.to_json(), f"{manifest} record {number}")
    csv_path = write_paper_csv(out / f"{name}.csv", result.rows)
    write_manifest(manifest, result.records)
    return manifest, csv_path
