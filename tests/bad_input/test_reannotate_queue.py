"""Bad input to ``m2v-bench reannotate queue``, and the queue's spreadsheet-formula neutralising."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .harness import (
    LATIN1,
    Case,
    _p,
    _video_memes,
    cases,
    check,
    memes,
    predictions,
    record,
    utf16,
    write,
    write_lines,
)


def _queue_args(w: Path, preds: Path | None = None, memes_path: Path | None = None, **out) -> list:
    return ["reannotate", "queue", "--memes", memes_path or memes(w), "--predictions", preds or predictions(w),
            "--out-csv", out.get("csv", w / "out" / "queue.csv"),
            *(["--out-labelstudio", out["ls"]] if "ls" in out else [])]  # fmt: skip


def queue_preds(case_id: str, rows: list | str | bytes, names: Callable[[Path], list]) -> Case:
    def build(w):
        path = write(w / "p.jsonl", rows) if isinstance(rows, (str, bytes)) else write_lines(w / "p.jsonl", rows)
        return _queue_args(w, path), names(w)

    return Case(f"queue-{case_id}", build)


QUEUE = [
    Case("queue-control", lambda w: (_queue_args(w), []), code=0),
    queue_preds("empty", "", lambda w: [w / "p.jsonl"]),
    queue_preds("missing-memes", [_p(0), _p(1)], lambda w: ["no prediction yet"]),
    queue_preds("ids-of-another-meme-set", [*(_p(i) for i in range(4)), _p(9)], lambda w: [w / "p.jsonl", "'m9'"]),
    queue_preds("mixed-targets", [_p(0), _p(1, target="hatemm")], lambda w: [f"{w / 'p.jsonl'}:2", "'hatemm'"]),
    queue_preds("prediction-2", [_p(0), _p(1, prediction=2)], lambda w: [f"{w / 'p.jsonl'}:2"]),
    queue_preds("prediction-word", [_p(0), _p(1, prediction="yes")], lambda w: [f"{w / 'p.jsonl'}:2"]),
    queue_preds("no-target", [_p(0), {"id": "m1", "prediction": 1, "response": ""}], lambda w: [f"{w / 'p.jsonl'}:2"]),
    queue_preds("two-different-for-one-meme", [_p(0), _p(0, prediction=1)], lambda w: [f"{w / 'p.jsonl'}:2", "m0"]),
    queue_preds("torn-last-line", json.dumps(_p(0)) + "\n" + '{"id": "m1", "pred', lambda w: [w / "p.jsonl"]),
    queue_preds("latin-1", LATIN1 + b"\n", lambda w: [w / "p.jsonl"]),
    queue_preds("utf-16", utf16(json.dumps(_p(0)) + "\n"), lambda w: [w / "p.jsonl"]),
    queue_preds("not-json", "{\n", lambda w: [f"{w / 'p.jsonl'}:1"]),
    Case("queue-predictions-missing", lambda w: (_queue_args(w, w / "none.jsonl"), [w / "none.jsonl"])),
    Case("queue-predictions-folder", lambda w: (_queue_args(w, (w / "pd").mkdir() or w / "pd"), [w / "pd"])),
    Case("queue-memes-missing", lambda w: (_queue_args(w, memes_path=w / "m.jsonl"), [w / "m.jsonl"])),
    Case("queue-memes-videos", lambda w: (_queue_args(w, memes_path=_video_memes(w)), ["train.jsonl"])),
    Case("queue-out-csv-is-a-folder", lambda w: (_queue_args(w, csv=(w / "q").mkdir() or w / "q"), [w / "q"])),
    Case("queue-out-csv-parent-is-a-file", lambda w: (_queue_args(w, csv=write(w / "f", "x") / "q.csv"), [w / "f"])),
    Case(
        "queue-out-labelstudio-is-a-folder", lambda w: (_queue_args(w, ls=(w / "ls").mkdir() or w / "ls"), [w / "ls"])
    ),  # fmt: skip
]


@cases(QUEUE)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


def test_queue_neutralises_spreadsheet_formulas(tmp_path):
    from m2v_bench import reannotate as re_
    from m2v_bench.manifest import read_manifest

    texts = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "plain", "\tTAB"]
    rows = [record(i, "train", text=t, id=f"m{i}") for i, t in enumerate(texts)]
    items = read_manifest(memes(tmp_path, rows))
    preds = re_.read_predictions(predictions(tmp_path, rows=[_p(i, 1 - i % 2) for i in range(len(texts))]))
    re_.write_queue(items, preds, "mhc", tmp_path / "q.csv")
    import csv

    with open(tmp_path / "q.csv", encoding="utf-8", newline="") as fh:
        cells = [row["text"] for row in csv.DictReader(fh)]
    assert cells == ['\'=HYPERLINK("http://x")', "'+1+1", "'-2", "'@SUM(A1)", "plain", "'\tTAB"]
    assert re_.read_queue(tmp_path / "q.csv") == [f"m{i}" for i in range(len(texts))]  # ids are kept as they are
