"""Training: answer-only labels, LoRA-only updates, the recipes from the command line, resume, recipe configs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from m2v_bench.manifest import read_manifest, write_manifest
from m2v_bench.models.families import FAMILIES
from m2v_bench.sample_data import prepare_sample_data
from m2v_bench.trainers.collator import IGNORE, AnswerOnlyCollator
from m2v_bench.trainers.data import M2VDataArguments, to_example, training_records

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def data(sample_raw, tmp_path_factory):
    """Prepared sample data plus FHM re-annotated towards MHC (labels from the generator's truth, standing in for the
    re-annotation pipeline)."""
    raw, samples = sample_raw
    prepared = tmp_path_factory.mktemp("prepared")
    prepare_sample_data(raw, prepared)
    truth = {s.id: s.labels["mhc"] for s in samples["fhm"]}
    memes = read_manifest(prepared / "fhm" / "train.jsonl")
    aligned = [replace(m, label=truth[m.id], label_space="offensive", dataset="fhm_aligned_with_mhc",
                       media=str(m.media_path(prepared / "fhm"))) for m in memes]  # fmt: skip
    write_manifest(prepared / "fhm_aligned_with_mhc" / "train.jsonl", aligned)
    return prepared


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models


def test_strategies_mix_the_right_data(data):
    args = M2VDataArguments(target="mhc", meme_source="fhm", data_dir=str(data))
    counts = {s: len(training_records(s, args)[0]) for s in ("vid_ft", "om_ft", "rm_ft", "vid_rm_ft")}
    assert counts == {"vid_ft": 96, "om_ft": 128, "rm_ft": 128, "vid_rm_ft": 224}
    om = training_records("om_ft", args)[0]
    rm = training_records("rm_ft", args)[0]
    assert [r.label for r in om] != [r.label for r in rm]  # the label shift the strategies compare
    assert to_example(om[0], "mhc")["answer"] in ("offensive", "non-offensive")  # original labels, target's words
    half = training_records("vid_ft", replace(args, video_fraction=0.5))[0]
    assert len(half) == 48


@pytest.mark.parametrize("name", list(FAMILIES))
def test_collator_labels_only_the_answer(tiny, data, name):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny[name])
    args = M2VDataArguments(target="mhc", meme_source="fhm", data_dir=str(data))
    records = training_records("vid_rm_ft", args)[0]
    examples = [to_example(r, "mhc") for r in (records[0], records[1], records[-1])]  # two videos, one meme
    collator = AnswerOnlyCollator(processor, FAMILIES[name], frames=16)
    batch = collator(examples)
    end = processor.tokenizer.eos_token  # the end of the turn: <|eot_id|>, </s>, <|im_end|>, <end_of_turn>
    for row, example in enumerate(examples):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE]
        assert processor.tokenizer.decode(labelled).strip() == example["answer"] + end
        padded = batch["attention_mask"][row] == 0
        assert (batch["labels"][row][padded] == IGNORE).all()
    if name == "llava_next_video":
        assert tuple(batch["pixel_values_videos"].shape[:2]) == (2, 16)  # 16 frames per video sample
        assert "pixel_values" in batch  # and the meme as an image, in the same batch
    if name == "mllama":  # its <|image|> id lies outside lm_head: never a label
        image_token = processor.tokenizer.convert_tokens_to_ids("<|image|>")
        assert (batch["labels"] != image_token).all()


def _args(tiny_model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    config = REPO / "recipes" / "tiny" / f"{tiny_model.name}.yaml"
    return ["--config", str(config), "--model_name_or_path", str(tiny_model), "--data_dir", str(data),
            "--output_dir", str(out), *extra]  # fmt: skip


@pytest.mark.smoke
@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_few_steps_change_only_lora_parameters(tiny, data, tmp_path, name, monkeypatch):
    from trl import ModelConfig, SFTConfig, TrlParser

    from m2v_bench.trainers.sft import build_trainer

    monkeypatch.chdir(REPO)
    parser = TrlParser((M2VDataArguments, SFTConfig, ModelConfig))
    data_args, training_args, model_args = parser.parse_args_and_config(
        args=_args(tiny[name], data, tmp_path / "out", "--max_steps", "3", "--save_strategy", "no")
    )
    trainer, *_ = build_trainer("vid_rm_ft", data_args, training_args, model_args)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed, "no parameter moved"
    assert all("lora_" in n for n in changed), sorted(n for n in changed if "lora_" not in n)[:5]
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "strategy"), [("llava_next_video", "rm_ft"), ("mllama", "vid_rm_ft")])
def test_recipe_from_accelerate_launch_saves_a_loadable_adapter(tiny, data, tmp_path, name, strategy):
    from m2v_bench.models.loading import load

    out = tmp_path / "adapter"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    recipe = str(REPO / "recipes" / f"{strategy}.py")
    cmd = [
        str(BIN / "accelerate"),
        "launch",
        "--cpu",
        "--num_processes",
        "1",
        recipe,
        *_args(tiny[name], data, out, "--num_train_epochs", "1"),
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((out / "m2v_provenance.json").read_text())
    assert (provenance["family"], provenance["strategy"], provenance["target"]) == (name, strategy, "mhc")
    assert {s["role"] for s in provenance["training_data"]} >= {"memes, re-annotated"}
    assert provenance["lora"]["r"] == 8 and provenance["resumed_from"] is None
    loaded = load(str(out))
    assert loaded.adapter == str(out) and loaded.family.name == name and loaded.provenance["strategy"] == strategy
    assert "lmms-eval --model m2v" in (out / "README.md").read_text()


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tiny, data, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "python"), str(REPO / "recipes" / "vid_rm_ft.py"),
           *_args(tiny["llava_next_video"], data, out, "--num_train_epochs", "2", "--save_steps", "8",
                  "--per_device_train_batch_size", "4")]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not (out / "checkpoint-8" / "trainer_state.json").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "m2v_provenance.json").exists(), "the run finished before it was killed"
    result = subprocess.run([*cmd, "--resume_from_checkpoint", "true"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((out / "m2v_provenance.json").read_text())
    assert Path(provenance["resumed_from"]).name.startswith("checkpoint-")
    assert int(Path(provenance["resumed_from"]).name.split("-")[1]) >= 8
    assert provenance["steps"] == 2 * 224 // 4


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("strategy", ["vid_ft", "om_ft", "rm_ft", "vid_rm_ft"])
def test_real_recipes_parse_with_the_papers_hyper_parameters(family, strategy):
    from trl import ModelConfig, SFTConfig, TrlParser

    parser = TrlParser((M2VDataArguments, SFTConfig, ModelConfig))
    # use_cpu only because this machine has no GPU: SFTConfig refuses bf16 on a CPU otherwise
    data_args, training_args, model_args = parser.parse_args_and_config(
        args=["--config", str(REPO / "recipes" / family / f"{strategy}.yaml"), "--use_cpu", "true"]
    )
    assert model_args.model_name_or_path == FAMILIES[family].hub_id and data_args.strategy == strategy
    assert (model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout) == (8, 16, 0.05)
    assert model_args.load_in_4bit and model_args.bnb_4bit_quant_type == "nf4"
    assert training_args.num_train_epochs == 5 and training_args.learning_rate == 2e-4
    assert training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps == 32
    assert training_args.max_grad_norm == 0.3 and training_args.warmup_steps == 0.03
    assert training_args.lr_scheduler_type.value == "constant_with_warmup"
    if family == "llava_next_video":
        # 16 frames x 144 tokens per frame of the real LLaVA-NeXT-Video, plus the prompt and transcript
        assert training_args.max_length >= 16 * 144 + 512
        assert data_args.frames == 16


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "name"), [(2, "llava_next_video"), (3, "mllama")])
def test_deepspeed_zero_on_two_cpu_ranks(tiny, data, tmp_path, stage, name):
    """2 processes, gloo, DeepSpeed ZeRO-2/3; ZeRO-3 with parameter persistence 0 so even tiny layers are sharded."""
    from m2v_bench.models.loading import load

    config = {"zero_optimization": {"stage": stage}, "train_micro_batch_size_per_gpu": "auto",
              "gradient_accumulation_steps": "auto", "gradient_clipping": "auto"}  # fmt: skip
    if stage == 3:
        config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "ds.json").write_text(json.dumps(config))
    out = tmp_path / "adapter"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", str(REPO / "recipes" / "rm_ft.py"),
           *_args(tiny[name], data, out, "--deepspeed", str(tmp_path / "ds.json"), "--max_steps", "4")]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((out / "m2v_provenance.json").read_text())
    assert provenance["world_size"] == 2 and provenance["steps"] == 4
    lora_b = {k: v for k, v in load(str(out)).model.state_dict().items() if "lora_B" in k}
    assert lora_b and any(v.abs().max() > 0 for v in lora_b.values())  # gathered, trained (B starts at zero)


def test_bad_training_data_is_one_line(tiny, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [str(BIN / "python"), str(REPO / "recipes" / "vid_ft.py"),
           *_args(tiny["mllama"], tmp_path / "nowhere", tmp_path / "out")]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("vid_ft: error: ")
    assert "missing training manifest" in result.stderr and "Traceback" not in result.stderr


def test_a_recipe_of_another_strategy_is_refused_in_one_line(tiny, data, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [str(BIN / "python"), str(REPO / "recipes" / "rm_ft.py"),
           "--config", str(REPO / "recipes" / "mllama" / "vid_ft.yaml"), "--use_cpu", "true"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("rm_ft: error: ")]
    assert "strategy: vid_ft" in line and "recipes/vid_ft.py" in line
    assert not (tmp_path / "checkpoints").exists()


def test_output_dir_defaults_to_family_strategy_target_and_memes(tiny, data, tmp_path, monkeypatch):
    from m2v_bench.trainers import sft

    seen = []
    monkeypatch.setattr(sft, "main", lambda strategy, d, t, m: seen.append(t.output_dir) or Path(t.output_dir))
    monkeypatch.chdir(tmp_path)
    base = [*_args(tiny["mllama"], data, tmp_path / "unused")]
    base = base[: base.index("--output_dir")]  # the tiny YAMLs name no output_dir
    sft.run("rm_ft", [*base, "--target", "hatemm", "--meme_source", "mami"])
    sft.run("vid_ft", [*base, "--target", "hatemm"])
    sft.run("vid_ft", [*base, "--output_dir", "mine"])
    assert seen == ["checkpoints/mllama/rm_ft-hatemm-mami", "checkpoints/mllama/vid_ft-hatemm", "mine"]


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3"])
def test_accelerate_configs_name_no_relative_path(name, tmp_path, monkeypatch):
    """They work from any working directory: accelerate reads them whole, and they point at no other file."""
    from accelerate.commands.config.config_args import load_config_from_file

    monkeypatch.chdir(tmp_path)
    path = REPO / "recipes" / "accelerate_configs" / f"{name}.yaml"
    config = load_config_from_file(str(path))
    assert config.num_processes == 8 and config.mixed_precision == "bf16"
    if name != "ddp":
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
        assert "deepspeed_config_file" not in config.deepspeed_config


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_papers_qlora_set_up_trains_on_a_cpu(tiny, data, tmp_path, name, monkeypatch):
    """The paper's set-up, off the GPU: a 4-bit NF4 base (double quantisation) with bf16 compute and bf16 training,
    through the recipe's own options (bitsandbytes' CPU backend); two steps move the LoRA matrices only."""
    from trl import ModelConfig, SFTConfig, TrlParser

    from m2v_bench.trainers.sft import build_trainer

    monkeypatch.chdir(REPO)
    quantized = ["--load_in_4bit", "true", "--bnb_4bit_quant_type", "nf4", "--use_bnb_nested_quant", "true"]
    extra = [*quantized, "--dtype", "bfloat16", "--bf16", "true"]
    parser = TrlParser((M2VDataArguments, SFTConfig, ModelConfig))
    data_args, training_args, model_args = parser.parse_args_and_config(
        args=_args(tiny[name], data, tmp_path / "out", "--max_steps", "2", "--save_strategy", "no", *extra)
    )
    trainer, *_ = build_trainer("vid_rm_ft", data_args, training_args, model_args)
    import bitsandbytes as bnb

    layers = [m for n, m in trainer.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.weight.quant_state.quant_type == "nf4" for m in layers)
    lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert lora and all("lora_" in n for n in lora)
    assert any(not torch.equal(after[n].detach(), before) for n, before in lora.items())
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in trainer.state.log_history if "loss" in h)
