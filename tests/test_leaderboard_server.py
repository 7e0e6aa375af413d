"""The leaderboard service: the queue and its leases, the API's access control, the request paths, the rate
limit; with real workers and lmms-eval: a worker SIGKILLed mid-job, and the whole path in headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest
from conftest import one_row

from m2v_bench.leaderboard.server import create_app
from m2v_bench.leaderboard.service import Config, RateLimiter, RequestError, check_model_ref
from m2v_bench.leaderboard.store import Store, Submission

TOKEN = "s3cret-token"


def _config(tmp_path: Path, **changes) -> Config:
    models = tmp_path / "models"
    (models / "base").mkdir(parents=True, exist_ok=True)
    (models / "base" / "config.json").write_text(json.dumps({"model_type": "llava_next_video"}))
    return Config(db=tmp_path / "lb.sqlite", data_dir=tmp_path / "data", model_dirs=[models], token=TOKEN,
                  **changes)  # fmt: skip


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(_config(tmp_path), ui=False)) as client:
        yield client


WORKER_CALLS = [("/api/jobs/claim", {"worker": "w"}), ("/api/jobs/1/heartbeat", {"claim": "x"}),
                ("/api/jobs/1/finish", {"claim": "x", "files": {}}), ("/api/jobs/1/fail", {"error": "x"})]  # fmt: skip


def test_worker_and_admin_endpoints_need_the_token(client):
    for path, body in WORKER_CALLS:
        assert client.post(path, json=body).status_code == 401, path
        wrong = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer", path
    assert client.get("/api/jobs").status_code == 200 and client.get("/api/tables/substitution").status_code == 200
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/api/jobs/claim", json={"worker": "w"}, headers=auth).status_code == 204  # empty queue


def test_a_request_is_queued_and_claimed_with_a_lease(client, tmp_path):
    base = str(tmp_path / "models" / "base")
    response = client.post("/api/requests", json={"name": "mine", "base_model": base})
    assert response.status_code == 201 and response.json()["state"] == "PENDING"
    (job,) = client.get("/api/jobs").json()
    assert (job["name"], job["state"], job["base_model"], job["adapter"]) == ("mine", "PENDING", "base (local)", None)
    assert "log" not in job and "claim" not in job  # logs are for admins; the claim id is the worker's secret
    auth = {"Authorization": f"Bearer {TOKEN}"}
    full = client.get(f"/api/admin/jobs/{job['id']}", headers=auth).json()
    assert full["base_model"] == base and "requested by" in full["log"] and "claim" not in full
    assert client.get(f"/api/admin/jobs/{job['id']}").status_code == 401
    taken = client.post("/api/requests", json={"name": "mine", "base_model": base})
    assert taken.status_code == 422 and "taken" in taken.json()["detail"]
    local_adapter = tmp_path / "models" / "adapter"
    local_adapter.mkdir()
    (local_adapter / "adapter_config.json").write_text("{}")
    unpinnable = client.post(
        "/api/requests", json={"name": "p", "base_model": base, "adapter": str(local_adapter), "revision": "v2"}
    )
    assert unpinnable.status_code == 422 and "revision" in unpinnable.json()["detail"]
    pinned = client.post("/api/requests", json={"name": "p", "base_model": base, "adapter": "org/a", "revision": "v2"})
    assert pinned.status_code == 201 and pinned.json()["state"] == "PENDING"
    jobs = [(j["name"], j["adapter"], j["revision"]) for j in client.get("/api/jobs").json()]
    assert jobs == [("p", "org/a", "v2"), ("mine", None, None)]  # newest first
    claimed = client.post("/api/jobs/claim", json={"worker": "w1"}, headers=auth).json()
    assert claimed["name"] == "mine" and len(claimed["claim"]) == 32
    assert client.get(f"/api/jobs/{claimed['id']}").json()["state"] == "RUNNING"
    beat = client.post(f"/api/jobs/{claimed['id']}/heartbeat", json={"claim": claimed["claim"], "log": "step 1\n"},
                       headers=auth)  # fmt: skip
    assert beat.status_code == 200
    assert "step 1" in client.get(f"/api/admin/jobs/{claimed['id']}", headers=auth).json()["log"]
    stale = client.post(f"/api/jobs/{claimed['id']}/heartbeat", json={"claim": "0" * 32}, headers=auth)
    assert stale.status_code == 409
    failed = client.post(f"/api/jobs/{claimed['id']}/fail", json={"claim": claimed["claim"], "error": "OOM"},
                         headers=auth)  # fmt: skip
    assert failed.status_code == 200 and client.get(f"/api/jobs/{claimed['id']}").json()["state"] == "FAILED"


@pytest.mark.parametrize("name", ["../x", "a/b", ""])
def test_a_request_name_cannot_be_a_path(client, tmp_path, name):
    response = client.post("/api/requests", json={"name": name, "base_model": str(tmp_path / "models" / "base")})
    assert response.status_code == 422 and client.get("/api/jobs").json() == []


def test_requested_paths_never_escape_the_model_folders(tmp_path):
    config = _config(tmp_path)
    outside = tmp_path / "secret"
    outside.mkdir()
    (tmp_path / "models" / "link").symlink_to(outside)
    allowed = config.model_dirs
    (outside / "config.json").write_text("{}")  # a model folder, but outside
    base = str(tmp_path / "models" / "base")
    assert check_model_ref(base, allowed, "base model") == base
    assert check_model_ref("base", allowed, "base model") == base  # relative to the folder
    assert check_model_ref("org/model-7B", allowed, "base model") == "org/model-7B"  # a hub id
    for escape in (str(outside), "../secret", "link", "base/../../secret", "/etc", "~/x", "models/../../x"):
        with pytest.raises(RequestError, match="not a hub id"):
            check_model_ref(escape, allowed, "base model")


def test_requests_are_rate_limited_per_client(tmp_path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(_config(tmp_path, rate_limit=2), ui=False)) as client:
        codes = [client.post("/api/requests", json={"name": f"r{i}", "base_model": "org/m"}).status_code
                 for i in range(3)]  # fmt: skip
    assert codes == [201, 201, 429]
    limiter = RateLimiter(2, 60)
    assert [limiter.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", 2) and limiter.allow("a", 61)  # per client; the window slides


def test_an_expired_lease_requeues_and_a_stale_claim_stores_nothing(tmp_path):
    store = Store(tmp_path / "lb.sqlite")
    job_id = store.add_job("j", "org/m", None, None, "c")
    first = store.claim_job("dead-worker", lease_s=0.05)
    time.sleep(0.1)
    second = store.claim_job("live-worker", lease_s=60)
    assert second["id"] == job_id and second["claim"] != first["claim"] and second["attempts"] == 2
    assert "lease expired: re-queued" in store.job(job_id)["log"]
    put = lambda: store.put(*one_row("j"))  # noqa: E731
    assert store.finish_job(job_id, first["claim"], put) is False and store.submissions() == []
    assert store.finish_job(job_id, second["claim"], put) is True
    assert store.finish_job(job_id, second["claim"], put) is False  # done: never stored twice
    assert [(s.name, s.status) for s in store.submissions()] == [("j", "verified")]
    assert store.job(job_id)["state"] == "FINISHED"
    store.close()


def test_the_app_imports_without_starting_anything_and_mounts_the_ui(tmp_path):
    import subprocess
    import sys

    code = ("import m2v_bench.leaderboard.server, m2v_bench.leaderboard.ui, threading, sys; "
            "sys.exit(threading.active_count() != 1)")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    app = create_app(_config(tmp_path))
    assert any(getattr(route, "path", "") == "/ui" for route in app.routes)
    with pytest.raises(Exception, match="needs a worker token"):
        create_app(dataclasses.replace(_config(tmp_path), token=""), ui=False)


def test_tables_api_serves_the_views(client):
    (table,) = client.get("/api/tables/substitution").json()
    assert table["columns"][:6] == ["Model", "Family", "Strategy", "Fine-tune data", "Source", "Test set"]
    assert len(table["rows"]) == 14 and {r["Test set"] for r in table["rows"]} == {"paper"}
    assert client.get("/api/tables/ranking?board=sample").json() == []
    assert client.get("/api/tables/nope").status_code == 404
    json.dumps(table)  # plain JSON
    # a new verified row shows at once (the server recomputes a view only after a write)
    store = client.app.state.leaderboard.store
    sub = Submission("v1", "mllama", "vid_ft", "mhc", None, "org/m", None, {}, status="verified",
                     environment={"torch": "2.9", "device": "cuda", "dtype": "bfloat16"})  # fmt: skip
    row = {"task": "m2v_mhc", "dataset": "mhc", "test_sha256": "0", "test_set": "paper", "n": 200, "accuracy": 0.9,
           "macro_f1": 0.9, "f1": 0.9, "precision": 0.9, "recall": 0.9, "invalid_rate": 0.0, "auroc": None,
           "macro_f1_low": 0.85, "macro_f1_high": 0.95}  # fmt: skip
    with client.app.state.leaderboard.lock:
        store.put(sub, [row], {"m2v_mhc": [{"id": "a", "gold": 1, "pred": 1}]})
    (table,) = client.get("/api/tables/substitution").json()
    (mine,) = [r for r in table["rows"] if r["Source"] == "verified: v1"]
    assert (mine["MHC n"], mine["Test set"], mine["MHC M-F1 95% CI"]) == (200, "paper", "[0.850, 0.950]")
    (stored,) = client.get("/api/submissions").json()
    assert (stored["status"], stored["version"], stored["environment"]["device"]) == ("verified", 1, "cuda")


# ------------------------------------------------------------------ a live server, real workers, real lmms-eval


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


LEASE_S = 20


@pytest.fixture(scope="module")
def live(evaluated, tmp_path_factory):
    """`m2v-bench leaderboard serve` (UI mounted) on the sample data, the tiny models' folders allowed."""
    import subprocess
    import sys

    import httpx
    from conftest import offline_env

    root = tmp_path_factory.mktemp("live")
    token = root / "token"
    token.write_text(TOKEN)
    port = _free_port()
    m2v = str(Path(sys.executable).with_name("m2v-bench"))
    server = subprocess.Popen(
        [m2v, "leaderboard", "--db", str(root / "lb.sqlite"), "serve", "--port", str(port), "--data-dir",
         str(evaluated["prepared"]), "--model-dir", str(evaluated["base"].parent), "--model-dir",
         str(evaluated["adapter"].parent), "--token-file", str(token), "--lease-s", str(LEASE_S)],
        env=offline_env(GRADIO_ANALYTICS_ENABLED="False"), stdout=(root / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/api/jobs", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait(up, 180, "the server to answer")

        def worker(name: str, *extra: str):
            cmd = [m2v, "leaderboard", "worker", "--server", url, "--token-file", str(token), "--data-dir",
                   str(evaluated["prepared"]), "--work-dir", str(root / name), "--device", "cpu", "--batch-size",
                   "8", "--frames", "4", "--poll-s", "1", *extra]  # fmt: skip
            log = (root / f"{name}.log").open("w")
            return subprocess.Popen(cmd, env=offline_env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip

        yield {"url": url, "db": root / "lb.sqlite", "worker": worker, "root": root, **evaluated}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _job(live, name: str) -> dict:
    import httpx

    """The whole job (its log too), as an admin reads it."""
    found = next((j for j in httpx.get(f"{live['url']}/api/jobs").json() if j["name"] == name), None)
    if found is None:
        return {}
    admin = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.get(f"{live['url']}/api/admin/jobs/{found['id']}", headers=admin).json()


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_the_job_stored_once(live):
    """Two workers, one server: the worker that claimed the job is SIGKILLed (with its lmms-eval) mid-run; the other
    re-runs the job after the lease and it is stored exactly once, as verified."""
    import os
    import signal

    import httpx

    request = {"name": "lnv-vid-ft-kill", "base_model": str(live["base"]), "adapter": str(live["adapter"])}
    assert httpx.post(f"{live['url']}/api/requests", json=request).status_code == 201
    first = live["worker"]("worker-a")
    _wait(lambda: _job(live, "lnv-vid-ft-kill").get("state") == "RUNNING", 120, "worker a's claim")
    second = live["worker"]("worker-b")
    _wait(lambda: list((live["root"] / "worker-a").glob("job-*/lmms-eval.log")), 60, "worker a's lmms-eval")
    time.sleep(3)  # mid-run
    assert _job(live, "lnv-vid-ft-kill")["state"] == "RUNNING"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    try:
        job = _wait(lambda: (j := _job(live, "lnv-vid-ft-kill"))["state"] in ("FINISHED", "FAILED") and j, 900,
                    "the job to end")  # fmt: skip
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    assert job["state"] == "FINISHED", job["log"] + (live["root"] / "worker-b.log").read_text()[-3000:]
    assert job["attempts"] == 2 and "lease expired: re-queued" in job["log"]
    store = Store(live["db"])
    try:
        subs = [s for s in store.submissions() if s.name == "lnv-vid-ft-kill"]
        assert len(subs) == 1 and subs[0].status == "verified" and store.history("lnv-vid-ft-kill") == []
        env = subs[0].environment
        assert {"m2v_bench", "lmms_eval", "transformers", "torch", "device", "dtype", "prompt_version",
                "parser_version", "tasks"} <= set(env) and env["device"] == "cpu"  # fmt: skip
        rows = [r for r in store.results() if r["name"] == "lnv-vid-ft-kill"]
        assert sorted(r["task"] for r in rows) == ["m2v_hatemm", "m2v_mhc"]
        assert {(r["n"], r["test_set"]) for r in rows} == {(40, "sample")}
    finally:
        store.close()


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
    ending in NUL on fds 3/4), so no websocket client nor Playwright browser download is needed."""

    def __init__(self, binary: str, profile: Path):
        import os
        import subprocess

        from test_leaderboard import CHROMIUM_FLAGS

        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def wire():
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "--window-size=1400,1000", "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4, to_browser, from_browser), stdout=subprocess.DEVNULL,
            stderr=(profile.parent / "chromium.log").open("w"),
        )  # fmt: skip
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params) -> dict:
        import os

        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise AssertionError("chromium closed its DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", self.session, expression=expression, awaitPromise=True,
                           returnByValue=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", self.session, url=url)

    def text(self) -> str:
        return self.js("document.body ? document.body.innerText : ''") or ""

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


CLICK_TAB = """(() => {{
  const tab = [...document.querySelectorAll('button[role="tab"]')].find(b => b.innerText.trim() === {name!r});
  if (!tab) return false; tab.click(); return true; }})()"""
TYPE = """(() => {{
  const box = document.querySelector('#{id} textarea, #{id} input');
  if (!box) return false;
  box.value = {value!r}; box.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()"""


def _row_cells(text: str, source: str) -> list[str] | None:
    """A table row's cells from the page's text (Gradio's data frame renders rows as divs, one cell a line): the
    four cells before the Source cell, and the 15 after it."""
    lines = [line.strip() for line in text.splitlines()]
    if source not in lines:
        return None
    at = lines.index(source)
    return lines[at - 4 : at + 16]


@pytest.mark.slow
def test_end_to_end_in_headless_chromium(live, tmp_path):
    """Open the app, request a tiny model + the recipe-trained adapter, see it PENDING, run one worker, see it
    FINISHED and its verified row in the table with n and the test set."""
    import shutil

    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    browser = Chromium(binary, tmp_path / "profile")
    try:
        browser.open(f"{live['url']}/ui/")
        _wait(lambda: browser.js(CLICK_TAB.format(name="Submit")), 120, "the Gradio app's tabs")
        hostile = "<img src=x onerror=alert(1)>"  # refused (not a name); the refusal quotes it as text
        _wait(lambda: browser.js(TYPE.format(id="req-name", value=hostile)), 30, "the request form")
        assert browser.js(TYPE.format(id="req-base", value=str(live["base"])))
        browser.js("document.querySelector('#req-submit').click()")
        _wait(lambda: "Not queued" in browser.text(), 60, "the refusal")
        assert hostile in browser.text() and browser.js("document.querySelectorAll('#req-result img').length") == 0
        assert browser.js(TYPE.format(id="req-name", value="e2e-lnv-vid-ft"))
        assert browser.js(TYPE.format(id="req-base", value=str(live["base"])))
        assert browser.js(TYPE.format(id="req-adapter", value=str(live["adapter"])))
        browser.js("document.querySelector('#req-submit').click()")
        _wait(lambda: "PENDING" in browser.text(), 60, "the request's answer")
        assert browser.js(CLICK_TAB.format(name="Queue"))
        _wait(lambda: "e2e-lnv-vid-ft" in browser.text() and "PENDING" in browser.text(), 60, "the queue")
        assert _job(live, "e2e-lnv-vid-ft")["state"] == "PENDING"

        worker = live["worker"]("worker-e2e", "--once")
        assert worker.wait(timeout=900) == 0, (live["root"] / "worker-e2e.log").read_text()[-3000:]
        assert _job(live, "e2e-lnv-vid-ft")["state"] == "FINISHED", _job(live, "e2e-lnv-vid-ft")["log"]

        browser.open(f"{live['url']}/ui/")
        _wait(lambda: browser.js(CLICK_TAB.format(name="Queue")), 120, "the app, reloaded")
        _wait(lambda: "FINISHED" in browser.text(), 60, "FINISHED in the queue")
        assert browser.js(CLICK_TAB.format(name="Tables 3 and 4"))
        cells = _wait(lambda: _row_cells(browser.text(), "verified: e2e-lnv-vid-ft"), 60, "the verified row")
        # Model, Family, Strategy, Fine-tune data, Source, Test set, MHC Acc/M-F1/F1/R/P, MHC M-F1 95% CI, MHC n, ...
        model = f"{live['base'].name} (local) + {live['adapter'].name} (local)"  # the checkpoints' own names
        assert cells[:6] == [model, "llava_next_video", "Vid-FT", "MHC", "verified: e2e-lnv-vid-ft", "sample"], cells
        assert re.fullmatch(r"\[0\.\d{3}, [01]\.\d{3}\]", cells[11]) and cells[12] == "40", cells
        assert cells[19] == "40", cells  # HateMM n
        shot = browser.call("Page.captureScreenshot", browser.session)["data"]
        assert len(shot) > 10_000  # a rendered page, not a blank one
    finally:
        browser.close()


def test_a_pinned_revision_is_what_the_worker_evaluates_and_what_the_server_checks(tmp_path, monkeypatch):
    """The worker passes the request's revision to the m2v model (adapter_revision=...); the server stores a run
    only when its lmms-eval model_args name that revision."""
    from m2v_bench.leaderboard import service
    from m2v_bench.leaderboard.worker import WorkerConfig, lmms_eval_command

    job = {"base_model": "org/base", "adapter": "org/a", "revision": "v2"}
    config = WorkerConfig(server="http://x", token=TOKEN, data_dir=tmp_path, work_dir=tmp_path)
    command = lmms_eval_command(config, job, tmp_path / "out", "cpu")
    args = command[command.index("--model_args") + 1].split(",")
    assert "adapter=org/a" in args and "adapter_revision=v2" in args
    store = Store(tmp_path / "lb.sqlite")
    job_id = store.add_job("p", "org/base", "org/a", "v2", "test")
    claim = store.claim_job("w", 60)["claim"]
    provenance = {"family": "mllama", "strategy": "vid_ft", "target": "mhc", "base_model": "org/base"}
    unpinned_run = {"model": "m2v", "model_args": "pretrained=org/base,adapter=org/a"}
    monkeypatch.setattr(service, "evaluate_logs", lambda *a, **k: (provenance, [], {}, unpinned_run))
    upload = {"files": {"20261125_100000_results.json": "{}"}, "provenance": provenance}
    with pytest.raises(service.RequestError, match="adapter_revision=None.*pinned 'v2'"):
        service.verify_upload(store, _config(tmp_path), job_id, claim, upload)
    assert store.job(job_id)["state"] == "FAILED" and store.submissions() == []
    store.close()


def test_an_unsupported_checkpoint_is_refused_when_requested(client, tmp_path):
    """The server reads the checkpoint's config.json: a family m2v-bench has no entry for is refused at once, with
    the supported families and where adding one is explained -- never queued to fail as "wrote no output"."""
    import json as json_module

    from m2v_bench.models.families import FAMILIES

    folder = tmp_path / "models" / "text-only"
    folder.mkdir()
    (folder / "config.json").write_text(json_module.dumps({"model_type": "llama"}))
    response = client.post("/api/requests", json={"name": "llama", "base_model": str(folder)})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'llama' checkpoint, not a supported" in detail and "Adding a model family" in detail
    assert all(name in detail for name in FAMILIES)
    assert client.get("/api/jobs").json() == []


def test_a_failed_run_reports_its_own_first_error_line():
    from m2v_bench.leaderboard.worker import first_error

    log = ("INFO loading\nTraceback (most recent call last):\n  File 'x.py'\nValueError: a retry wrapper said so\n"
           "m2v: error: 1 of 40 samples in /d/mhc/test.jsonl have unusable media: a (zero-byte)\n")  # fmt: skip
    assert first_error(log).startswith("1 of 40 samples in /d/mhc/test.jsonl")  # ours first
    assert first_error("Traceback\nOSError: Qwen/Nope is not a valid model identifier\n") == (
        "OSError: Qwen/Nope is not a valid model identifier"
    )
    assert first_error("all fine\n") is None
