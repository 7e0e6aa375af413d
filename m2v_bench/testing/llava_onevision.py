"""A tiny LLaVA-OneVision (llava-hf/llava-onevision-qwen2-7b-ov-hf's classes): SigLIP tower, Qwen2 language model,
anyres images, native video (frames pooled 2x2)."""

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
from m2v_bench.testing.paper_families import TINY_LLAVA_GRID

QWEN_ONEVISION_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] }}{% endfor %}{% endif %}"
    "{{ '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% if message['content'] is string %}{{ '\n' + message['content'] }}{% else %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + c['text'] }}{% endfor %}"
    "{% endif %}{{ '<|im_end|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""llava-onevision-qwen2-7b-ov-hf's turns: ``<|im_start|>user <image>\\nPROMPT<|im_end|><|im_start|>assistant\\n``
(the hub template has no newline after ``<|im_end|>``). One deliberate difference: the hub template renders an
assistant turn as ``<|im_start|>assistant \\n`` + answer (a space, and ``<|im_end|>`` outside the generation), which
is not a continuation of its own generation prompt ``<|im_start|>assistant\\n``; here it is."""

ANYRES_MAX_9_GRID = tuple((rows, cols) for rows in range(1, 7) for cols in range(1, 7))
"""LLaVA-OneVision's 36 grid pinpoints, 384x384 ... 2304x2304, in tiles."""

REAL_SHAPE = {"image_size": 384, "patch_size": 14, "grid": ANYRES_MAX_9_GRID}
"""llava-onevision-qwen2-7b-ov-hf: SigLIP-so400m 384 px patch 14 (27x27 = 729 tokens a tile, ``full`` strategy, no
CLS), anyres_max_9 over the 6x6 grid of 384-px tiles, video frames resized to 384x384 and bilinearly pooled to
ceil(27/2)^2 = 196 tokens, + 1 newline a video."""


def build_llava_onevision(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    image_size: int = TINY_IMAGE,
    patch_size: int = TINY_PATCH,
    grid: tuple[tuple[int, int], ...] = TINY_LLAVA_GRID,
) -> Path:
    import torch  # start-up time: see common.train_tokenizer
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        SiglipVisionConfig,
    )

    tokenizer = fast_tokenizer(
        train_tokenizer(QWEN2_SPECIALS + ["<image>", "<video>"]), eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    pinpoints = [[rows * image_size, cols * image_size] for rows, cols in grid]
    vision = SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=image_size,
        patch_size=patch_size, vision_use_head=False,
    )  # fmt: skip
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=qwen2_text_config(tokenizer, initializer_range),
        image_grid_pinpoints=pinpoints,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False, initializer_range=initializer_range,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config)
    size = {"height": image_size, "width": image_size}
    siglip = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints, do_pad=True, **siglip),
        video_processor=LlavaOnevisionVideoProcessor(size=size, do_sample_frames=False, **siglip),
        tokenizer=tokenizer,
        chat_template=QWEN_ONEVISION_CHAT_TEMPLATE,
        num_image_tokens=(image_size // patch_size) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
    )
    return save_checkpoint(out, model, processor)
