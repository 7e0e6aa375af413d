"""Batched generation and answer scoring for any family: what the lmms-eval model ``m2v`` and the re-annotation
pipeline's ``predict`` both run."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler
from m2v_bench.frames.pool import DecodePool
from m2v_bench.models.loading import LoadedModel
from m2v_bench.settings import available_cores

MAX_NEW_TOKENS = 25
"""The paper's answer length limit (``tasks/_default_template_yaml`` says the same, checked by a test)."""
GREEDY = {"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False, "num_beams": 1}
"""The paper's decoding: greedy, at most MAX_NEW_TOKENS new tokens."""
PREFETCH_BATCHES = 2
"""Batches whose visuals are prepared ahead of the one on the device: what bounds the pipeline's memory."""

T = TypeVar("T")
R = TypeVar("R")


def prefetch(
    batches: Iterable[Sequence[T]], prepare: Callable[[T], R], workers: int, ahead: int = PREFETCH_BATCHES
) -> Iterator[list[R]]:
    """``[prepare(x) for x in batch]`` for each batch, in order, computed by ``workers`` threads while the caller
    works on the previous batch: besides the batch the caller holds, at most ``ahead`` batches are prepared or
    being prepared, so memory stays bounded whatever the number of batches. The first error of a batch is raised
    when that batch is reached; work not yet started is cancelled. ``workers == 0`` turns the pipeline off: each
    batch is prepared in the caller's thread when it is reached, the model waiting. The threads hand videos to
    decoder processes (:class:`~m2v_bench.frames.pool.DecodePool`) and wait there without the GIL."""
    if workers <= 0:
        for batch in batches:
            yield [prepare(item) for item in batch]
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="m2v-prepare")
    pending: deque[list] = deque()
    source = iter(batches)

    def submit() -> None:
        batch = next(source, None)
        if batch is not None:
            pending.append([pool.submit(prepare, item) for item in batch])

    try:
        for _ in range(max(1, ahead)):
            submit()
        while pending:
            futures = pending.popleft()
            results = [future.result() for future in futures]
            submit()
            yield results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


Prepared = tuple[str, str, list]
"""A prompt with its visuals in the family's form: (prompt, kind, payload) as :meth:`Family.prepare_visuals` gives
kind and payload."""


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
    folders); videos become the family's view (keyframe, or ``frames`` uniform frames, by default the family's).

    Decoding overlaps the model: the visuals of the next ``prefetch_batches`` batches are prepared by
    ``decode_workers`` threads (default: every core) while a batch runs on the device, each handing its videos to
    one of ``decode_workers`` decoder processes (no GIL shared with the model's process); each worker decodes whole
    clips on one decoder. ``decode_workers=0`` turns the pipeline off (each batch decoded in the model's process
    when it is reached, one clip at a time on the sampler's own decoder threads)."""

    def __init__(
        self,
        loaded: LoadedModel,
        frames: int | None = None,
        keyframe_threshold: float = 100.0,
        frame_cache: str | None = None,
        batch_size: int = 1,
        decode_workers: int | None = None,
        prefetch_batches: int = PREFETCH_BATCHES,
    ):
        for name, value in (("frames", frames), ("batch_size", batch_size)):
            if value in (None, "") and name == "frames":
                continue  # the family's default
            if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < 1:
                raise M2VError(f"{name}={value!r}: must be a whole number >= 1")
        frames = loaded.family.frames if frames in (None, "") else frames
        self.loaded = loaded
        self.family = loaded.family
        self.view = self.family.video_view(int(frames), float(keyframe_threshold))
        self.decode_workers = available_cores() if decode_workers is None else int(decode_workers)
        self.prefetch_batches = int(prefetch_batches)
        if self.decode_workers:
            self.sampler = DecodePool(FrameSampler(cache_dir=frame_cache or None, threads=1), self.decode_workers)
        else:
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

    def pipeline(self, batches: Iterable[Sequence[T]], prepare: Callable[[T], R]) -> Iterator[list[R]]:
        """:func:`prefetch` with this generator's workers and depth."""
        return prefetch(batches, prepare, self.decode_workers, self.prefetch_batches)

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
        """Answers for (prompt, visuals) items, in order; batches of ``batch_size``, the next batches' visuals
        prepared while one generates."""
        batches = [items[start : start + self.batch_size] for start in range(0, len(items), self.batch_size)]
        answers: list[str] = []
        for prepared in self.pipeline(batches, lambda item: (item[0], *self.prepare(item[1]))):
            answers.extend(self.generate_prepared(prepared, settings, until))
        return answers

    def generate_prepared(self, items: Sequence[Prepared], settings: dict | None = None, until=()) -> list[str]:
        """Answers for prepared (prompt, kind, payload) items, in order: one generate() call per input kind."""
        settings = settings or GREEDY
        by_kind: dict[str, list] = {}
        for index, (prompt, kind, payload) in enumerate(items):
            by_kind.setdefault(kind, []).append((index, prompt, payload))
        answers = [""] * len(items)
        pad = self.processor.tokenizer.pad_token_id
        for kind, batch in by_kind.items():
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

    def score_prepared(self, items: Sequence[tuple[str, str, list, Sequence[str]]]) -> list[list[tuple[float, bool]]]:
        """For each (prompt, kind, payload, answers) item, ``(log p(answer | prompt, visuals), is greedy)`` of each
        answer. The prompt and its visuals go through the model once; all the answers then go through ONE batched
        forward pass on top of the prompt's cached keys and values."""
        return [self._score(prompt, kind, payload, list(answers)) for prompt, kind, payload, answers in items]

    def _score(self, prompt: str, kind, payload, answers: list[str]) -> list[tuple[float, bool]]:
        tokenizer = self.processor.tokenizer
        text = self.chat(kind, len(payload), prompt)
        inputs = self.encode([text], kind, [payload])
        length = inputs["input_ids"].shape[1]
        targets = []
        for answer in answers:  # the answer's tokens as the full text encodes them (see answer_token_count)
            count = answer_token_count(tokenizer, text, text + answer)
            targets.append(tokenizer(text + answer, add_special_tokens=False)["input_ids"][-count:])
        width = max(len(target) for target in targets)
        ids = torch.full((len(answers), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(answers), width), dtype=torch.long)
        for row, target in enumerate(targets):
            ids[row, : len(target)], mask[row, : len(target)] = torch.tensor(target), 1
        device = self.device
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`past_key_values` is deprecated", FutureWarning)
            prompt_out = self.model(**inputs, use_cache=True)
            cache = prompt_out.past_key_values
            cache.batch_repeat_interleave(len(answers))
            step = {
                "input_ids": ids.to(device),
                "attention_mask": torch.cat([inputs["attention_mask"].repeat(len(answers), 1), mask.to(device)], 1),
                "cache": cache,
                "cache_position": torch.arange(length, length + width, device=device),
                "use_cache": True,
            }
            deltas = self._rope_deltas()
            if deltas is not None:  # Qwen-VL's 3-D rotary positions: the answers continue the prompt's, shifted
                positions = torch.arange(length, length + width, device=device).view(1, 1, -1)
                step["position_ids"] = positions.expand(3, len(answers), -1) + deltas.to(device).view(1, -1, 1)[:, :1]
            if "cross_attention_mask" in inputs:  # Mllama: the answer tokens attend to the prompt's image
                step["cross_attention_mask"] = inputs["cross_attention_mask"][:, -1:].repeat(len(answers), width, 1, 1)
            logits = self.model(**step).logits.float()
        first = prompt_out.logits[0, -1].float()
        scores = []
        for row, target in enumerate(targets):
            answer_logits = torch.cat([first[None], logits[row, : len(target) - 1]])
            target = torch.tensor(target, device=answer_logits.device)
            score = torch.log_softmax(answer_logits, dim=-1).gather(1, target[:, None]).sum().item()
            scores.append((float(score), bool((answer_logits.argmax(-1) == target).all())))
        return scores

    def _rope_deltas(self):
        """The offset of text positions after the visuals that a multimodal-rotary model (Qwen-VL) computed in its
        last forward pass, or None for models with plain 1-D positions."""
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return getattr(getattr(model, "model", None), "rope_deltas", None)

    def loglikelihood(self, prompt: str, visuals: Sequence[Any], continuation: str) -> tuple[float, bool]:
        """log p(continuation | prompt, visuals) as the assistant's answer, and whether it is the greedy answer."""
        kind, payload = self.prepare(visuals)
        return self.score_prepared([(prompt, kind, payload, [continuation])])[0][0]
