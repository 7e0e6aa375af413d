"""``released``: an aligned manifest straight from the paper's released re-annotation CSV."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.datasets import get_dataset
from m2v_bench.manifest import Record
from m2v_bench.reannotate.memes import target_space
from m2v_bench.reannotate.vote import read_paper_csv
from m2v_bench.registry import aligned_name


def released_records(path: Path, source: str, target: str, memes: dict[str, Record] | None = None) -> list[Record]:
    """An aligned manifest straight from the paper's released CSV (labels = its majority_voting), with images from
    a prepared meme manifest when given (the CSV's image paths point into the authors' disk)."""
    space = target_space(target)
    get_dataset(source)
    records = []
    for row in read_paper_csv(path):
        meme = (memes or {}).get(row["id"])
        records.append(
            Record(
                id=row["id"],
                dataset=aligned_name(source, target),
                split="train",
                modality="image",
                text=row["text"],
                label=row["majority_voting"],
                label_space=space.name,
                source=source,
                media=meme.media if meme else None,
                extra={
                    "original_label": row["original_dataset_label"],
                    "model_prediction": row["model_prediction"],
                    "human_annotation": row["human_annotation"],
                },
            )  # fmt: skip
        )
    return records
