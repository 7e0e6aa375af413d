"""The leaderboard service under hostile clients and workers: each case with the HTTP status it must give and what
it must (not) show. The worker protocol's ordinary paths are in tests/test_leaderboard_server.py."""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import one_row

from m2v_bench.leaderboard.server import FINISH_BODY_LIMIT, PUBLIC_BODY_LIMIT, create_app, proxy_settings
from m2v_bench.leaderboard.service import Config, check_model_ref
from m2v_bench.leaderboard.store import NameTaken, Store, Submission
from m2v_bench.models.refs import is_git_ref

TOKEN = "hostile-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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


def _base(tmp_path: Path) -> str:
    return str(tmp_path / "models" / "base")


@pytest.mark.parametrize(
    ("field", "value"),
    [("base_model", "org/na\x00me"), ("name", "a\x00b"), ("adapter", "org/a\x00"), ("revision", "v1\x00"),
     ("name", "line\nbreak"), ("base_model", "\x1b[31m"), ("revision", "main,pretrained=/etc/x"),
     ("base_model", "org/m,trust_remote_code=True"), ("adapter", "org/a,frame_cache=/tmp")],
)  # fmt: skip
def test_a_control_character_in_any_field_is_422(client, tmp_path, field, value):
    body = {"name": "n", "base_model": _base(tmp_path), "adapter": "org/a", "revision": "v1"} | {field: value}
    response = client.post("/api/requests", json=body)
    assert response.status_code == 422, response.text
    assert field in json.dumps(response.json()["detail"]) and client.get("/api/jobs").json() == []


@pytest.mark.parametrize(
    "revision", ["a/../../../etc", "../x", ".hidden", "main.lock", "a//b", "a b", "x~1", "x^", "a:b", "@", "x@{1}",
                 "/main", "main/", "main.", "refs/.x/y", "a" * 65, "x*", "x?", "x[", "a\\b", "-x", "--upload-pack=x",
                 "refs/-x", "HEAD", "FETCH_HEAD", "ORIG_HEAD"],
)  # fmt: skip
def test_a_revision_that_is_no_git_ref_name_is_422(client, tmp_path, revision):
    assert not is_git_ref(revision)
    response = client.post("/api/requests", json={"name": "n", "base_model": _base(tmp_path), "adapter": "org/a",
                                                  "revision": revision})  # fmt: skip
    assert response.status_code == 422 and client.get("/api/jobs").json() == []


@pytest.mark.parametrize("revision", ["main", "v2", "refs/heads/main", "release-1.0", "a" * 40, "feature/x_y"])
def test_git_ref_names_are_accepted(client, tmp_path, revision):
    assert is_git_ref(revision)
    response = client.post("/api/requests", json={"name": "n", "base_model": _base(tmp_path), "adapter": "org/a",
                                                  "revision": revision})  # fmt: skip
    assert response.status_code == 201, response.text


def _claimed(client, tmp_path) -> dict:
    assert client.post("/api/requests", json={"name": "job", "base_model": _base(tmp_path)}).status_code == 201
    return client.post("/api/jobs/claim", json={"worker": "w"}, headers=AUTH).json()


@pytest.mark.parametrize(
    "filename", ["../20261201_000000_results.json", "20261201_000000_samples_../../x.jsonl", "sub/x_results.json",
                 ".20261201_000000_results.json", "20261201_000000_samples_a\x00.jsonl", "notes.txt"],
)  # fmt: skip
def test_a_finish_with_a_bad_file_name_is_422_and_fails_the_job(client, tmp_path, filename):
    job = _claimed(client, tmp_path)
    response = client.post(f"/api/jobs/{job['id']}/finish", headers=AUTH,
                           json={"claim": job["claim"], "files": {filename: "{}"}})  # fmt: skip
    assert response.status_code == 422 and "file name" in response.json()["detail"], response.text
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "FAILED"  # not left RUNNING until its lease ends
    assert not list(tmp_path.rglob("x.jsonl")) and not (tmp_path / "x_results.json").exists()


def test_a_nul_in_an_uploaded_file_is_422(client, tmp_path):
    job = _claimed(client, tmp_path)
    files = {"20261201_000000_results.json": "{\x00}"}
    response = client.post(f"/api/jobs/{job['id']}/finish", headers=AUTH, json={"claim": job["claim"], "files": files})
    assert response.status_code == 422 and "NUL" in response.json()["detail"]


def test_bodies_are_limited_before_they_are_read(client, tmp_path):
    big = json.dumps({"name": "n", "base_model": "x" * (PUBLIC_BODY_LIMIT + 1)})
    assert client.post("/api/requests", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: the limit holds while the body streams in
        yield b'{"name": "n", "base_model": "'
        for _ in range(100):
            yield b"x" * 4096
        yield b'"}'

    streamed = client.post("/api/requests", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/api/jobs").json() == []
    # a worker endpoint: no token, 401 before any of the body is read; with the token, finish takes large uploads
    huge = b"x" * (2 * 1024 * 1024)
    assert client.post("/api/jobs/1/finish", content=huge).status_code == 401
    assert client.post("/api/jobs/1/heartbeat", content=huge, headers=AUTH).status_code == 413  # 1 MiB there
    job = _claimed(client, tmp_path)
    upload = {"claim": job["claim"], "files": {"20261201_000000_results.json": "x" * len(huge)}}
    assert client.post(f"/api/jobs/{job['id']}/finish", json=upload, headers=AUTH).status_code == 422  # read
    declared = {**AUTH, "content-length": str(FINISH_BODY_LIMIT + 1), "content-type": "application/json"}
    assert client.post(f"/api/jobs/{job['id']}/finish", content=b"{}", headers=declared).status_code == 413


def test_a_queued_request_reserves_its_name(client, tmp_path):
    job = _claimed(client, tmp_path)
    store = Store(tmp_path / "lb.sqlite")
    sub = Submission("job", "llava_next_video", "no_ft", None, None, "org/m", None, {}, status="self-reported")
    with pytest.raises(NameTaken, match=f"reserved by evaluation request {job['id']}"):
        store.put(sub, [], {}, replace=True)
    store.close()
    taken = client.post("/api/requests", json={"name": "job", "base_model": _base(tmp_path)})
    assert taken.status_code == 422 and "taken" in taken.json()["detail"]


def test_a_hub_id_is_never_a_local_folder(tmp_path):
    config = _config(tmp_path)
    (tmp_path / "models" / "org" / "name").mkdir(parents=True)  # a folder of the hub id's relative name
    assert check_model_ref("org/name", config.model_dirs, "base model") == "org/name"


def test_the_worker_runs_lmms_eval_in_an_empty_folder_of_its_own(tmp_path, monkeypatch):
    """A hub id (org/name) given to lmms-eval is looked up from its working folder first (transformers'
    ``os.path.isdir``); the worker's is empty, so a folder named like the hub id where the worker was started is
    never what gets evaluated."""
    import subprocess

    from m2v_bench.leaderboard import worker as worker_module

    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    seen = {}

    class Stop(Exception):
        pass

    def popen(command, cwd=None, **kwargs):
        seen["cwd"], seen["command"] = Path(cwd), command
        raise Stop

    monkeypatch.setattr(subprocess, "Popen", popen)
    config = worker_module.WorkerConfig(server="http://x", token=TOKEN, data_dir=Path("data"), work_dir=Path("work"),
                                        device="cpu")  # fmt: skip
    worker = worker_module.Worker(config)
    job = {"id": 1, "claim": "c" * 32, "name": "n", "base_model": "org/name", "adapter": None, "revision": None}
    monkeypatch.setattr(worker, "claim", lambda: job)
    with pytest.raises(Stop):
        worker.run_once()
    assert seen["cwd"].is_absolute() and seen["cwd"].is_dir() and list(seen["cwd"].iterdir()) == []
    assert "pretrained=org/name" in " ".join(seen["command"])


def test_public_endpoints_show_no_address_host_or_server_path(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(_config(tmp_path), ui=False)
    lb = app.state.leaderboard
    from m2v_bench.leaderboard.api import EvalRequest

    address, host, secret = "203.0.113.77", "gpu-node-17.internal", "/srv/leaderboard/secret/data"
    job_id = lb.request(EvalRequest(name="mine", base_model=_base(tmp_path)), client=address)
    with TestClient(app) as client:
        job = client.post("/api/jobs/claim", json={"worker": f"{host}-4242-abc"}, headers=AUTH).json()
        log = f"loading {secret}/model on {host} ({address})\n"
        client.post(f"/api/jobs/{job_id}/heartbeat", headers=AUTH, json={"claim": job["claim"], "log": log})
        client.post(f"/api/jobs/{job_id}/fail", headers=AUTH,
                    json={"claim": job["claim"], "error": f"1 of 40 samples in {secret}/mhc/test.jsonl have unusable "
                                                          f"media; from {address}"})  # fmt: skip
        public = client.get("/api/jobs").text + client.get(f"/api/jobs/{job_id}").text
        admin = client.get(f"/api/admin/jobs/{job_id}", headers=AUTH).json()
    for leak in (address, host, secret, str(tmp_path), "/srv/"):
        assert leak not in public, (leak, public)
    assert ".../test.jsonl have unusable media" in public  # the error still says what went wrong
    assert admin["client"] == address and host in admin["worker"] and secret in admin["log"]


def _serve(app, trusted: list[str]):
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **proxy_settings(trusted)))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("trusted", "codes"), [([], [201, 201, 429]), (["127.0.0.1"], [201, 201, 201])])
def test_proxy_headers_count_only_from_trusted_proxies(tmp_path, trusted, codes):
    """A local client posing as three addresses: by default one client (its connection's address) and rate-limited;
    behind a trusted proxy, the forwarded addresses are the clients."""
    import httpx

    server, thread, url = _serve(create_app(_config(tmp_path, rate_limit=2), ui=False), trusted)
    try:
        got = [httpx.post(f"{url}/api/requests", json={"name": f"r{i}", "base_model": "org/m"},
                          headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(3)]  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert got == codes


def test_a_revoked_worker_gets_401_and_its_rows_leave_the_verified_tables(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from m2v_bench.cli import main
    from m2v_bench.leaderboard import views

    db = str(tmp_path / "lb.sqlite")
    assert main(["leaderboard", "--db", db, "workers", "add", "gpu-a"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40 and token not in (tmp_path / "lb.sqlite").read_bytes().decode("latin-1")  # a hash only
    assert main(["leaderboard", "--db", db, "workers", "add", "gpu-b"]) == 0
    other = capsys.readouterr().out.strip()
    with TestClient(create_app(_config(tmp_path), ui=False)) as client:
        worker = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/requests", json={"name": "job", "base_model": _base(tmp_path)}).status_code == 201
        claimed = client.post("/api/jobs/claim", json={"worker": "host-1"}, headers=worker).json()
        admin = client.get(f"/api/admin/jobs/{claimed['id']}", headers=AUTH).json()
        assert admin["identity"] == "gpu-a" and "claimed by gpu-a (host-1)" in admin["log"]
        assert client.get(f"/api/admin/jobs/{claimed['id']}", headers=worker).status_code == 403  # not an admin

        store = Store(tmp_path / "lb.sqlite")
        store.put(*one_row("by-a", worker="gpu-a"))
        store.put(*one_row("by-b", worker="gpu-b"))
        verified = lambda: {n for t in views.ranking(store, "sample") if "(verified)" in t.title  # noqa: E731
                            for n in t.frame["Submission"]}  # fmt: skip
        assert verified() == {"by-a", "by-b"}

        assert main(["leaderboard", "--db", db, "workers", "revoke", "gpu-a", "--note", "forged logs"]) == 0
        assert "1 row(s) it ran or audited moved out of the verified tables: by-a" in capsys.readouterr().out
        refused = client.post(f"/api/jobs/{claimed['id']}/heartbeat", json={"claim": claimed["claim"]}, headers=worker)
        assert refused.status_code == 401  # its very next call
        assert client.post("/api/jobs/claim", json={"worker": "host-1"}, headers=worker).status_code == 401
        assert client.post("/api/jobs/claim", json={"worker": "h"}, headers={"Authorization": f"Bearer {other}"}
                           ).status_code in (200, 204)  # fmt: skip
        submissions = {s["name"]: s for s in client.get("/api/submissions").json()}
    assert verified() == {"by-b"}
    notes = [n for t in views.ranking(store, "sample") for n in t.notes]
    assert "Left out by-a (revoked): worker gpu-a revoked: forged logs" in notes
    assert (submissions["by-a"]["status"], submissions["by-a"]["worker"]) == ("revoked", "gpu-a")
    assert "forged logs" in submissions["by-a"]["note"]
    substitution = views.substitution(store, "sample")
    assert list(substitution.frame["Source"]) == ["verified: by-b"]
    assert any("Left out by-a (revoked)" in n for n in substitution.notes)
    store.close()
    assert main(["leaderboard", "--db", db, "workers", "list"]) == 0
    listing = capsys.readouterr().out
    assert "gpu-a\tadded" in listing and "revoked" in listing and "gpu-b\tadded" in listing


# ------------------------------------------------------------------------------------------------ audit mode


def test_an_audit_samples_at_least_20_or_a_tenth_of_each_task():
    from m2v_bench.leaderboard.service import audit_sample

    predictions = {"m2v_mhc": [{"id": f"a{i}"} for i in range(1000)], "m2v_hatemm": [{"id": f"b{i}"} for i in
                   range(8)], "m2v_mhc_score": [{"id": f"c{i}"} for i in range(100)]}  # fmt: skip
    sample = audit_sample(predictions, random.Random(3))
    assert {task: len(ids) for task, ids in sample.items()} == {"m2v_hatemm": 8, "m2v_mhc": 100, "m2v_mhc_score": 20}
    assert sample["m2v_mhc"] == sorted(sample["m2v_mhc"], key=lambda i: int(i[1:]))  # in test order
    assert audit_sample(predictions, random.Random(3)) == sample and audit_sample(predictions) != sample


def test_agreement_compares_greedy_answers_and_log_likelihood_margins():
    from m2v_bench.leaderboard.service import SCORE_TOLERANCE, agreement

    original = {str(i): {"pred": i % 2, "score": float(i)} for i in range(10)}
    assert agreement("m2v_mhc", original, original) == 1.0
    flipped = {k: {**v, "pred": 1 - v["pred"]} if k in "01" else v for k, v in original.items()}
    assert agreement("m2v_mhc", original, flipped) == 0.8
    nudged = {k: {**v, "score": v["score"] + SCORE_TOLERANCE / 2} for k, v in original.items()}
    assert agreement("m2v_mhc_score", original, nudged) == 1.0
    moved = {k: {**v, "score": -v["score"]} for k, v in original.items()}
    assert agreement("m2v_mhc_score", original, moved) == 0.1  # only document 0 (score 0) stays


def _forged(files: dict[str, str]) -> dict[str, str]:
    """A run's logs made perfect: every answer the gold label, every score margin a confident one."""
    from m2v_bench.datasets import get_dataset
    from m2v_bench.registry import parse_task

    forged = {}
    for filename, text in files.items():
        if "_samples_" not in filename:
            forged[filename] = text
            continue
        task = filename.split("_samples_", 1)[1].removesuffix(".jsonl")
        space = get_dataset(parse_task(task)[0]).label_space
        lines = []
        for line in text.splitlines():
            sample = json.loads(line)
            item = sample["macro_f1"]
            item["pred"] = item["gold"]
            if item.get("score") is not None:
                item["score"] = 5.0 if item["gold"] else -5.0
            else:
                item["response"] = space.word(item["gold"])
            lines.append(json.dumps(sample))
        forged[filename] = "\n".join(lines) + "\n"
    return forged


@pytest.mark.slow
def test_in_audit_mode_a_forged_perfect_log_is_caught(tiny_models, small_mhc, tmp_path, monkeypatch):
    """Worker `forger` runs a request for real, then uploads its logs made perfect: consistent, so the upload's
    checks pass, but in audit mode the row waits as `auditing`, `forger` cannot audit itself, and `auditor`'s re-run
    of the sampled documents disagrees: the row is `disputed`, never verified, and both workers are flagged."""
    from fastapi.testclient import TestClient

    from m2v_bench.leaderboard import views
    from m2v_bench.leaderboard import worker as worker_module
    from m2v_bench.leaderboard.worker import Worker, WorkerConfig

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = tiny_models["llava_next_video"]
    config = Config(db=tmp_path / "lb.sqlite", data_dir=small_mhc, model_dirs=[base.parent], token=TOKEN, audit=True)
    store = Store(config.db)
    tokens = {name: store.add_worker(name) for name in ("forger", "auditor")}
    app = create_app(config, ui=False)

    def worker(name: str) -> Worker:
        made = Worker(WorkerConfig(server="http://testserver", token=tokens[name], data_dir=small_mhc,
                                   work_dir=tmp_path / name, tasks=("m2v_mhc", "m2v_mhc_score"), device="cpu",
                                   dtype="float32", batch_size=4, frames=4))  # fmt: skip
        made.http = TestClient(app, headers={"Authorization": f"Bearer {tokens[name]}"})
        return made

    verified = lambda: {n for t in views.ranking(store, "sample") if "(verified)" in t.title  # noqa: E731
                        for n in t.frame["Submission"]}  # fmt: skip
    with TestClient(app) as client:
        assert client.post("/api/requests", json={"name": "forged", "base_model": str(base)}).status_code == 201
        forger, auditor = worker("forger"), worker("auditor")
        real_collect = worker_module.collect_run
        monkeypatch.setattr(worker_module, "collect_run", lambda out: _forged(real_collect(out)))
        assert forger.run_once() is not None
        (sub,) = store.submissions()
        assert (sub.status, sub.worker) == ("auditing", "forger") and verified() == set()
        scores = store.prediction_rows("forged", "m2v_mhc_score")
        assert {abs(row["score"]) for row in scores.values()} == {5.0}  # the forgery was stored as sent
        assert forger.run_once() is None  # its own audit is not its to claim
        monkeypatch.setattr(worker_module, "collect_run", real_collect)
        assert auditor.run_once() is not None
        jobs = client.get("/api/jobs").json()
    assert [j["state"] for j in jobs] == ["FINISHED", "FINISHED"], jobs
    (sub,) = store.submissions()
    assert sub.status == "disputed" and "auditor's audit agreed on" in sub.note, sub.note
    assert verified() == set()
    notes = [n for t in views.ranking(store, "sample") for n in t.notes]
    assert any(n.startswith("Left out forged (disputed): run by forger") for n in notes), notes
    flags = {w["name"]: w["flag"] for w in store.workers()}
    assert flags["forger"] and flags["auditor"] and "forged: disputed" in flags["forger"]
    store.close()


def test_no_worker_may_be_named_admin(tmp_path, capsys):
    from m2v_bench.cli import main

    for name in ("admin", "Admin"):
        assert main(["leaderboard", "--db", str(tmp_path / "lb.sqlite"), "workers", "add", name]) == 2
        assert "'admin' names the server's own token" in capsys.readouterr().err


# --------------------------------------------------------------------------------- second hostile review (stop 33)


@pytest.mark.parametrize("kind", ["no config.json", "the model folder itself", "a file", "a name too long"])
def test_a_base_model_must_be_a_model_folder_and_the_refusal_names_no_server_path(client, tmp_path, kind):
    models = tmp_path / "models"
    (models / "empty").mkdir()
    (models / "weights.bin").write_text("x")
    value = {"no config.json": str(models / "empty"), "the model folder itself": str(models),
             "a file": str(models / "weights.bin"), "a name too long": "x" * 256}[kind]  # fmt: skip
    response = client.post("/api/requests", json={"name": "n", "base_model": value})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "not a hub id (org/name) nor a base model folder (with config.json)" in detail
    assert str(tmp_path) not in detail and client.get("/api/jobs").json() == []


def test_an_adapter_must_hold_adapter_config_json(client, tmp_path):
    response = client.post("/api/requests", json={"name": "n", "base_model": _base(tmp_path),
                                                  "adapter": _base(tmp_path)})  # fmt: skip
    assert response.status_code == 422 and "adapter folder (with adapter_config.json)" in response.json()["detail"]


def test_an_unsupported_family_is_refused_without_the_servers_path(client, tmp_path):
    bert = tmp_path / "models" / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    response = client.post("/api/requests", json={"name": "n", "base_model": "bert"})  # relative to a model folder
    assert response.status_code == 422
    assert "'bert' checkpoint" in response.json()["detail"] and str(tmp_path) not in response.json()["detail"]


@pytest.mark.parametrize(
    "body", ['{"name": "\\ud800", "base_model": "org/m"}', '{"name": "n", "base_model": "org/m\\udfff"}']
)
def test_a_lone_surrogate_in_the_json_is_422(client, body):
    response = client.post("/api/requests", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "valid string" in response.text


@pytest.mark.parametrize("path", ["/api/jobs/9223372036854775808", "/api/jobs/0", "/api/jobs/-1"])
def test_a_job_id_out_of_range_is_422(client, path):
    assert client.get(path).status_code == 422
    assert client.post(path + "/fail", headers=AUTH, json={"error": "x"}).status_code == 422


def test_a_lone_surrogate_in_an_upload_is_422_and_fails_the_job(client, tmp_path):
    job = _claimed(client, tmp_path)
    body = json.dumps({"claim": job["claim"], "files": {"20261201_000000_results.json": "\ud800"}})
    response = client.post(f"/api/jobs/{job['id']}/finish", content=body,
                           headers={**AUTH, "content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422 and "lone surrogate" in response.json()["detail"]
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "FAILED"


def test_a_worker_fails_only_the_job_it_holds_and_unknown_jobs_are_404(client, tmp_path):
    store = Store(tmp_path / "lb.sqlite")
    other = {"Authorization": f"Bearer {store.add_worker('other')}"}
    job = _claimed(client, tmp_path)
    assert client.post(f"/api/jobs/{job['id']}/fail", headers=other, json={"error": "x"}).status_code == 403
    assert client.post(f"/api/jobs/{job['id']}/fail", headers=other,
                       json={"claim": "not-the-claim", "error": "x"}).status_code == 409  # fmt: skip
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "RUNNING"
    calls = [("fail", {"error": "x"}), ("heartbeat", {"claim": "c"}), ("finish", {"claim": "c", "files": {}})]
    for call, body in calls:
        assert client.post(f"/api/jobs/999/{call}", headers=AUTH, json=body).status_code == 404, call
    assert client.post(f"/api/jobs/{job['id']}/fail", headers=AUTH, json={"error": "stuck"}).status_code == 200
    assert "failed (by admin): stuck" in client.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).json()["log"]
    assert client.post(f"/api/jobs/{job['id']}/fail", headers=AUTH, json={"error": "again"}).status_code == 409
    store.close()


def test_a_job_whose_lease_runs_out_three_times_fails_instead_of_looping(tmp_path):
    from m2v_bench.leaderboard.store import MAX_ATTEMPTS

    store = Store(tmp_path / "lb.sqlite")
    job_id = store.add_job("j", "org/m", None, None, "c")
    for _ in range(MAX_ATTEMPTS):
        assert store.claim_job("w", lease_s=-1)["id"] == job_id  # a lease already over: as if the worker died
    assert store.claim_job("w", lease_s=60) is None
    job = store.job(job_id)
    assert job["state"] == "FAILED" and f"gave up after {MAX_ATTEMPTS} attempts" in job["error"]
    store.close()


def test_public_text_hides_file_urls_hosts_paths_and_addresses():
    from m2v_bench.leaderboard.service import public_text, worker_host

    hide = worker_host("gpu-node-17-4242-abc123")
    cases = {
        "read file:///srv/data/mhc/test.jsonl": "read .../test.jsonl",
        "GET http://gpu-node-17:8000/api/x failed": "GET http://<host>/... failed",
        "HEAD https://huggingface.co/org/m/resolve/main/config.json: 404": None,  # the hub's: kept
        "at /home/u/x.py line 3, cwd=/srv/x": "at .../x.py line 3, cwd=.../x",
        "from 10.0.0.5 and fe80::1": "from <address> and <address>",
        "gpu-node-17-4242-abc123 lost gpu-node-17": "<host> lost <host>",
        "3/4 of them, org/name": None,
    }
    for text, expected in cases.items():
        assert public_text(text, hide) == (text if expected is None else expected), text


def test_public_submissions_hide_the_workers_host_and_server_paths(tmp_path):
    from fastapi.testclient import TestClient

    store = Store(tmp_path / "lb.sqlite")
    sub, rows, predictions = one_row("r", worker="gpu-a")
    sub = dataclasses.replace(sub, environment={"worker": "node7-99-abcdef", "device": "cuda"},
                              provenance={"adapter": "/srv/models/a", "log": "ran on node7"},
                              note="audited by file:///srv/x/y on node7")  # fmt: skip
    store.put(sub, rows, predictions)
    store.close()
    with TestClient(create_app(_config(tmp_path), ui=False)) as client:
        (shown,) = client.get("/api/submissions").json()
    text = json.dumps(shown)
    assert "node7" not in text and "/srv" not in text and shown["environment"] == {"device": "cuda"}
    assert shown["worker"] == "gpu-a" and shown["note"] == "audited by .../y on <host>"


def test_a_body_that_does_not_arrive_in_time_is_408(monkeypatch):
    import asyncio

    from m2v_bench.leaderboard import server

    monkeypatch.setattr(server, "BODY_TIMEOUT_S", 0.2)
    called, sent = [], []

    async def app(scope, receive, send):
        called.append(scope)

    async def never():  # a client that sent its headers and then nothing
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/api/requests", "headers": [(b"content-length", b"10")]}
    asyncio.run(asyncio.wait_for(server.BodyLimit(app, lambda token: None)(scope, never, send), 5))
    assert called == [] and sent[0]["status"] == 408 and b"not received within" in sent[1]["body"]


def test_revoking_a_worker_takes_back_its_audits_its_waiting_rows_and_its_claims(tmp_path, capsys):
    from m2v_bench.cli import main

    store = Store(tmp_path / "lb.sqlite")
    for name in ("runner", "auditor", "third"):
        store.add_worker(name)

    def run(name: str, identity: str) -> dict:
        """``identity`` claims and finishes a request: its row waits for an audit that anyone else may run."""
        job = store.claim_job("host", 60, identity=identity)
        assert job["name"] == name

        def stored():
            version = store.put(*one_row(name, status="auditing", worker=identity))
            store.add_audit(job, {"m2v_mhc": ["a"]}, exclude=[identity], version=version)

        assert store.finish_job(job["id"], job["claim"], stored)
        return job

    store.add_job("audited", "org/m", None, None, "c")
    run("audited", "runner")
    audit = store.claim_job("host", 60, identity="auditor")  # `auditor`'s audit verifies `runner`'s row
    assert audit["audit_of"] and store.finish_job(audit["id"], audit["claim"], lambda: store.set_status(
        "audited", "verified", "audited by auditor", expect=("auditing", 1)))  # fmt: skip
    store.add_job("waiting", "org/m", None, None, "c")
    run("waiting", "auditor")  # `auditor`'s own row, waiting for its audit
    store.add_job("held", "org/m", None, None, "c")
    held = store.claim_job("host", 60, identity="auditor")  # its own row's audit is not its to claim
    assert held["name"] == "held"
    store.flag_worker("runner", "a test flag")
    store.close()

    db = str(tmp_path / "lb.sqlite")
    assert main(["leaderboard", "--db", db, "workers", "revoke", "auditor", "--note", "stolen token"]) == 0
    assert "2 row(s) it ran or audited moved out of the verified tables: audited, waiting" in capsys.readouterr().out
    store = Store(tmp_path / "lb.sqlite")
    rows = {s.name: s for s in store.submissions()}
    assert rows["audited"].status == "auditing" and "its audit by auditor no longer counts" in rows["audited"].note
    assert rows["waiting"].status == "revoked" and "stolen token" in rows["waiting"].note
    jobs = {(j["name"], bool(j["audit_of"]), j["id"]): j for j in store.jobs()}
    new_audit = max((k for k in jobs if k[:2] == ("audited", True)), key=lambda k: k[2])
    assert jobs[new_audit]["state"] == "PENDING" and json.loads(jobs[new_audit]["exclude"]) == ["runner", "auditor"]
    (waiting_audit,) = [j for k, j in jobs.items() if k[:2] == ("waiting", True)]
    assert waiting_audit["state"] == "FAILED" and "audited worker auditor was revoked" in waiting_audit["error"]
    assert store.job(held["id"])["state"] == "PENDING" and "auditor was revoked: re-queued" in store.job(
        held["id"])["log"]  # fmt: skip
    # An audit of the revoked row that finishes late settles nothing.
    assert store.set_status("waiting", "verified", "late audit", expect=("auditing", 1)) is False
    store.close()

    assert main(["leaderboard", "--db", db, "workers", "revoke", "auditor", "--note", "again"]) == 2
    error = capsys.readouterr().err
    assert "was revoked at" in error and "(stolen token); nothing changed" in error
    assert main(["leaderboard", "--db", db, "workers", "list"]) == 0
    listing = capsys.readouterr().out
    assert "revoked" in listing and "stolen token" in listing and "again" not in listing
    assert "runner\tadded" in listing and "flagged: a test flag" in listing


def test_an_audit_of_score_records_without_scores_agrees_only_with_none():
    from m2v_bench.leaderboard.service import agreement

    original = {"a": {"pred": 1, "score": None}, "b": {"pred": 1, "score": 1.0}}
    assert agreement("m2v_mhc_score", original, {"a": {"pred": 1, "score": None}, "b": {"score": 1.0}}) == 1.0
    assert agreement("m2v_mhc_score", original, {"a": {"score": 0.5}, "b": {"score": None}}) == 0.0
    assert agreement("m2v_mhc", original, {"zzz": {"pred": 1}}) == 0.0  # a document the run never had


# --------------------------------------------------------------------------------- third hostile review (stop 33)


@pytest.mark.parametrize("environment", [{"worker": 5}, {"x": float("nan")}, {"x": "\ud800"}, {"x": "y" * 70_000}])
def test_an_environment_that_cannot_be_shown_is_refused_and_submissions_stay_readable(client, tmp_path, environment):
    job = _claimed(client, tmp_path)
    body = json.dumps({"claim": job["claim"], "files": {"20261201_000000_results.json": "{}"},
                       "environment": environment})  # fmt: skip
    response = client.post(f"/api/jobs/{job['id']}/finish", content=body,
                           headers={**AUTH, "content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422 and "environment" in response.text, response.text
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "FAILED"
    assert client.get("/api/submissions").status_code == 200


@pytest.mark.parametrize("value", ["~nosuchuser", "~root", "~/x"])
def test_a_home_folder_reference_is_a_plain_422(client, value):
    response = client.post("/api/requests", json={"name": "n", "base_model": value})
    assert response.status_code == 422 and "not a hub id" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_a_body_of_invalid_utf8_is_422(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/requests", content=b"\xff\xfe", headers=headers)
    assert response.status_code == 422, response.text


def test_a_failed_audit_is_queued_again_for_another_worker_until_three_tries(tmp_path):
    from m2v_bench.leaderboard.store import MAX_AUDITS

    store = Store(tmp_path / "lb.sqlite")
    for attempt in range(MAX_AUDITS):
        store.add_worker(f"auditor{attempt}")
    store.add_job("row", "org/m", None, None, "c")
    job = store.claim_job("host", 60, identity="runner")

    def stored():
        version = store.put(*one_row("row", status="auditing", worker="runner"))
        store.add_audit(job, {"m2v_mhc": ["a"]}, exclude=["runner"], version=version)

    assert store.finish_job(job["id"], job["claim"], stored)
    for attempt in range(MAX_AUDITS):
        audit = store.claim_job("host", 60, identity=f"auditor{attempt}")
        assert audit is not None and audit["audit_of"] == str(job["id"]), attempt
        assert attempt == 0 or f"auditor{attempt - 1}" in json.loads(audit["exclude"])  # the last one that failed
        assert store.fail_job(audit["id"], audit["claim"], "no", by=f"auditor{attempt}")
    assert store.claim_job("host", 60, identity="another") is None  # no fourth audit
    (row,) = store.submissions()
    assert row.status == "disputed" and f"no audit settled it in {MAX_AUDITS} tries" in row.note
    flags = {w["name"]: w["flag"] for w in store.workers()}
    assert all("row: failed its audit" in flags[f"auditor{attempt}"] for attempt in range(MAX_AUDITS)), flags
    store.close()


def test_a_heartbeat_log_keeps_only_its_tail(tmp_path):
    from m2v_bench.leaderboard.store import MAX_LOG

    store = Store(tmp_path / "lb.sqlite")
    job_id = store.add_job("j", "org/m", None, None, "c")
    claim = store.claim_job("w", 60)["claim"]
    for _ in range(3):
        assert store.heartbeat(job_id, claim, 60, "x" * (MAX_LOG // 2) + "\n")
    log = store.job(job_id)["log"]
    assert len(log) == MAX_LOG and log.endswith("x\n")
    store.close()


def test_public_table_notes_hide_server_paths(tmp_path):
    from fastapi.testclient import TestClient

    from m2v_bench.cli import main

    db = str(tmp_path / "lb.sqlite")
    store = Store(db)
    store.add_worker("w")
    store.put(*one_row("r", worker="w"))
    store.close()
    assert main(["leaderboard", "--db", db, "workers", "revoke", "w", "--note", "see /srv/secret/case.txt"]) == 0
    with TestClient(create_app(_config(tmp_path), ui=False)) as client:
        text = client.get("/api/tables/ranking?board=sample").text
    assert "Left out r (revoked)" in text and "/srv/secret" not in text and ".../case.txt" in text
