"""A tiny Gemma 3 (google/gemma-3-4b-it's classes): an image-only family, SigLIP tower average-pooled to a fixed
number of soft tokens an image; a video reaches it as k frames given as k images."""

from __future__ import annotations

import math
from pathlib import Path

from m2v_bench.testing.common import (
    TINY_IMAGE,
    TINY_INITIALIZER_RANGE,
    TINY_PATCH,
    fast_tokenizer,
    save_checkpoint,
    train_tokenizer,
)

GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% if messages[0]['content'] is string %}{% set first_user_prefix = messages[0]['content'] + '\n\n' %}"
    "{% else %}{% set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' %}{% endif %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if not loop.first %}{{ '\n' }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] | trim }}{% endif %}{% endfor %}"
    "{% endif %}{{ '<end_of_turn>' }}{% endgeneration %}"
    "{% else %}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] | trim }}{% endif %}{% endfor %}{% endif %}{{ '<end_of_turn>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\n<start_of_turn>model\n' }}{% endif %}"
)
"""gemma-3-it's turns: ``<bos><start_of_turn>user\\n<start_of_image>PROMPT<end_of_turn>\\n<start_of_turn>model\\n``
(system text prefixed to the first user turn; role ``assistant`` -> ``model``; texts trimmed). The processor expands
each ``<start_of_image>`` to ``\\n\\n<start_of_image><image_soft_token>*N<end_of_image>\\n\\n``. Newline-before-next
turn as above."""

REAL_SHAPE = {"image_size": 896, "patch_size": 14, "mm_tokens_per_image": 256}
"""gemma-3-4b-it / 12b-it: SigLIP 896 px patch 14 (64x64 patches) average-pooled to 16x16 = 256 tokens an image,
pan-and-scan off."""


def build_gemma3(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    image_size: int = TINY_IMAGE,
    patch_size: int = TINY_PATCH,
    mm_tokens_per_image: int = 4,
) -> Path:
    import torch  # start-up time: see common.train_tokenizer
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    side, per_side = image_size // patch_size, math.isqrt(mm_tokens_per_image)
    if per_side**2 != mm_tokens_per_image or side % per_side:
        raise ValueError(f"mm_tokens_per_image={mm_tokens_per_image} must be a square whose side divides {side}")
    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tokenizer = fast_tokenizer(
        train_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", *named.values()]),
        bos_token="<bos>",
        eos_token="<end_of_turn>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens=named,
    )
    vision = SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=image_size,
        patch_size=patch_size, vision_use_head=False,
    )  # fmt: skip
    rope = {"rope_type": "default", "rope_theta": 500000.0}
    text = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, max_position_embeddings=32768,
        sliding_window=1024, layer_types=["sliding_attention", "full_attention"],
        rope_parameters={"sliding_attention": dict(rope), "full_attention": dict(rope)},
        initializer_range=initializer_range, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    config = Gemma3Config(
        vision_config=vision, text_config=text, mm_tokens_per_image=mm_tokens_per_image,
        boi_token_index=tokenizer.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tokenizer.convert_tokens_to_ids("<image_soft_token>"), initializer_range=initializer_range,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(
            size={"height": image_size, "width": image_size},
            image_mean=[0.5] * 3,
            image_std=[0.5] * 3,
            do_pan_and_scan=False,
        ),
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        image_seq_length=mm_tokens_per_image,
    )
    return save_checkpoint(out, model, processor)
