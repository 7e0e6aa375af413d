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
from m2v_bench.labels import DEMONSTRATION_TEMPLATE, LABEL_SPACES, PROMPT_TEMPLATE
from m2v_bench.sample_data import NEUTRAL_SENTENCES, TEXT_CUES

TINY_IMAGE = 32
"""Tile / frame side of the tiny vision towers, in pixels."""
TINY_PATCH = 8
TINY_LLAVA_GRID = ((1, 1), (1, 2), (2, 1))
"""LLaVA-NeXT's anyres grid of the tiny checkpoints, in tiles of TINY_IMAGE."""
REAL_SHAPES = {
    "mllama": {"image_size": 560, "patch_size": 14},
    "llava_next_video": {"image_size": 336, "patch_size": 14, "grid": ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3))},
}
"""The real checkpoints' visual geometry (their hub config.json and preprocessor_config.json):
Llama-3.2-11B-Vision: 560-px tiles, patch 14, up to 4 tiles (``max_num_tiles``); LLaVA-NeXT-Video-7B: CLIP
ViT-L/14 at 336 px, anyres grid 336x672 ... 672x672, 1008x336, 336x1008, video frames average-pooled with stride 2
(24x24 patches -> 144 tokens a frame). :func:`build_real_shape` puts it on the tiny language models."""
TINY_INITIALIZER_RANGE = 0.15
"""Weight init std of the tiny checkpoints. At transformers' usual 0.02 a 32-wide random model's logits are nearly
flat and LoRA cannot sharpen them; at 0.3 LoRA memorises the sample data instead of learning its rule."""

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


def _corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: every prompt and answer word, and the sample data's sentences."""
    lines = list(NEUTRAL_SENTENCES) + [p for phrases in TEXT_CUES.values() for p in phrases]
    for space in LABEL_SPACES.values():
        for modality in ("image", "video"):
            fields = dict(text="t", modality=modality, positive=space.positive, negative=space.negative)
            lines.append(PROMPT_TEMPLATE.format(**fields))
            lines.append(DEMONSTRATION_TEMPLATE.format(description="d", answer=space.negative, **fields))
        lines += [space.positive, space.negative, "USER: ASSISTANT: user assistant system"]
    return lines * 3


def train_tokenizer(special_tokens: list[str], vocab_size: int = 400):
    """A byte-level BPE tokenizer (any text encodes) trained on :func:`_corpus`, specials appended last."""
    # the model stack is imported in the builders, for start-up time (`m2v-bench --help` must not load torch)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    tokenizer.add_special_tokens(special_tokens)
    return tokenizer


def _fast(tokenizer, **kwargs):
    from transformers import PreTrainedTokenizerFast  # start-up time: see train_tokenizer

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs)


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
    tokenizer = _fast(
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
    return _save(out, model, processor)


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
    tokenizer = _fast(
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
    return _save(out, model, processor)


TINY_BUILDERS = {"mllama": build_mllama, "llava_next_video": build_llava_next_video}
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


def _save(out: Path, model, processor) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
