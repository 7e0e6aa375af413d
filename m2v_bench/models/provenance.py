"""An adapter's provenance, ``m2v_provenance.json``: what trained it (base model, family, strategy, data,
hyper-parameters, versions). The one place of its schema, its writer and its readers: the recipes write it when
training ends, the loader checks an adapter against its base with it, and the leaderboard (submit, worker)
validates it before a row is stored.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from m2v_bench import __version__
from m2v_bench.atomic import atomic_write_text
from m2v_bench.datasets import get_dataset
from m2v_bench.errors import M2VError
from m2v_bench.jsonl import read_json
from m2v_bench.labels import PROMPT_VERSION
from m2v_bench.models.families import FAMILIES
from m2v_bench.registry import STRATEGIES, get_strategy, meme_sources, video_targets

PROVENANCE_FILE = "m2v_provenance.json"
TRAINING_KEYS = (
    "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate",
    "lr_scheduler_type", "warmup_steps", "max_grad_norm", "seed", "bf16", "max_length",
)  # fmt: skip
"""The training arguments (TRL's ``SFTConfig``) a provenance records."""


class Provenance(BaseModel):
    """The schema of ``m2v_provenance.json`` (other keys are kept as they are)."""

    model_config = ConfigDict(extra="allow", strict=True)
    family: str
    base_model: str = Field(min_length=1)
    strategy: str
    target: str | None = None
    meme_source: str | None = None
    video_fraction: float | None = Field(default=None, gt=0, le=1)
    prompt_version: int | None = None

    @field_validator("family", "strategy", "target", "meme_source")
    @classmethod
    def _known(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Each of these names one entry of the registry (None: not given, where the field allows it)."""
        known = {"family": list(FAMILIES), "strategy": list(STRATEGIES), "target": video_targets(),
                 "meme_source": meme_sources()}[info.field_name]  # fmt: skip
        if value is not None and value not in known:
            raise ValueError(f"unknown {info.field_name.replace('_', ' ')}; one of {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        strategy = STRATEGIES[self.strategy]
        if strategy.trains and self.target is None:
            raise ValueError(f"target: required for strategy {self.strategy}")
        if (strategy.memes is not None) != (self.meme_source is not None):
            raise ValueError(f"meme_source: {'required' if strategy.memes else 'not allowed'} for {self.strategy}")
        return self


def validate_provenance(provenance: Any, where: str, error: type[M2VError] = M2VError) -> dict:
    """The provenance checked against :class:`Provenance`; ``error`` names ``where`` and the field."""
    try:
        return Provenance.model_validate(provenance).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or str(first["msg"]).split(":", 1)[0].removeprefix("Value error, ")
        raise error(f"{where}: provenance field {field!r}: {first['msg']}") from None


def _read(path: Path) -> dict:
    provenance = read_json(path, "the recipes write it when training ends; train again or restore the file")
    if not isinstance(provenance, dict):
        raise M2VError(f"{path}: expected a JSON object (the training's provenance), got {type(provenance).__name__}")
    missing = [key for key in ("family", "strategy") if not isinstance(provenance.get(key), str)]
    if missing:
        raise M2VError(f"{path}: no {' or '.join(missing)} (a string); the m2v-bench recipes write both")
    return provenance


def read_provenance(*folders: str | None) -> dict:
    """The first local folder's ``m2v_provenance.json`` ({} when none has one); a file that is not a JSON object
    with the training's ``family`` and ``strategy`` is an error naming it."""
    for folder in folders:
        path = Path(folder) / PROVENANCE_FILE if folder else None
        if path is not None and path.is_file():
            return _read(path)
    return {}


def fetch_provenance(adapter: str | None, revision: str | None = None, cwd: Path | None = None) -> dict | None:
    """An adapter's provenance from its folder, or from its hub repository at ``revision`` (the snapshot an
    evaluation downloaded); None when there is no adapter, or its folder has no provenance. ``cwd``: the folder the
    evaluation ran in, where a relative folder name is looked for (as transformers and PEFT did)."""
    if not adapter:
        return None
    local = Path(cwd or ".") / adapter  # an absolute adapter stays itself
    if local.is_dir():
        return read_provenance(str(local)) or None
    from huggingface_hub import hf_hub_download  # imported here for start-up time

    # the hub's own downloader: transformers' cached_file would look for a folder of that name where we run first
    return _read(Path(hf_hub_download(adapter, PROVENANCE_FILE, revision=revision)))


def training_provenance(
    *, family: str, base_model: str, strategy: str, data_args, training_args, peft_config, sources, examples: int,
    world_size: int, quantization: str | None, resumed_from: str | None, steps: int, git_commit: str | None,
    skipped_media: list[dict] | None = None,
) -> dict:  # fmt: skip
    """The provenance of one training run, from its arguments (``M2VDataArguments``, TRL's ``SFTConfig``, the PEFT
    ``LoraConfig``) and its data sources."""
    return {
        "family": family,
        "base_model": base_model,
        "strategy": strategy,
        "target": data_args.target,
        "meme_source": data_args.meme_source if get_strategy(strategy).memes is not None else None,
        "label_space": get_dataset(data_args.target).label_space_name,
        "prompt_version": PROMPT_VERSION,
        "training_data": [asdict(s) for s in sources],
        "video_fraction": data_args.video_fraction,
        "frames": data_args.frames,
        "examples": examples,
        "skipped_media": list(skipped_media or []),
        "lora": {
            "r": peft_config.r,
            "alpha": peft_config.lora_alpha,
            "dropout": peft_config.lora_dropout,
            "target_modules": peft_config.target_modules,
        },
        "training": {key: getattr(training_args, key) for key in TRAINING_KEYS},
        "world_size": world_size,
        "quantization": quantization,
        "resumed_from": resumed_from,
        "steps": steps,
        "m2v_bench_version": __version__,
        "git_commit": git_commit,
    }


def write_provenance(folder: str | Path, provenance: dict) -> Path:
    """``<folder>/m2v_provenance.json``, validated against the schema, written atomically and read back first."""
    path = Path(folder) / PROVENANCE_FILE
    validate_provenance(provenance, str(path))
    text = json.dumps(provenance, indent=2, default=str) + "\n"
    return atomic_write_text(path, text, lambda tmp: validate_provenance(_read(tmp), str(path)))
