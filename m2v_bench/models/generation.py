"""Batched generation and answer scoring for any family: what the lmms-eval model ``m2v`` and the re-annotation
pipeline's ``predict`` both run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler
from m2v_bench.models.loading import LoadedModel

MAX_NEW_TOKENS = 25
"""The paper's answer length limit (``tasks/_default_template_yaml`` says the same, checked by a test)."""
GREEDY = {"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False, "num_beams": 1}
"""The paper's decoding: greedy, at most MAX_NEW_TOKENS new tokens."""


def answer_token_count(tokenizer, prompt_text: str, full_text: str) -> int:
    """How many tokens the answer adds to a chat-templated prompt: the last ones of ``full_text``'s encoding. Counted
    on the text alone, so the visuals need no second processor pass (their tokens all lie inside the prompt)."""
    return len(tokenizer(full_text, add_special_tokens=False)["input_ids"]) - len(
        tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    )


def generation_settings(gen_kwargs: dict) -> tuple[dict, list[str]]:
    """lmms-eval-style gen_kwargs -> generate() arguments (greedy unless temperature > 0 or do_sample) and stop
    strings."""
    gen = dict(gen_kwargs)
    until = gen.pop("until", None) or []
    until = [until] if isinstance(until, str) else [stop for stop in until if stop]
    temperature = float(gen.pop("temperature", 0) or 0)
    settings: dict[str, Any] = {
        "max_new_tokens": int(gen.pop("max_new_tokens", MAX_NEW_TOKENS)),
        "do_sample": bool(gen.pop("do_sample", False)) or temperature > 0,
        "num_beams": int(gen.pop("num_beams", 1) or 1),
    }
    if settings["do_sample"]:
        settings["temperature"] = temperature or 1.0
        settings["top_p"] = float(gen.pop("top_p", None) or 1.0)
    return settings, until


class Generator:
    """Prompts + visuals in, answers out. Visuals are what tasks give (PIL images, image or video paths, frame
    folders); videos become the family's view (keyframe or ``frames`` uniform frames)."""

    def __init__(
        self,
        loaded: LoadedModel,
        frames: int = 16,
        keyframe_threshold: float = 100.0,
        frame_cache: str | None = None,
        batch_size: int = 1,
    ):
        for name, value in (("frames", frames), ("batch_size", batch_size)):
            if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < 1:
                raise M2VError(f"{name}={value!r}: must be a whole number >= 1")
        self.loaded = loaded
        self.family = loaded.family
        self.view = self.family.video_view(int(frames), float(keyframe_threshold))
        self.sampler = FrameSampler(cache_dir=frame_cache or None)
        self.batch_size = int(batch_size)

    @property
    def model(self):
        return self.loaded.model

    @property
    def processor(self):
        return self.loaded.processor

    @property
    def device(self):
        return next(self.model.parameters()).device

    def prepare(self, visuals: Sequence[Any]):
        return self.family.prepare_visuals(list(visuals or []), self.sampler, self.view)

    def chat(self, kind, count: int, prompt: str) -> str:
        return self.processor.apply_chat_template(
            self.family.messages(kind, count, prompt), add_generation_prompt=True
        )

    def encode(self, texts: list[str], kind, payloads) -> dict:
        inputs = self.family.processor_inputs(self.processor, texts, [(kind, p) for p in payloads])
        dtype = self.model.dtype
        return {
            key: value.to(self.device, dtype) if torch.is_floating_point(value) else value.to(self.device)
            for key, value in inputs.items()
        }

    def generate(
        self, items: Sequence[tuple[str, Sequence[Any]]], settings: dict | None = None, until=()
    ) -> list[str]:
        """Answers for (prompt, visuals) items, in order; batches of ``batch_size`` with one input kind each."""
        settings = settings or GREEDY
        prepared: dict[str, list] = {}
        for index, (prompt, visuals) in enumerate(items):
            kind, payload = self.prepare(visuals)
            prepared.setdefault(kind, []).append((index, prompt, payload))
        answers = [""] * len(items)
        pad = self.processor.tokenizer.pad_token_id
        for kind, group in prepared.items():
            for start in range(0, len(group), self.batch_size):
                batch = group[start : start + self.batch_size]
                texts = [self.chat(kind, len(payload), prompt) for _, prompt, payload in batch]
                inputs = self.encode(texts, kind, [payload for _, _, payload in batch])
                with torch.inference_mode():
                    output = self.model.generate(**inputs, **settings, pad_token_id=pad)
                for (index, _, _), tokens in zip(batch, output[:, inputs["input_ids"].shape[1] :], strict=True):
                    text = self.processor.tokenizer.decode(tokens, skip_special_tokens=True)
                    for stop in until:
                        text = text.split(stop)[0]
                    answers[index] = text.strip()
        return answers

    def loglikelihood(self, prompt: str, visuals: Sequence[Any], continuation: str) -> tuple[float, bool]:
        """log p(continuation | prompt, visuals) as the assistant's answer, and whether it is the greedy answer."""
        kind, payload = self.prepare(visuals)
        text = self.chat(kind, len(payload), prompt)
        full = self.encode([text + continuation], kind, [payload])
        answer = answer_token_count(self.processor.tokenizer, text, text + continuation)
        with torch.inference_mode():
            logits = self.model(**full).logits[0, -answer - 1 : -1].float()
        target = full["input_ids"][0, -answer:]
        score = torch.log_softmax(logits, dim=-1).gather(1, target[:, None]).sum().item()
        return float(score), bool((logits.argmax(-1) == target).all())
