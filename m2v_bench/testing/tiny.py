"""Tiny random checkpoints of each model family, built offline: the real model and processor classes with small
configs, a byte-level BPE tokenizer trained here with ``tokenizers``, and chat templates shaped like the real
ones plus ``{% generation %}`` markers. They exercise every code path a real checkpoint does (loading, processors,
chat templates, LoRA, generation, lmms-eval) in about a second on a CPU; only the sizes differ.

The text towers are 32 wide with two self-attention layers (Mllama adds its cross-attention layer between them),
two 16-dim heads with their own keys and values, and LLaMA-3's ``rope_theta`` of 500000: with heads this small,
slowly rotating positions let attention find a word wherever it sits in the prompt. ``initializer_range`` sets
how sharp the random model's logits are (see :data:`TINY_INITIALIZER_RANGE`).
"""

from __future__ import annotations

from pathlib import Path

from m2v_bench.errors import M2VError
from m2v_bench.testing import gemma3, internvl, llava_onevision
from m2v_bench.testing.paper_families import build_llava_next_video, build_mllama
from m2v_bench.testing.qwen import REAL_SHAPES_QWEN, build_qwen2_5_vl, build_qwen3_vl

REAL_SHAPES = {
    "mllama": {"image_size": 560, "patch_size": 14},
    "llava_next_video": {"image_size": 336, "patch_size": 14, "grid": ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3))},
    **REAL_SHAPES_QWEN,
    "llava_onevision": llava_onevision.REAL_SHAPE,
    "internvl": internvl.REAL_SHAPE,
    "gemma3": gemma3.REAL_SHAPE,
}
"""The real checkpoints' visual geometry (their hub config.json and preprocessor_config.json):
Llama-3.2-11B-Vision: 560-px tiles, patch 14, up to 4 tiles (``max_num_tiles``); LLaVA-NeXT-Video-7B: CLIP
ViT-L/14 at 336 px, anyres grid 336x672 ... 672x672, 1008x336, 336x1008, video frames average-pooled with stride 2
(24x24 patches -> 144 tokens a frame). :func:`build_real_shape` puts it on the tiny language models."""
TINY_BUILDERS = {
    "mllama": build_mllama,
    "llava_next_video": build_llava_next_video,
    "qwen2_5_vl": build_qwen2_5_vl,
    "qwen3_vl": build_qwen3_vl,
    "llava_onevision": llava_onevision.build_llava_onevision,
    "internvl": internvl.build_internvl,
    "gemma3": gemma3.build_gemma3,
}
"""One tiny builder per registered model family (:data:`m2v_bench.models.families.FAMILIES`; a test checks both
name the same families)."""


def build_tiny(family: str, out: Path, **options) -> Path:
    """A tiny random checkpoint of ``family`` (its processor and chat template included) in ``out``."""
    try:
        builder = TINY_BUILDERS[family]
    except KeyError:
        raise M2VError(f"no tiny builder for model family {family!r}; known: {', '.join(TINY_BUILDERS)}") from None
    return builder(out, **options)


def build_real_shape(family: str, out: Path, seed: int = 0) -> Path:
    """A tiny checkpoint of ``family`` with the real checkpoint's visual geometry (:data:`REAL_SHAPES`): the real
    image sizes, patch sizes, tiles, anyres grid and pooling, so the real numbers of visual tokens, on the tiny
    language model and narrow vision tower (a few MB, built offline)."""
    return build_tiny(family, out, seed=seed, **REAL_SHAPES[family])
