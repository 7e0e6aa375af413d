"""MultiHateClip (English): ``English_data/annotation/{train,valid,test}.tsv`` (Video_ID, Majority_Voting in
{Hateful, Offensive, Normal}, Label, Target_Victim, Component, Duration; the first upload named the two
optional columns Target_Victimg and Componentg, and both names are read), ``English_data/text.json``
(title, description, transcript per video id) and the videos, found by id anywhere below the root
(``<id>.mp4``, ``<id>/video.mp4`` or yt-dlp's ``Title [<id>].mp4``). Positive ("offensive") = Hateful or
Offensive."""

from __future__ import annotations

import ast
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
from m2v_bench.jsonl import read_json

THREE_WAY = {"Hateful": 1, "Offensive": 1, "Normal": 0}
_SPLIT_FILES = ("train.tsv", "valid.tsv", "test.tsv")
# Optional metadata: extra key -> the column names it has had in MultiHateClip's releases (current first).
OPTIONAL_COLUMNS = {"target_victim": ("Target_Victim", "Target_Victimg"), "component": ("Component", "Componentg")}


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


def _optional_columns(path: Path, header: list[str], warnings: list[str]) -> dict[str, str]:
    """{extra key: the column this file has for it}; a recognised column that is absent is a warning."""
    found = {}
    for key, names in OPTIONAL_COLUMNS.items():
        column = next((name for name in names if name in header), None)
        if column is None:
            warnings.append(f"{path}: no {' or '.join(names)} column; extra.{key} is left empty")
        else:
            found[key] = column
    return found


def _read_texts(path: Path) -> dict[str, dict]:
    """``text.json``: {video id: {"title", "description", "transcript"}}, checked for shape."""
    texts = read_json(path, "save it as UTF-8 JSON (the release's text.json)", PrepareError)
    if not isinstance(texts, dict):
        raise PrepareError(f"{path}: expected an object {{video id: {{transcript: ...}}}}, got {type(texts).__name__}")
    for video_id, entry in texts.items():
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise PrepareError(f"{path}: entry {video_id!r} must be an object with a transcript, got {entry!r:.60}")
        transcript = entry.get("transcript")
        if transcript is not None and not isinstance(transcript, str):
            raise PrepareError(f"{path}: entry {video_id!r}: transcript must be a string, got {transcript!r:.60}")
    return texts


def read_annotations(root: Path, warnings: list[str] | None = None) -> list[Annotation]:
    warnings = [] if warnings is None else warnings
    ann_dir = _annotation_dir(root)
    text_json = ann_dir.parent / "text.json"
    texts = _read_texts(text_json) if text_json.is_file() else None
    annotations = []
    for name in _SPLIT_FILES:
        split = normalise_split(name.removesuffix(".tsv"), str(ann_dir / name))
        rows = read_csv_rows(ann_dir / name, delimiter="\t", required=("Video_ID", "Majority_Voting"))
        header = [column for column in rows[0][1] if column] if rows else []
        columns = _optional_columns(ann_dir / name, header, warnings)
        for where, row in rows:
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
                    extra={"mhc_label": vote, **{key: _literal(row[col] or "") for key, col in columns.items()}},
                )
            )
    return annotations


def prepare(spec: DatasetSpec, root: Path, table: list[TableRow] | None, table_name: str) -> PrepareResult:
    warnings: list[str] = []
    annotations = read_annotations(root, warnings)
    if table is None and any(a.text is None for a in annotations):
        raise PrepareError(f"{root}: --table official needs English_data/text.json (the transcripts)")
    result = assemble(spec, annotations, MediaIndex.for_modality(root, "video"), table, table_name)
    result.warnings[:0] = warnings
    return result
