"""A tiny InternVL3 in transformers' native classes (OpenGVLab/InternVL3-8B-hf): InternViT tower with pixel shuffle,
Qwen2 language model, 448-px tiles, a video as one tile a frame."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.testing.common import (
    QWEN2_SPECIALS,
    TINY_IMAGE,
    TINY_INITIALIZER_RANGE,
    TINY_PATCH,
    fast_tokenizer,
    qwen2_text_config,
    save_checkpoint,
    train_tokenizer,
)

INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if not loop.first %}{{ '\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>' }}{% endgeneration %}"
    "{% else %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif c['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\n<|im_start|>assistant\n' }}{% endif %}"
)
"""OpenGVLab/InternVL3-8B-hf's turns (its convert script's template): ``<|im_start|>user\\n<IMG_CONTEXT>\\nPROMPT
<|im_end|>\\n<|im_start|>assistant\\n``; a video is ``<video>\\n``, which the processor expands to
``Frame1: <img><IMG_CONTEXT>*256</img>\\nFrame2: ...``. The ``\\n`` after each ``<|im_end|>`` is written before the
next turn instead, so an answer ends on ``<|im_end|>`` (same text otherwise)."""

REAL_SHAPE = {"image_size": 448, "patch_size": 14, "max_tiles": 12}
"""InternVL3-8B-hf: InternViT-300M 448-px tiles, patch 14, pixel shuffle 0.5 -> 256 tokens a tile, crop_to_patches with
1..12 tiles (+ a thumbnail when > 1), video frames resized to 448x448, one tile each."""


def build_internvl(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    image_size: int = TINY_IMAGE,
    patch_size: int = TINY_PATCH,
    max_tiles: int = 4,
) -> Path:
    import torch  # start-up time: see common.train_tokenizer
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        InternVLVisionConfig,
    )

    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}  # fmt: skip
    tokenizer = fast_tokenizer(
        train_tokenizer(QWEN2_SPECIALS + list(named.values())),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=named,
    )
    downsample_ratio = 0.5
    side = image_size // patch_size
    assert side % 2 == 0, "InternVL's pixel shuffle needs an even number of patches a side"
    image_seq_length = int(side * side * downsample_ratio**2)
    vision = InternVLVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        image_size=[image_size, image_size], patch_size=[patch_size, patch_size], initializer_range=initializer_range,
    )  # fmt: skip
    config = InternVLConfig(
        vision_config=vision, text_config=qwen2_text_config(tokenizer, initializer_range),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=image_seq_length,
        downsample_ratio=downsample_ratio, vision_feature_layer=-1, vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    size = {"height": image_size, "width": image_size}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1, max_patches=max_tiles),
        video_processor=InternVLVideoProcessor(size=size, do_sample_frames=False),
        tokenizer=tokenizer,
        chat_template=INTERNVL_CHAT_TEMPLATE,
        image_seq_length=image_seq_length,
    )
    return save_checkpoint(out, model, processor)
