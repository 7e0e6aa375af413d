"""Batches for SFT: the chat-templated prompt + answer of each example, its visuals in the family's view, dynamic
padding, and labels on the answer tokens only (TRL 1.x has no video SFT, and its image collator breaks Mllama)."""

from __future__ import annotations

import torch

from m2v_bench.frames import FrameSampler
from m2v_bench.models.families import Family
from m2v_bench.models.generation import answer_token_count

IGNORE = -100


class AnswerOnlyCollator:
    """``examples`` are :func:`m2v_bench.trainers.data.to_example` dicts. Labels are -100 everywhere but the answer
    (the label word and the end-of-turn token), so the prompt, the visual tokens (Mllama's ``<|image|>`` lies outside
    its lm_head) and the padding never enter the loss."""

    def __init__(self, processor, family: Family, frames: int = 16, frame_cache: str | None = None,
                 max_length: int | None = None):  # fmt: skip
        self.processor = processor
        self.family = family
        self.view = family.video_view(frames)
        self.sampler = FrameSampler(cache_dir=frame_cache)
        self.max_length = max_length

    def _texts(self, kind, count: int, prompt: str, answer: str) -> tuple[str, str]:
        messages = self.family.messages(kind, count, prompt, answer)
        full = self.processor.apply_chat_template(messages)
        prompt_text = self.processor.apply_chat_template(messages[:1], add_generation_prompt=True)
        if not full.startswith(prompt_text):
            raise ValueError("the chat template does not render the prompt as a prefix of prompt + answer")
        return prompt_text, full

    def __call__(self, examples: list[dict]) -> dict:
        tokenizer = self.processor.tokenizer
        prepared = [self.family.prepare_visuals([e["media"]], self.sampler, self.view) for e in examples]
        texts, answer_lengths = [], []
        for example, (kind, payload) in zip(examples, prepared, strict=True):
            prompt_text, full = self._texts(kind, len(payload), example["prompt"], example["answer"])
            texts.append(full)
            answer_lengths.append(answer_token_count(tokenizer, prompt_text, full))
        tokenizer.padding_side = "right"
        batch = dict(self.family.processor_inputs(self.processor, texts, prepared))
        if self.max_length and batch["input_ids"].shape[1] > self.max_length:
            raise ValueError(
                f"a batch needs {batch['input_ids'].shape[1]} tokens, above max_length={self.max_length}; raise "
                "max_length (16 frames of LLaVA-NeXT-Video take 2304) rather than cut visual tokens"
            )
        labels = torch.full_like(batch["input_ids"], IGNORE)
        lengths = batch["attention_mask"].sum(dim=1)
        for row, (length, answer) in enumerate(zip(lengths.tolist(), answer_lengths, strict=True)):
            labels[row, length - answer : length] = batch["input_ids"][row, length - answer : length]
        batch["labels"] = labels
        return batch
