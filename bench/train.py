"""Training-batch benchmark: the project's collator against the paper's ("seed-style") collator, same run.

    python bench/train.py [--repeats 3] [--out DIR]

On a tiny LLaVA-NeXT-Video and the bundled sample data (Vid+RM-FT mixture: MHC videos + FHM memes), batches of 4:

* seed-style: one processor call per sample, ``padding="max_length", max_length=512``, frames read the paper's way
  (decode from the start, ``i in indices``, PIL resize to 224), labels = every non-pad token;
* project: :class:`m2v_bench.trainers.collator.AnswerOnlyCollator` -- one processor call per batch, dynamic padding,
  planned frame decoding, labels on the answer only; and the same with the frame cache warm (epochs 2..5).

Prints real/padded token ratio and samples/s (median of the repeats), and their ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from m2v_bench.models.families import FAMILIES
from m2v_bench.registry import aligned_name
from m2v_bench.sample_data import SampleDataConfig, make_sample_data, prepare_sample_data
from m2v_bench.testing.tiny import build_tiny
from m2v_bench.trainers.collator import AnswerOnlyCollator
from m2v_bench.trainers.data import M2VDataArguments, to_example, training_records

BATCH = 4


def seed_collator(processor, frames: int = 16, max_length: int = 512):
    """The paper's collate_fn (script/llava_next_video/adapter_finetuning.py), minus its device transfer."""

    def read_video_pyav(path):
        with av.open(path) as container:
            total = container.streams.video[0].frames
            indices = np.arange(0, total, total / frames).astype(int)
            kept = []
            for i, frame in enumerate(container.decode(video=0)):
                if i > indices[-1]:
                    break
                if i >= indices[0] and i in indices:
                    kept.append(np.array(Image.fromarray(frame.to_ndarray(format="rgb24")).resize((224, 224))))
        return np.stack(kept)

    def collate(examples):
        batch: dict[str, list] = {}
        for example in examples:
            is_video = example["media"].endswith(".mp4")
            kind = "video" if is_video else "image"
            messages = [
                {"role": "user", "content": [{"type": kind}, {"type": "text", "text": example["prompt"]}]},
                {"role": "assistant", "content": [{"type": "text", "text": example["answer"]}]},
            ]
            text = processor.apply_chat_template(messages, add_generation_prompt=True)
            visual = {"videos": read_video_pyav(example["media"])} if is_video else {
                "images": Image.open(example["media"]).convert("RGB").resize((224, 224))}  # fmt: skip
            inputs = processor(text=text, padding="max_length", truncation=True, max_length=max_length,
                               return_tensors="pt", **visual)  # fmt: skip
            labels = inputs["input_ids"].clone()
            labels[labels == processor.tokenizer.pad_token_id] = -100
            inputs["labels"] = labels
            for key, value in inputs.items():
                batch.setdefault(key, []).append(value.squeeze(0))
        # the paper's batches hold one kind of visual; keep the keys every sample has
        return {key: torch.stack(values) for key, values in batch.items() if len(values) == len(examples)}

    return collate


def measure(collate, batches, repeats: int) -> tuple[float, float]:
    rates, ratio = [], 0.0
    for _ in range(repeats):
        real = padded = 0
        start = time.perf_counter()
        for examples in batches:
            out = collate(examples)
            real += int(out["attention_mask"].sum())
            padded += out["attention_mask"].numel()
        rates.append(sum(len(b) for b in batches) / (time.perf_counter() - start))
        ratio = real / padded
    return ratio, statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="m2v-bench-train-"))
    raw, prepared = work / "raw", work / "prepared"
    if not prepared.exists():
        samples = make_sample_data(raw, SampleDataConfig(seed=0))
        prepare_sample_data(raw, prepared)
        from dataclasses import replace

        from m2v_bench.manifest import read_manifest, write_manifest

        truth = {s.id: s.labels["mhc"] for s in samples["fhm"]}
        memes = read_manifest(prepared / "fhm" / "train.jsonl")
        aligned = [replace(m, label=truth[m.id], label_space="offensive", media=str(m.media_path(prepared / "fhm")))
                   for m in memes]  # fmt: skip
        write_manifest(prepared / aligned_name("fhm", "mhc") / "train.jsonl", aligned)
    family = FAMILIES["llava_next_video"]
    model_dir = work / "tiny"
    if not model_dir.exists():
        build_tiny(family.name, model_dir)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    records, _ = training_records("vid_rm_ft", M2VDataArguments(target="mhc", data_dir=str(prepared)))
    examples = [to_example(r, "mhc") for r in records]
    # the paper's batches are of one kind (its mode is video or image); sort so each batch is
    examples.sort(key=lambda e: e["media"].endswith(".mp4"))
    batches = [examples[i : i + BATCH] for i in range(0, len(examples), BATCH)]
    cached = AnswerOnlyCollator(processor, family, frame_cache=str(work / "frame-cache"))
    cached(examples)  # warm the cache: what epochs 2..5 see
    rows = {
        "seed-style (max_length 512, per sample)": measure(seed_collator(processor), batches, args.repeats),
        "project": measure(AnswerOnlyCollator(processor, family), batches, args.repeats),
        "project, frame cache warm": measure(cached, batches, args.repeats),
    }
    seed_ratio, seed_rate = rows["seed-style (max_length 512, per sample)"]
    print(f"{len(examples)} examples (MHC videos + FHM memes), batches of {BATCH}, median of {args.repeats}\n")
    print("| collator | real / padded tokens | samples/s | samples/s vs seed |")
    print("| --- | --- | --- | --- |")
    for name, (ratio, rate) in rows.items():
        print(f"| {name} | {ratio:.2f} | {rate:.1f} | {rate / seed_rate:.1f}x |")
    ratio, rate = rows["project"]
    ok = ratio >= 0.9 and rate >= 2 * seed_rate
    print(f"\ntargets: real/padded >= 0.9, >= 2x seed samples/s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
