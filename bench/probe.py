"""Cost of the pre-run media probe: every sample's media is probed when an m2v task loads (tasks/utils.py).

    python bench/probe.py [--clips 220] [--distinct 11]

Builds a paper-size test set (``--clips`` videos, as HateMM's 220; ``--distinct`` different 640x360, 30 fps clips of
20-40 s with a keyframe every 250 frames, hard-linked under the other ids), then times in one run: the probe alone
(``media_problems``, all cores), and a whole lmms-eval run of a tiny LLaVA-NeXT-Video with the ``m2v`` model on it
(process start to results file, probe included). Prints both and the probe's share; figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from m2v_bench.manifest import Record, write_manifest
from m2v_bench.media import write_video
from m2v_bench.settings import available_cores
from m2v_bench.testing.tiny import build_tiny
from m2v_bench.validate import media_problems


def make_clip(path: Path, seconds: int, seed: int, fps: int = 30) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    return write_video(path, (np.roll(base, 4 * i, axis=1) for i in range(seconds * fps)), fps=fps, gop=250)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=220)
    parser.add_argument("--distinct", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        clips = [make_clip(root / "src" / f"{i}.mp4", 20 + 2 * i, i) for i in range(args.distinct)]
        print(f"made {args.distinct} clips in {time.perf_counter() - t0:.0f} s")
        records = []
        for n in range(args.clips):
            video = root / "data" / "hatemm" / "videos" / f"v{n}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            os.link(clips[n % args.distinct], video)
            record = Record(id=f"v{n}", dataset="hatemm", split="test", modality="video", text=f"clip {n}",
                            label=n % 2, label_space="hateful", source="hatemm", media=f"videos/v{n}.mp4")  # fmt: skip
            records.append(record)
        manifest = root / "data" / "hatemm" / "test.jsonl"
        write_manifest(manifest, records)

        t0 = time.perf_counter()
        problems = media_problems(records, manifest)
        probe = time.perf_counter() - t0
        assert problems == [], problems[:3]

        model = build_tiny("llava_next_video", root / "tiny")
        env = {**os.environ, "M2V_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        cmd = [str(Path(sys.executable).parent / "lmms-eval"), "--model", "m2v", "--model_args",
               f"pretrained={model},frames=16", "--tasks", "m2v_hatemm", "--device", "cpu", "--batch_size", "8",
               "--output_path", str(root / "out")]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        run = time.perf_counter() - t0
        assert list((root / "out").rglob("*_results.json")), "lmms-eval wrote no results"
    print(f"{args.clips} clips, {available_cores()} cores")
    print(f"probe alone:                 {probe:6.2f} s ({1000 * probe / args.clips:.1f} ms per clip)")
    print(f"tiny-model lmms-eval run:    {run:6.2f} s (probe included)")
    print(f"probe share of the run:      {probe / run:6.1%}")


if __name__ == "__main__":
    main()
