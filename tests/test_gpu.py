"""What only a GPU can check: bf16 generation, 4-bit NF4 loading, LoRA training on a 4-bit base with gradient
checkpointing (the paper's set-up, the real recipe YAMLs unchanged), and data-parallel runs on 2 GPUs.

Every test is marked ``gpu`` (``gpu(count=2)``: two GPUs). Without CUDA they skip with the reason (tests/conftest.py),
so ``make test`` passes on a CPU machine; where CUDA is present they run with the rest of the suite. On a GPU
machine (the lock's torch is a CUDA build):

    make venv && make install
    .venv/bin/python -m pip install bitsandbytes   # 4-bit NF4: not in requirements/lock.txt (a GPU-only library)
    .venv/bin/pytest -m gpu tests/ -p no:cacheprovider

Without bitsandbytes the 4-bit tests skip and say so. The models are the tiny checkpoints with the real visual
geometry (tests/test_real_shapes.py): 2,304 visual tokens for 16 frames of LLaVA-NeXT-Video, 4 tiles of 560 px for
Mllama; the data is the bundled synthetic sample data.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from m2v_bench.datasets import get_dataset
from m2v_bench.models.families import FAMILIES

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NO_BITSANDBYTES = "4-bit NF4 needs bitsandbytes, which requirements/lock.txt leaves out: pip install bitsandbytes"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **extra}


def _items(prepared: Path, count: int = 2) -> list[tuple[str, list[str]]]:
    """(prompt, [media]) of the first MHC test videos and FHM train memes, as the tasks and re-annotation give them."""
    from m2v_bench.manifest import read_manifest

    space = get_dataset("mhc").label_space
    items = []
    for dataset, split, modality in (("mhc", "test", "video"), ("fhm", "train", "image")):
        manifest = prepared / dataset / f"{split}.jsonl"
        for record in read_manifest(manifest)[:count]:
            items.append((space.prompt(record.text, modality), [str(record.media_path(manifest.parent))]))
    return items


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(FAMILIES))
def test_bf16_generation_on_cuda(real_shapes, prepared, name):
    import torch

    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load

    loaded = load(str(real_shapes[name]), dtype="bfloat16", device="cuda")
    assert loaded.model.dtype == torch.bfloat16
    assert {p.device.type for p in loaded.model.parameters()} == {"cuda"}
    generator = Generator(loaded, frames=16, batch_size=2)
    items = _items(prepared)
    answers = generator.generate(items)
    assert len(answers) == len(items) and all(isinstance(a, str) for a in answers)
    score, _ = generator.loglikelihood(items[0][0], items[0][1], get_dataset("mhc").label_space.positive)
    assert math.isfinite(score) and score < 0


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(FAMILIES))
def test_4bit_nf4_loading(real_shapes, prepared, name):
    pytest.importorskip("bitsandbytes", reason=NO_BITSANDBYTES)
    import bitsandbytes as bnb

    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load

    loaded = load(str(real_shapes[name]), dtype="bfloat16", quantization="4bit")
    quantized = {n: m for n, m in loaded.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert any("language_model" in n and n.endswith("q_proj") for n in quantized), sorted(quantized)[:5]
    assert {m.weight.quant_type for m in quantized.values()} == {"nf4"}
    answers = Generator(loaded, frames=16, batch_size=2).generate(_items(prepared, 1))
    assert all(isinstance(a, str) for a in answers)


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(FAMILIES))
def test_lora_on_a_4bit_base_with_gradient_checkpointing(real_shapes, prepared, tmp_path, name):
    """The real recipe as a GPU user runs it (4-bit NF4 base, bf16, gradient checkpointing, frames 16, LoRA r=8),
    cut to 2 steps; the adapter then loads on the 4-bit base and generates."""
    pytest.importorskip("bitsandbytes", reason=NO_BITSANDBYTES)
    import yaml

    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load

    config = REPO / "recipes" / name / "vid_ft.yaml"
    recipe = yaml.safe_load(config.read_text())
    assert recipe["load_in_4bit"] and recipe["bf16"] and recipe["gradient_checkpointing"]
    adapter = tmp_path / "adapter"
    cmd = [str(BIN / "python"), str(REPO / "recipes" / "vid_ft.py"), "--config", str(config), "--model_name_or_path",
           str(real_shapes[name]), "--data_dir", str(prepared), "--output_dir", str(adapter), "--max_steps", "2",
           "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--save_strategy", "no",
           "--logging_steps", "1"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=_env(CUDA_VISIBLE_DEVICES="0"), capture_output=True, text=True,
                            timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((adapter / "m2v_provenance.json").read_text())
    assert provenance["quantization"] == "4bit-nf4" and provenance["steps"] == 2
    assert provenance["training"]["bf16"] is True
    loaded = load(str(adapter), dtype="bfloat16", quantization="4bit")
    assert loaded.adapter == str(adapter)
    assert all(isinstance(a, str) for a in Generator(loaded, frames=16).generate(_items(prepared, 1)))


def _samples(out: Path, task: str) -> list[dict]:
    files = list(out.rglob(f"*_samples_{task}.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


@pytest.mark.gpu(count=2)
def test_two_gpu_data_parallel_evaluation_equals_one_gpu(tiny_models, prepared, tmp_path):
    """`accelerate launch --num_processes 2 -m lmms_eval --model m2v`: each process on its own GPU, every test id
    exactly once, the metrics of a 1-GPU run."""
    model_args = f"pretrained={tiny_models['llava_next_video']},frames=16,dtype=float32"
    lmms = ["--model", "m2v", "--model_args", model_args, "--tasks", "m2v_mhc", "--device", "cuda", "--batch_size",
            "4", "--log_samples"]  # fmt: skip
    env = _env(M2V_DATA_DIR=str(prepared))
    outs = {}
    for processes in (1, 2):
        out = tmp_path / f"gpus{processes}"
        launcher = [str(BIN / "accelerate"), "launch", "--num_processes", str(processes)]
        launcher += ["--multi_gpu"] if processes > 1 else []
        cmd = [*launcher, "-m", "lmms_eval", *lmms, "--output_path", str(out)]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        assert list(out.rglob("*_results.json")), result.stderr[-3000:]
        outs[processes] = out
    one, two = (_samples(outs[n], "m2v_mhc") for n in (1, 2))
    ids = [s["macro_f1"]["id"] for s in two]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(s["macro_f1"]["id"] for s in one)
    results = [json.loads(next(outs[n].rglob("*_results.json")).read_text())["results"]["m2v_mhc"] for n in (1, 2)]
    metrics = {k for k in results[0] if k.endswith(",none") and "stderr" not in k}
    assert metrics and {k: results[1][k] for k in metrics} == {k: results[0][k] for k in metrics}


@pytest.mark.gpu(count=2)
def test_two_gpu_reannotate_predict_equals_one_gpu(tiny_models, prepared, tmp_path):
    out = {n: tmp_path / f"gpus{n}.jsonl" for n in (1, 2)}
    memes = tmp_path / "memes.jsonl"
    from m2v_bench.manifest import read_manifest, with_absolute_media, write_manifest

    manifest = prepared / "fhm" / "train.jsonl"
    write_manifest(memes, with_absolute_media(read_manifest(manifest), manifest.parent)[:32])
    for processes in (1, 2):
        cmd = [str(BIN / "torchrun"), "--nproc_per_node", str(processes), "-m", "m2v_bench", "reannotate", "predict",
               "--memes", str(memes), "--target", "mhc", "--model", str(tiny_models["mllama"]), "--device", "cuda",
               "--dtype", "float32", "--batch-size", "1", "--out", str(out[processes]), "--quiet"]  # fmt: skip
        result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stderr[-3000:]
    assert out[2].read_bytes() == out[1].read_bytes()
