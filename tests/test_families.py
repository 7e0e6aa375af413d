"""Every registered family end to end on its tiny checkpoint, as a new user would go: two steps of a recipe, then
a leaderboard request for the base and one for the adapter, each run by a real worker (lmms-eval with ``m2v`` on a
generate task and a score task), verified and stored under the checkpoints' own names. What the steps train (LoRA
only, answer-only labels) is checked per family in tests/test_training.py; batch-size invariance in
tests/test_eval_scale.py; real shapes in tests/test_real_shapes.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from m2v_bench.leaderboard import views
from m2v_bench.leaderboard.server import create_app
from m2v_bench.leaderboard.service import Config
from m2v_bench.leaderboard.store import Store
from m2v_bench.leaderboard.worker import Worker, WorkerConfig
from m2v_bench.models.families import FAMILIES

REPO = Path(__file__).resolve().parent.parent
TOKEN = "family-token"
TASKS = ("m2v_mhc", "m2v_mhc_score")
"""A generate task and a score task."""


def _train(name: str, base: Path, data: Path, out: Path) -> Path:
    """Two optimizer steps of recipes/tiny/<family>.yaml through the recipes' entry point, in this process."""
    from m2v_bench.trainers.sft import run

    argv = ["--config", str(REPO / "recipes" / "tiny" / f"{name}.yaml"), "--model_name_or_path", str(base),
            "--data_dir", str(data), "--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no",
            "--frames", "4"]  # fmt: skip
    return run("vid_ft", argv)


NEW = [name for name, family in FAMILIES.items() if not family.paper_name]
"""The families after the paper's (the paper's two go through the same path in tests/test_leaderboard_server.py and
the demo)."""


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_a_family_trains_then_ranks_under_its_checkpoints_names(tiny_models, small_mhc, tmp_path, name, monkeypatch):
    from fastapi.testclient import TestClient
    from safetensors.torch import load_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    base, small = tiny_models[name], small_mhc
    monkeypatch.chdir(tmp_path)
    adapter = _train(name, base, small, tmp_path / f"{name}-lora")
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("language_model" in key and "lora_" in key for key in weights)  # no vision-tower LoRA
    assert any(key.endswith("lora_B.weight") and torch.count_nonzero(w) for key, w in weights.items())  # trained
    assert json.loads((adapter / "m2v_provenance.json").read_text())["steps"] == 2

    config = Config(db=tmp_path / "lb.sqlite", data_dir=small, model_dirs=[base.parent, tmp_path], token=TOKEN)
    worker_token = Store(config.db).add_worker("family-worker")  # a worker of its own, not the admin token
    with TestClient(create_app(config, ui=False)) as client:
        for request in ({"name": f"{name}-base", "base_model": str(base)},
                        {"name": f"{name}-lora", "base_model": str(base), "adapter": str(adapter)}):  # fmt: skip
            assert client.post("/api/requests", json=request).status_code == 201, request
        worker = Worker(WorkerConfig(server="http://testserver", token=worker_token, data_dir=small,
                                     work_dir=tmp_path / "work", tasks=TASKS, device="cpu", dtype="float32",
                                     batch_size=4, frames=4))  # fmt: skip
        client.headers["Authorization"] = f"Bearer {worker_token}"
        worker.http = client  # the worker's HTTP calls go to the app in this process
        for _ in range(2):
            assert worker.run_once() is not None
        jobs = {job["name"]: job for job in client.get("/api/jobs").json()}
    assert {job["state"] for job in jobs.values()} == {"FINISHED"}, {n: j["error"] for n, j in jobs.items()}

    store = Store(config.db)
    assert {(s.name, s.family, s.status, s.worker) for s in store.submissions()} == {
        (f"{name}-base", name, "verified", "family-worker"), (f"{name}-lora", name, "verified", "family-worker")
    }  # fmt: skip
    (generate, score) = [t for t in views.ranking(store, board="sample") if "verified" in t.title]
    for table in (generate, score):
        models = dict(zip(table.frame["Submission"], table.frame["Model"], strict=True))
        assert models == {f"{name}-base": f"{base.name} (local)",
                          f"{name}-lora": f"{base.name} (local) + {adapter.name} (local)"}  # fmt: skip
        assert set(table.frame["Family"]) == {name}
    assert "auroc" in {r["task"]: r for r in store.results()}["m2v_mhc_score"]
