"""The lmms-eval model ``m2v``: any registered family, base or base + LoRA adapter, with the paper's frame views.

    lmms-eval --model m2v --model_args pretrained=DIR_OR_HUB_ID,adapter=LORA_DIR,frames=16,dtype=bfloat16 \\
        --tasks m2v_mhc --device cuda:0

``adapter`` is a LoRA folder or a hub id; ``adapter_revision`` pins a hub adapter's branch, tag or commit.

Videos given by a task as a file path become the family's view (Mllama: the paper's keyframe; LLaVA-NeXT-Video:
``frames`` uniform frames); images stay images.

Data parallel, lmms-eval's convention: under ``accelerate launch --num_processes N`` (or ``torchrun``) each process
loads the whole model on its own device (``cuda:{local_process_index}``, or the CPU), lmms-eval gives each rank its
share of the documents and gathers the results on rank 0. ``device_map=auto`` (one model spread over the GPUs) is
the single-process alternative and cannot be combined with several processes.

Requests are batched as lmms-eval's own wrappers batch them (its ``Collator``: grouped by generation settings,
longest prompt first, original order restored). While a batch runs on the device, the visuals of the next
``prefetch`` batches are decoded by ``decode_workers`` decoder processes (default: this process's share of the cores;
they share no GIL with the model's thread; ``decode_workers=0`` turns the pipeline off).
"""

from __future__ import annotations

import logging
import os

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.utils import Collator
from tqdm import tqdm

from m2v_bench.errors import M2VError, stops_the_run
from m2v_bench.models.generation import PREFETCH_BATCHES, Generator, generation_settings
from m2v_bench.models.loading import load
from m2v_bench.settings import available_cores

logger = logging.getLogger(__name__)


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


def _accelerator(device: str | None):
    """lmms-eval's launchers start one process per device; accelerate tells each which one it is. ``--device cpu``
    keeps every process on the CPU even where GPUs exist."""
    from accelerate import Accelerator  # imported here for start-up time

    return Accelerator(cpu=bool(device) and str(device).startswith("cpu"))


class M2V(lmms):
    @stops_the_run
    def __init__(
        self,
        pretrained: str,
        adapter: str | None = None,
        adapter_revision: str | None = None,
        frames: int | None = None,
        keyframe_threshold: float = 100.0,
        dtype: str = "auto",
        device: str | None = None,
        device_map: str | None = None,
        quantization: str | None = None,
        attn_implementation: str | None = None,
        merge: bool = False,
        batch_size: int = 1,
        frame_cache: str | None = None,
        decode_workers: int | None = None,
        prefetch: int = PREFETCH_BATCHES,
        **kwargs,
    ) -> None:
        super().__init__()
        if kwargs:
            raise M2VError(f"unknown model_args {sorted(kwargs)}; see the m2v model's arguments in README.md")
        self.accelerator = _accelerator(device)
        processes = self.accelerator.num_processes
        if processes > 1:
            if device_map:
                raise M2VError(
                    f"m2v: device_map={device_map} spreads ONE model over the devices of one process, but "
                    f"{processes} processes were launched (data parallel: one whole model per device); "
                    "drop device_map, or launch a single process"
                )
            device = str(self.accelerator.device)  # cuda:{local_process_index}, or cpu
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", processes))
        loaded = load(
            str(pretrained),
            adapter=adapter or None,
            adapter_revision=adapter_revision or None,
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
        if decode_workers is None or decode_workers == "":
            decode_workers = max(1, available_cores() // local_processes)
        self.generator = Generator(
            loaded, frames, keyframe_threshold, frame_cache, batch_size, int(decode_workers), int(prefetch)
        )
        self.batch_size_per_gpu = int(batch_size)
        self._rank, self._world_size = self.accelerator.process_index, processes
        if processes > 1 and self._rank == 0:
            logger.info("m2v: %d processes, data parallel, one model per device", processes)

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

    def _prompt_length(self, context: str) -> int:
        return len(self.generator.processor.tokenizer(context, add_special_tokens=False)["input_ids"])

    @stops_the_run
    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Greedy by default; honours max_new_tokens, temperature/do_sample, top_p, num_beams and until."""
        collator = Collator(
            [request.args for request in requests],
            lambda args: (-self._prompt_length(args[0]), args[0]),
            group_fn=lambda args: args[1],
            grouping=True,
        )
        batches = list(collator.get_batched(n=self.batch_size_per_gpu))

        def prepare(args):
            return (args[0], *self.generator.prepare(self._visuals(*args[2:])))

        answers: list[str] = []
        progress = tqdm(total=len(requests), desc="m2v generate", disable=self.rank != 0)
        for batch, prepared in zip(batches, self.generator.pipeline(batches, prepare), strict=True):
            settings, until = generation_settings(batch[0][1])
            answers.extend(self.generator.generate_prepared(prepared, settings, until))
            progress.update(len(batch))
        progress.close()
        return collator.get_original(answers)

    @stops_the_run
    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """Requests of one document with one prompt (a score task's two answers) share one decode of the visuals
        and one forward pass; ``batch_size`` documents go through the model together."""
        documents: dict[tuple, list[int]] = {}
        for index, request in enumerate(requests):
            context, _, doc_to_visual, doc_id, task, split = request.args
            documents.setdefault((context, doc_id, task, split), []).append(index)
        units = list(documents.values())
        size = self.batch_size_per_gpu
        batches = [units[start : start + size] for start in range(0, len(units), size)]

        def prepare(unit: list[int]):
            context, _, doc_to_visual, doc_id, task, split = requests[unit[0]].args
            answers = []
            for index in unit:
                continuation = requests[index].args[1]
                if callable(continuation):
                    continuation = continuation(self.task_dict[task][split][doc_id])
                answers.append(continuation)
            return (context, *self.generator.prepare(self._visuals(doc_to_visual, doc_id, task, split)), answers)

        results: list[tuple[float, bool] | None] = [None] * len(requests)
        progress = tqdm(total=len(requests), desc="m2v loglikelihood", disable=self.rank != 0)
        for batch, prepared in zip(batches, self.generator.pipeline(batches, prepare), strict=True):
            for unit, scores in zip(batch, self.generator.score_prepared(prepared), strict=True):
                for index, score in zip(unit, scores, strict=True):
                    results[index] = score
                progress.update(len(unit))
        progress.close()
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("m2v answers single-turn prompts only")
