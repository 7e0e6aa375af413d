"""Batches for SFT: the chat-templated prompt + answer of each example, its visuals in the family's view, dynamic
padding, and labels on the answer tokens only (TRL 1.x has no video SFT, and its image collator breaks Mllama)."""

from __future__ import annotations

from pathlib import Path

import torch

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler
from m2v_bench.media import IMAGE_EXTENSIONS
from m2v_bench.models.families import Family
from m2v_bench.models.generation import answer_token_count

IGNORE = -100


def _media_size(example: dict) -> int:
    try:
        return Path(example["media"]).stat().st_size
    except OSError:
        return 0


def answer_span(tokenizer, prompt_text: str, full: str) -> tuple[int, int]:
    """(answer tokens, whitespace tokens after them) at the end of ``full``: the answer is the label word and the
    end-of-turn token; a newline the chat template writes after the turn (Qwen's ``<|im_end|>\n``) is not."""
    count = answer_token_count(tokenizer, prompt_text, full)
    ids = tokenizer(full, add_special_tokens=False)["input_ids"][-count:]
    after = 0
    while after < count - 1 and not tokenizer.decode(ids[-1 - after :]).strip():
        after += 1
    return count - after, after


class AnswerOnlyCollator:
    """``examples`` are :func:`m2v_bench.trainers.data.to_example` dicts. Labels are -100 everywhere but the answer
    (the label word and the end-of-turn token), so the prompt, the visual tokens (Mllama's ``<|image|>`` lies outside
    its lm_head) and the padding never enter the loss."""

    def __init__(self, processor, family: Family, frames: int | None = None, frame_cache: str | None = None,
                 max_length: int | None = None):  # fmt: skip
        self.processor = processor
        self.family = family
        self.view = family.video_view(frames)
        self.sampler = FrameSampler(cache_dir=frame_cache)
        self.max_length = max_length

    def _too_long(self, tokens: int, what: str) -> str:
        frames = f" at frames={self.view.k}" if self.view.kind == "uniform" else ""
        return (f"{self.family.name}: {what} takes {tokens} tokens{frames}, above max_length={self.max_length}; raise "
                f"max_length to at least {tokens} (recipes/{self.family.name}/*.yaml fit the real checkpoint's "
                "geometry) rather than cut visual tokens")  # fmt: skip

    def check_fits(self, examples: list[dict]) -> None:
        """Before the model loads: the examples most likely to be the longest -- per kind of media, the one with the
        longest text and the one with the largest file (the largest picture, for processors that keep the
        resolution) -- are encoded, and one over ``max_length`` is an error naming the family's numbers."""
        if not self.max_length or not examples:
            return
        candidates = {}
        for kind in {Path(e["media"]).suffix.lower() in IMAGE_EXTENSIONS for e in examples}:
            same = [e for e in examples if (Path(e["media"]).suffix.lower() in IMAGE_EXTENSIONS) == kind]
            candidates[id(max(same, key=lambda e: len(e["prompt"]) + len(e["answer"])))] = None
            candidates[id(max(same, key=_media_size))] = None
        limit, self.max_length = self.max_length, None
        try:
            for example in (e for e in examples if id(e) in candidates):
                tokens = int(self([example])["input_ids"].shape[1])
                if tokens > limit:
                    self.max_length = limit
                    raise M2VError(self._too_long(tokens, f"training sample {example.get('id', '?')}"))
        finally:
            self.max_length = limit

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
        texts, answer_spans = [], []
        for example, (kind, payload) in zip(examples, prepared, strict=True):
            prompt_text, full = self._texts(kind, len(payload), example["prompt"], example["answer"])
            texts.append(full)
            answer_spans.append(answer_span(tokenizer, prompt_text, full))
        tokenizer.padding_side = "right"
        batch = dict(self.family.processor_inputs(self.processor, texts, prepared))
        if self.max_length and batch["input_ids"].shape[1] > self.max_length:
            raise M2VError(self._too_long(int(batch["input_ids"].shape[1]), "a batch"))
        labels = torch.full_like(batch["input_ids"], IGNORE)
        lengths = batch["attention_mask"].sum(dim=1)
        for row, (length, (answer, after)) in enumerate(zip(lengths.tolist(), answer_spans, strict=True)):
            end = length - after
            labels[row, end - answer : end] = batch["input_ids"][row, end - answer : end]
        batch["labels"] = labels
        return batch
