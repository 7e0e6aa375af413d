"""Stage 2, ``queue``: the conflicts (original label != prediction; an invalid prediction is a conflict too) as
a CSV for annotators and as a Label Studio import with the model's answer as a pre-annotation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from m2v_bench.atomic import atomic_write, atomic_write_text, check_json
from m2v_bench.csvio import read_csv_rows, spreadsheet_safe
from m2v_bench.errors import M2VError
from m2v_bench.manifest import Record
from m2v_bench.reannotate.memes import target_space
from m2v_bench.reannotate.predict import Prediction

QUEUE_COLUMNS = ("id", "image", "text", "original_label", "model_prediction", "human_label", "annotator")


def conflicts(memes: list[Record], predictions: dict[str, Prediction]) -> list[Record]:
    """Memes whose original label and model prediction disagree (an invalid prediction disagrees)."""
    missing = [m.id for m in memes if m.id not in predictions]
    if missing:
        raise M2VError(f"{len(missing)} meme(s) have no prediction yet (e.g. {missing[:3]}); run `predict` first")
    return [m for m in memes if predictions[m.id].prediction != m.label]


def write_queue(items: list[Record], predictions: dict[str, Prediction], target: str, csv_path: Path,
                labelstudio_path: Path | None = None) -> None:  # fmt: skip
    """The annotation queue as CSV (fill in ``human_label`` with 0/1 or a label word) and as a Label Studio import
    (choices = the target's two label words; the model's answer as a pre-annotation)."""
    space = target_space(target)
    for path in (csv_path, labelstudio_path):  # both outputs are checked before either is written
        if path is not None and path.is_dir():
            raise M2VError(f"{path}: is a folder; give a file path to write")

    def write(fh) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(QUEUE_COLUMNS)
        for meme in items:
            writer.writerow([meme.id, meme.media or "", spreadsheet_safe(meme.text), meme.label,
                             predictions[meme.id].prediction, "", ""])  # fmt: skip

    def check(path: Path) -> None:
        if read_queue(path) != [m.id for m in items]:
            raise M2VError(f"{path}: the queue does not read back as written (ids changed)")

    atomic_write(csv_path, write, check, newline="")
    if labelstudio_path is None:
        return
    tasks = []
    for meme in items:
        task = {"data": {"id": meme.id, "image": meme.media or "", "text": meme.text, "target": target}}
        predicted = predictions[meme.id].prediction
        if predicted in (0, 1):
            task["predictions"] = [{
                "model_version": "m2v-bench few-shot",
                "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                            "value": {"choices": [space.word(predicted)]}}],
            }]  # fmt: skip
        tasks.append(task)
    atomic_write_text(labelstudio_path, json.dumps(tasks, indent=1, ensure_ascii=False) + "\n", check_json)


def read_queue(path: Path) -> list[str]:
    if not path.is_file():
        raise M2VError(f"{path}: no queue file; make it with `m2v-bench reannotate queue`")
    ids: dict[str, str] = {}
    for where, row in read_csv_rows(path, required=("id",)):
        meme_id = row["id"].strip()
        if not meme_id:
            raise M2VError(f"{where}: empty id in the queue")
        if meme_id in ids:
            raise M2VError(f"{where}: meme {meme_id!r} is queued twice (first at {ids[meme_id]})")
        ids[meme_id] = where
    return list(ids)
