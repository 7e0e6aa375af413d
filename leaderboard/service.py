"""The leaderboard service without its web framework: evaluation requests, the queue's worker protocol, verifying a
worker's upload, and the per-client rate limit. ``server.py`` puts HTTP around it, ``worker.py`` is its client.

The server process is the only writer of the database: workers never open it, they claim jobs and send their
lmms-eval output over the API. A worker's upload is verified here, on the server's own prepared data, exactly as a
self-reported submission is (ids, gold labels, test-set hash, re-parsed answers, results.json versions and
model_args), and stored as **verified** with the worker's environment, in the transaction that marks the job
FINISHED, only while the worker's claim is still held: a job is stored once even if a worker presumed dead reports.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from m2v_bench.errors import M2VError
from m2v_bench.leaderboard.runs import RESULTS, RUN
from m2v_bench.leaderboard.store import ADMIN, NameTaken, Store, Submission
from m2v_bench.leaderboard.submit import SubmissionError, check_name, evaluate_logs, model_args
from m2v_bench.models.loading import checkpoint_family
from m2v_bench.models.refs import checkpoint_label, is_git_ref, is_hub_id

logger = logging.getLogger(__name__)

MAX_UPLOAD = 64 * 1024 * 1024
"""The most text a worker's ``finish`` may carry (its files together); the HTTP body limit is set just above it."""
SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")
"""An uploaded file's name: one plain name, no folder, no NUL, not hidden."""


class RequestError(M2VError):
    """An evaluation request or a worker message the leaderboard refuses; the message says why."""


@dataclass
class Config:
    """What a leaderboard server needs: its database, its own prepared data, the folders requests may name."""

    db: Path
    data_dir: Path
    """The leaderboard's prepared manifests: workers evaluate on the same data, the server verifies against it."""
    model_dirs: list[Path] = field(default_factory=list)
    """Local models and adapters a request may name must lie below one of these (hub ids are always allowed)."""
    token: str = ""
    """Workers and admins send it as ``Authorization: Bearer <token>``."""
    lease_s: float = 600.0
    rate_limit: int = 10
    """Requests per client per ``rate_window_s``."""
    rate_window_s: float = 3600.0
    work_dir: Path | None = None
    """Where uploads are unpacked for verification (default: a temporary folder)."""


def check_model_ref(value: str | None, allowed: list[Path], what: str) -> str | None:
    """A hub id (``org/name``) as it is, or a local path resolved, which must lie below an allowed folder."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if is_hub_id(value):  # always the hub's: a local folder of that relative name is never what it names
        return value
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [root / path for root in allowed]
    for candidate in candidates:
        resolved = candidate.resolve()
        for root in allowed:
            if resolved.is_relative_to(root.resolve()) and resolved.exists():
                return str(resolved)
    raise RequestError(f"{what} {value!r}: not a hub id (org/name) nor a model folder inside the leaderboard's "
                       f"model folders ({', '.join(map(str, allowed)) or 'none configured'})")  # fmt: skip


def make_request(
    store: Store, config: Config, name: str, base_model: str, adapter: str | None, revision: str | None, client: str
) -> int:
    """Queue an evaluation request (PENDING); returns its job id. The name must be free (a running or finished
    request holds it too)."""
    name = check_name(str(name or "").strip())
    base = check_model_ref(base_model, config.model_dirs, "base model")
    if base is None:
        raise RequestError("base model: required (a hub id or a folder inside the leaderboard's model folders)")
    try:
        checkpoint_family(base)  # an unsupported family is refused now, not by the worker's run
    except M2VError as exc:
        raise RequestError(f"base model: {exc}") from None
    adapter = check_model_ref(adapter, config.model_dirs, "adapter")
    revision = (revision or "").strip() or None
    if revision is not None and not is_git_ref(revision):
        raise RequestError(f"revision {revision!r}: not a git branch, tag or commit name (no '..', no part starting "
                           "with '.', no spaces or ~^:?*[\\)")  # fmt: skip
    if revision is not None and (adapter is None or Path(adapter).is_dir()):
        raise RequestError("revision: pins a hub adapter (org/name); a local adapter folder is evaluated as it is")
    if name in {s.name for s in store.submissions()} or any(
        j["name"] == name and j["state"] in ("PENDING", "RUNNING", "FINISHED") for j in store.jobs(limit=100000)
    ):
        raise RequestError(f"name {name!r} is taken; choose another name")
    return store.add_job(name, base, adapter, revision, client)


def verify_upload(store: Store, config: Config, job_id: int, claim: str, upload: dict, worker: str = ADMIN) -> bool:
    """Verify a worker's lmms-eval output and store it as verified (by ``worker``, the registered worker that sent
    it), finishing the job. False: the claim is stale (the job was re-queued, or is done). A verification error
    fails the job and raises :class:`RequestError`."""
    job = store.job(job_id)
    if job is None:
        raise RequestError(f"no job {job_id}")
    files = upload.get("files") or {}
    if not isinstance(files, dict) or not files:
        raise RequestError("finish: no files (the run's *_results.json and *_samples_<task>.jsonl)")
    if sum(len(str(t)) for t in files.values()) > MAX_UPLOAD:
        raise RequestError(f"finish: upload over {MAX_UPLOAD} bytes")
    for filename, text in files.items():
        if not SAFE_FILE_NAME.fullmatch(filename) or not (RUN.fullmatch(filename) or RESULTS.fullmatch(filename)):
            store.fail_job(job_id, claim, f"upload refused: file name {filename!r} is not an lmms-eval output name")
            raise RequestError(f"finish: file name {filename!r} is not an lmms-eval output name (<date>_<time>_"
                               "results.json or <date>_<time>_samples_<task>.jsonl, no folders)")  # fmt: skip
        if "\x00" in str(text):
            store.fail_job(job_id, claim, f"upload refused: {filename} holds a NUL character")
            raise RequestError(f"finish: {filename} holds a NUL character; lmms-eval writes UTF-8 text")
    checkpoint = job["adapter"] or job["base_model"]
    if job["adapter"] and not Path(job["adapter"]).is_dir() and not upload.get("provenance"):
        store.fail_job(job_id, claim, f"verification failed: hub adapter {job['adapter']}: no provenance sent")
        raise RequestError(f"verification failed: hub adapter {job['adapter']}: the worker sent no provenance")
    with tempfile.TemporaryDirectory(dir=config.work_dir, prefix=f"job-{job_id}-") as tmp:
        for filename, text in files.items():
            (Path(tmp) / filename).write_text(str(text), encoding="utf-8")
        try:
            provenance, rows, predictions, run_config = evaluate_logs(
                checkpoint, Path(tmp), config.data_dir, provenance=upload.get("provenance")
            )
            evaluated_revision = model_args(run_config.get("model_args", "")).get("adapter_revision") or None
            if evaluated_revision != job["revision"]:
                raise SubmissionError(f"the run evaluated adapter_revision={evaluated_revision!r}, the request "
                                      f"pinned {job['revision']!r}")  # fmt: skip
            if job["adapter"] is None and provenance.get("strategy") != "no_ft":
                raise SubmissionError("a base model alone must evaluate as No-FT")
        except M2VError as exc:
            store.fail_job(job_id, claim, f"verification failed: {exc}")
            raise RequestError(f"verification failed: {exc}") from None
    submission = Submission(
        name=job["name"], family=provenance["family"], strategy=provenance["strategy"],
        target=provenance.get("target"), meme_source=provenance.get("meme_source"),
        base_model=str(job["base_model"]), video_fraction=provenance.get("video_fraction"),
        provenance={**provenance, "adapter": job["adapter"], "revision": job["revision"]}, status="verified",
        environment=upload.get("environment") or {}, worker=worker,
    )  # fmt: skip
    try:
        return store.finish_job(job_id, claim, lambda: store.put(submission, rows, predictions))
    except NameTaken as exc:  # e.g. a submission stored under this name by hand since (with --replace)
        store.fail_job(job_id, claim, f"not stored: {exc}")
        raise RequestError(f"not stored: {exc}") from None


_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"<>|,;()\[\]{}]+")
_HEX = "[0-9A-Fa-f]{1,4}"
_IP_ADDRESS = re.compile(
    rf"\b\d{{1,3}}(?:\.\d{{1,3}}){{3}}\b"  # IPv4
    rf"|\b(?:{_HEX}:){{7}}{_HEX}\b|\b{_HEX}(?::{_HEX})*::(?:{_HEX}(?::{_HEX})*)?\b|(?<![\w:])::1\b"  # IPv6 (no times)
)


def public_text(text: str | None) -> str | None:
    """Text for a public endpoint: every absolute path shortened to its last part (``.../test.jsonl``), every IP
    address replaced. Logs, clients and workers are for admins (``GET /api/admin/jobs/{id}``)."""
    if text is None:
        return None
    text = _ABSOLUTE_PATH.sub(lambda m: ".../" + (m.group(0).rstrip("/").rsplit("/", 1)[-1] or ""), str(text))
    return _IP_ADDRESS.sub("<address>", text)


def public_reference(reference: str | None) -> str | None:
    """A model reference as the public sees it: a hub id as it is, a local folder by its name only."""
    if reference is None or is_hub_id(reference):
        return reference
    return checkpoint_label(reference)


PUBLIC_JOB_FIELDS = ("id", "name", "base_model", "adapter", "revision", "state", "attempts", "error", "created_at",
                     "updated_at")  # fmt: skip
"""What anyone may read of a job: no client address, worker, claim, log or server path."""


def public_job(job: dict) -> dict:
    shown = {k: job[k] for k in PUBLIC_JOB_FIELDS}
    return shown | {"base_model": public_reference(job["base_model"]), "adapter": public_reference(job["adapter"]),
                    "error": public_text(job["error"])}  # fmt: skip


def public_value(value):
    """A submission's provenance or environment, recursively, with :func:`public_text` on every string."""
    if isinstance(value, dict):
        return {k: public_value(v) for k, v in value.items() if k != "worker"}  # the worker's id names its host
    if isinstance(value, list):
        return [public_value(v) for v in value]
    return public_text(value) if isinstance(value, str) else value


class RateLimiter:
    """At most ``limit`` events per client in a sliding window (in memory: one server process)."""

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = limit, window_s
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.setdefault(client, deque())
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True
