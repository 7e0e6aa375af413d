"""Tiny checkpoints of the paper's two families: Llama-3.2-Vision (Mllama) and LLaVA-NeXT-Video."""

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

TINY_LLAVA_GRID = ((1, 1), (1, 2), (2, 1))
"""LLaVA-NeXT's anyres grid of the tiny checkpoints, in tiles of TINY_IMAGE."""

LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|eot_id|>{% endgeneration %}"
    "{% else %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<|image|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|eot_id|>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
"""LLaMA-3.2-Vision-Instruct's turn format (header tokens, ``<|image|>`` where the image goes, ``<|eot_id|>``)."""

VICUNA_VIDEO_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}{{ message['content'] + ' ' }}{% endif %}"
    "{% else %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] }}{% endfor %}"
    "{{ eos_token }}{% endgeneration %}"
    "{% else %}{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] + ' ' }}"
    "{% endfor %}{% endif %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
"""LLaVA-NeXT-Video's (Vicuna) turn format: ``USER: <video>\\n... ASSISTANT: ...</s>``."""


def build_mllama(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    image_size: int = TINY_IMAGE,
    patch_size: int = TINY_PATCH,
) -> Path:
    import torch  # start-up time: see train_tokenizer
    from transformers import (
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessor,
        MllamaProcessor,
    )

    # imported here for start-up time
    from transformers.models.mllama.configuration_mllama import MllamaTextConfig, MllamaVisionConfig

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                "<|finetune_right_pad_id|>", "<|python_tag|>", "<|image|>"]  # fmt: skip
    tokenizer = fast_tokenizer(
        train_tokenizer(specials),
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<|image|>")
    assert image_token_id == len(tokenizer) - 1, "Mllama's image token must follow the text vocabulary"
    vision = MllamaVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_global_layers=1, attention_heads=2,
        image_size=image_size, patch_size=patch_size, max_num_tiles=4, intermediate_layers_indices=[0],
        vision_output_dim=32,
    )  # fmt: skip
    text = MllamaTextConfig(
        vocab_size=image_token_id, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=2, cross_attention_layers=[1], max_position_embeddings=4096, rope_theta=500000.0,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    config = MllamaConfig(
        vision_config=vision, text_config=text, image_token_index=image_token_id, initializer_range=initializer_range
    )
    torch.manual_seed(seed)
    model = MllamaForConditionalGeneration(config)
    processor = MllamaProcessor(
        image_processor=MllamaImageProcessor(size={"height": image_size, "width": image_size}, max_image_tiles=4),
        tokenizer=tokenizer,
        chat_template=LLAMA3_CHAT_TEMPLATE,
    )
    return save_checkpoint(out, model, processor)


def build_llava_next_video(
    out: Path,
    seed: int = 0,
    initializer_range: float = TINY_INITIALIZER_RANGE,
    image_size: int = TINY_IMAGE,
    patch_size: int = TINY_PATCH,
    grid: tuple[tuple[int, int], ...] = TINY_LLAVA_GRID,
) -> Path:
    import torch  # start-up time: see train_tokenizer
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    specials = ["<s>", "</s>", "<unk>", "<pad>", "<image>", "<video>"]
    tokenizer = fast_tokenizer(
        train_tokenizer(specials), bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    pinpoints = [[rows * image_size, cols * image_size] for rows, cols in grid]
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=image_size,
        patch_size=patch_size, projection_dim=16,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=4096, rope_theta=500000.0, initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    config = LlavaNextVideoConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1, spatial_pool_stride=2,
        pad_token_id=tokenizer.pad_token_id, initializer_range=initializer_range,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlavaNextVideoForConditionalGeneration(config)
    size = {"shortest_edge": image_size}
    crop = {"height": image_size, "width": image_size}
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(size=size, crop_size=crop),
        image_processor=LlavaNextImageProcessor(size=size, crop_size=crop, image_grid_pinpoints=pinpoints),
        tokenizer=tokenizer,
        chat_template=VICUNA_VIDEO_CHAT_TEMPLATE,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    return save_checkpoint(out, model, processor)
