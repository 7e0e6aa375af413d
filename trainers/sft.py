"""LoRA SFT of any registered VLM family with TRL, for one strategy. The recipes in ``recipes/`` call :func:`run`.

The paper's settings are the defaults of the recipe YAMLs, not of this code: LoRA r=8, alpha=16, dropout 0.05 on
the language model's q_proj/v_proj, 5 epochs, effective batch 32, lr 2e-4 constant after 3% warm-up
(``warmup_steps: 0.03``), max grad norm 0.3, 4-bit NF4 base. Device, dtype and quantization come from the
configs (accelerate, SFTConfig, ModelConfig).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import yaml

from m2v_bench.errors import M2VError
from m2v_bench.models.loading import detect_family
from m2v_bench.models.provenance import PROVENANCE_FILE, training_provenance, write_provenance
from m2v_bench.registry import get_strategy
from m2v_bench.trainers.collator import AnswerOnlyCollator
from m2v_bench.trainers.data import M2VDataArguments, check_strategy, to_example, training_records, usable_records

logger = logging.getLogger(__name__)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def checkpoint_problem(folder: Path) -> str | None:
    """Why a ``checkpoint-N`` folder cannot be resumed from (None: it is complete). A run killed while saving leaves
    the newest checkpoint torn: no or unreadable trainer_state.json, missing or truncated weights."""
    state = folder / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))["global_step"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"trainer_state.json is missing or unreadable ({exc.__class__.__name__})"
    weights = [p for p in folder.glob("*.safetensors") if p.is_file()] + [
        p for p in folder.glob("*.bin") if p.is_file()
    ]
    if not weights:
        return "no weights file (adapter_model.safetensors)"
    for path in weights:
        if path.suffix != ".safetensors":
            continue
        try:
            from safetensors import safe_open  # imported here for start-up time

            with safe_open(str(path), framework="pt") as fh:
                for key in fh.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    fh.get_slice(key)
        except Exception as exc:  # noqa: BLE001 (safetensors raises its own error types for torn files)
            return f"{path.name} is truncated or corrupt ({exc.__class__.__name__})"
    return None


def _checkpoints(output_dir: Path) -> list[Path]:
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR  # imported here for start-up time

    found = [
        p for p in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def _last_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint; a torn newer one is skipped, and the fall-back is said."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    for checkpoint in _checkpoints(folder):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return str(checkpoint)
        logger.warning("%s is incomplete (%s): a run was killed while saving it; resuming from the previous "
                       "checkpoint instead", checkpoint, problem)  # fmt: skip
    return None


def resolve_resume(value, output_dir: str) -> str | None:
    """``resume_from_checkpoint``: true = the newest complete checkpoint of ``output_dir`` (none: start fresh), a
    path = that checkpoint, which must exist and be complete."""
    if value in (None, False, "", "false", "False"):
        return None
    if value in ("true", "True", True):
        return _last_checkpoint(output_dir)
    path = Path(str(value))
    if not path.is_dir():
        raise M2VError(
            f"resume_from_checkpoint {value}: no such checkpoint folder; pass an existing checkpoint-N folder, or "
            "true to resume from the newest one in output_dir"
        )
    problem = checkpoint_problem(path)
    if problem is not None:
        raise M2VError(f"resume_from_checkpoint {value}: {problem}; pick an earlier checkpoint-N folder")
    return str(path)


def _planned_steps(training_args, examples: int, world_size: int) -> int:
    """The optimizer steps the Trainer will run (max_steps, else epochs x updates per epoch)."""
    if training_args.max_steps > 0:
        return training_args.max_steps
    batches = math.ceil(examples / (training_args.per_device_train_batch_size * max(1, world_size)))
    per_epoch = max(1, batches // training_args.gradient_accumulation_steps)
    return math.ceil(training_args.num_train_epochs * per_epoch)


def check_finished(checkpoint: str, planned: int) -> None:
    """Resuming a run that already reached its last step would train one step past it: refuse, nothing changes."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    step = int(state["global_step"])
    if step >= planned:
        raise M2VError(
            f"{checkpoint}: the run already finished (step {step} of {planned}); nothing to resume. To train further, "
            "raise num_train_epochs or max_steps; to train again, give a new output_dir"
        )


def check_training_args(data_args: M2VDataArguments, training_args) -> None:
    """Settings that make no sense, refused before anything loads."""
    if training_args.max_length is not None and training_args.max_length <= 0:
        raise M2VError(
            f"max_length {training_args.max_length}: must be a positive number of tokens (e.g. 1024; omit it to "
            "keep the recipe's)"
        )
    if training_args.max_steps == 0 or (training_args.max_steps < 0 and training_args.num_train_epochs <= 0):
        raise M2VError(
            f"num_train_epochs {training_args.num_train_epochs} / max_steps {training_args.max_steps}: the run would "
            "train nothing; set num_train_epochs > 0 (or max_steps > 0)"
        )
    if data_args.frames is not None and data_args.frames < 1:
        raise M2VError(f"frames {data_args.frames}: a video needs at least 1 frame")
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if getattr(training_args, name) < 1:
            raise M2VError(f"{name} {getattr(training_args, name)}: must be at least 1")


def default_output_dir(family: str, strategy: str, target: str, meme_source: str | None) -> str:
    """``checkpoints/<family>/<strategy>-<target>[-<meme_source>]``: every run of a recipe gets its own folder."""
    memes = f"-{meme_source}" if get_strategy(strategy).memes is not None else ""
    return f"checkpoints/{family}/{strategy}-{target}{memes}"


def build_trainer(strategy: str, data_args: M2VDataArguments, training_args, model_args):
    """The SFTTrainer of one run, and what the provenance needs: (trainer, family, sources, examples, peft_config,
    samples left out for unusable media). The data, their media and their length are checked before the model
    loads."""
    import torch  # imported here for start-up time
    from accelerate import PartialState  # imported here for start-up time
    from datasets import Dataset  # imported here for start-up time
    from transformers import AutoModelForImageTextToText, AutoProcessor  # imported here for start-up time
    from trl import SFTTrainer, get_peft_config, get_quantization_config  # imported here for start-up time

    family = detect_family(model_args.model_name_or_path)
    data_args.frames = data_args.frames or family.frames
    # Set up the process group before from_pretrained: under ZeRO-3, from_pretrained partitions the weights as it
    # creates them (zero.Init) and must already see every rank.
    _ = training_args.device
    if training_args.deepspeed:
        import deepspeed  # imported here for start-up time

        deepspeed.init_distributed()  # idempotent; wraps the process group set up above (gloo on CPU, nccl on GPU)
    records, sources = training_records(strategy, data_args, training_args.seed)
    records, skipped = usable_records(records, sources)
    examples = [to_example(r, data_args.target) for r in records]
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    collator = AnswerOnlyCollator(processor, family, data_args.frames, data_args.frame_cache, training_args.max_length)
    collator.check_fits(examples)  # before the model loads: a too-short max_length is one line naming the numbers
    dtype = model_args.dtype if model_args.dtype in ("auto", None) else getattr(torch, model_args.dtype)
    quantization = get_quantization_config(model_args)
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
        quantization_config=quantization,
        # a k-bit model is placed whole on this process's device (cuda:<local rank>, or the CPU)
        **({"device_map": {"": str(PartialState().device)}} if quantization else {}),
    )
    # The recipes train LoRA adapters (the paper), on the language model only unless the recipe names modules.
    model_args.use_peft = True
    model_args.lora_target_modules = model_args.lora_target_modules or family.lora_target_modules
    peft_config = get_peft_config(model_args)
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=Dataset.from_list(examples),
        data_collator=collator,
        processing_class=processor,
        peft_config=peft_config,
    )
    return trainer, family, sources, examples, peft_config, skipped


def main(strategy: str, data_args: M2VDataArguments, training_args, model_args) -> Path:
    """Train one adapter (resuming when ``resume_from_checkpoint`` is a path or true); returns its folder."""
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    trainer, family, sources, examples, peft_config, skipped = build_trainer(
        strategy, data_args, training_args, model_args
    )
    processor = trainer.processing_class
    if resume:
        check_finished(resume, _planned_steps(training_args, len(examples), trainer.accelerator.num_processes))
    trainer.train(resume_from_checkpoint=resume or None)
    output = Path(training_args.output_dir)
    trainer.save_model(str(output))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(output))
        provenance = training_provenance(
            family=family.name, base_model=model_args.model_name_or_path, strategy=strategy, data_args=data_args,
            training_args=training_args, peft_config=peft_config, sources=sources, examples=len(examples),
            world_size=trainer.accelerator.num_processes,
            quantization="4bit-nf4" if model_args.load_in_4bit else None,
            resumed_from=str(resume) if resume else None, steps=trainer.state.global_step, git_commit=_git_commit(),
            skipped_media=skipped,
        )  # fmt: skip
        write_provenance(output, provenance)
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


def _known_options(parser) -> list[str]:
    """The recipe keys (dataclass fields) the parser knows."""
    return sorted({action.dest for action in parser._actions if action.dest != "help"})


def _known_flags(parser) -> list[str]:
    """The command-line flags, without their dashes (``no_<field>`` forms included)."""
    return sorted({flag.lstrip("-") for action in parser._actions for flag in action.option_strings})


def _unknown(keys: list[str], known: list[str], where: str) -> M2VError:
    key = keys[0]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "; see the recipe YAMLs in recipes/ for the known keys"
    more = f" (and {len(keys) - 1} more: {', '.join(keys[1:4])})" if len(keys) > 1 else ""
    return M2VError(f"{where}: unknown key {key!r}{more}{hint}")


def read_recipe(path: str, known: list[str]) -> dict:
    """A recipe YAML as a mapping of known keys, with one-line errors naming the file (and line)."""

    recipe_path = Path(path)
    if not recipe_path.is_file():
        raise M2VError(f"--config {path}: no such recipe file; e.g. --config recipes/llava_next_video/vid_ft.yaml")
    try:
        recipe = yaml.safe_load(recipe_path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise M2VError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise M2VError(f"{path}{line}: not valid YAML ({problem})") from None
    if not isinstance(recipe, dict):
        raise M2VError(f"{path}: a recipe is a YAML mapping (key: value per line), got {type(recipe).__name__}")
    unknown = [str(key) for key in recipe if key != "env" and key not in known]
    if unknown:
        raise _unknown(unknown, known, path)
    return recipe


def run(strategy: str, argv: list[str] | None = None) -> Path:
    """Parse ``--config recipe.yaml`` plus CLI overrides (TRL's parser) and train. Every user error (a bad recipe,
    option, data or checkpoint) is one line naming the file or option and the fix, with exit code 2."""
    from trl import ModelConfig, SFTConfig, TrlParser  # imported here for start-up time

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = TrlParser((M2VDataArguments, SFTConfig, ModelConfig))

        def one_line(message: str):  # argparse would print its 200-line usage first
            raise M2VError(f"{message}; see --help")

        parser.error = one_line
        known = _known_options(parser)
        if "--config" in argv:
            index = argv.index("--config")
            if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
                raise M2VError("--config needs the recipe YAML, e.g. --config recipes/llava_next_video/vid_ft.yaml")
            read_recipe(argv[index + 1], known)
        elif not any(a == "--model_name_or_path" or a.startswith("--model_name_or_path=") for a in argv):
            raise M2VError(
                f"no recipe: pass --config recipes/<family>/{strategy}.yaml (or at least --model_name_or_path)"
            )
        flags = [a.split("=", 1)[0][2:] for a in argv if a.startswith("--")]
        flag_names = _known_flags(parser)
        unknown = [f for f in flags if f != "config" and f not in flag_names]
        if unknown:
            raise _unknown(unknown, flag_names, "command line")
        explicit = _explicit_output_dir(argv)
        try:
            data_args, training_args, model_args = parser.parse_args_and_config(
                args=argv if explicit else [*argv, "--output_dir", "<default>"]
            )
        except ValueError as exc:  # HfArgumentParser / TrlParser / TrainingArguments' own checks
            raise M2VError(f"recipe settings: {str(exc).splitlines()[0]}") from None
        if data_args.strategy not in (None, strategy):
            raise M2VError(
                f"this is the {strategy} script, but the recipe says strategy: {data_args.strategy}; "
                f"run recipes/{data_args.strategy}.py with it, or pass a {strategy} recipe"
            )
        data_args.strategy = strategy
        check_training_args(data_args, training_args)
        check_strategy(strategy, data_args)
        if not explicit:
            family = detect_family(model_args.model_name_or_path).name
            training_args.output_dir = default_output_dir(family, strategy, data_args.target, data_args.meme_source)
        return main(strategy, data_args, training_args, model_args)
    except M2VError as exc:  # bad recipe, data or checkpoint: one line naming the file and the fix, no traceback
        print(f"{strategy}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
