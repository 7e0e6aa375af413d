"""LoRA SFT of any registered VLM family with TRL, for one strategy. The recipes in ``recipes/`` call :func:`run`.

The paper's settings are the defaults of the recipe YAMLs, not of this code: LoRA r=8, alpha=16, dropout 0.05 on
the language model's q_proj/v_proj, 5 epochs, effective batch 32, lr 2e-4 constant after 3% warm-up
(``warmup_steps: 0.03``), max grad norm 0.3, 4-bit NF4 base. Device, dtype and quantization come from the
configs (accelerate, SFTConfig, ModelConfig).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from m2v_bench.trainers.collator import AnswerOnlyCollator
from m2v_bench.trainers.data import M2VDataArguments, to_example, training_records

from m2v_bench import __version__
from m2v_bench.datasets import get_dataset
from m2v_bench.errors import M2VError
from m2v_bench.labels import PROMPT_VERSION
from m2v_bench.models.loading import PROVENANCE_FILE, detect_family
from m2v_bench.registry import get_strategy


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None


def default_output_dir(family: str, strategy: str, target: str, meme_source: str | None) -> str:
    """``checkpoints/<family>/<strategy>-<target>[-<meme_source>]``: every run of a recipe gets its own folder."""
    memes = f"-{meme_source}" if get_strategy(strategy).memes is not None else ""
    return f"checkpoints/{family}/{strategy}-{target}{memes}"


def build_trainer(strategy: str, data_args: M2VDataArguments, training_args, model_args):
    """The SFTTrainer of one run, and what the provenance needs: (trainer, family, sources, examples, peft_config)."""
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    family = detect_family(model_args.model_name_or_path)
    # Set up the process group before from_pretrained: under ZeRO-3, from_pretrained partitions the weights as it
    # creates them (zero.Init) and must already see every rank.
    _ = training_args.device
    if training_args.deepspeed:
        import deepspeed

        deepspeed.init_distributed()  # idempotent; wraps the process group set up above (gloo on CPU, nccl on GPU)
    records, sources = training_records(strategy, data_args, training_args.seed)
    examples = [to_example(r, data_args.target) for r in records]
    dtype = model_args.dtype if model_args.dtype in ("auto", None) else getattr(torch, model_args.dtype)
    quantization = get_quantization_config(model_args)
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
        quantization_config=quantization,
        # a k-bit model is placed whole on this process's device (what TRL's get_kbit_device_map did)
        **({"device_map": {"": PartialState().local_process_index}} if quantization else {}),
    )
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    # The recipes train LoRA adapters (the paper), on the language model only unless the recipe names modules.
    model_args.use_peft = True
    model_args.lora_target_modules = model_args.lora_target_modules or family.lora_target_modules
    peft_config = get_peft_config(model_args)
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    collator = AnswerOnlyCollator(processor, family, data_args.frames, data_args.frame_cache, training_args.max_length)
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=Dataset.from_list(examples),
        data_collator=collator,
        processing_class=processor,
        peft_config=peft_config,
    )
    return trainer, family, sources, examples, peft_config


def main(strategy: str, data_args: M2VDataArguments, training_args, model_args) -> Path:
    """Train one adapter (resuming when ``resume_from_checkpoint`` is a path or true); returns its folder."""
    trainer, family, sources, examples, peft_config = build_trainer(strategy, data_args, training_args, model_args)
    processor = trainer.processing_class
    resume = training_args.resume_from_checkpoint
    if resume in ("true", "True", True):
        resume = _last_checkpoint(training_args.output_dir)
    trainer.train(resume_from_checkpoint=resume or None)
    output = Path(training_args.output_dir)
    trainer.save_model(str(output))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(output))
        provenance = {
            "family": family.name,
            "base_model": model_args.model_name_or_path,
            "strategy": strategy,
            "target": data_args.target,
            "meme_source": data_args.meme_source if get_strategy(strategy).memes is not None else None,
            "label_space": get_dataset(data_args.target).label_space_name,
            "prompt_version": PROMPT_VERSION,
            "training_data": [asdict(s) for s in sources],
            "video_fraction": data_args.video_fraction,
            "frames": data_args.frames,
            "examples": len(examples),
            "lora": {
                "r": peft_config.r,
                "alpha": peft_config.lora_alpha,
                "dropout": peft_config.lora_dropout,
                "target_modules": peft_config.target_modules,
            },  # fmt: skip
            "training": {
                k: getattr(training_args, k)
                for k in (
                    "num_train_epochs",
                    "per_device_train_batch_size",
                    "gradient_accumulation_steps",
                    "learning_rate",
                    "lr_scheduler_type",
                    "warmup_steps",
                    "max_grad_norm",
                    "seed",
                    "bf16",
                    "max_length",
                )
            },  # fmt: skip
            "world_size": trainer.accelerator.num_processes,
            "quantization": "4bit-nf4" if model_args.load_in_4bit else None,
            "resumed_from": str(resume) if resume else None,
            "steps": trainer.state.global_step,
            "m2v_bench_version": __version__,
            "git_commit": _git_commit(),
        }
        (output / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str) + "\n")
        _model_card(trainer, output, provenance)
    return output


def _model_card(trainer, output: Path, provenance: dict) -> None:
    """TRL's model card (base model, training procedure, framework versions, citations) plus what m2v-bench knows:
    the strategy, the training data with their hashes, and the command that evaluates the adapter."""
    trainer.create_model_card(
        model_name=output.name, tags=["m2v-bench", "lora", provenance["strategy"], provenance["target"]]
    )
    data = "\n".join(f"- {s['role']}: `{s['path']}` ({s['records']} samples, sha256 {s['sha256'][:12]})"
                     for s in provenance["training_data"])  # fmt: skip
    section = (
        f"\n## m2v-bench: {provenance['strategy']} -> {provenance['target']}\n\n"
        f"Base model: `{provenance['base_model']}` ({provenance['family']}). Trained with m2v-bench "
        f"{provenance['m2v_bench_version']} to answer the {provenance['label_space']} question of the paper "
        f'"Cross-Modal Transfer from Memes to Videos" (prompt version {provenance["prompt_version"]}).\n\n'
        f"Training data:\n{data}\n\nEvaluate:\n\n```bash\nlmms-eval --model m2v --model_args "
        f"pretrained={output} --tasks m2v_{provenance['target']}\n```\n\nFull record: `{PROVENANCE_FILE}`.\n"
    )
    card = output / "README.md"
    card.write_text(card.read_text(encoding="utf-8") + section, encoding="utf-8")


def _explicit_output_dir(argv: list[str]) -> bool:
    """Whether the command line or the recipe YAML names output_dir (otherwise the run gets its default folder)."""
    import argparse

    import yaml

    if any(arg == "--output_dir" or arg.startswith("--output_dir=") for arg in argv):
        return True
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config")
    path = config.parse_known_args(argv)[0].config
    if not path or not Path(path).is_file():
        return False
    try:
        recipe = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False  # TRL's parser reports it
    return isinstance(recipe, dict) and "output_dir" in recipe


def run(strategy: str, argv: list[str] | None = None) -> Path:
    """Parse ``--config recipe.yaml`` plus CLI overrides (TRL's parser) and train."""
    from trl import ModelConfig, SFTConfig, TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    explicit = _explicit_output_dir(argv)
    parser = TrlParser((M2VDataArguments, SFTConfig, ModelConfig))
    data_args, training_args, model_args = parser.parse_args_and_config(
        args=argv if explicit else [*argv, "--output_dir", "<default>"]
    )
    try:
        if data_args.strategy not in (None, strategy):
            raise M2VError(
                f"this is the {strategy} script, but the recipe says strategy: {data_args.strategy}; "
                f"run recipes/{data_args.strategy}.py with it, or pass a {strategy} recipe"
            )
        data_args.strategy = strategy
        if not explicit:
            family = detect_family(model_args.model_name_or_path).name
            training_args.output_dir = default_output_dir(family, strategy, data_args.target, data_args.meme_source)
        return main(strategy, data_args, training_args, model_args)
    except M2VError as exc:  # bad data or checkpoint: one line naming the file and the fix, no traceback
        print(f"{strategy}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
