"""Bad input to make-sample-data, make-tiny-model, demo, leaderboard build's out, prepare's out, unknown commands."""

from __future__ import annotations

from pathlib import Path

from .harness import Case, cases, check, fhm_raw, prep, write


def _a_file(w: Path) -> Path:
    return write(w / "taken", "a file where a folder is expected")


OTHER = [
    Case("make-sample-data-out-is-a-file", lambda w: (["make-sample-data", _a_file(w)], [w / "taken"])),
    Case("make-sample-data-parent-is-a-file", lambda w: (["make-sample-data", _a_file(w) / "sub"], [w / "taken"])),
    Case("make-tiny-model-out-is-a-file", lambda w: (["make-tiny-model", "mllama", _a_file(w)], [w / "taken"])),
    Case("make-tiny-model-unknown-family", lambda w: (["make-tiny-model", "gpt2", w / "m"], ["gpt2"])),
    Case("demo-out-is-a-file", lambda w: (["demo", "--quick", "--out", _a_file(w)], [w / "taken"])),
    Case("demo-jobs-0", lambda w: (["demo", "--quick", "--jobs", "0", "--out", w / "demo"], ["--jobs 0"])),
    Case(
        "leaderboard-build-out-is-a-file",
        lambda w: (["leaderboard", "--db", w / "lb.sqlite", "build", _a_file(w)], [w / "taken"]),
    ),  # fmt: skip
    Case(
        "prepare-out-parent-is-a-file",
        lambda w: (prep("fhm", fhm_raw(w), w)[:-1] + [_a_file(w) / "out"], [w / "taken"]),
    ),  # fmt: skip
    Case("unknown-command", lambda w: (["prepair", "fhm"], ["prepair"])),
    Case("unknown-dataset", lambda w: (["prepare", "tiktok", "--root", w], ["tiktok"])),
]


@cases(OTHER)
def test_leaderboard_and_other_commands(case, tmp_path, capsys):
    check(case, tmp_path, capsys)
