"""Stage 3, ``import``: annotators' answers (CSV or a Label Studio export; several annotators per meme) become one
human label per meme, their majority (a tie stays unresolved)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from m2v_bench.csvio import read_csv_rows
from m2v_bench.errors import M2VError
from m2v_bench.jsonl import read_json, read_jsonl, write_jsonl
from m2v_bench.labels import Answer, LabelSpace
from m2v_bench.reannotate.memes import target_space


@dataclass
class HumanLabel:
    id: str
    label: int | None
    """None: the annotators tie."""
    votes: dict[str, int] = field(default_factory=dict)
    """annotator -> label."""
    target: str | None = None
    """The target whose label words the annotators answered in (None in files from before it was recorded)."""


def _label_value(value, space: LabelSpace, where: str) -> int:
    text = str(value).strip()
    if text in ("0", "1"):
        return int(text)
    parsed = space.parse_word(text)  # people type labels: "yes" or a sentence is a mistake, not an answer
    if parsed is Answer.INVALID:
        raise M2VError(f"{where}: label {value!r} is neither 0/1 nor '{space.positive}'/'{space.negative}'")
    return int(parsed)


def _answers_from_csv(path: Path, space: LabelSpace) -> Iterable[tuple[str, str, int, str]]:
    rows = read_csv_rows(path, required=("id",))
    header = list(rows[0][1]) if rows else []
    if rows and "human_label" not in header and "label" not in header:
        raise M2VError(f"{path}: needs columns id and human_label (or label); found {header}")
    column = "human_label" if "human_label" in header else "label"
    for where, row in rows:
        if (row[column] or "").strip() == "":
            continue  # not answered yet
        annotator = (row.get("annotator") or "").strip() or path.name
        yield row["id"].strip(), annotator, _label_value(row[column], space, where), where


def _answers_from_labelstudio(path: Path, space: LabelSpace) -> Iterable[tuple[str, str, int, str]]:
    tasks = read_json(path, "export it again from Label Studio (JSON)")
    if not isinstance(tasks, list):
        raise M2VError(f"{path}: expected Label Studio's JSON export (a list of tasks), got {type(tasks).__name__}")
    for number, task in enumerate(tasks, start=1):
        where = f"{path}: task {number}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), (str, int)) or isinstance(data["id"], bool):
            raise M2VError(f"{where}: expected a task object with data.id (the meme id); export it again as JSON")
        meme_id = str(data["id"])
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise M2VError(f"{where} ({meme_id}): 'annotations' must be a list")
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise M2VError(f"{where} ({meme_id}): an annotation must be an object, got {annotation!r:.40}")
            if annotation.get("was_cancelled"):
                continue
            try:
                choices = [c for r in annotation.get("result", []) for c in r.get("value", {}).get("choices", [])]
            except (AttributeError, TypeError):
                raise M2VError(f"{where} ({meme_id}): an annotation result is not Label Studio's shape") from None
            if len(choices) != 1:
                raise M2VError(f"{where} ({meme_id}): expected one choice per annotation, got {choices}")
            annotator = str(annotation.get("completed_by", "labelstudio"))
            yield meme_id, annotator, _label_value(choices[0], space, where), where


def import_answers(paths: list[Path], queue_ids: list[str], target: str) -> dict[str, HumanLabel]:
    """Annotators' answers -> one HumanLabel per answered meme. Unknown ids, labels outside the label space and one
    annotator giving two different answers for a meme are errors naming the file and row."""
    space = target_space(target)
    queued = set(queue_ids)
    labels: dict[str, HumanLabel] = {}
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for path in paths:
        if not path.is_file():
            raise M2VError(f"{path}: no such answers file")
        reader = _answers_from_labelstudio if path.suffix.lower() == ".json" else _answers_from_csv
        for meme_id, annotator, label, where in reader(path, space):
            if meme_id not in queued:
                raise M2VError(f"{where}: meme {meme_id!r} is not in the annotation queue; check the id")
            earlier = seen.get((meme_id, annotator))
            if earlier and earlier[0] != label:
                raise M2VError(
                    f"{where}: annotator {annotator!r} answered {label} for meme {meme_id}, "
                    f"but {earlier[0]} at {earlier[1]}; keep one of the two answers"
                )
            seen[(meme_id, annotator)] = (label, where)
            labels.setdefault(meme_id, HumanLabel(meme_id, None, target=target)).votes[annotator] = label
    for human in labels.values():
        counts = Counter(human.votes.values()).most_common()
        human.label = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else None
    return labels


def write_human(path: Path, labels: dict[str, HumanLabel]) -> None:
    write_jsonl(path, (human.__dict__ for human in labels.values()), check=read_human)


def read_human(path: Path, target: str | None = None) -> dict[str, HumanLabel]:
    """Human labels by meme id: 0, 1 or null (a tie), each vote 0 or 1; with ``target``, labels recorded for
    another target are an error."""
    if not path.is_file():
        raise M2VError(f"{path}: no human labels; make them with `m2v-bench reannotate import`")
    labels: dict[str, HumanLabel] = {}
    for where, obj in read_jsonl(path, what="human-label record"):
        try:
            human = HumanLabel(obj["id"], obj["label"], obj.get("votes", {}), obj.get("target"))
        except KeyError as exc:
            raise M2VError(f"{where}: not a human-label record (no {exc})") from None
        if not isinstance(human.id, str) or not human.id:
            raise M2VError(f"{where}: 'id' must be a meme id (a non-empty string), got {human.id!r}")
        if human.label is not None and (type(human.label) is not int or human.label not in (0, 1)):
            raise M2VError(
                f"{where} [{human.id}]: label must be 0, 1 or null (a tie), got {json.dumps(human.label)}; "
                "import the answers again with `reannotate import`"
            )
        votes = human.votes
        if not isinstance(votes, dict) or any(type(v) is not int or v not in (0, 1) for v in votes.values()):
            raise M2VError(f"{where} [{human.id}]: votes must map annotators to 0 or 1, got {json.dumps(votes)}")
        if target is not None and human.target not in (None, target):
            raise M2VError(
                f"{where} [{human.id}]: a human label for target {human.target!r}, not {target!r}; use the labels "
                f"imported with --target {target}"
            )
        if human.id in labels:
            raise M2VError(f"{where}: a second human label for meme {human.id}")
        labels[human.id] = human
    return labels
