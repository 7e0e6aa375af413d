"""Bad input to ``m2v-bench reannotate stats`` (the paper-format re-annotation CSV)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .harness import LATIN1, Case, _paper_csv, cases, check, utf16


def stats_csv(case_id: str, text: str | bytes | Callable[[str], str], names: Callable[[Path], list]) -> Case:
    def build(w):
        path = _paper_csv(w)
        path.write_bytes(text(path.read_text()).encode() if callable(text) else
                         text if isinstance(text, bytes) else text.encode())  # fmt: skip
        return ["reannotate", "stats", path, "--json", w / "out.json"], names(path)

    return Case(f"stats-{case_id}", build)


def _replace_line(n: int, old: str, new: str):
    def change(text: str) -> str:
        lines = text.splitlines(keepends=True)
        lines[n - 1] = lines[n - 1].replace(old, new)
        return "".join(lines)

    return change


STATS = [
    Case("stats-control", lambda w: (["reannotate", "stats", _paper_csv(w)], []), code=0),
    stats_csv("majority-2", _replace_line(2, ",1\n", ",2\n"), lambda p: [f"{p}:2", "majority_voting"]),
    stats_csv("original-minus-1", _replace_line(3, "m1,,t1,train,1", "m1,,t1,train,-1"), lambda p: [f"{p}:3"]),
    stats_csv("human-yes", _replace_line(2, "train,0,1,1,1", "train,0,1,yes,1"), lambda p: [f"{p}:2"]),
    stats_csv("prediction-word", _replace_line(2, "train,0,1,", "train,0,hateful,"), lambda p: [f"{p}:2"]),
    stats_csv("surplus-cell", _replace_line(2, "\n", ",EXTRA\n"), lambda p: [f"{p}:2"]),
    stats_csv("missing-cell", _replace_line(2, ",1\n", "\n"), lambda p: [f"{p}:2"]),
    stats_csv("missing-column", lambda t: t.replace("majority_voting", "vote"), lambda p: [p, "majority_voting"]),
    stats_csv("latin-1", b"id," + LATIN1, lambda p: [p]),
    stats_csv("utf-16", utf16("id,image\n"), lambda p: [p]),
    stats_csv("empty", b"", lambda p: [p]),
    Case("stats-missing-file", lambda w: (["reannotate", "stats", w / "none.csv"], [w / "none.csv"])),
    Case("stats-a-folder", lambda w: (["reannotate", "stats", (w / "d").mkdir() or w / "d"], [w / "d"])),
    Case(
        "stats-json-is-a-folder",
        lambda w: (["reannotate", "stats", _paper_csv(w), "--json", (w / "j").mkdir() or w / "j"], [w / "j"]),
    ),  # fmt: skip
]


@cases(STATS)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)
