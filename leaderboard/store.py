"""The leaderboard's SQLite store: one row per (submission, task) with its recomputed metrics, ``n`` and test-set
identity, and every per-sample prediction. A submission is ``verified`` (evaluated by a leaderboard worker) or
``self-reported`` (logs uploaded by its author). A name is never silently re-used: storing under a taken name is an
error unless ``replace=True``, which makes a new version and keeps the old one (its submission and result rows) in
``history``. Schema versions are applied in order (``PRAGMA user_version``); writes are single transactions, and
WAL + a busy timeout let several processes submit at once."""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from m2v_bench.atomic import make_dirs
from m2v_bench.data_dir import paper_test_hash
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
    """
    ALTER TABLE submissions ADD COLUMN status TEXT NOT NULL DEFAULT 'self-reported';
    ALTER TABLE submissions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE submissions ADD COLUMN environment TEXT;
    ALTER TABLE results ADD COLUMN test_set TEXT NOT NULL DEFAULT 'custom';
    CREATE TABLE history (
        name TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL, submission TEXT NOT NULL,
        results TEXT NOT NULL, replaced_at TEXT NOT NULL DEFAULT (datetime('now')),
        PRIMARY KEY (name, version)
    );
    """,
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        base_model TEXT NOT NULL,
        adapter TEXT,
        revision TEXT,
        state TEXT NOT NULL DEFAULT 'PENDING',
        client TEXT,
        worker TEXT,
        claim TEXT,
        lease_until REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        log TEXT NOT NULL DEFAULT '',
        error TEXT,
        created_at TEXT NOT NULL DEFAULT (datetime('now')),
        updated_at TEXT NOT NULL DEFAULT (datetime('now'))
    );
    CREATE INDEX jobs_state ON jobs (state, id);
    """,
    """
    CREATE TABLE workers (
        name TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL DEFAULT (datetime('now')),
        revoked_at TEXT,
        note TEXT,
        flag TEXT
    );
    ALTER TABLE submissions ADD COLUMN worker TEXT;
    ALTER TABLE submissions ADD COLUMN note TEXT;
    ALTER TABLE jobs ADD COLUMN identity TEXT;
    ALTER TABLE jobs ADD COLUMN audit_of TEXT;
    ALTER TABLE jobs ADD COLUMN sample TEXT;
    ALTER TABLE jobs ADD COLUMN exclude TEXT;
    """,
    """
    ALTER TABLE jobs ADD COLUMN audit_version INTEGER;
    UPDATE jobs SET audit_version = (SELECT version FROM submissions s WHERE s.name = jobs.name)
        WHERE audit_of IS NOT NULL;
    UPDATE jobs SET exclude = json_array(exclude) WHERE exclude IS NOT NULL;
    """,
]
"""Version 5: an audit records the version it audits (audits waiting at the upgrade audit the current one), and
``exclude`` is a JSON list of the workers that may not claim it."""
ADMIN = "admin"
"""The identity of the server's own token (``--token-file``): it may run jobs too, recorded as ``admin``."""
MAX_LOG = 1_000_000
"""A job's log keeps its last this many characters (heartbeats append to it)."""
MAX_AUDITS = 3
"""Audits one row's version gets: when as many failed (or were undone), it is ``disputed``."""
MAX_ATTEMPTS = 3
"""Claims a job gets: one whose lease ran out this often is FAILED instead of queued again."""
JOB_STATES = ("PENDING", "RUNNING", "FINISHED", "FAILED")
STATUSES = ("verified", "self-reported", "revoked", "auditing", "disputed")
"""``revoked``: verified by a worker whose token was revoked since; ``auditing``: a worker's run waiting for its
audit (audit mode); ``disputed``: the audit's re-run disagreed. Each keeps its note; only ``verified`` and
``self-reported`` rows are in the tables."""


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
    status: str = "self-reported"
    """``verified``, ``self-reported`` or ``revoked`` (:data:`STATUSES`)."""
    version: int = 1
    environment: dict | None = None
    """Verified runs: the versions, device and dtype the worker evaluated with."""
    worker: str | None = None
    """Verified runs: the registered worker (its token's name) that ran it."""
    note: str | None = None
    """Why the status is what it is, when it changed after storing (a revoked worker)."""


class NameTaken(M2VError):
    """A submission under a name that is stored already, without asking to replace it."""


class Store:
    def __init__(self, path: str | Path, threads: bool = False):
        """``threads``: the connection may be used from several threads (the server serialises its calls)."""
        self.path = Path(path)
        self._finishing: int | None = None
        if self.path.is_dir():
            raise M2VError(f"--db {self.path}: is a folder; give the leaderboard's SQLite file")
        make_dirs(self.path.parent)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=not threads)
            self._check_foreign()  # before anything that writes (journal_mode=WAL changes the file)
            self._use_wal()
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=60000")
            self._migrate()
        except sqlite3.DatabaseError as exc:  # not SQLite at all ("file is not a database"), or unreadable
            raise M2VError(f"--db {self.path}: not a leaderboard database ({exc}); give another --db path") from None

    def _check_foreign(self) -> None:
        """A SQLite file of another application is never written into."""
        # One read transaction: read apart, another process's migration could commit between the two reads (its
        # tables seen, its user_version not), and a new leaderboard file looked like another application's.
        self.db.execute("BEGIN")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            self.db.execute("COMMIT")
        if version == 0 and tables:
            raise M2VError(
                f"--db {self.path}: a SQLite database of another application (tables {sorted(tables)[:5]}); "
                "give the leaderboard its own --db file"
            )
        if version > len(MIGRATIONS):
            raise M2VError(f"--db {self.path}: schema version {version} is newer than this m2v-bench knows; upgrade")

    def _use_wal(self, patience: float = 60.0) -> None:
        """Switch a new file to WAL (the mode persists in the file). SQLite answers "database is locked" at once,
        without its busy handler, when another connection switches at the same moment: retry for ``patience``."""
        deadline = time.monotonic() + patience
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                if number == 2:
                    self._identify_old_test_sets()
                self.db.execute(f"PRAGMA user_version={number}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _identify_old_test_sets(self) -> None:
        """Results stored before rows had a test set: ``paper`` where the stored hash is the paper's test split,
        else ``custom`` (the column's default), so that nothing unknown lands on the public board."""
        for (dataset,) in self.db.execute("SELECT DISTINCT dataset FROM results").fetchall():
            expected = paper_test_hash(dataset)
            if expected is not None:
                self.db.execute("UPDATE results SET test_set = 'paper' WHERE dataset = ? AND test_sha256 = ?",
                                (dataset, expected))  # fmt: skip

    def close(self) -> None:
        self.db.close()

    def put(
        self,
        submission: Submission,
        results: list[dict],
        predictions: dict[str, list[dict]],
        replace: bool = False,
    ) -> int:
        """Store a submission with its results in one transaction; returns its version. A taken name raises
        :class:`NameTaken` unless ``replace``: then the stored one moves to ``history`` and this one is the next
        version. A queued or running evaluation request reserves its name: only that job (storing through
        :meth:`finish_job`) may store under it."""
        if submission.status not in STATUSES:
            raise ValueError(f"status {submission.status!r}; one of {STATUSES}")
        outer = self.db.in_transaction  # inside finish_job's transaction: part of it
        if not outer:
            self.db.execute("BEGIN IMMEDIATE")
        try:
            version = 1
            reserved = self.db.execute(
                "SELECT id FROM jobs WHERE name = ? AND state IN ('PENDING', 'RUNNING') AND id IS NOT ?",
                (submission.name, self._finishing),
            ).fetchone()
            if reserved is not None:
                raise NameTaken(f"name {submission.name!r} is reserved by evaluation request {reserved[0]} (queued or "
                                "running); choose another name")  # fmt: skip
            old = self.db.execute("SELECT version FROM submissions WHERE name = ?", (submission.name,)).fetchone()
            if old is not None:
                if not replace:
                    raise NameTaken(
                        f"name {submission.name!r} is taken (version {old[0]}); choose another name, or replace it "
                        "explicitly (--replace: a new version, the old one kept in the history)"
                    )
                version = self._archive(submission.name) + 1
            self.db.execute(
                "INSERT INTO submissions (name, family, strategy, target, meme_source, base_model, video_fraction,"
                " provenance, status, version, environment, worker, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?)",
                (submission.name, submission.family, submission.strategy, submission.target, submission.meme_source,
                 submission.base_model, submission.video_fraction, json.dumps(submission.provenance, default=str),
                 submission.status, version,
                 None if submission.environment is None else json.dumps(submission.environment, default=str),
                 submission.worker, submission.note),
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
            if not outer:
                self.db.execute("COMMIT")
        except BaseException:
            if not outer:
                self.db.execute("ROLLBACK")
            raise
        return version

    def _archive(self, name: str) -> int:
        """Move a stored submission (row and results) into ``history``; returns the highest version of the name."""
        cursor = self.db.execute("SELECT * FROM submissions WHERE name = ?", (name,))
        columns = [d[0] for d in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
        results = self.db.execute("SELECT * FROM results WHERE name = ?", (name,))
        result_rows = [dict(zip([d[0] for d in results.description], r, strict=True)) for r in results.fetchall()]
        self.db.execute(
            "INSERT INTO history (name, version, status, submission, results) VALUES (?, ?, ?, ?, ?)",
            (name, row["version"], row["status"], json.dumps(row), json.dumps(result_rows)),
        )
        self.db.execute("DELETE FROM submissions WHERE name = ?", (name,))
        latest = self.db.execute("SELECT max(version) FROM history WHERE name = ?", (name,)).fetchone()[0]
        return max(latest, row["version"])

    def history(self, name: str) -> list[dict]:
        """The earlier versions of a name, oldest first: {version, status, submission, results, replaced_at}."""
        rows = self.db.execute(
            "SELECT version, status, submission, results, replaced_at FROM history WHERE name = ? ORDER BY version",
            (name,),
        ).fetchall()
        return [{"version": v, "status": st, "submission": json.loads(sub), "results": json.loads(res),
                 "replaced_at": at} for v, st, sub, res, at in rows]  # fmt: skip

    def submissions(self) -> list[Submission]:
        rows = self.db.execute(
            "SELECT name, family, strategy, target, meme_source, base_model, video_fraction, provenance, status, "
            "version, environment, worker, note FROM submissions ORDER BY name"
        ).fetchall()
        return [Submission(*row[:7], _json(row[7]) or {}, row[8], row[9], _json(row[10]), row[11], row[12])
                for row in rows]  # fmt: skip

    # ----------------------------------------------------------------------------------------------- the workers

    def add_worker(self, name: str) -> str:
        """Register a worker; returns its token (shown once: only its SHA-256 is stored)."""
        token = secrets.token_urlsafe(32)
        try:
            self.db.execute("INSERT INTO workers (name, token_sha256) VALUES (?, ?)", (name, _sha256(token)))
        except sqlite3.IntegrityError:
            raise M2VError(f"worker {name!r} exists; revoke it and add one under another name") from None
        return token

    def worker_for_token(self, token: str) -> str | None:
        """The name of the registered, unrevoked worker whose token this is."""
        row = self.db.execute(
            "SELECT name FROM workers WHERE token_sha256 = ? AND revoked_at IS NULL", (_sha256(token),)
        ).fetchone()
        return None if row is None else row[0]

    def workers(self) -> list[dict]:
        cursor = self.db.execute("SELECT name, created_at, revoked_at, note, flag FROM workers ORDER BY name")
        return [dict(zip([d[0] for d in cursor.description], row, strict=True)) for row in cursor.fetchall()]

    def revoke_worker(self, name: str, note: str) -> list[str]:
        """Revoke a worker's token (its next call gets 401) and take back everything it vouched for, with ``note``:
        the rows it ran (``verified`` or ``auditing``) become ``revoked``; the rows whose audit it ran that made them
        ``verified`` go back to ``auditing`` with a new audit for another worker; a job it holds is re-queued.
        Returns the names of the rows it moved. A worker revoked already is an error (its first note is kept)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            found = self.db.execute("SELECT revoked_at, note FROM workers WHERE name = ?", (name,)).fetchone()
            if found is None:
                raise M2VError(f"no worker {name!r}; `workers list` shows them")
            if found[0] is not None:
                raise M2VError(f"worker {name!r} was revoked at {found[0]} ({found[1]}); nothing changed")
            self.db.execute("UPDATE workers SET revoked_at = datetime('now'), note = ? WHERE name = ?", (note, name))
            ran = [r[0] for r in self.db.execute(
                "SELECT name FROM submissions WHERE worker = ? AND status IN ('verified', 'auditing') ORDER BY name",
                (name,))]  # fmt: skip
            self.db.execute("UPDATE submissions SET status = 'revoked', note = ? WHERE worker = ? AND status IN "
                            "('verified', 'auditing')", (f"worker {name} revoked: {note}", name))  # fmt: skip
            audited = self._audits_settled_by(name)
            for audit in audited:
                self.db.execute("UPDATE submissions SET status = 'auditing', note = ? WHERE name = ?",
                                (f"its audit by {name} no longer counts ({name} revoked: {note}); waiting for a new "
                                 "audit", audit["name"]))  # fmt: skip
                self._audit_again(audit, also_exclude=name)
            self.db.execute(  # the audits of its own runs have nothing left to settle
                "UPDATE jobs SET state = 'FAILED', lease_until = NULL, error = ?, updated_at = datetime('now') "
                "WHERE audit_of IN (SELECT CAST(id AS TEXT) FROM jobs WHERE identity = ? AND audit_of IS NULL) "
                "AND state IN ('PENDING', 'RUNNING')",
                (f"not needed: the audited worker {name} was revoked", name),
            )
            self.db.execute(
                "UPDATE jobs SET state = 'PENDING', worker = NULL, claim = NULL, lease_until = NULL, log = log || ?, "
                "updated_at = datetime('now') WHERE state = 'RUNNING' AND identity = ?",
                (f"{_now()} its worker {name} was revoked: re-queued\n", name),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return sorted(ran + [a["name"] for a in audited])

    def _audits_settled_by(self, worker: str) -> list[dict]:
        """The finished audits ``worker`` ran that settled a row (made it ``verified`` or ``disputed``), on the
        version they audited."""
        cursor = self.db.execute(
            "SELECT j.* FROM jobs j JOIN submissions s ON s.name = j.name AND s.version = j.audit_version "
            "WHERE j.audit_of IS NOT NULL AND j.state = 'FINISHED' AND j.identity = ? AND s.status IN "
            "('verified', 'disputed') ORDER BY j.id",
            (worker,),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _audit_again(self, audit: dict, also_exclude: str | None) -> int | None:
        """Queue a new audit like ``audit`` (same row, version and sample), also excluding ``also_exclude``; after
        :data:`MAX_AUDITS` audits of that version, the row is ``disputed`` instead (no audit could settle it)."""
        tries = self.db.execute("SELECT count(*) FROM jobs WHERE audit_of = ? AND audit_version IS ?",
                                (audit["audit_of"], audit["audit_version"])).fetchone()[0]  # fmt: skip
        if tries >= MAX_AUDITS:
            note = f"no audit settled it in {tries} tries (the last: job {audit['id']})"
            self.db.execute("UPDATE submissions SET status = 'disputed', note = ? WHERE name = ? AND version IS ? AND "
                            "status = 'auditing'", (note, audit["name"], audit["audit_version"]))  # fmt: skip
            return None
        exclude = (_json(audit["exclude"]) or []) + ([also_exclude] if also_exclude else [])
        return self.add_audit(self.job(int(audit["audit_of"])), json.loads(audit["sample"]), exclude,
                              audit["audit_version"])  # fmt: skip

    def results(self) -> list[dict]:
        cursor = self.db.execute("SELECT * FROM results ORDER BY name, task")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def predictions(self, name: str, task: str) -> dict[str, tuple[int, int]]:
        rows = self.db.execute(
            "SELECT sample_id, gold, pred FROM predictions WHERE name = ? AND task = ?", (name, task)
        ).fetchall()
        return {sample_id: (gold, pred) for sample_id, gold, pred in rows}

    # ------------------------------------------------------------------------------------------------- the queue

    def add_job(self, name: str, base_model: str, adapter: str | None, revision: str | None, client: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO jobs (name, base_model, adapter, revision, client, log) VALUES (?, ?, ?, ?, ?, ?)",
            (name, base_model, adapter, revision, client, f"{_now()} requested by {client}\n"),
        )
        return int(cursor.lastrowid)

    def add_audit(self, job: dict, sample: dict[str, list[str]], exclude: list[str], version: int) -> int:
        """An audit of a finished job: the same checkpoint on ``sample`` ({task: document ids}), for any worker but
        those in ``exclude`` (the one that ran it; auditors that failed it); ``version``: the submission's version it
        audits."""
        cursor = self.db.execute(
            "INSERT INTO jobs (name, base_model, adapter, revision, client, log, audit_of, sample, exclude, "
            "audit_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job["name"], job["base_model"], job["adapter"], job["revision"], "audit",
             f"{_now()} audit of job {job['id']} (run by {exclude[0]})\n", str(job["id"]), json.dumps(sample),
             json.dumps(sorted(set(exclude), key=exclude.index)), version),
        )  # fmt: skip
        return int(cursor.lastrowid)

    def prediction_rows(self, name: str, task: str) -> dict[str, dict]:
        """A stored submission's per-sample records of one task, by sample id: gold, pred, score."""
        rows = self.db.execute(
            "SELECT sample_id, gold, pred, score FROM predictions WHERE name = ? AND task = ?", (name, task)
        ).fetchall()
        return {sample_id: {"gold": gold, "pred": pred, "score": score} for sample_id, gold, pred, score in rows}

    def set_status(self, name: str, status: str, note: str, expect: tuple[str, int] | None = None) -> bool:
        """Set a submission's status and note; with ``expect`` (status, version) only while it still has them (an
        audit settles only the row it audited, not one revoked or replaced since). Whether it changed."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r}; one of {STATUSES}")
        query, values = "UPDATE submissions SET status = ?, note = ? WHERE name = ?", [status, note, name]
        if expect is not None:
            query, values = query + " AND status = ? AND version = ?", [*values, *expect]
        return self.db.execute(query, values).rowcount > 0

    def flag_worker(self, name: str, note: str) -> None:
        """Mark a worker (an audit disagreed with its run, or its audit of another's)."""
        self.db.execute("UPDATE workers SET flag = coalesce(flag || '; ', '') || ? WHERE name = ?", (note, name))

    def jobs(self, limit: int = 200, with_log: bool = True) -> list[dict]:
        columns = "*" if with_log else ", ".join(c for c in self._job_columns() if c != "log")
        cursor = self.db.execute(f"SELECT {columns} FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _job_columns(self) -> list[str]:
        return [row[1] for row in self.db.execute("PRAGMA table_info(jobs)")]

    def name_in_use(self, name: str) -> bool:
        """A stored submission, or a queued, running or finished request, has this name."""
        return self.db.execute(
            "SELECT 1 FROM submissions WHERE name = ? UNION ALL SELECT 1 FROM jobs WHERE name = ? AND state IN "
            "('PENDING', 'RUNNING', 'FINISHED') LIMIT 1", (name, name)).fetchone() is not None  # fmt: skip

    def job(self, job_id: int) -> dict | None:
        cursor = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        row = cursor.fetchone()
        return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))

    def requeue_expired(self, now: float | None = None) -> list[int]:
        """RUNNING jobs whose lease has run out (their worker died or lost contact) go back to PENDING."""
        now = time.time() if now is None else now
        expired = [r[0] for r in self.db.execute(
            "SELECT id FROM jobs WHERE state = 'RUNNING' AND lease_until < ?", (now,)).fetchall()]  # fmt: skip
        for job_id in expired:
            self.db.execute(
                "UPDATE jobs SET state = 'PENDING', worker = NULL, claim = NULL, lease_until = NULL, "
                "log = log || ?, updated_at = datetime('now') WHERE id = ? AND state = 'RUNNING'",
                (f"{_now()} lease expired: re-queued\n", job_id),
            )
        return expired

    def claim_job(self, worker: str, lease_s: float, identity: str = ADMIN) -> dict | None:
        """The oldest PENDING job, now RUNNING under a fresh claim id and a lease (expired leases re-queued first).
        ``worker``: the worker's own description of itself; ``identity``: the registered worker its token names."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.requeue_expired()
            given_up = [r[0] for r in self.db.execute(
                "SELECT id FROM jobs WHERE state = 'PENDING' AND attempts >= ?", (MAX_ATTEMPTS,))]  # fmt: skip
            for job_id in given_up:  # a job that failed to finish this often would loop for ever
                error = f"gave up after {MAX_ATTEMPTS} attempts (each worker's lease ran out; the admin log says more)"
                self._fail(job_id, error, by=None)
            row = self.db.execute(
                "SELECT id FROM jobs WHERE state = 'PENDING' AND (exclude IS NULL OR NOT EXISTS "
                "(SELECT 1 FROM json_each(jobs.exclude) WHERE value = ?)) ORDER BY id LIMIT 1",
                (identity,),
            ).fetchone()
            if row is None:
                self.db.execute("COMMIT")
                return None
            claim = uuid.uuid4().hex
            self.db.execute(
                "UPDATE jobs SET state = 'RUNNING', worker = ?, identity = ?, claim = ?, lease_until = ?, "
                "attempts = attempts + 1, log = log || ?, updated_at = datetime('now') WHERE id = ?",
                (
                    worker,
                    identity,
                    claim,
                    time.time() + lease_s,
                    f"{_now()} claimed by {identity} ({worker})\n",
                    row[0],
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return self.job(row[0])

    def _holds(self, job_id: int, claim: str) -> bool:
        row = self.db.execute("SELECT state, claim, lease_until FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None and row[0] == "RUNNING" and row[1] == claim and row[2] >= time.time()

    def log_job(self, job_id: int, line: str) -> None:
        self.db.execute("UPDATE jobs SET log = log || ?, updated_at = datetime('now') WHERE id = ?",
                        (f"{_now()} {line}\n", job_id))  # fmt: skip

    def heartbeat(self, job_id: int, claim: str, lease_s: float, log: str = "") -> bool:
        """Extend a held lease (and append to the log); False when the claim is no longer valid."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            held = self._holds(job_id, claim)
            if held:
                self.db.execute(
                    "UPDATE jobs SET lease_until = ?, log = substr(log || ?, -?), updated_at = datetime('now') "
                    "WHERE id = ?",
                    (time.time() + lease_s, log, MAX_LOG, job_id),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return held

    def finish_job(self, job_id: int, claim: str, store_results) -> bool:
        """In one transaction: check the claim is held, ``store_results()`` (which writes the verified submission
        inside this transaction), mark the job FINISHED. False (nothing written) when the claim is stale, so a job
        is stored exactly once even when a presumed-dead worker reports late."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if not self._holds(job_id, claim):
                self.db.execute("ROLLBACK")
                return False
            self._finishing = job_id  # the name this job reserved is its own to store under
            try:
                store_results()
            finally:
                self._finishing = None
            self.db.execute(
                "UPDATE jobs SET state = 'FINISHED', lease_until = NULL, log = log || ?, updated_at = datetime('now') "
                "WHERE id = ?",
                (f"{_now()} verified and stored\n", job_id),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return True

    def fail_job(self, job_id: int, claim: str | None, error: str, by: str | None = None) -> bool:
        """Mark a job FAILED with its error. ``claim`` None: an admin decision, for a queued or running job only (a
        finished one keeps its state). ``by``: who failed it, for the log."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if claim is None:
                state = self.db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
                held = state is not None and state[0] in ("PENDING", "RUNNING")
            else:
                held = self._holds(job_id, claim)
            if held:
                self._fail(job_id, error, by)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return held

    def _fail(self, job_id: int, error: str, by: str | None) -> None:
        """Inside a transaction: the job FAILED. A failed audit of a row still waiting for it is queued again for
        another worker (the one that failed it is flagged and excluded), so that no worker keeps an honest run out
        of the tables by failing its audit."""
        self.db.execute(
            "UPDATE jobs SET state = 'FAILED', lease_until = NULL, error = ?, log = log || ?, "
            "updated_at = datetime('now') WHERE id = ?",
            (error, f"{_now()} failed{f' (by {by})' if by else ''}: {error}\n", job_id),
        )
        job = self.job(job_id)
        if not job["audit_of"]:
            return
        waiting = self.db.execute("SELECT 1 FROM submissions WHERE name = ? AND version IS ? AND status = 'auditing'",
                                  (job["name"], job["audit_version"])).fetchone()  # fmt: skip
        if waiting is None:
            return
        failed_by = job["identity"] if by in (None, ADMIN) else by
        if failed_by and failed_by != ADMIN:
            self.flag_worker(failed_by, f"{job['name']}: failed its audit (job {job_id}): {error[:200]}")
        self._audit_again(job, also_exclude=failed_by if failed_by != ADMIN else None)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _json(text: str | None):
    """A stored JSON column; a damaged one reads as None instead of breaking every view."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
