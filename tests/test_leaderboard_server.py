"""The leaderboard service: the queue and its leases, the API's access control, the request paths, the rate
limit; with real workers and lmms-eval: a worker SIGKILLed mid-job, and the whole path in headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from m2v_bench.leaderboard.server import create_app
from m2v_bench.leaderboard.service import Config, RateLimiter, RequestError, check_model_ref
from m2v_bench.leaderboard.store import Store, Submission

TOKEN = "s3cret-token"


def _config(tmp_path: Path, **changes) -> Config:
    models = tmp_path / "models"
    (models / "base").mkdir(parents=True, exist_ok=True)
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
    assert (job["name"], job["state"], job["base_model"], job["adapter"]) == ("mine", "PENDING", base, None)
    assert "requested by" in job["log"] and "claim" not in job  # the claim id is the worker's secret
    taken = client.post("/api/requests", json={"name": "mine", "base_model": base})
    assert taken.status_code == 422 and "taken" in taken.json()["detail"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    claimed = client.post("/api/jobs/claim", json={"worker": "w1"}, headers=auth).json()
    assert claimed["name"] == "mine" and len(claimed["claim"]) == 32
    assert client.get(f"/api/jobs/{claimed['id']}").json()["state"] == "RUNNING"
    beat = client.post(f"/api/jobs/{claimed['id']}/heartbeat", json={"claim": claimed["claim"], "log": "step 1\n"},
                       headers=auth)  # fmt: skip
    assert beat.status_code == 200 and "step 1" in client.get(f"/api/jobs/{claimed['id']}").json()["log"]
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
    assert check_model_ref(str(tmp_path / "models" / "base"), allowed, "base") == str(tmp_path / "models" / "base")
    assert check_model_ref("base", allowed, "base") == str(tmp_path / "models" / "base")  # relative to the folder
    assert check_model_ref("org/model-7B", allowed, "base") == "org/model-7B"  # a hub id
    for escape in (str(outside), "../secret", "link", "base/../../secret", "/etc", "~/x", "models/../../x"):
        with pytest.raises(RequestError, match="not a hub id"):
            check_model_ref(escape, allowed, "base")


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
    sub = Submission("j", "llava_next_video", "no_ft", None, None, "org/m", None, {}, status="verified")
    row = {"task": "m2v_mhc", "dataset": "mhc", "test_sha256": "0", "test_set": "paper", "n": 1, "accuracy": 1.0,
           "macro_f1": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0, "invalid_rate": 0.0, "auroc": None,
           "macro_f1_low": 1.0, "macro_f1_high": 1.0}  # fmt: skip
    put = lambda: store.put(sub, [row], {"m2v_mhc": [{"id": "a", "gold": 1, "pred": 1}]})  # noqa: E731
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
    assert table["columns"][:5] == ["Model", "Strategy", "Fine-tune data", "Source", "Test set"]
    assert len(table["rows"]) == 14 and {r["Test set"] for r in table["rows"]} == {"paper"}
    assert client.get("/api/tables/ranking?board=sample").json() == []
    assert client.get("/api/tables/nope").status_code == 404
    json.dumps(table)  # plain JSON
