"""The lmms-eval model ``m2v``: any registered family, base or base + LoRA adapter, with the paper's frame views.

    lmms-eval --model m2v --model_args pretrained=DIR_OR_HUB_ID,adapter=LORA_DIR,frames=16,dtype=bfloat16 \\
        --tasks m2v_mhc --device cuda:0

Videos given by a task as a file path become the family's view (Mllama: the paper's keyframe; LLaVA-NeXT-Video:
``frames`` uniform frames); images stay images.
"""

from __future__ import annotations

import logging

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from m2v_bench.models.generation import Generator, generation_settings
from m2v_bench.models.loading import load

logger = logging.getLogger(__name__)


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


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
        loaded = load(
            str(pretrained),
            adapter=adapter or None,
            dtype=dtype,
            device=device,
            device_map=device_map or None,
            quantization=quantization or None,
            attn_implementation=attn_implementation or None,
            merge=_flag(merge),
        )
        if loaded.provenance:
            # lmms-eval 0.7 has no hook to add model details to results["config"]; model_args there names the
            # checkpoint, whose m2v_provenance.json the leaderboard reads.
            logger.info("m2v checkpoint provenance: %s", loaded.provenance)
        self.generator = Generator(loaded, frames, keyframe_threshold, frame_cache, batch_size)
        self.batch_size_per_gpu = int(batch_size)
        self._rank, self._world_size = 0, 1

    @property
    def model(self):
        return self.generator.model

    @property
    def device(self):
        return self.generator.device

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    def _visuals(self, doc_to_visual, doc_id, task, split):
        return doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else []

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Greedy by default; honours max_new_tokens, temperature/do_sample, top_p, num_beams and until."""
        groups: dict[str, list] = {}
        for index, request in enumerate(requests):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            groups.setdefault(repr(sorted(gen_kwargs.items())), []).append((index, request.args))
        results = [""] * len(requests)
        progress = tqdm(total=len(requests), desc="m2v generate", disable=self.rank != 0)
        for members in groups.values():
            settings, until = generation_settings(members[0][1][1])
            for start in range(0, len(members), self.batch_size_per_gpu):
                chunk = members[start : start + self.batch_size_per_gpu]
                items = [(args[0], self._visuals(*args[2:])) for _, args in chunk]
                for (index, _), answer in zip(chunk, self.generator.generate(items, settings, until), strict=True):
                    results[index] = answer
                progress.update(len(chunk))
        progress.close()
        return results

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        results = []
        for request in tqdm(requests, desc="m2v loglikelihood", disable=self.rank != 0):
            context, continuation, doc_to_visual, doc_id, task, split = request.args
            if callable(continuation):
                continuation = continuation(self.task_dict[task][split][doc_id])
            visuals = self._visuals(doc_to_visual, doc_id, task, split)
            results.append(self.generator.loglikelihood(context, visuals, continuation))
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("m2v answers single-turn prompts only")
