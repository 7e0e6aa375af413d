"""Evaluation wall time against the decode/model bound: does the `m2v` model hide decoding behind the model?

    OMP_NUM_THREADS=1 python bench/eval.py [--clips 40] [--distinct 8] [--batch-size 8]

Builds a test set of realistic clips (``--distinct`` different 640x360, 30 fps H.264 clips of 20-55 s with a keyframe
every 150-250 frames, hard-linked under ``--clips`` ids), a tiny LLaVA-NeXT-Video (16 uniform frames), and times in
one run:

* decode: the 16-frame view of every clip, one clip after another on one decoder (the CPU work there is to do);
* the full lmms-eval path (``m2v_hatemm``, ``--model m2v``) for 1 and 2 processes (``torchrun``), with a cold and
  a warm frame cache (filled by ``m2v-bench frames cache``), and today's sequential path (``decode_workers=0``: each
  batch decoded when it is reached, the model waiting) as the baseline.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from m2v_bench.frames import FrameSampler
from m2v_bench.manifest import Record, write_manifest
from m2v_bench.media import write_video
from m2v_bench.models.families import FAMILIES

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


def measure_decode(clips: list[Path], view, cache: Path | None = None) -> float:
    sampler = FrameSampler(threads=1, cache_dir=cache)
    start = time.perf_counter()
    for clip in clips:
        sampler.sample(clip, view)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--distinct", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
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
            os.link(sources[n % args.distinct], video)
            clips.append(video)
            records.append(Record(id=f"v{n}", dataset="hatemm", split="test", modality="video", label=n % 2,
                                  text=f"clip {n} " + "words " * (n % 7), label_space="hateful", source="hatemm",
                                  media=f"videos/v{n}.mp4"))  # fmt: skip
        write_manifest(root / "data" / "hatemm" / "test.jsonl", records)
        model = FAMILIES["llava_next_video"].build_tiny(root / "tiny")
        view = FAMILIES["llava_next_video"].video_view(16)

        decode = measure_decode(clips, view)
        cache = root / "cache"
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "m2v-bench"), "frames", "cache", str(root / "data"),
                        "--view", "uniform:16", "--cache", str(cache), "--quiet"], check=True)  # fmt: skip
        fill = time.perf_counter() - t0
        cache_read = measure_decode(clips, view, cache)
        print(f"{args.clips} clips, {cores} cores: decode {decode:.2f} s ({1000 * decode / args.clips:.0f} ms per "
              f"clip, one decoder); frame cache filled by `m2v-bench frames cache` in {fill:.1f} s (process start "
              f"included), read back in {cache_read:.2f} s", flush=True)  # fmt: skip

        warm = f",frame_cache={cache}"
        runs = [  # (name, processes, model_args, warm cache)
            ("today's sequential path (decode_workers=0), 1 process", 1, ",decode_workers=0", False),
            ("pipeline, 1 process, cold cache", 1, "", False),
            ("pipeline, 2 processes, cold cache", 2, "", False),
            ("pipeline, 1 process, warm cache", 1, warm, True),
            ("pipeline, 2 processes, warm cache", 2, warm, True),
        ]
        measured = {}
        for number, (name, processes, model_args, _) in enumerate(runs):
            measured[name] = lmms_eval(root, model, f"run{number}", processes, model_args, args.batch_size)
            print(f"{name}: {measured[name][0]:.2f} s ({measured[name][1]:.2f} s of it in the model)", flush=True)
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
    else:
        main()
