"""The leaderboard service without its web framework: evaluation requests, the queue's worker protocol, verifying a
worker's upload, and the per-client rate limit. ``server.py`` puts HTTP around it, ``worker.py`` is its client.

The server process is the only writer of the database: workers never open it, they claim jobs and send their
lmms-eval output over the API. A worker's upload is verified here, on the server's own prepared data, exactly as a
self-reported submission is (ids, gold labels, test-set hash, re-parsed answers, results.json versions and
model_args), and stored as **verified** with the worker's environment, in the transaction that marks the job
FINISHED, only while the worker's claim is still held: a job is stored once even if a worker presumed dead reports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
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
from m2v_bench.leaderboard.submit import (
    SubmissionError,
    check_name,
    check_predictions,
    evaluate_logs,
    find_logs,
    is_utf8,
    model_args,
    read_samples,
)
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
    audit: bool = False
    """Audit mode: each worker run waits (status ``auditing``) for a second worker's re-run of a random sample of
    its documents (:func:`audit_sample`), and is verified only if the two agree (:func:`agreement`)."""


MODEL_FILES = {"base model": "config.json", "adapter": "adapter_config.json"}
"""The file a local folder of each kind of model reference must hold."""


def check_model_ref(value: str | None, allowed: list[Path], what: str) -> str | None:
    """A hub id (``org/name``) as it is, or a local model folder resolved, which must lie below an allowed folder
    and hold its kind's file (:data:`MODEL_FILES`: a base model's ``config.json``, an adapter's
    ``adapter_config.json``). The refusal names no server path: it is shown to anyone."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if is_hub_id(value):  # always the hub's: a local folder of that relative name is never what it names
        return value
    marker = MODEL_FILES[what]
    path = Path(value)  # never expanduser: "~name" would tell anyone which accounts the server has
    candidates = [path] if path.is_absolute() else [root / path for root in allowed]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            found = (resolved / marker).is_file()
        except (OSError, RuntimeError, ValueError):  # a name too long for the file system, a symlink loop
            continue
        if found and any(resolved.is_relative_to(root.resolve()) for root in allowed):
            return str(resolved)
    raise RequestError(f"{what} {value!r}: not a hub id (org/name) nor a {what} folder (with {marker}) inside the "
                       f"leaderboard's model folders ({len(allowed)} configured; their admin knows them)")  # fmt: skip


@dataclass(frozen=True)
class Request:
    """An evaluation request checked against everything but the database (:func:`check_request`)."""

    name: str
    base_model: str
    adapter: str | None
    revision: str | None


MAX_HUB_CONFIG = 1024 * 1024
"""The largest hub ``config.json`` a request may make the server download (a real one is a few KiB)."""


def check_request(config: Config, name: str, base_model: str, adapter: str | None, revision: str | None) -> Request:
    """Check a request's fields without the database, the cheap checks first: the last may ask the hub for a base
    model's config.json, so the server calls this outside its database lock, a few at a time."""
    name = check_name(str(name or "").strip())
    base = check_model_ref(base_model, config.model_dirs, "base model")
    if base is None:
        raise RequestError("base model: required (a hub id or a folder inside the leaderboard's model folders)")
    adapter = check_model_ref(adapter, config.model_dirs, "adapter")
    revision = (revision or "").strip() or None
    if revision is not None and not is_git_ref(revision):
        raise RequestError(f"revision {revision!r}: not a git branch, tag or commit name (no '..', no part starting "
                           "with '.' or '-', no HEAD, no spaces or ~^:?*[\\)")  # fmt: skip
    if revision is not None and (adapter is None or not is_hub_id(adapter)):
        raise RequestError("revision: pins a hub adapter (org/name); a local adapter folder is evaluated as it is")
    if is_hub_id(base):
        _check_hub_config_size(base)
    try:
        checkpoint_family(base)  # an unsupported family is refused now, not by the worker's run
    except M2VError as exc:
        raise RequestError(f"base model: {exc}".replace(base, base_model)) from None  # as the client gave it
    return Request(name, base, adapter, revision)


def _check_hub_config_size(repo: str) -> None:
    """Refuse a hub model whose config.json is over :data:`MAX_HUB_CONFIG` before downloading it (offline, or the
    hub unreachable: nothing to check, and ``checkpoint_family`` reads only the cache)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url  # imported here for start-up time

    if constants.HF_HUB_OFFLINE:
        return
    try:
        size = get_hf_file_metadata(hf_hub_url(repo, "config.json"), timeout=10).size
    except Exception:  # noqa: BLE001 (not found, gated, no network: checkpoint_family says None, the worker why)
        return
    if size is not None and size > MAX_HUB_CONFIG:
        raise RequestError(f"base model {repo!r}: its config.json is {size} bytes (a model's is a few KiB); refused")


def make_request(store: Store, request: Request, client: str) -> int:
    """Queue a checked request (PENDING); returns its job id. The name must be free (a queued, running or finished
    request holds it too)."""
    name = request.name
    if store.name_in_use(name):
        raise RequestError(f"name {name!r} is taken; choose another name")
    return store.add_job(name, request.base_model, request.adapter, request.revision, client)


def verify_upload(
    store: Store, config: Config, job_id: int, claim: str, upload: dict, worker: str = ADMIN, lock=None
) -> bool:
    """Verify a worker's lmms-eval output and store it as verified (by ``worker``, the registered worker that sent
    it), finishing the job. False: the claim is stale (the job was re-queued, or is done). A verification error
    fails the job and raises :class:`RequestError`. ``lock``: held around each use of ``store`` only (the server's
    database lock), not around the verification, which may read the hub."""
    lock = lock or contextlib.nullcontext()

    def refuse(log: str, message: str):
        with lock:
            store.fail_job(job_id, claim, log, by=worker)
        raise RequestError(message) from None

    with lock:
        job = store.job(job_id)
    if job is None:
        raise RequestError(f"no job {job_id}")
    files = upload.get("files") or {}
    if not isinstance(files, dict) or not files:
        raise RequestError("finish: no files (the run's *_results.json and *_samples_<task>.jsonl)")
    if sum(len(str(t)) for t in files.values()) > MAX_UPLOAD:
        raise RequestError(f"finish: upload over {MAX_UPLOAD} bytes")
    if len(files) > MAX_FILES:
        refuse(f"upload refused: {len(files)} files", f"finish: {len(files)} files; a run writes one results.json "
               f"and one samples log per task (at most {MAX_FILES})")  # fmt: skip
    for filename, text in files.items():
        if not SAFE_FILE_NAME.fullmatch(filename) or not (RUN.fullmatch(filename) or RESULTS.fullmatch(filename)):
            refuse(f"upload refused: file name {filename!r} is not an lmms-eval output name",
                   f"finish: file name {filename!r} is not an lmms-eval output name (<date>_<time>_results.json or "
                   "<date>_<time>_samples_<task>.jsonl, no folders)")  # fmt: skip
        if "\x00" in str(text) or not is_utf8(str(text)):
            refuse(f"upload refused: {filename} holds a NUL character or a lone surrogate",
                   f"finish: {filename} holds a NUL character or a lone surrogate (\\ud800-\\udfff); lmms-eval "
                   "writes UTF-8 text")  # fmt: skip
    for what in ("environment", "provenance"):
        problem = _sent_json_problem(upload.get(what))
        if problem:
            refuse(f"upload refused: {what} {problem}", f"finish: {what} {problem}")
    if job["audit_of"]:
        return _finish_audit(store, config, job, claim, files, worker, lock)
    checkpoint = job["adapter"] or job["base_model"]
    if job["adapter"] and is_hub_id(job["adapter"]) and not upload.get("provenance"):
        refuse(f"verification failed: hub adapter {job['adapter']}: no provenance sent",
               f"verification failed: hub adapter {job['adapter']}: the worker sent no provenance")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=config.work_dir, prefix=f"job-{job_id}-") as tmp:
        for filename, text in files.items():
            (Path(tmp) / filename).write_text(str(text), encoding="utf-8")
        try:
            provenance, rows, predictions, run_config = evaluate_logs(
                checkpoint, Path(tmp), config.data_dir, provenance=upload.get("provenance"), local_first=False
            )
            evaluated_revision = model_args(run_config.get("model_args", "")).get("adapter_revision") or None
            if evaluated_revision != job["revision"]:
                raise SubmissionError(f"the run evaluated adapter_revision={evaluated_revision!r}, the request "
                                      f"pinned {job['revision']!r}")  # fmt: skip
            if job["adapter"] is None and provenance.get("strategy") != "no_ft":
                raise SubmissionError("a base model alone must evaluate as No-FT")
        except M2VError as exc:
            refuse(f"verification failed: {exc}", f"verification failed: {exc}")
    submission = Submission(
        name=job["name"], family=provenance["family"], strategy=provenance["strategy"],
        target=provenance.get("target"), meme_source=provenance.get("meme_source"),
        base_model=str(job["base_model"]), video_fraction=provenance.get("video_fraction"),
        provenance={**provenance, "adapter": job["adapter"], "revision": job["revision"]},
        status="auditing" if config.audit else "verified", environment=upload.get("environment") or {},
        worker=worker, note=f"waiting for a second worker's audit (not {worker})" if config.audit else None,
    )  # fmt: skip

    def store_results():
        version = store.put(submission, rows, predictions)
        if config.audit:  # drawn now, after the upload is stored: the worker could not know which will be re-run
            store.add_audit(job, audit_sample(predictions), exclude=[worker], version=version)

    try:
        with lock:
            return store.finish_job(job_id, claim, store_results)
    except NameTaken as exc:  # e.g. a submission stored under this name by hand since (with --replace)
        refuse(f"not stored: {exc}", f"not stored: {exc}")


MAX_FILES = 64
"""The most files one upload may hold (a run writes a results.json and a samples log per task)."""
MAX_SENT_JSON = 64 * 1024
"""The most JSON a worker's ``environment`` or ``provenance`` may be (each is shown on every public read)."""


def _sent_json_problem(value) -> str | None:
    """Why a worker's environment or provenance cannot be stored and shown: not finite JSON, not UTF-8 (a lone
    surrogate), too big, or a ``worker`` that is not a string. None when it can."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return "must be a JSON object"
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    except ValueError:
        return "holds NaN or infinity, or a lone surrogate (\\ud800-\\udfff)"
    if size > MAX_SENT_JSON:
        return f"is {size} bytes of JSON, over {MAX_SENT_JSON}"
    if not isinstance(value.get("worker", ""), str):
        return "worker must be a string"
    return None


AUDIT_FRACTION = 0.1
AUDIT_MIN = 20
"""An audit re-runs max(AUDIT_MIN, AUDIT_FRACTION of the test set) documents of each task (all when fewer)."""
AGREEMENT = 0.9
"""The least share of audited documents on which the two runs must agree, per task."""
SCORE_TOLERANCE = 0.1
"""Score tasks: two runs agree on a document when their log-likelihood margins differ by at most this (nats)."""


def audit_sample(predictions: dict[str, list[dict]], rng: random.Random | None = None) -> dict[str, list[str]]:
    """The documents an audit re-runs: per task, a random max(AUDIT_MIN, 10%) of them, in test order. Drawn from
    the operating system's randomness unless ``rng`` is given (tests), so no worker can predict it."""
    rng = rng or random.SystemRandom()
    sample = {}
    for task, items in sorted(predictions.items()):
        ids = [str(i["id"]) for i in items]
        chosen = set(rng.sample(ids, min(len(ids), max(AUDIT_MIN, math.ceil(AUDIT_FRACTION * len(ids))))))
        sample[task] = [i for i in ids if i in chosen]
    return sample


def agreement(task: str, original: dict[str, dict], audit: dict[str, dict]) -> float:
    """The share of documents on which two runs agree: the same parsed greedy answer (generate tasks), log-likelihood
    margins within :data:`SCORE_TOLERANCE` (score tasks)."""
    if task.endswith("_score"):  # a sample without a score (its media failed) agrees only with one without
        same = [i in original and _same_score(original[i].get("score"), audit[i].get("score")) for i in audit]
    else:
        same = [i in original and original[i]["pred"] == audit[i]["pred"] for i in audit]
    return sum(same) / len(same)


def _same_score(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= SCORE_TOLERANCE


def _finish_audit(store: Store, config: Config, job: dict, claim: str, files: dict, worker: str, lock) -> bool:
    """An audit's upload: its per-sample records (checked as any upload's are) against the audited run's stored ones.
    Agreement verifies the row; disagreement marks it ``disputed`` and flags both workers."""
    with lock:
        original_job = store.job(int(job["audit_of"]))
        stored = {task: store.prediction_rows(job["name"], task) for task in json.loads(job["sample"])}
    sample = json.loads(job["sample"])
    ran_by = original_job["identity"] if original_job else None
    try:
        with tempfile.TemporaryDirectory(dir=config.work_dir, prefix=f"audit-{job['id']}-") as tmp:
            for filename, text in files.items():
                (Path(tmp) / filename).write_text(str(text), encoding="utf-8")
            _, logs = find_logs(Path(tmp))
            if sorted(logs) != sorted(sample):
                raise SubmissionError(f"the audit ran tasks {sorted(logs)}, asked for {sorted(sample)}")
            shares = {}
            for task, path in sorted(logs.items()):
                items = read_samples(path)
                check_predictions(task, items, path)
                audited = {i["id"]: i for i in items}
                if sorted(audited) != sorted(sample[task]):
                    raise SubmissionError(f"{task}: the audit ran {len(audited)} documents, not the "
                                          f"{len(sample[task])} asked for")  # fmt: skip
                shares[task] = agreement(task, stored[task], audited)
    except M2VError as exc:
        with lock:
            store.fail_job(job["id"], claim, f"audit refused: {exc}", by=worker)
        raise RequestError(f"audit refused: {exc}") from None
    summary = ", ".join(f"{task} {share:.0%}" for task, share in shares.items())
    agreed = all(share >= AGREEMENT for share in shares.values())
    expect = ("auditing", job["audit_version"])

    def settle():  # only the row it audited, still waiting: not one revoked or replaced since
        if agreed:
            changed = store.set_status(job["name"], "verified", f"audited by {worker}: agreement {summary}", expect)
        else:
            note = f"disputed: {worker}'s audit agreed on {summary} of the documents (at least {AGREEMENT:.0%} needed)"
            changed = store.set_status(job["name"], "disputed", f"run by {ran_by}; {note}", expect)
            if changed:
                for name in {ran_by, worker} - {None}:
                    store.flag_worker(name, f"{job['name']}: {note}")
        if not changed:
            store.log_job(job["id"], f"the audited row changed since (revoked or replaced): agreement {summary}, "
                                     "its status left as it is")  # fmt: skip

    with lock:
        return store.finish_job(job["id"], claim, settle)


_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s'\"<>]*)")
_PUBLIC_HOSTS = ("huggingface.co", "hf.co", "github.com")
"""Hosts a public message may name; any other URL's host is replaced (it may be the server's or a worker's)."""
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.~-])/[^\s'\"<>|,;()\[\]{}]+")
_URL_OR_PATH = re.compile(f"{_URL.pattern}|{_ABSOLUTE_PATH.pattern}")
_HEX = "[0-9A-Fa-f]{1,4}"
_IP_ADDRESS = re.compile(
    rf"\b\d{{1,3}}(?:\.\d{{1,3}}){{3}}\b"  # IPv4
    rf"|\b(?:{_HEX}:){{7}}{_HEX}\b|\b{_HEX}(?::{_HEX})*::(?:{_HEX}(?::{_HEX})*)?\b|(?<![\w:])::1\b"  # IPv6 (no times)
)


def _last_part(path: str) -> str:
    return ".../" + (path.rstrip("/").rsplit("/", 1)[-1] or "")


def _public_url(match: re.Match) -> str:
    scheme, rest = match.group(1), match.group(2)
    if scheme.lower() == "file":
        return _last_part(rest)
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return match.group(0) if host in _PUBLIC_HOSTS else f"{scheme}://<host>/..."


def public_text(text: str | None, hide: tuple[str, ...] = ()) -> str | None:
    """Text for a public endpoint: a ``file://`` URL or an absolute path shortened to its last part
    (``.../test.jsonl``), any URL but the hub's and GitHub's cut to ``scheme://<host>/...``, every IP address and
    each word of ``hide`` (e.g. a worker's host name) replaced. Logs, clients and workers are for admins
    (``GET /api/admin/jobs/{id}``)."""
    if text is None:
        return None
    text = _URL_OR_PATH.sub(lambda m: _public_url(m) if m.group(1) else _last_part(m.group(0)), str(text))
    for word in sorted(filter(None, hide), key=len, reverse=True):
        text = text.replace(word, "<host>")
    return _IP_ADDRESS.sub("<address>", text)


def public_reference(reference: str | None) -> str | None:
    """A model reference as the public sees it: a hub id as it is, a local folder by its name only."""
    if reference is None or is_hub_id(reference):
        return reference
    return checkpoint_label(reference)


PUBLIC_JOB_FIELDS = ("id", "name", "base_model", "adapter", "revision", "state", "attempts", "error", "created_at",
                     "updated_at")  # fmt: skip
"""What anyone may read of a job: no client address, worker, claim, log or server path."""


def worker_host(worker: str | None) -> tuple[str, ...]:
    """What a worker's self-description (``<host>-<pid>-<random>``, ``WorkerConfig.worker_id``) gives away: itself
    and its host name, for :func:`public_text` to hide."""
    if not worker or not isinstance(worker, str):
        return ()
    parts = worker.rsplit("-", 2)
    return (worker, parts[0]) if len(parts) == 3 and parts[1].isdigit() and len(parts[0]) > 2 else (worker,)


def public_job(job: dict) -> dict:
    shown = {k: job[k] for k in PUBLIC_JOB_FIELDS}
    return shown | {"base_model": public_reference(job["base_model"]), "adapter": public_reference(job["adapter"]),
                    "error": public_text(job["error"], worker_host(job.get("worker")))}  # fmt: skip


def public_value(value, hide: tuple[str, ...] = ()):
    """A submission's provenance or environment, recursively, with :func:`public_text` on every string."""
    if isinstance(value, dict):
        return {k: public_value(v, hide) for k, v in value.items()}
    if isinstance(value, list):
        return [public_value(v, hide) for v in value]
    return public_text(value, hide) if isinstance(value, str) else value


def public_submission(submission: Submission) -> dict:
    """A stored submission as anyone may read it: every text through :func:`public_text`, the environment without
    the worker's self-description (it names its host)."""
    environment = dict(submission.environment or {})
    hide = worker_host(environment.pop("worker", None))
    return {"name": submission.name, "status": submission.status, "version": submission.version,
            "family": submission.family, "strategy": submission.strategy, "target": submission.target,
            "meme_source": submission.meme_source, "base_model": public_reference(submission.base_model),
            "provenance": public_value(submission.provenance, hide),
            "environment": public_value(environment, hide) if submission.environment is not None else None,
            "worker": submission.worker, "note": public_text(submission.note, hide)}  # fmt: skip


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
