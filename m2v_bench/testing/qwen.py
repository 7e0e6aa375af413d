"""Tiny random Qwen2.5-VL and Qwen3-VL checkpoints, built offline registered in m2v_bench.testing.tiny: the real
model / processor classes of transformers 5.24 with small configs, the byte-level BPE tokenizer of ``tiny``, and
chat templates shaped like the real ones plus ``{% generation %}`` markers.

Text towers 32 wide, 2 layers, 2 heads of 16 dims with their own keys and values, rope_theta 500000 (M-RoPE
sections scaled down from the real ones to the 8 rotary frequencies of a 16-dim head). Vision towers 16 wide,
2 blocks. Native resolution: the processors resize to multiples of ``patch_size * merge_size`` within the pixel
budgets, so the tiny defaults (patch 8, merge 2, temporal patch 2, budgets around 32x32) give a 32x32 image
2x2 = 4 visual tokens and a 16-frame 32x32 video 8 x 4 = 32.
"""

from __future__ import annotations

from pathlib import Path

from m2v_bench.testing.common import (
    TINY_IMAGE,
    TINY_INITIALIZER_RANGE,
    TINY_PATCH,
    fast_tokenizer,
    save_checkpoint,
    train_tokenizer,
)

QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
"""Qwen2-VL's added tokens, in the real order (ids 151643... there)."""

TINY_MERGE = 2
TINY_TEMPORAL_PATCH = 2
TINY_PIXELS = TINY_IMAGE * TINY_IMAGE
"""Pixel budgets of the tiny processors: a 32x32 image / frame keeps its size (min <= 1024 <= max), larger ones
shrink to about 64x64 (16 tokens) at most."""

REAL_SHAPES_QWEN = {
    # Qwen/Qwen2.5-VL-7B-Instruct: config.json vision_config (patch_size 14, spatial_merge_size 2,
    # temporal_patch_size 2, window_size 112, tokens_per_second 2); preprocessor_config.json min_pixels 3136
    # (56*56), max_pixels 12845056 (28*28*16384). The repo has no separate video config, so the video processor
    # reads the same budget, per frame.
    "qwen2_5_vl": {
        "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2, "window_size": 112, "tokens_per_second": 2,
        "min_pixels": 3136, "max_pixels": 12845056, "video_min_pixels": 3136, "video_max_pixels": 12845056,
    },
    # Qwen/Qwen3-VL-8B-Instruct: config.json vision_config (patch_size 16, spatial_merge_size 2,
    # temporal_patch_size 2, num_position_embeddings 2304); preprocessor_config.json size shortest_edge 65536
    # (64*32*32), longest_edge 16777216 (16384*32*32); video_preprocessor_config.json size shortest_edge 4096,
    # longest_edge 25165824 (a budget over ALL frames of a clip in Qwen3VLVideoProcessor), fps 2, do_sample_frames.
    "qwen3_vl": {
        "patch_size": 16, "merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
        "min_pixels": 65536, "max_pixels": 16777216, "video_min_pixels": 4096, "video_max_pixels": 25165824,
    },
}  # fmt: skip
"""The real checkpoints' visual geometry, as keyword arguments of the builders below."""

_VISUALS = (
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' or 'image' in c or 'image_url' in c %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' or 'video' in c %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in c %}{{ c['text'] }}{% endif %}{% endfor %}"
)
_TEXT = (
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if 'text' in c %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
)
# transformers renders chat templates with trim_blocks=True: a newline right after a block tag ({% endgeneration %})
# is dropped, so the one closing an assistant turn is written as an expression
_TURN = (
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}" + _TEXT + "<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% else %}{% if message['content'] is string %}{{ message['content'] }}{% else %}" + _VISUALS + "{% endif %}"
    "<|im_end|>\n{% endif %}"
)
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}" + _TURN + "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5-VL-Instruct's ChatML: the default system prompt when none is given, ``<|vision_start|><|image_pad|>
<|vision_end|>`` (``<|video_pad|>`` for videos) where a visual goes, ``<|im_end|>`` closing each turn."""
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}" + _TURN + "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen3-VL-Instruct's ChatML: as Qwen2.5-VL's, without a default system prompt (no tools, no thinking)."""


def _qwen_tokenizer():
    tokenizer = fast_tokenizer(train_tokenizer(QWEN_SPECIALS), eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                           "<|vision_end|>")}  # fmt: skip
    return tokenizer, ids


def build_qwen2_5_vl(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    patch_size: int = TINY_PATCH,
    merge_size: int = TINY_MERGE,
    temporal_patch_size: int = TINY_TEMPORAL_PATCH,
    window_size: int | None = None,
    tokens_per_second: int = 2,
    min_pixels: int = TINY_PIXELS,
    max_pixels: int = 4 * TINY_PIXELS,
    video_min_pixels: int = TINY_PIXELS,
    video_max_pixels: int = 4 * TINY_PIXELS,
) -> Path:
    import torch  # start-up time: see common.train_tokenizer
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer, ids = _qwen_tokenizer()
    vision = dict(
        depth=2, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=patch_size,
        spatial_merge_size=merge_size, temporal_patch_size=temporal_patch_size, tokens_per_second=tokens_per_second,
        # the real 112 px = 4x4 merged patches a window; block 0 windowed, block 1 full attention
        window_size=window_size or 4 * patch_size * merge_size, fullatt_block_indexes=[1],
        initializer_range=initializer_range,
    )  # fmt: skip
    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=4096, initializer_range=initializer_range,
        # real: mrope_section [16, 24, 24] of a 128-dim head's 64 frequencies
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    config = Qwen2_5_VLConfig(
        vision_config=vision, text_config=text, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], initializer_range=initializer_range,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    geometry = dict(patch_size=patch_size, merge_size=merge_size, temporal_patch_size=temporal_patch_size)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
                                              **geometry),
        video_processor=Qwen2VLVideoProcessor(
            size={"shortest_edge": video_min_pixels, "longest_edge": video_max_pixels}, **geometry
        ),
        tokenizer=tokenizer,
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )  # fmt: skip
    return save_checkpoint(out, model, processor)


def build_qwen3_vl(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    patch_size: int = TINY_PATCH,
    merge_size: int = TINY_MERGE,
    temporal_patch_size: int = TINY_TEMPORAL_PATCH,
    num_position_embeddings: int = 16,
    min_pixels: int = TINY_PIXELS,
    max_pixels: int = 4 * TINY_PIXELS,
    video_min_pixels: int = TINY_PIXELS,
    video_max_pixels: int = 16 * 4 * TINY_PIXELS,
) -> Path:
    import torch  # start-up time: see common.train_tokenizer
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer, ids = _qwen_tokenizer()
    vision = dict(
        depth=2, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=patch_size,
        spatial_merge_size=merge_size, temporal_patch_size=temporal_patch_size,
        num_position_embeddings=num_position_embeddings, deepstack_visual_indexes=[0],
        initializer_range=initializer_range,
    )  # fmt: skip
    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=4096, initializer_range=initializer_range,
        # real: mrope_section [24, 20, 20] (interleaved) of a 128-dim head's 64 frequencies
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0, "mrope_section": [4, 2, 2],
                         "mrope_interleaved": True},
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    config = Qwen3VLConfig(
        vision_config=vision, text_config=text, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    geometry = dict(patch_size=patch_size, merge_size=merge_size, temporal_patch_size=temporal_patch_size)
    half = [0.5, 0.5, 0.5]  # Qwen3-VL (SigLIP-2) normalises with 0.5/0.5, not CLIP's mean/std
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
                                              image_mean=half, image_std=half, **geometry),
        video_processor=Qwen3VLVideoProcessor(
            size={"shortest_edge": video_min_pixels, "longest_edge": video_max_pixels}, image_mean=half,
            image_std=half, fps=2, do_sample_frames=True, **geometry,  # as the hub config: callers pass False
        ),
        tokenizer=tokenizer,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )  # fmt: skip
    return save_checkpoint(out, model, processor)
