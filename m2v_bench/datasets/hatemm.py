"""HateMM: ``HateMM_annotation.csv`` (video_file_name, label in {Hate, Non Hate}, hate_snippet, target) and
the videos in ``hate_videos/`` and ``non_hate_videos/``. The id of a video is its file name without
extension. HateMM has no official split or transcripts: they come from a split table (the paper's by
default)."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.datasets.common import (
    Annotation,
    DatasetSpec,
    MediaIndex,
    PrepareResult,
    TableRow,
    assemble,
    read_csv_rows,
)
from m2v_bench.errors import PrepareError

LABELS = {"hate": 1, "non hate": 0}


def _annotation_file(root: Path) -> Path:
    for candidate in (root / "HateMM_annotation.csv", *sorted(root.glob("*/HateMM_annotation.csv"))):
        if candidate.is_file():
            return candidate
    raise PrepareError(f"{root}: HateMM_annotation.csv not found (expected in --root or one folder below)")


def read_annotations(root: Path) -> list[Annotation]:
    path = _annotation_file(root)
    annotations = []
    for where, row in read_csv_rows(path, required=("video_file_name", "label")):
        label = row["label"].strip().lower()
        if label not in LABELS:
            raise PrepareError(f"{where}: label must be 'Hate' or 'Non Hate', got {row['label']!r}")
        annotations.append(
            Annotation(
                id=Path(row["video_file_name"].strip()).stem,
                label=LABELS[label],
                where=where,
                extra={
                    "hatemm_label": row["label"].strip(),
                    "target": row.get("target") or None,
                    "hate_snippet": row.get("hate_snippet") or None,
                },
            )
        )
    return annotations


def prepare(spec: DatasetSpec, root: Path, table: list[TableRow] | None, table_name: str) -> PrepareResult:
    if table is None:
        raise PrepareError("HateMM has no official split or transcripts: use --table paper (default) or --table PATH")
    annotations = read_annotations(root)
    media_root = _annotation_file(root).parent
    return assemble(spec, annotations, MediaIndex.for_modality(media_root, "video"), table, table_name)
