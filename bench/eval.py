"""Evaluation wall time against the decode/model bound: does the `m2v` model hide decoding behind the model?

    OMP_NUM_THREADS=1 python bench/eval.py [--clips 40] [--distinct 8] [--batch-size 8] [--repeats 3]
    OMP_NUM_THREADS=1 python bench/eval.py --real-shapes-only [--real-shapes cpu] --clips 8 --distinct 2 --batch-size 4

Builds a test set of realistic clips (``--distinct`` different 640x360, 30 fps H.264 clips of 20-55 s with a keyframe
every 150-250 frames, hard-linked under ``--clips`` ids), a tiny LLaVA-NeXT-Video (16 uniform frames), and times,
in ``--repeats`` rounds (medians reported: a shared machine's speed drifts by 10% over minutes):

* decode: the 16-frame view of every clip, one clip after another on one decoder (the CPU work there is to do);
* the GIL: two clips decoded beside a thread that runs Python without pause (the model's thread on a GPU), in
  the model's process and in a decoder process (``DecodePool``);
* the full lmms-eval path (``m2v_hatemm``, ``--model m2v``) for 1 and 2 processes (``torchrun``), with a cold and
  a warm frame cache (filled by ``m2v-bench frames cache``), and today's sequential path (``decode_workers=0``: each
  batch decoded when it is reached, the model waiting) as the baseline;
* on a GPU (or ``--real-shapes DEVICE``): samples/s of the real-shape checkpoints, bf16, through the Generator.

Each lmms-eval run is timed from the first request reaching the model to the last answer, on the slowest rank
(start-up -- imports, model load, task load and media probe -- excluded: every path pays it alike), together with the
time spent inside the model (``Generator.generate_prepared``). model = that time in the warm-cache run of the same
process count, where no decoding runs beside it. The bound is ``max(decode / cores, model)``: with the model on its
own device, no schedule finishes sooner. Here the model runs on the same CPU cores as the decoders, so the CPU bound
``(decode + model) / cores`` is printed too. Figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from m2v_bench.frames import FrameSampler
from m2v_bench.frames.pool import DecodePool
from m2v_bench.manifest import Record, write_manifest
from m2v_bench.media import write_video
from m2v_bench.models.families import FAMILIES
from m2v_bench.settings import available_cores
from m2v_bench.testing.tiny import build_tiny

TIMING_ENV = "M2V_BENCH_TIMING"


def make_clip(path: Path, seconds: int, gop: int, seed: int, fps: int = 30) -> Path:
    """A 640x360 clip whose content moves (so every frame costs a real decode)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    return write_video(path, (np.roll(base, 4 * i, axis=1) for i in range(seconds * fps)), fps=fps, gop=gop)


def child() -> None:
    """Inside an lmms-eval process: time the request phase of `m2v`, then run lmms-eval's own main."""
    from m2v_bench.models.generation import Generator
    from m2v_bench.models.lmms_model import M2V

    generate, on_device = M2V.generate_until, Generator.generate_prepared
    spent = [0.0]

    def model_part(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return on_device(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    def timed(self, requests):
        start = time.time()
        answers = generate(self, requests)
        record = {"rank": self.rank, "start": start, "end": time.time(), "requests": len(requests), "model": spent[0]}
        Path(os.environ[TIMING_ENV], f"rank{self.rank}.json").write_text(json.dumps(record))
        return answers

    M2V.generate_until, Generator.generate_prepared = timed, model_part
    sys.argv = ["lmms_eval", *sys.argv[2:]]
    runpy.run_module("lmms_eval", run_name="__main__")


def lmms_eval(
    root: Path, model: Path, name: str, processes: int, model_args: str, batch_size: int
) -> tuple[float, float]:
    """Seconds from the first request to the last answer (the slowest rank's), and the seconds the busiest rank
    spent in the model (the rest it spent waiting for frames, or in lmms-eval's own per-request work)."""
    timing = root / "timing" / name
    timing.mkdir(parents=True)
    launcher = [sys.executable] if processes == 1 else [str(Path(sys.executable).parent / "torchrun"),
                                                        "--nproc_per_node", str(processes)]  # fmt: skip
    cmd = [*launcher, __file__, "--child", "--model", "m2v", "--model_args",
           f"pretrained={model},frames=16{model_args}", "--tasks", "m2v_hatemm", "--device", "cpu",
           "--batch_size", str(batch_size), "--output_path", str(root / "out" / name)]  # fmt: skip
    env = {**os.environ, "M2V_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           TIMING_ENV: str(timing)}  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    records = [json.loads(p.read_text()) for p in timing.glob("rank*.json")]
    if len(records) != processes or not list((root / "out" / name).rglob("*_results.json")):
        sys.exit(f"{name}: lmms-eval failed\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return max(r["end"] - r["start"] for r in records), max(r["model"] for r in records)


def beside_busy_python(decode) -> float:
    """Seconds ``decode()`` takes while another thread of this process runs Python without pause: what the model's
    thread does on a GPU, where ``generate`` is Python launching kernels."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=spin)
    spinner.start()
    start = time.perf_counter()
    try:
        decode()
    finally:
        stop.set()
        spinner.join()
    return time.perf_counter() - start


def measure_gil(clips: list[Path], view) -> None:
    """One decoder in the model's process against one decoder process, both beside a busy Python thread."""
    sampler = FrameSampler(threads=1)
    start = time.perf_counter()
    for clip in clips:
        sampler.sample(clip, view)
    alone = time.perf_counter() - start
    in_process = beside_busy_python(lambda: [sampler.sample(clip, view) for clip in clips])
    pool = DecodePool(FrameSampler(threads=1), 1)
    try:
        pool.sample(clips[0], view)  # the worker started, its block made
        in_worker = beside_busy_python(lambda: [pool.sample(clip, view) for clip in clips])
    finally:
        pool.close()
    print(f"{len(clips)} clips beside a busy Python thread (the model's thread on a GPU): alone {alone:.2f} s; in "
          f"the model's process {in_process:.2f} s ({in_process / alone:.1f}x); in a decoder process "
          f"{in_worker:.2f} s ({in_worker / alone:.2f}x)", flush=True)  # fmt: skip


def measure_decode(clips: list[Path], view, cache: Path | None = None) -> float:
    sampler = FrameSampler(threads=1, cache_dir=cache)
    start = time.perf_counter()
    for clip in clips:
        sampler.sample(clip, view)
    return time.perf_counter() - start


def measure_real_shapes(clips: list[Path], device: str, batch_size: int) -> None:
    """Samples/s of the real-shape checkpoints (each family's real visual geometry on a tiny language model: 2,304
    visual tokens for LLaVA-NeXT-Video's 16 frames, Mllama's 560-px tiles) through the Generator and its decoder
    processes, bf16 on a GPU: how fast the pipeline feeds the device, the language model aside."""
    import torch

    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load
    from m2v_bench.testing.tiny import build_real_shape

    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    items = [(f"clip {n}: is it hateful?", [str(clip)]) for n, clip in enumerate(clips)]
    per_token: dict[str, float] = {}
    for name in sorted(FAMILIES, key=lambda family: family != "llava_next_video"):  # the reference first
        with tempfile.TemporaryDirectory() as tmp:
            generator = Generator(load(str(build_real_shape(name, Path(tmp) / name)), dtype=dtype, device=device),
                                  batch_size=batch_size)  # fmt: skip
            try:
                generator.generate(items[:batch_size])  # warm: workers started, kernels chosen
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                generator.generate(items)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - start
                visual = visual_tokens(generator, items[0])
            finally:
                generator.sampler.close()
        per_token[name] = elapsed / len(items) / visual * 1000
        ratio = per_token[name] / per_token.get("llava_next_video", per_token[name])
        print(f"real shapes, {name} on {device} ({dtype}, batch {batch_size}, {generator.decode_workers} decoder "
              f"processes): {len(items) / elapsed:.2f} samples/s ({elapsed:.2f} s for {len(items)} clips), "
              f"{visual} visual tokens a clip, {per_token[name]:.2f} ms per 1000 visual tokens "
              f"({ratio:.2f}x llava_next_video's)", flush=True)  # fmt: skip


def visual_tokens(generator, item) -> int:
    """The visual tokens one clip gives the language model: those it adds to the prompt (the encoded prompt minus
    its text), or for a cross-attention family (Mllama: one ``<|image|>`` token in the prompt) the vision tower's
    tokens it attends to, tiles x (patches + 1)."""
    kind, payload = generator.prepare(item[1])
    text = generator.chat(kind, len(payload), item[0])
    encoded = generator.encode([text], kind, [payload])
    if "aspect_ratio_mask" in encoded:
        vision = generator.model.config.vision_config
        return int(encoded["aspect_ratio_mask"].sum()) * ((vision.image_size // vision.patch_size) ** 2 + 1)
    return encoded["input_ids"].shape[1] - len(
        generator.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--distinct", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of all runs (medians are reported)")
    parser.add_argument(
        "--real-shapes",
        default=None,
        metavar="DEVICE",
        help="time the real-shape checkpoints on DEVICE too (default: cuda when there is a GPU)",
    )
    parser.add_argument(
        "--real-shapes-only",
        action="store_true",
        help="only the real-shape timing (on --real-shapes, default cpu), on --clips clips of the --distinct kinds",
    )
    args = parser.parse_args()
    if args.real_shapes_only:
        with tempfile.TemporaryDirectory() as tmp:
            sources = [make_clip(Path(tmp) / f"{i}.mp4", 20 + 5 * i % 40, min(250, 150 + 15 * i), i)
                       for i in range(args.distinct)]  # fmt: skip
            measure_real_shapes([sources[n % args.distinct] for n in range(args.clips)], args.real_shapes or "cpu",
                                args.batch_size)  # fmt: skip
        return
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        sources = [make_clip(root / "src" / f"{i}.mp4", 20 + 5 * i % 40, min(250, 150 + 15 * i), i)
                   for i in range(args.distinct)]  # fmt: skip
        print(f"made {args.distinct} clips (640x360, 30 fps, 20-55 s, keyframe every 150-250) in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
        records, clips = [], []
        for n in range(args.clips):
            video = root / "data" / "hatemm" / "videos" / f"v{n}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            # in blocks (v0..v4 the first clip, ...): lmms-eval gives rank r the documents r, r + N, ..., and with
            # `n % distinct` every clip of rank 1 would be longer than its rank-0 neighbour's
            os.link(sources[n * args.distinct // args.clips], video)
            clips.append(video)
            records.append(Record(id=f"v{n}", dataset="hatemm", split="test", modality="video", label=n % 2,
                                  text=f"clip {n} " + "words " * (n % 7), label_space="hateful", source="hatemm",
                                  media=f"videos/v{n}.mp4"))  # fmt: skip
        write_manifest(root / "data" / "hatemm" / "test.jsonl", records)
        model = build_tiny("llava_next_video", root / "tiny")
        view = FAMILIES["llava_next_video"].video_view(16)

        measure_gil(sources[:2], view)
        cache = root / "cache"
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "m2v-bench"), "frames", "cache", str(root / "data"),
                        "--view", "uniform:16", "--cache", str(cache), "--quiet"], check=True)  # fmt: skip
        fill = time.perf_counter() - t0
        cache_read = measure_decode(clips, view, cache)
        print(f"frame cache filled by `m2v-bench frames cache` in {fill:.1f} s (process start included), read back "
              f"in {cache_read:.2f} s", flush=True)  # fmt: skip

        warm = f",frame_cache={cache}"
        runs = [  # (name, processes, model_args, warm cache)
            ("today's sequential path (decode_workers=0), 1 process", 1, ",decode_workers=0", False),
            ("pipeline, 1 process, cold cache", 1, "", False),
            ("pipeline, 2 processes, cold cache", 2, "", False),
            ("pipeline, 1 process, warm cache", 1, warm, True),
            ("pipeline, 2 processes, warm cache", 2, warm, True),
        ]
        # rounds: the decode measurement, then every run once; a shared machine's speed drifts by 10% over
        # minutes, so each figure is the median of its rounds
        decodes, rounds = [], {name: [] for name, *_ in runs}
        for repeat in range(args.repeats):
            decodes.append(measure_decode(clips, view))
            print(f"round {repeat + 1}: {args.clips} clips, {cores} cores: decode {decodes[-1]:.2f} s "
                  f"({1000 * decodes[-1] / args.clips:.0f} ms per clip, one decoder)", flush=True)  # fmt: skip
            for number, (name, processes, model_args, _) in enumerate(runs):
                wall, in_model = lmms_eval(root, model, f"run{number}-{repeat}", processes, model_args,
                                           args.batch_size)  # fmt: skip
                rounds[name].append((wall, in_model))
                print(f"  {name}: {wall:.2f} s ({in_model:.2f} s of it in the model)", flush=True)
        decode = statistics.median(decodes)
        measured = {name: tuple(statistics.median(column) for column in zip(*values, strict=True))
                    for name, values in rounds.items()}  # fmt: skip
        print(f"\nmedians of {args.repeats} rounds; decode {decode:.2f} s (rounds: {min(decodes):.2f}-"
              f"{max(decodes):.2f} s)")  # fmt: skip
        # the model's time: what it took with no decoding beside it (warm cache), per process count
        model_time = {p: measured[name][1] for name, p, _, is_warm in runs if is_warm}
        baseline = measured[runs[0][0]][0]
        print("\n| path | wall (s) | in the model (s) | bound max(decode/cores, model) (s) | wall / bound | "
              "CPU bound (decode + model)/cores (s) | wall / CPU bound | today's / this |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, processes, _, is_warm in runs:
            wall, in_model = measured[name]
            bound = max((cache_read if is_warm else decode) / cores, model_time[processes])
            # the CPU bound applies where decoding and the model compete for the cores: a cold cache
            cpu = (
                "- | -"
                if is_warm
                else f"{(decode + model_time[1]) / cores:.2f} | {wall * cores / (decode + model_time[1]):.2f}"
            )
            print(f"| {name} | {wall:.2f} | {in_model:.2f} | {bound:.2f} | {wall / bound:.2f} | {cpu} | "
                  f"{baseline / wall:.2f}x |")  # fmt: skip

        import torch

        device = args.real_shapes or ("cuda" if torch.cuda.is_available() else None)
        if device:
            print()
            measure_real_shapes(clips, device, args.batch_size)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
    else:
        main()
