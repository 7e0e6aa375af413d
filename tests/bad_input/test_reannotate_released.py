"""Bad input to ``m2v-bench reannotate released`` (the released re-annotation CSV, --source, --target)."""

from __future__ import annotations

from pathlib import Path

from .harness import LATIN1, Case, _paper_csv, cases, check, write


def _released(w: Path, csv_path: Path | None = None, source: str = "fhm", target: str = "mhc", *extra) -> list:
    return ["reannotate", "released", csv_path or _paper_csv(w), "--source", source, "--target", target,
            "--out", w / "out", *extra]  # fmt: skip


RELEASED = [
    Case("released-control", lambda w: (_released(w), []), code=0),
    Case("released-target-fhm", lambda w: (_released(w, None, "fhm", "fhm"), ["'fhm'"])),
    Case("released-source-unknown", lambda w: (_released(w, None, "memes"), ["'memes'"])),
    Case(
        "released-id-dotdot",
        lambda w: (
            _released(
                w,
                _paper_csv(
                    w,
                    [
                        {
                            "id": "../x",
                            "image": "",
                            "text": "t",
                            "type": "train",
                            "original_dataset_label": 0,
                            "model_prediction": 0,
                            "human_annotation": "",
                            "majority_voting": 0,
                        }
                    ],
                ),
            ),
            ["'../x'"],
        ),
    ),  # fmt: skip
    Case("released-csv-missing", lambda w: (_released(w, w / "none.csv"), [w / "none.csv"])),
    Case("released-csv-latin-1", lambda w: (_released(w, write(w / "l.csv", b"id," + LATIN1)), [w / "l.csv"])),
    Case(
        "released-memes-missing",
        lambda w: (_released(w, None, "fhm", "mhc", "--memes", w / "m.jsonl"), [w / "m.jsonl"]),
    ),  # fmt: skip
    Case("released-out-is-a-file", lambda w: ([*_released(w)[:-1], write(w / "o", "x")], [w / "o"])),
]


@cases(RELEASED)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)
