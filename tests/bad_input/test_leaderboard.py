"""Bad input to ``m2v-bench leaderboard`` (databases, provenance), and a SIGKILL in the middle of a submit."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .harness import LATIN1, Case, cases, check, write


def _text_db(w: Path) -> Path:
    return write(w / "lb.sqlite", "this is a text file, not a database\n")


def _folder_db(w: Path) -> Path:
    (w / "lb.sqlite").mkdir()
    return w / "lb.sqlite"


def _foreign_db(w: Path) -> Path:
    db = sqlite3.connect(w / "lb.sqlite")
    db.execute("CREATE TABLE users (name TEXT)")
    db.execute("INSERT INTO users VALUES ('alice')")
    db.commit()
    db.close()
    return w / "lb.sqlite"


def _checkpoint(w: Path, provenance: str | bytes | None = None) -> Path:
    folder = w / "ckpt"
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "adapter_config.json", "{}")
    write(folder / "adapter_model.safetensors", "")  # submit checks that the weights exist before the --db
    good = json.dumps({"family": "mllama", "strategy": "vid_ft", "target": "mhc", "base_model": "x"})
    write(folder / "m2v_provenance.json", provenance if provenance is not None else good)
    (w / "results").mkdir(exist_ok=True)
    return folder


def lb(case_id: str, make_db: Callable[[Path], Path], step: str) -> Case:
    def build(w):
        db = make_db(w)
        tail = {"show": ["show"], "build": ["build", w / "site"],
                "submit": ["submit", _checkpoint(w), "--results", w / "results", "--data-dir", w]}[step]  # fmt: skip
        return ["leaderboard", "--db", db, *tail], [db]

    return Case(f"{step}-db-{case_id}", build)


def provenance_case(case_id: str, text: str | bytes) -> Case:
    def build(w):
        folder = _checkpoint(w, text)
        argv = ["leaderboard", "--db", w / "lb.sqlite", "submit", folder, "--results", w / "results", "--data-dir", w]
        return argv, [folder / "m2v_provenance.json"]

    return Case(f"submit-provenance-{case_id}", build)


LEADERBOARD = [
    *(
        lb(name, make, step)
        for name, make in (("text-file", _text_db), ("folder", _folder_db), ("foreign-sqlite", _foreign_db))
        for step in ("show", "build", "submit")
    ),  # fmt: skip
    provenance_case("list", '[{"family": "mllama"}]'),
    provenance_case("no-family", '{"strategy": "vid_ft"}'),
    provenance_case("family-null", '{"family": null, "strategy": "vid_ft"}'),
    provenance_case("no-strategy", '{"family": "mllama"}'),
    provenance_case("malformed", '{"family": "mllama",'),
    provenance_case("empty", ""),
    provenance_case("latin-1", b'{"family": "' + LATIN1 + b'"}'),
    # a new --db is made only after the submission is verified: these leave no empty database behind
    Case("submit-new-db-results-missing", lambda w: (_submit_new_db(w, w / "none"), [w / "none"])),
    Case("submit-new-db-results-empty", lambda w: (_submit_new_db(w, w / "results"), [w / "results"])),
]


def _submit_new_db(w: Path, results: Path) -> list:
    folder = _checkpoint(w)
    return ["leaderboard", "--db", w / "new" / "lb.sqlite", "submit", folder, "--results", results,
            "--data-dir", w / "missing-data"]  # fmt: skip


@cases(LEADERBOARD)
def test_leaderboard_and_other_commands(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


KILLED_SUBMITTER = """
import os, signal, sys
from m2v_bench.leaderboard.store import Store, Submission

def submission(name):
    return Submission(name, "mllama", "vid_ft", "mhc", None, "base", 1.0, {"family": "mllama"})

row = {"task": "m2v_mhc", "dataset": "mhc", "test_sha256": "0" * 64, "n": 2, "accuracy": 1.0, "macro_f1": 1.0,
       "f1": 1.0, "precision": 1.0, "recall": 1.0, "invalid_rate": 0.0, "auroc": None, "macro_f1_low": 1.0,
       "macro_f1_high": 1.0}
samples = {"m2v_mhc": [{"id": "a", "gold": 1, "pred": 1}, {"id": "b", "gold": 0, "pred": 0}]}
store = Store(sys.argv[1])
if sys.argv[2] == "first":
    store.put(submission("first"), [row], samples)
    sys.exit(0)
real = store.db.executemany
def killed(*args):  # the predictions are half inserted, inside put's transaction
    real(*args)
    os.kill(os.getpid(), signal.SIGKILL)
fake = {"execute": store.db.execute, "executemany": staticmethod(killed), "in_transaction": False}
store.db = type("Db", (), fake)()
store.put(submission("first"), [row], samples, replace=True)  # an explicit re-submission: a new version
"""


def test_sigkill_mid_submit_keeps_the_stored_submission(tmp_path):
    """SIGKILL inside the leaderboard's write transaction: the earlier submission is still whole, nothing half-written
    (the guarantee the issue measured under 47 kills; here deterministic)."""
    from m2v_bench.leaderboard.store import Store

    db = tmp_path / "lb.sqlite"
    assert subprocess.run([sys.executable, "-c", KILLED_SUBMITTER, str(db), "first"], timeout=120).returncode == 0
    store = Store(db)
    before = (store.submissions(), store.results(), store.predictions("first", "m2v_mhc"))
    store.close()
    result = subprocess.run([sys.executable, "-c", KILLED_SUBMITTER, str(db), "kill"], timeout=120)
    assert result.returncode == -9
    store = Store(db)
    assert (store.submissions(), store.results(), store.predictions("first", "m2v_mhc")) == before
    store.close()
