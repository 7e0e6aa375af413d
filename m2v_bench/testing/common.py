"""What every tiny checkpoint shares: a byte-level BPE tokenizer trained here with ``tokenizers`` on the prompts,
answers and sample sentences, the tiny sizes, and how a checkpoint is saved. The builders of each family live beside
this module; :mod:`m2v_bench.testing.tiny` registers them."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.labels import DEMONSTRATION_TEMPLATE, LABEL_SPACES, PROMPT_TEMPLATE
from m2v_bench.sample_data import NEUTRAL_SENTENCES, TEXT_CUES

TINY_IMAGE = 32
"""Tile / frame side of the tiny vision towers, in pixels."""
TINY_PATCH = 8
TINY_INITIALIZER_RANGE = 0.15
"""Weight init std of the tiny checkpoints. At transformers' usual 0.02 a 32-wide random model's logits are nearly
flat and LoRA cannot sharpen them; at 0.3 LoRA memorises the sample data instead of learning its rule."""


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


def fast_tokenizer(tokenizer, **kwargs):
    from transformers import PreTrainedTokenizerFast  # start-up time: see train_tokenizer

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs)


def save_checkpoint(out: Path, model, processor) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
"""Qwen2's chat tokens, for the families whose language model is a Qwen2 (LLaVA-OneVision, InternVL3)."""


def qwen2_text_config(tokenizer, initializer_range: float):
    """The tiny Qwen2 language model of LLaVA-OneVision and InternVL3 (untied embeddings, as their 7-8B models)."""
    from transformers import Qwen2Config  # start-up time: see train_tokenizer

    return Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=32768, rope_theta=500000.0, initializer_range=initializer_range,
        tie_word_embeddings=False, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
