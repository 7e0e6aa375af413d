from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from m2v_bench.sample_data import SampleDataConfig, make_sample_data
from m2v_bench.testing.tiny import build_tiny

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The paper's released data: $M2V_REFERENCE_DIR, by default shared/reference beside the clone."""
    path = Path(os.environ.get("M2V_REFERENCE_DIR", REPO.parent / "shared" / "reference"))
    if not (path / "upstream_dataset" / "mhc.csv").is_file():
        message = f"reference data not found at {path}: set M2V_REFERENCE_DIR to the paper's released data"
        if os.environ.get("CI"):  # CI must test against the paper's data, never skip it silently
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory):
    """Synthetic raw datasets (default config, seed 0) and the generator's ground truth."""
    out = tmp_path_factory.mktemp("raw")
    samples = make_sample_data(out, SampleDataConfig(seed=0))
    return out, samples


@pytest.fixture(scope="session")
def prepared(sample_raw, tmp_path_factory):
    """The sample data prepared as `m2v-bench prepare` writes it (read-only: copy before changing anything)."""
    from m2v_bench.sample_data import prepare_sample_data

    out = tmp_path_factory.mktemp("prepared")
    prepare_sample_data(sample_raw[0], out)
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A tiny random checkpoint of every registered family, {name: folder} (read-only)."""
    from m2v_bench.models.families import FAMILIES

    root = tmp_path_factory.mktemp("tiny")
    return {name: build_tiny(name, root / name) for name, family in FAMILIES.items()}


@pytest.fixture(scope="session")
def real_shapes(tmp_path_factory):
    """Every family with its real checkpoint's visual geometry on a tiny language model, {name: folder} (read-only;
    see m2v_bench.testing.tiny.REAL_SHAPES)."""
    from m2v_bench.models.families import FAMILIES
    from m2v_bench.testing.tiny import build_real_shape

    root = tmp_path_factory.mktemp("real_shapes")
    return {name: build_real_shape(name, root / name) for name in FAMILIES}


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` (``count=N``: N GPUs) tests run wherever CUDA has enough devices, and skip with the
    reason elsewhere (tests/test_gpu.py says how to run them)."""
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for item in marked:
        needed = int(item.get_closest_marker("gpu").kwargs.get("count", 1))
        if available < needed:
            reason = f"needs {needed} CUDA GPU(s), this machine has {available} (how to run them: tests/test_gpu.py)"
            item.add_marker(pytest.mark.skip(reason=reason))


def offline_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def lmms_eval_m2v(checkpoint: Path, tasks: str, out: Path, data: Path) -> Path:
    """lmms-eval's CLI with the `m2v` model, per-sample logs on; returns the output folder (asserts results)."""
    cmd = [str(BIN / "lmms-eval"), "--model", "m2v", "--model_args", f"pretrained={checkpoint},frames=4", "--tasks",
           tasks, "--device", "cpu", "--batch_size", "8", "--output_path", str(out), "--log_samples"]  # fmt: skip
    result = subprocess.run(cmd, env=offline_env(M2V_DATA_DIR=str(data)), capture_output=True, text=True, timeout=900)
    assert list(out.rglob("*_results.json")), result.stderr[-3000:]
    return out


EVALUATED_TASKS = "m2v_mhc,m2v_hatemm,m2v_mhc_score"


def one_row(name: str, status: str = "verified", worker: str | None = None, scores: dict | None = None) -> tuple:
    """``Store.put``'s arguments for a small stored submission: one m2v_mhc result of one sample (or of ``scores``'
    samples, {id: score}, under m2v_mhc_score)."""
    from m2v_bench.leaderboard.store import Submission

    sub = Submission(name, "llava_next_video", "no_ft", None, None, "org/m", None, {}, status=status, worker=worker)
    task = "m2v_mhc" if scores is None else "m2v_mhc_score"
    predictions = [{"id": "a", "gold": 1, "pred": 1}] if scores is None else [
        {"id": i, "gold": 1, "pred": 1, "score": score} for i, score in scores.items()]  # fmt: skip
    row = {"task": task, "dataset": "mhc", "test_sha256": "0", "test_set": "sample", "n": len(predictions),
           "accuracy": 1.0, "macro_f1": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0, "invalid_rate": 0.0,
           "auroc": None, "macro_f1_low": 1.0, "macro_f1_high": 1.0}  # fmt: skip
    return sub, [row], {task: predictions}


@pytest.fixture(scope="session")
def evaluated(prepared, tiny_models, tmp_path_factory):
    """A tiny LLaVA-NeXT-Video (No-FT) and a Vid-FT adapter trained on it by the real recipe (1 epoch), each
    evaluated by lmms-eval on EVALUATED_TASKS: {prepared, base, adapter, base_out, adapter_out}."""
    root = tmp_path_factory.mktemp("evaluated")
    base = tiny_models["llava_next_video"]
    adapter = root / "vid_ft_lnv"
    cmd = [str(BIN / "python"), str(REPO / "recipes" / "vid_ft.py"), "--config",
           str(REPO / "recipes" / "tiny" / "llava_next_video.yaml"), "--model_name_or_path", str(base), "--data_dir",
           str(prepared), "--output_dir", str(adapter), "--save_strategy", "no",
           "--num_train_epochs", "1"]  # fmt: skip
    result = subprocess.run(cmd, env=offline_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return {
        "prepared": prepared,
        "base": base,
        "adapter": adapter,
        "base_out": lmms_eval_m2v(base, EVALUATED_TASKS, root / "out_base", prepared),
        "adapter_out": lmms_eval_m2v(adapter, EVALUATED_TASKS, root / "out_adapter", prepared),
    }


@pytest.fixture(scope="session")
def small_mhc(prepared, tmp_path_factory) -> Path:
    """The sample MHC data with a test set of 8 videos (the server and its worker share it): a verified run
    evaluates a whole test set, and lmms-eval's start-up is what the test should pay for, not 40 clips twice."""
    from m2v_bench.manifest import read_manifest, with_absolute_media, write_manifest

    root = tmp_path_factory.mktemp("small")
    for split, keep in (("train", None), ("test", 8)):
        manifest = prepared / "mhc" / f"{split}.jsonl"
        records = with_absolute_media(read_manifest(manifest), manifest.parent)
        write_manifest(root / "mhc" / f"{split}.jsonl", records[:keep])
    (root / "mhc" / "prepare_report.json").write_text((prepared / "mhc" / "prepare_report.json").read_text())
    return root
