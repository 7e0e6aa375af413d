"""Bad input to ``m2v-bench reannotate vote`` (predictions, human labels, targets)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .harness import LATIN1, Case, _p, cases, check, memes, predictions, write, write_lines


def human(w: Path, rows: list | None = None) -> Path:
    default = [{"id": f"m{i}", "label": 1, "votes": {"a": 1}, "target": "mhc"} for i in (1, 2, 3)]
    return write_lines(w / "human.jsonl", rows if rows is not None else default)


def _vote(w: Path, preds: Path | None = None, human_path: Path | None = None, target: str = "mhc", *extra) -> list:
    human_args = ["--human", human_path] if human_path else []
    return ["reannotate", "vote", "--memes", memes(w), "--predictions", preds or predictions(w), *human_args,
            "--target", target, "--out", w / "out", *extra]  # fmt: skip


def vote_human(case_id: str, rows: list | str | bytes, names: Callable[[Path], list], *extra) -> Case:
    def build(w):
        path = write(w / "h.jsonl", rows) if isinstance(rows, (str, bytes)) else write_lines(w / "h.jsonl", rows)
        return _vote(w, None, path, "mhc", *extra), names(w)

    return Case(f"vote-human-{case_id}", build)


def _h(i, label=1, **change):
    return {"id": f"m{i}", "label": label, "votes": {"a": label}, "target": "mhc", **change}


def _complete_human():
    return [_h(1), _h(2), _h(3)]


VOTE = [
    Case("vote-control", lambda w: (_vote(w, None, human(w)), []), code=0),
    Case(
        "vote-predictions-for-another-target",
        lambda w: (_vote(w, predictions(w, "hatemm"), human(w)), [w / "predictions.jsonl", "'hatemm'"]),
    ),
    Case("vote-target-fhm", lambda w: (_vote(w, None, human(w), "fhm"), ["'fhm'"])),
    Case("vote-target-unknown", lambda w: (_vote(w, None, human(w), "tiktok"), ["'tiktok'"])),
    Case(
        "vote-predictions-for-other-memes",
        lambda w: (_vote(w, predictions(w, rows=[*(_p(i) for i in range(4)), _p(7)]), human(w)), ["'m7'"]),
    ),
    Case(
        "vote-predictions-missing-memes",
        lambda w: (_vote(w, predictions(w, rows=[_p(0)]), human(w)), ["no prediction yet"]),
    ),  # fmt: skip
    Case("vote-unresolved-without-partial", lambda w: (_vote(w), ["3 conflict(s)", "--partial"])),
    Case(
        "vote-partial-nothing-resolved",
        lambda w: (
            _vote(w, predictions(w, rows=[_p(i, 1 - i % 2) for i in range(4)]), None, "mhc", "--partial"),
            [w / "memes" / "train.jsonl", "no meme is resolved"],
        ),
    ),  # fmt: skip
    Case("vote-human-missing-file", lambda w: (_vote(w, None, w / "none.jsonl"), [w / "none.jsonl"])),
    vote_human("label-2", [_h(1), _h(2, label=2), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2", "[m2]"]),
    vote_human("label-yes", [_h(1), _h(2, label="yes"), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2", "[m2]"]),
    vote_human("label-true", [_h(1), _h(2, label=True), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("label-float", [_h(1), _h(2, label=1.0), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("vote-value-2", [_h(1), {**_h(2), "votes": {"a": 2}}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("votes-a-list", [_h(1), {**_h(2), "votes": [1]}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("another-target", [_h(1), _h(2, target="hatemm"), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2", "hatemm"]),
    vote_human("unknown-meme", [*_complete_human(), _h(9)], lambda w: ["'m9'"]),
    vote_human("agreeing-meme", [*_complete_human(), _h(0)], lambda w: ["'m0'"]),
    vote_human("id-number", [_h(1), {**_h(2), "id": 2}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("duplicate", [*_complete_human(), _h(1)], lambda w: [f"{w / 'h.jsonl'}:4", "m1"]),
    vote_human("no-label", [_h(1), {"id": "m2"}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("latin-1", LATIN1, lambda w: [w / "h.jsonl"]),
    vote_human("not-json", "{{\n", lambda w: [f"{w / 'h.jsonl'}:1"]),
    vote_human("partial-with-a-bad-label", [_h(1, label=5)], lambda w: [f"{w / 'h.jsonl'}:1"], "--partial"),
    Case("vote-out-is-a-file", lambda w: ([*_vote(w, None, human(w))[:-1], write(w / "o", "x")], [w / "o"])),
]


@cases(VOTE)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)
