"""The lmms-eval model ``m2v``: any registered family, base or base + LoRA adapter, with the paper's frame views.

    lmms-eval --model m2v --model_args pretrained=DIR_OR_HUB_ID,adapter=LORA_DIR,frames=16,dtype=bfloat16 \\
        --tasks m2v_mhc --device cuda:0

Videos given by a task as a file path become the family's view (Mllama: the paper's keyframe; LLaVA-NeXT-Video:
``frames`` uniform frames); images stay images.
"""

from __future__ import annotations

from typing import Any

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from m2v_bench.frames import FrameSampler
from m2v_bench.models.loading import load


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


def _generation_settings(gen_kwargs: dict) -> tuple[dict, list[str]]:
    """lmms-eval's gen_kwargs -> generate() arguments (greedy unless temperature > 0 or do_sample) and stop strings."""
    gen = dict(gen_kwargs)
    until = gen.pop("until", None) or []
    until = [until] if isinstance(until, str) else [stop for stop in until if stop]
    temperature = float(gen.pop("temperature", 0) or 0)
    settings: dict[str, Any] = {
        "max_new_tokens": int(gen.pop("max_new_tokens", 32)),
        "do_sample": bool(gen.pop("do_sample", False)) or temperature > 0,
        "num_beams": int(gen.pop("num_beams", 1) or 1),
    }
    if settings["do_sample"]:
        settings["temperature"] = temperature or 1.0
        settings["top_p"] = float(gen.pop("top_p", None) or 1.0)
    return settings, until


class M2V(lmms):
    def __init__(
        self,
        pretrained: str,
        adapter: str | None = None,
        frames: int = 16,
        keyframe_threshold: float = 100.0,
        dtype: str = "auto",
        device: str | None = None,
        device_map: str | None = None,
        quantization: str | None = None,
        attn_implementation: str | None = None,
        merge: bool = False,
        batch_size: int = 1,
        frame_cache: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__()
        if kwargs:
            raise ValueError(f"m2v: unknown model_args {sorted(kwargs)}")
        self.loaded = load(
            str(pretrained),
            adapter=adapter or None,
            dtype=dtype,
            device=device,
            device_map=device_map or None,
            quantization=quantization or None,
            attn_implementation=attn_implementation or None,
            merge=_flag(merge),
        )
        self.family = self.loaded.family
        self.view = self.family.video_view(int(frames), float(keyframe_threshold))
        self.sampler = FrameSampler(cache_dir=frame_cache or None)
        self.batch_size_per_gpu = int(batch_size)
        self._rank, self._world_size = 0, 1

    # -- lmms-eval plumbing

    @property
    def model(self):
        return self.loaded.model

    @property
    def processor(self):
        return self.loaded.processor

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    def _visuals(self, doc_to_visual, doc_id, task, split):
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else []
        return self.family.prepare_visuals(visuals or [], self.sampler, self.view)

    def _encode(self, texts: list[str], kind, payloads):
        inputs = self.family.processor_inputs(self.processor, texts, kind, payloads)
        dtype = self.model.dtype
        return {
            key: value.to(self.device, dtype) if torch.is_floating_point(value) else value.to(self.device)
            for key, value in inputs.items()
        }

    def _chat(self, kind, count, prompt, answer=None, add_generation_prompt=True) -> str:
        messages = self.family.messages(kind, count, prompt, answer)
        return self.processor.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)

    # -- requests

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Greedy by default; honours max_new_tokens, temperature/do_sample, top_p, num_beams and until. Batches
        hold requests with the same generation settings and input kind."""
        groups: dict[tuple, list] = {}
        for index, request in enumerate(requests):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            kind, payload = self._visuals(doc_to_visual, doc_id, task, split)
            key = (repr(sorted(gen_kwargs.items())), kind)
            groups.setdefault(key, []).append((index, context, dict(gen_kwargs), kind, payload))
        results: list[str] = [""] * len(requests)
        progress = tqdm(total=len(requests), desc="m2v generate", disable=self.rank != 0)
        for items in groups.values():
            settings, until = _generation_settings(items[0][2])
            for start in range(0, len(items), self.batch_size_per_gpu):
                batch = items[start : start + self.batch_size_per_gpu]
                texts = [self._chat(kind, len(payload), context) for _, context, _, kind, payload in batch]
                inputs = self._encode(texts, batch[0][3], [item[4] for item in batch])
                with torch.inference_mode():
                    output = self.model.generate(
                        **inputs, **settings, pad_token_id=self.processor.tokenizer.pad_token_id
                    )
                for item, tokens in zip(batch, output[:, inputs["input_ids"].shape[1] :], strict=True):
                    text = self.processor.tokenizer.decode(tokens, skip_special_tokens=True)
                    for stop in until:
                        text = text.split(stop)[0]
                    results[item[0]] = text.strip()
                progress.update(len(batch))
        progress.close()
        return results

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """log p(continuation | prompt, visuals) as the assistant's answer, and whether it is the greedy answer."""
        results = []
        for request in tqdm(requests, desc="m2v loglikelihood", disable=self.rank != 0):
            context, continuation, doc_to_visual, doc_id, task, split = request.args
            if callable(continuation):
                continuation = continuation(self.task_dict[task][split][doc_id])
            kind, payload = self._visuals(doc_to_visual, doc_id, task, split)
            prompt = self._chat(kind, len(payload), context)
            full = self._encode([prompt + continuation], kind, [payload])
            prompt_length = self._encode([prompt], kind, [payload])["input_ids"].shape[1]
            with torch.inference_mode():
                logits = self.model(**full).logits[0, prompt_length - 1 : -1].float()
            target = full["input_ids"][0, prompt_length:]
            logprobs = torch.log_softmax(logits, dim=-1)
            score = logprobs.gather(1, target[:, None]).sum().item()
            results.append((float(score), bool((logits.argmax(-1) == target).all())))
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("m2v answers single-turn prompts only")
