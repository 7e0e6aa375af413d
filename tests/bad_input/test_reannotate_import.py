"""Bad input to ``m2v-bench reannotate import`` (answer CSVs, Label Studio exports, the queue)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .harness import LATIN1, Case, cases, check, memes, predictions, utf16, write


def queue(w: Path, target: str = "mhc") -> Path:
    from m2v_bench import reannotate as re_
    from m2v_bench.manifest import read_manifest

    items = read_manifest(memes(w))
    preds = re_.read_predictions(predictions(w, target))
    re_.write_queue(re_.conflicts(items, preds), preds, target, w / "queue.csv")
    return w / "queue.csv"


def _import(w: Path, answers: Path, target: str = "mhc", queue_path: Path | None = None) -> list:
    return ["reannotate", "import", answers, "--queue", queue_path or queue(w), "--target", target,
            "--out", w / "out" / "human.jsonl"]  # fmt: skip


def answers_csv(case_id: str, text: str | bytes, names: Callable[[Path], list], target: str = "mhc") -> Case:
    def build(w):
        return _import(w, write(w / "answers.csv", text), target), names(w)

    return Case(f"import-csv-{case_id}", build)


def answers_ls(case_id: str, data, names: Callable[[Path], list]) -> Case:
    def build(w):
        text = data if isinstance(data, (str, bytes)) else json.dumps(data)
        return _import(w, write(w / "export.json", text)), names(w)

    return Case(f"import-labelstudio-{case_id}", build)


def _ls_task(meme="m1", choices=("offensive",), **change):
    result = [{"value": {"choices": list(choices)}}]
    return {"data": {"id": meme}, "annotations": [{"completed_by": 1, "result": result}], **change}


IMPORT = [
    Case(
        "import-control",
        lambda w: (_import(w, write(w / "answers.csv", "id,human_label,annotator\nm1,1,a\n")), []),
        code=0,
    ),  # fmt: skip
    answers_csv("label-2", "id,human_label,annotator\nm1,2,a\n", lambda w: [f"{w / 'answers.csv'}:2", "'2'"]),
    answers_csv("label-yes", "id,human_label,annotator\nm1,yes,a\n", lambda w: [f"{w / 'answers.csv'}:2", "'yes'"]),
    answers_csv(
        "label-of-another-target",
        "id,human_label,annotator\nm1,hateful,a\n",
        lambda w: [f"{w / 'answers.csv'}:2", "'hateful'"],
    ),  # fmt: skip
    answers_csv(
        "label-sentence",
        "id,human_label,annotator\nm1,I think it is offensive,a\n",
        lambda w: [f"{w / 'answers.csv'}:2"],
    ),  # fmt: skip
    answers_csv("unknown-id", "id,human_label,annotator\nm0,1,a\n", lambda w: [f"{w / 'answers.csv'}:2", "'m0'"]),
    answers_csv("id-dotdot", "id,human_label,annotator\n../m1,1,a\n", lambda w: [f"{w / 'answers.csv'}:2"]),
    answers_csv(
        "contradicting-annotator",
        "id,human_label,annotator\nm1,1,a\nm1,0,a\n",
        lambda w: [f"{w / 'answers.csv'}:3", "'a'"],
    ),  # fmt: skip
    answers_csv("surplus-cell", "id,human_label,annotator\nm1,1,a,EXTRA\n", lambda w: [f"{w / 'answers.csv'}:2"]),
    answers_csv("missing-label-column", "id,verdict\nm1,1\n", lambda w: [w / "answers.csv", "human_label"]),
    answers_csv("missing-id-column", "meme,human_label\nm1,1\n", lambda w: [w / "answers.csv", "id"]),
    answers_csv("latin-1", b"id,human_label,annotator\nm1,1," + LATIN1 + b"\n", lambda w: [w / "answers.csv"]),
    answers_csv("utf-16", utf16("id,human_label,annotator\nm1,1,a\n"), lambda w: [w / "answers.csv"]),
    answers_csv("empty", "", lambda w: [w / "answers.csv"]),
    answers_csv("target-fhm", "id,human_label,annotator\nm1,1,a\n", lambda w: ["'fhm'"], target="fhm"),
    answers_ls("malformed", '[{"data": {"id": "m1"}', lambda w: [w / "export.json"]),
    answers_ls("latin-1", b'[{"data": {"id": "' + LATIN1 + b'"}}]', lambda w: [w / "export.json"]),
    answers_ls("an-object", {"tasks": []}, lambda w: [w / "export.json", "list of tasks"]),
    answers_ls("task-is-a-string", ["m1"], lambda w: [f"{w / 'export.json'}: task 1"]),
    answers_ls("no-data", [{"annotations": []}], lambda w: [f"{w / 'export.json'}: task 1"]),
    answers_ls("annotations-not-a-list", [_ls_task(annotations={"a": 1})], lambda w: ["task 1", "m1"]),
    answers_ls("annotation-not-an-object", [_ls_task(annotations=["offensive"])], lambda w: ["task 1", "m1"]),
    answers_ls("result-wrong-shape", [_ls_task(annotations=[{"result": "offensive"}])], lambda w: ["task 1", "m1"]),
    answers_ls("two-choices", [_ls_task(choices=("offensive", "non-offensive"))], lambda w: ["task 1", "m1"]),
    answers_ls("choice-yes", [_ls_task(choices=("yes",))], lambda w: ["task 1", "'yes'"]),
    answers_ls("unknown-meme", [_ls_task(meme="m0")], lambda w: ["task 1", "'m0'"]),
    Case(
        "import-queue-missing",
        lambda w: (_import(w, write(w / "a.csv", "id,label\n"), queue_path=w / "q.csv"), [w / "q.csv"]),
    ),  # fmt: skip
    Case(
        "import-queue-latin-1",
        lambda w: (
            _import(w, write(w / "a.csv", "id,label\n"), queue_path=write(w / "q.csv", b"id\n" + LATIN1)),
            [w / "q.csv"],
        ),
    ),
    Case(
        "import-queue-duplicate-id",
        lambda w: (
            _import(w, write(w / "a.csv", "id,label\n"), queue_path=write(w / "q.csv", "id\nm1\nm1\n")),
            [f"{w / 'q.csv'}:3", "'m1'"],
        ),
    ),  # fmt: skip
    Case("import-answers-missing", lambda w: (_import(w, w / "none.csv"), [w / "none.csv"])),
    Case(
        "import-out-is-a-folder",
        lambda w: (
            [*_import(w, write(w / "a.csv", "id,label\nm1,1\n"))[:-1], (w / "o").mkdir() or w / "o"],
            [w / "o"],
        ),
    ),  # fmt: skip
]


@cases(IMPORT)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)
