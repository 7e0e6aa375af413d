"""Bad input to ``m2v-bench reannotate predict``, and a SIGKILL in the middle of a JSONL write."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .harness import (
    LATIN1,
    Case,
    _video_memes,
    bomb_png,
    cases,
    check,
    memes,
    predictions,
    record,
    truncated_png,
    write,
    write_lines,
)


def predict_case(case_id: str, build: Callable[[Path], tuple[list, list]]) -> Case:
    return Case(f"predict-{case_id}", build)


def _predict(w: Path, *extra, memes_path: Path | None = None, out: Path | None = None, target: str = "mhc") -> list:
    return ["reannotate", "predict", "--memes", memes_path or memes(w), "--target", target, "--model", "nowhere-model",
            "--out", out or w / "new_predictions.jsonl", *extra]  # fmt: skip


PREDICT = [
    predict_case("batch-size-0", lambda w: (_predict(w, "--batch-size", "0"), ["--batch-size"])),
    predict_case("batch-size-negative", lambda w: (_predict(w, "--batch-size", "-4"), ["--batch-size"])),
    predict_case("batch-size-word", lambda w: (_predict(w, "--batch-size", "eight"), ["--batch-size"])),
    predict_case("shots-negative", lambda w: (_predict(w, "--shots", "-1"), ["--shots"])),
    predict_case("target-fhm", lambda w: (_predict(w, target="fhm"), ["'fhm'"])),
    predict_case("target-unknown", lambda w: (_predict(w, target="mhcc"), ["'mhcc'"])),
    predict_case("memes-missing", lambda w: (_predict(w, memes_path=w / "none.jsonl"), [w / "none.jsonl"])),
    predict_case("memes-are-videos", lambda w: (_predict(w, memes_path=_video_memes(w)), ["train.jsonl"])),
    predict_case("memes-empty", lambda w: (_predict(w, memes_path=write(w / "e.jsonl", "")), [w / "e.jsonl"])),
    predict_case("memes-latin-1", lambda w: (_predict(w, memes_path=write(w / "l.jsonl", LATIN1)), [w / "l.jsonl"])),
    predict_case(
        "memes-already-aligned",
        lambda w: (
            _predict(w, memes_path=memes(w, [record(0, "train", dataset="fhm_aligned_with_mhc")])),
            ["already re-annotated"],
        ),
    ),  # fmt: skip
    predict_case(
        "memes-duplicate-ids",
        lambda w: (_predict(w, memes_path=memes(w, [record(0, "train"), record(0, "train")])), ["[m0]"]),
    ),
    predict_case(
        "out-of-another-target",
        lambda w: (_predict(w, out=predictions(w, "hatemm")), [w / "predictions.jsonl", "'hatemm'"]),
    ),
    predict_case(
        "out-of-other-memes",
        lambda w: (
            _predict(w, out=predictions(w, rows=[{"id": "zz", "prediction": 1, "response": "", "target": "mhc"}])),
            ["'zz'"],
        ),
    ),  # fmt: skip
    predict_case(
        "out-is-a-folder", lambda w: (_predict(w, out=(w / "outdir").mkdir() or w / "outdir"), [w / "outdir"])
    ),  # fmt: skip
    predict_case(
        "out-bad-record",
        lambda w: (_predict(w, out=write_lines(w / "p.jsonl", [{"id": "m0"}])), [f"{w / 'p.jsonl'}:1"]),
    ),  # fmt: skip
    predict_case("model-missing", lambda w: (_predict(w), ["nowhere-model"])),
    # unusable images are found before the model loads and before --out exists (no empty predictions file)
    *[
        predict_case(
            f"image-{kind}",
            lambda w, spoil=spoil, kind_word=kind_word: (
                _predict(w, memes_path=_spoiled(w, spoil)),
                ["train.jsonl", "m1", kind_word],
            ),
        )
        for kind, spoil, kind_word in [
            ("missing", lambda p: p.unlink(), "missing"),
            ("zero-byte", lambda p: p.write_bytes(b""), "zero-byte"),
            ("truncated", truncated_png, "corrupt-or-truncated"),
            ("text", lambda p: p.write_text("not a picture"), "not-an-image"),
            ("bomb", bomb_png, "too-large"),
        ]
    ],
    predict_case(
        "image-null",
        lambda w: (
            _predict(w, memes_path=memes(w, [record(0, "train"), record(1, "train", media=None)])),
            ["[m1]", "null"],
        ),
    ),
]


def _spoiled(w: Path, spoil: Callable[[Path], object]) -> Path:
    """The meme manifest with meme m1's image spoiled (removed, emptied, cut, replaced)."""
    manifest = memes(w)
    spoil(manifest.parent / "img" / "1.png")
    return manifest


@cases(PREDICT)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


KILLED_WRITER = """
import os, signal, sys
from m2v_bench.jsonl import write_jsonl
def rows():
    for i in range(100000):
        if i == 50000:
            os.kill(os.getpid(), signal.SIGKILL)
        yield {"id": i, "text": "x" * 50}
write_jsonl(sys.argv[1], rows())
"""


def test_sigkill_mid_write_leaves_the_old_file_intact(tmp_path):
    path = write_lines(tmp_path / "predictions.jsonl", [{"id": "old"}])
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], capture_output=True, timeout=120)
    assert result.returncode == -9
    assert path.read_text() == '{"id": "old"}\n'
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p != path)
    assert all(name.startswith(".predictions.jsonl.") and name.endswith(".tmp") for name in leftovers), leftovers
