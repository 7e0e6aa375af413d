"""Loading a checkpoint of any registered family: base, base + LoRA adapter, or merged.

Device, dtype, quantization and attention implementation are all arguments; nothing assumes a CPU, a GPU or a
dtype. ``pretrained`` may be a base checkpoint (local folder or hub id) or an adapter folder (detected by its
``adapter_config.json``, whose ``base_model_name_or_path`` then names the base).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2v_bench.errors import M2VError
from m2v_bench.models.families import Family, family_for_model_type
from m2v_bench.models.provenance import read_provenance

_DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    family: Family
    base: str
    adapter: str | None = None
    provenance: dict = field(default_factory=dict)


def _looks_local(value: str) -> bool:
    return value.startswith((".", "/", "~")) or Path(value).exists() or value.count("/") != 1


def download_adapter(repo_id: str, revision: str | None = None) -> str:
    """The local folder of a hub adapter at ``revision`` (a branch, tag or commit; None: the default branch),
    downloaded into the hub cache as transformers downloads models (``HF_HUB_OFFLINE=1``: the cache only)."""
    from huggingface_hub import snapshot_download  # imported here for start-up time

    at = f"@{revision}" if revision else ""
    try:
        return snapshot_download(repo_id=repo_id, revision=revision)
    except (OSError, ValueError) as exc:  # not found, no such revision, gated, offline without a cached copy
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise M2VError(
            f"adapter={repo_id}{at}: cannot get it from the hub ({first}); check the id and revision, or give the "
            "adapter's local folder"
        ) from None


def resolve(
    pretrained: str, adapter: str | None = None, adapter_revision: str | None = None
) -> tuple[str, str | None]:
    """(base, adapter folder): an adapter folder given as ``pretrained`` brings its own base; a hub adapter
    (``org/name``) is downloaded at ``adapter_revision``."""
    if adapter_revision and (adapter is None or _looks_local(adapter)):
        raise M2VError(
            f"adapter_revision={adapter_revision}: a revision pins a hub adapter (adapter=org/name); "
            f"{'no adapter is given' if adapter is None else f'adapter={adapter} is a local folder'}"
        )
    if adapter is not None and not _looks_local(adapter):
        adapter = download_adapter(adapter, adapter_revision)
    path = Path(pretrained).expanduser()
    if _looks_local(pretrained):
        if not path.is_dir():
            raise M2VError(f"pretrained={pretrained}: no such folder (a local checkpoint folder or a hub id org/name)")
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            if adapter is not None:
                raise M2VError(f"pretrained={pretrained} is itself a LoRA adapter; do not also pass adapter=")
            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
            if not base:
                raise M2VError(f"{path}/adapter_config.json names no base_model_name_or_path; pass pretrained=BASE")
            return base, str(path)
        if not (path / "config.json").is_file():
            raise M2VError(f"pretrained={pretrained}: no config.json there, so it is not a model checkpoint")
        pretrained = str(path)
    if adapter is not None:
        adapter_path = Path(adapter).expanduser()
        if not (adapter_path / "adapter_config.json").is_file():
            raise M2VError(f"adapter={adapter}: no adapter_config.json there, so it is not a PEFT adapter folder")
        adapter = str(adapter_path)
    return pretrained, adapter


def checkpoint_family(reference: str) -> Family | None:
    """The family of a base checkpoint, read from its ``config.json`` without loading it (a local folder, or a hub
    id whose config the hub cache holds or the hub serves); None when the config cannot be had. An unsupported
    ``model_type`` is an :class:`M2VError` naming the supported families."""
    path = Path(reference)
    if path.is_absolute():
        config_file = path / "config.json"
    else:
        from huggingface_hub import hf_hub_download  # imported here for start-up time

        try:
            config_file = Path(hf_hub_download(reference, "config.json"))
        except Exception:  # noqa: BLE001 (offline, gated, not found: the worker's run says why)
            return None
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return family_for_model_type(str(model_type), reference) if model_type else None


def detect_family(pretrained: str) -> Family:
    from transformers import AutoConfig  # imported here for start-up time

    try:
        config = AutoConfig.from_pretrained(pretrained)
    except (OSError, ValueError) as exc:
        raise M2VError(f"cannot read the config of {pretrained}: {str(exc).splitlines()[0]}") from None
    return family_for_model_type(config.model_type, pretrained)


def _torch_dtype(dtype: str):
    import torch  # imported here for start-up time

    if dtype not in _DTYPES:
        raise M2VError(f"dtype={dtype}: expected one of {_DTYPES}")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def _quantization(quantization: str | None, dtype):
    if quantization in (None, "", "none"):
        return None
    if quantization != "4bit":
        raise M2VError(f"quantization={quantization}: expected 4bit or none")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise M2VError("quantization=4bit needs bitsandbytes (pip install bitsandbytes) and a supported GPU") from None
    import torch  # imported here for start-up time

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype if dtype != "auto" else torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )


def load(
    pretrained: str,
    adapter: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
    device_map: str | None = None,
    quantization: str | None = None,
    attn_implementation: str | None = None,
    merge: bool = False,
    adapter_revision: str | None = None,
) -> LoadedModel:
    """Load a model and its processor. ``device`` moves the whole model there; ``device_map`` (e.g. ``auto``)
    lets accelerate place it instead. Neither given: transformers' default placement. ``adapter`` is a folder or a
    hub id (``adapter_revision`` pins a branch, tag or commit of it)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor  # imported here for start-up time

    base, adapter = resolve(pretrained, adapter, adapter_revision)
    family = detect_family(base)
    torch_dtype = _torch_dtype(dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if device_map:
        kwargs["device_map"] = device_map
    quantization_config = _quantization(quantization, torch_dtype)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs.setdefault("device_map", device or "auto")
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(base, **kwargs)
    except (OSError, ValueError) as exc:
        raise M2VError(f"cannot load {base}: {str(exc).splitlines()[0]}") from None
    if device and "device_map" not in kwargs:
        model.to(device)
    processor_source = adapter if adapter and (Path(adapter) / "preprocessor_config.json").is_file() else base
    processor = AutoProcessor.from_pretrained(processor_source)
    processor.tokenizer.padding_side = "left"  # batched generation pads on the left
    if adapter:
        model = attach_adapter(model, adapter, base, family)
        if merge:
            model = model.merge_and_unload()
    model.eval()
    return LoadedModel(model, processor, family, base, adapter, read_provenance(adapter, base))


def attach_adapter(model, adapter: str, base: str, family: Family):
    """Wrap ``model`` with a LoRA adapter, with one clear error when the adapter was made for another base."""
    from peft import PeftModel  # imported here for start-up time

    provenance = read_provenance(adapter)
    if provenance.get("family") and provenance["family"] != family.name:
        raise M2VError(
            f"adapter {adapter} was trained on a {provenance['family']} model, but {base} is {family.name}; "
            "pass the base it was trained on"
        )
    _check_adapter_fits(model, adapter, base)
    try:
        return PeftModel.from_pretrained(model, adapter)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise M2VError(f"adapter {adapter} does not fit base {base} (trained on another base?): {first}") from None


def _check_adapter_fits(model, adapter: str, base: str) -> None:
    """Every LoRA matrix of the adapter must sit on a linear layer of the base with matching sizes (PEFT itself
    only warns and loads what fits)."""

    from safetensors import safe_open  # imported here for start-up time

    weights = Path(adapter) / "adapter_model.safetensors"
    if not weights.is_file():
        return  # a .bin adapter: PEFT's own checks apply
    modules = dict(model.named_modules())
    problems = []
    with safe_open(str(weights), framework="pt") as tensors:
        for key in tensors.keys():  # noqa: SIM118  (safe_open has no __iter__)
            match = re.fullmatch(r"base_model\.model\.(.+)\.lora_([AB])\.weight", key)
            if not match:
                continue
            name, which = match.groups()
            layer = modules.get(name)
            shape = tuple(tensors.get_slice(key).get_shape())
            if layer is None or not hasattr(layer, "in_features"):
                problems.append(f"{name} is not a linear layer of the base")
            elif (which == "A" and shape[1] != layer.in_features) or (which == "B" and shape[0] != layer.out_features):
                problems.append(f"{name}: LoRA {which} {shape} vs layer {layer.in_features}->{layer.out_features}")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise M2VError(
            f"adapter {adapter} does not fit base {base} (trained on another base?): {'; '.join(problems[:3])}{more}"
        )
