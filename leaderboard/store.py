"""The leaderboard's SQLite store: one row per (submission, task) with its recomputed metrics, and every per-sample
prediction. Schema versions are applied in order (``PRAGMA user_version``); writes are single transactions, and
WAL + a busy timeout let several processes submit at once."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from m2v_bench.atomic import make_dirs
from m2v_bench.errors import M2VError

MIGRATIONS = [
    """
    CREATE TABLE submissions (
        name TEXT PRIMARY KEY,
        family TEXT NOT NULL,
        strategy TEXT NOT NULL,
        target TEXT,
        meme_source TEXT,
        base_model TEXT NOT NULL,
        video_fraction REAL,
        provenance TEXT NOT NULL,
        submitted_at TEXT NOT NULL DEFAULT (datetime('now'))
    );
    CREATE TABLE results (
        name TEXT NOT NULL REFERENCES submissions(name) ON DELETE CASCADE,
        task TEXT NOT NULL,
        dataset TEXT NOT NULL,
        test_sha256 TEXT NOT NULL,
        n INTEGER NOT NULL,
        accuracy REAL NOT NULL, macro_f1 REAL NOT NULL, f1 REAL NOT NULL, precision REAL NOT NULL,
        recall REAL NOT NULL, invalid_rate REAL NOT NULL, auroc REAL,
        macro_f1_low REAL NOT NULL, macro_f1_high REAL NOT NULL,
        PRIMARY KEY (name, task)
    );
    CREATE TABLE predictions (
        name TEXT NOT NULL, task TEXT NOT NULL, sample_id TEXT NOT NULL,
        gold INTEGER NOT NULL, pred INTEGER NOT NULL, score REAL, response TEXT,
        PRIMARY KEY (name, task, sample_id),
        FOREIGN KEY (name, task) REFERENCES results(name, task) ON DELETE CASCADE
    );
    """,
]


@dataclass(frozen=True)
class Submission:
    name: str
    family: str
    strategy: str
    target: str | None
    meme_source: str | None
    base_model: str
    video_fraction: float | None
    provenance: dict


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise M2VError(f"--db {self.path}: is a folder; give the leaderboard's SQLite file")
        make_dirs(self.path.parent)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._check_foreign()  # before anything that writes (journal_mode=WAL changes the file)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=60000")
            self._migrate()
        except sqlite3.DatabaseError as exc:  # not SQLite at all ("file is not a database"), or unreadable
            raise M2VError(f"--db {self.path}: not a leaderboard database ({exc}); give another --db path") from None

    def _check_foreign(self) -> None:
        """A SQLite file of another application is never written into."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and tables:
            raise M2VError(
                f"--db {self.path}: a SQLite database of another application (tables {sorted(tables)[:5]}); "
                "give the leaderboard its own --db file"
            )
        if version > len(MIGRATIONS):
            raise M2VError(f"--db {self.path}: schema version {version} is newer than this m2v-bench knows; upgrade")

    def _migrate(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={number}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    def put(self, submission: Submission, results: list[dict], predictions: dict[str, list[dict]]) -> None:
        """Store (or replace: re-submitting is idempotent) a submission with its results, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM submissions WHERE name = ?", (submission.name,))
            self.db.execute(
                "INSERT INTO submissions (name, family, strategy, target, meme_source, base_model, video_fraction,"
                " provenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (submission.name, submission.family, submission.strategy, submission.target, submission.meme_source,
                 submission.base_model, submission.video_fraction, json.dumps(submission.provenance, default=str)),
            )  # fmt: skip
            for row in results:
                columns = ", ".join(row)
                self.db.execute(
                    f"INSERT INTO results (name, {columns}) VALUES (?, {', '.join('?' * len(row))})",
                    (submission.name, *row.values()),
                )
                self.db.executemany(
                    "INSERT INTO predictions (name, task, sample_id, gold, pred, score, response) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(submission.name, row["task"], p["id"], p["gold"], p["pred"], p.get("score"), p.get("response"))
                     for p in predictions[row["task"]]],
                )  # fmt: skip
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def submissions(self) -> list[Submission]:
        rows = self.db.execute(
            "SELECT name, family, strategy, target, meme_source, base_model, video_fraction, provenance "
            "FROM submissions ORDER BY name"
        ).fetchall()
        return [Submission(*row[:7], json.loads(row[7])) for row in rows]

    def results(self) -> list[dict]:
        cursor = self.db.execute("SELECT * FROM results ORDER BY name, task")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def predictions(self, name: str, task: str) -> dict[str, tuple[int, int]]:
        rows = self.db.execute(
            "SELECT sample_id, gold, pred FROM predictions WHERE name = ? AND task = ?", (name, task)
        ).fetchall()
        return {sample_id: (gold, pred) for sample_id, gold, pred in rows}
