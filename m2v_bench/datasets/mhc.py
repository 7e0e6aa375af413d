"""MultiHateClip (English): ``English_data/annotation/{train,valid,test}.tsv`` (Video_ID, Majority_Voting in
{Hateful, Offensive, Normal}, Label, Target_Victimg, Componentg, Duration), ``English_data/text.json``
(title, description, transcript per video id) and the videos, found by id anywhere below the root
(``<id>.mp4`` or ``<id>/video.mp4``). Positive ("offensive") = Hateful or Offensive."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from m2v_bench.datasets.common import (
    Annotation,
    DatasetSpec,
    MediaIndex,
    PrepareResult,
    TableRow,
    assemble,
    normalise_split,
    read_csv_rows,
)
from m2v_bench.errors import PrepareError

THREE_WAY = {"Hateful": 1, "Offensive": 1, "Normal": 0}
_SPLIT_FILES = ("train.tsv", "valid.tsv", "test.tsv")


def _annotation_dir(root: Path) -> Path:
    for candidate in (root / "English_data" / "annotation", root / "annotation", root):
        if all((candidate / name).is_file() for name in _SPLIT_FILES):
            return candidate
    raise PrepareError(
        f"{root}: no MultiHateClip annotation found; expected English_data/annotation/{{train,valid,test}}.tsv "
        "below --root (the English part of the official release)"
    )


def _literal(value: str):
    try:
        return ast.literal_eval(value) if value else []
    except (ValueError, SyntaxError):
        return value


def read_annotations(root: Path) -> list[Annotation]:
    ann_dir = _annotation_dir(root)
    text_json = ann_dir.parent / "text.json"
    texts = json.loads(text_json.read_text(encoding="utf-8")) if text_json.is_file() else None
    annotations = []
    for name in _SPLIT_FILES:
        split = normalise_split(name.removesuffix(".tsv"), str(ann_dir / name))
        for where, row in read_csv_rows(ann_dir / name, delimiter="\t", required=("Video_ID", "Majority_Voting")):
            vote = row["Majority_Voting"].strip()
            if vote not in THREE_WAY:
                raise PrepareError(f"{where}: Majority_Voting must be one of {sorted(THREE_WAY)}, got {vote!r}")
            video_id = row["Video_ID"].strip()
            text = None
            if texts is not None:
                text = (texts.get(video_id) or {}).get("transcript", "") or ""
            annotations.append(
                Annotation(
                    id=video_id,
                    label=THREE_WAY[vote],
                    where=where,
                    split=split,
                    text=text,
                    extra={
                        "mhc_label": vote,
                        "target_victim": _literal(row.get("Target_Victimg", "")),
                    },
                )
            )
    return annotations


def prepare(spec: DatasetSpec, root: Path, table: list[TableRow] | None, table_name: str) -> PrepareResult:
    annotations = read_annotations(root)
    if table is None and any(a.text is None for a in annotations):
        raise PrepareError(f"{root}: --table official needs English_data/text.json (the transcripts)")
    return assemble(spec, annotations, MediaIndex.for_modality(root, "video"), table, table_name)
