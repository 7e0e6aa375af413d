"""``m2v-bench leaderboard worker``: claim evaluation requests from a leaderboard server, run lmms-eval on them
(the ``m2v`` model, the official tasks, the leaderboard's own prepared data), and send the output back for
verification. A worker may run on another machine than the server (it needs the models the requests name, the
leaderboard's prepared data, and the token); it never opens the database.

While lmms-eval runs, a heartbeat extends the job's lease and forwards the log's new lines. A worker that dies
stops the heartbeat: after the lease the server re-queues the job for another worker. A worker that loses its
lease (the heartbeat is refused) stops its run.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from m2v_bench import __version__
from m2v_bench.errors import M2VError
from m2v_bench.labels import PARSER_VERSION, PROMPT_VERSION
from m2v_bench.leaderboard import OFFICIAL_TASKS
from m2v_bench.leaderboard.runs import newest_run
from m2v_bench.leaderboard.submit import current_task_version
from m2v_bench.models.provenance import fetch_provenance
from m2v_bench.registry import parse_task
from m2v_bench.settings import DATA_DIR_ENV

logger = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    server: str
    token: str
    data_dir: Path
    """The leaderboard's prepared data (the same test sets as the server's)."""
    work_dir: Path
    tasks: tuple[str, ...] = OFFICIAL_TASKS
    device: str | None = None
    """None: cuda when available, else cpu (recorded with the results)."""
    dtype: str = "auto"
    batch_size: int = 1
    frames: int | None = None
    """Frames per video (None: the m2v model's default)."""
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    poll_s: float = 5.0
    timeout_s: float = 60.0


FINISH_TIMEOUT_S = 900.0
"""A ``finish`` may queue behind other workers' uploads and is verified before the answer comes."""


def environment(config: WorkerConfig, device: str) -> dict:
    """The software and hardware a verified result was made with."""

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    accelerator = None
    if device.startswith("cuda"):
        import torch  # imported here for start-up time

        accelerator = torch.cuda.get_device_name(0)
    return {"m2v_bench": __version__, "lmms_eval": version("lmms_eval"), "transformers": version("transformers"),
            "torch": version("torch"), "tasks": {t: current_task_version(t) for t in config.tasks},
            "prompt_version": PROMPT_VERSION, "parser_version": PARSER_VERSION, "device": device,
            "accelerator": accelerator, "dtype": config.dtype, "batch_size": config.batch_size,
            "frames": config.frames, "python": platform.python_version(), "worker": config.worker_id}  # fmt: skip


def _device(config: WorkerConfig) -> str:
    if config.device:
        return config.device
    import torch  # imported here for start-up time

    return "cuda" if torch.cuda.is_available() else "cpu"


def audit_data(data_dir: Path, sample: dict[str, list[str]], out: Path) -> Path:
    """The data folder an audit runs on: each sampled dataset's test manifest cut to the sampled documents (media
    paths made absolute), its other files as they are."""
    from m2v_bench.manifest import read_manifest, with_absolute_media, write_manifest  # imported here: start-up

    wanted: dict[str, set[str]] = {}
    for task, ids in sample.items():
        parsed = parse_task(task)
        if parsed is None:
            raise M2VError(f"audit: {task!r} is not an m2v task")
        wanted.setdefault(parsed[0], set()).update(ids)
    for dataset, ids in wanted.items():
        manifest = data_dir / dataset / "test.jsonl"
        records = with_absolute_media(read_manifest(manifest), manifest.parent)
        (out / dataset).mkdir(parents=True, exist_ok=True)
        for other in manifest.parent.glob("*.json"):
            shutil.copyfile(other, out / dataset / other.name)
        write_manifest(out / dataset / "test.jsonl", [r for r in records if r.id in ids])
    return out


def lmms_eval_command(config: WorkerConfig, job: dict, out: Path, device: str) -> list[str]:
    args = [f"pretrained={job['base_model']}", f"dtype={config.dtype}"]
    if job.get("adapter"):
        args.append(f"adapter={job['adapter']}")
    if job.get("revision"):
        args.append(f"adapter_revision={job['revision']}")
    if config.frames:
        args.append(f"frames={config.frames}")
    binary = Path(sys.executable).with_name("lmms-eval")
    tasks = sorted(job["sample"]) if job.get("sample") else config.tasks  # an audit: the tasks it samples
    return [str(binary) if binary.exists() else "lmms-eval", "--model", "m2v", "--model_args", ",".join(args),
            "--tasks", ",".join(tasks), "--device", device, "--batch_size", str(config.batch_size),
            "--output_path", str(out), "--log_samples"]  # fmt: skip


_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)|m2v: error): (.+)$")


def first_error(log: str) -> str | None:
    """The line that says why a run failed, from its log: our own error (``M2VError: ...``, the file, sample and
    fix) when there is one, else the first exception line of the log."""
    found = []
    for line in log.splitlines():
        match = _ERROR_LINE.match(line.strip())
        if match:
            found.append(match.groups())
    for kind, message in found:
        if kind.startswith(("m2v", "M2V")) or "M2VError" in message:
            return message.strip()
    return f"{found[0][0]}: {found[0][1].strip()}" if found else None


def collect_run(out: Path) -> dict[str, str]:
    """The newest run's results.json and per-sample logs, {file name: text}."""
    return {p.name: p.read_text(encoding="utf-8") for p in newest_run(out).files()}


class Worker:
    def __init__(self, config: WorkerConfig):
        import httpx  # imported here for start-up time

        self.config = config
        self.http = httpx.Client(base_url=config.server.rstrip("/"), timeout=config.timeout_s,
                                 headers={"Authorization": f"Bearer {config.token}"})  # fmt: skip

    def claim(self) -> dict | None:
        response = self.http.post("/api/jobs/claim", json={"worker": self.config.worker_id})
        if response.status_code == 401:
            raise M2VError(f"{self.config.server}: the worker token was refused (401)")
        response.raise_for_status()
        return None if response.status_code == 204 else response.json()

    def run_once(self) -> dict | None:
        """Claim one job and run it to the end; returns the job (None when the queue is empty)."""
        job = self.claim()
        if job is None:
            return None
        logger.info("job %s (%s): claimed", job["id"], job["name"])
        out = (self.config.work_dir / f"job-{job['id']}-{job['claim'][:8]}").resolve()
        # lmms-eval runs in an empty folder of its own: a hub id (org/name) can never name a local folder there
        cwd = out / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = out / "lmms-eval.log"
        device = _device(self.config)
        data = self.config.data_dir.resolve()
        if job.get("sample"):  # an audit of another worker's run: only the sampled documents
            data = audit_data(data, job["sample"], out / "data")
        env = {**os.environ, DATA_DIR_ENV: str(data)}
        lost = threading.Event()
        with log_path.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(lmms_eval_command(self.config, job, out, device), stdout=log,
                                       stderr=subprocess.STDOUT, env=env, cwd=cwd)  # fmt: skip
            ended = threading.Event()
            beat = threading.Thread(target=self._heartbeat, args=(job, process, log_path, lost, ended), daemon=True)
            beat.start()
            code = process.wait()
            ended.set()  # wakes the heartbeat now, not at its next beat (a third of the lease: minutes)
            beat.join(timeout=self.config.timeout_s)
        if lost.is_set():
            logger.warning("job %s: lease lost; the run was stopped and nothing is sent", job["id"])
            return job
        try:
            if code != 0:
                raise M2VError(f"lmms-eval exited with {code}")
            files = collect_run(out)
        except M2VError as exc:  # the run's own first error line first: "wrote no output" alone says nothing
            log = log_path.read_text(encoding="utf-8", errors="replace")
            cause = first_error(log)
            error = f"{cause} ({exc})" if cause else f"{exc}; log tail: {log[-2000:]}"
            self.http.post(f"/api/jobs/{job['id']}/fail", json={"claim": job["claim"], "error": error[-9000:]})
            return job
        try:  # in the folder lmms-eval ran in: a hub id there is the hub's, as it was for the run
            provenance = fetch_provenance(job.get("adapter"), job.get("revision"), cwd=cwd)
        except Exception as exc:  # a hub adapter without m2v_provenance.json, or no hub: the job fails with why
            self.http.post(f"/api/jobs/{job['id']}/fail", json={"claim": job["claim"], "error": f"provenance: {exc}"})
            return job
        done = threading.Event()  # the lease is kept while the upload waits and is verified
        keep = threading.Thread(target=self._keep_lease, args=(job, done), daemon=True)
        keep.start()
        try:
            response = self.http.post(f"/api/jobs/{job['id']}/finish", json={
                "claim": job["claim"], "files": files, "provenance": provenance,
                "environment": environment(self.config, device)}, timeout=FINISH_TIMEOUT_S)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 (network): the lease runs out, the job goes to another worker
            logger.warning(
                "job %s: finish not delivered (%s); the server re-queues it after its lease", job["id"], exc
            )
            return job
        finally:
            done.set()
        logger.info("job %s: %s %s", job["id"], response.status_code, response.text[:500])
        return job

    def _keep_lease(self, job: dict, done: threading.Event) -> None:
        while not done.wait(max(0.5, float(job.get("lease_s", 60)) / 3)):
            try:
                self.http.post(f"/api/jobs/{job['id']}/heartbeat", json={"claim": job["claim"], "log": ""})
            except Exception as exc:  # noqa: BLE001 (a network hiccup: the next beat may pass)
                logger.warning("job %s: heartbeat during finish failed: %s", job["id"], exc)

    def _heartbeat(
        self, job: dict, process: subprocess.Popen, log_path: Path, lost: threading.Event, ended: threading.Event
    ) -> None:
        sent = 0
        interval = max(0.5, float(job.get("lease_s", 60)) / 3)
        while process.poll() is None:
            if ended.wait(interval):
                return
            text = log_path.read_text(encoding="utf-8", errors="replace")
            try:
                response = self.http.post(f"/api/jobs/{job['id']}/heartbeat",
                                          json={"claim": job["claim"], "log": text[sent:][-20000:]})  # fmt: skip
            except Exception as exc:  # a network hiccup: the lease covers a few missed beats
                logger.warning("job %s: heartbeat failed: %s", job["id"], exc)
                continue
            sent = len(text)
            if response.status_code == 409:
                lost.set()
                process.terminate()
                return

    def run(self, once: bool = False) -> int:
        """Work until interrupted (``once``: until the queue is empty); returns the number of jobs run."""
        done = 0
        while True:
            job = self.run_once()
            if job is None:
                if once:
                    return done
                time.sleep(self.config.poll_s)
            else:
                done += 1
