"""How far two honest runs of one checkpoint agree: the figure audit mode's thresholds stand on.

    OMP_NUM_THREADS=1 python bench/agreement.py --model_args pretrained=BASE,adapter=ADAPTER --data-dir DATA \
        [--variant dtype=float32 --variant dtype=bfloat16] [--tasks m2v_mhc,m2v_mhc_score] [--device cpu]

Runs lmms-eval (``--model m2v``) once per ``--variant`` (model args added to ``--model_args``; the same variant twice
shows run-to-run agreement on one device), then prints, for every pair of runs and every task, the share of
documents on which they agree by audit mode's rule (``leaderboard.service.agreement``: the same parsed greedy
answer; log-likelihood margins within ``SCORE_TOLERANCE``), and the largest margin difference. Run it on each
kind of worker you have (two GPU types: run once on each with the same variant and compare the logs with
``--compare DIR DIR``) before trusting ``AGREEMENT``. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from m2v_bench.leaderboard.runs import newest_run
from m2v_bench.leaderboard.service import AGREEMENT, SCORE_TOLERANCE, agreement
from m2v_bench.leaderboard.submit import read_samples
from m2v_bench.settings import DATA_DIR_ENV


def run(model_args: str, tasks: str, device: str, data_dir: Path, out: Path) -> Path:
    binary = Path(sys.executable).with_name("lmms-eval")
    cmd = [str(binary), "--model", "m2v", "--model_args", model_args, "--tasks", tasks, "--device", device,
           "--batch_size", "4", "--output_path", str(out), "--log_samples"]  # fmt: skip
    subprocess.run(cmd, check=True, env={**os.environ, DATA_DIR_ENV: str(data_dir)}, capture_output=True)
    return out


def records(out: Path) -> dict[str, dict[str, dict]]:
    run_ = newest_run(out)
    return {task: {i["id"]: i for i in read_samples(path)} for task, path in run_.logs.items()}


def compare(label: str, a: dict, b: dict) -> None:
    for task in sorted(a):
        share = agreement(task, a[task], b[task])
        margins = [abs(a[task][i]["score"] - b[task][i]["score"]) for i in a[task] if a[task][i]["score"] is not None]
        worst = f", largest margin difference {max(margins):.4f} nats" if margins else ""
        verdict = "passes" if share >= AGREEMENT else "FAILS"
        print(f"{label}: {task}: {share:.1%} of {len(a[task])} documents agree ({verdict} the {AGREEMENT:.0%} "
              f"threshold; score tolerance {SCORE_TOLERANCE} nats){worst}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_args", help="lmms-eval's --model_args for m2v (pretrained=..., adapter=...)")
    parser.add_argument("--data-dir", type=Path, help="prepared data (as $M2V_DATA_DIR)")
    parser.add_argument("--variant", action="append", default=[], help="model args added for one run (repeatable)")
    parser.add_argument("--tasks", default="m2v_mhc,m2v_mhc_score")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="DIR", help="compare two existing output folders")
    args = parser.parse_args()
    if args.compare:
        compare(" vs ".join(map(str, args.compare)), records(args.compare[0]), records(args.compare[1]))
        return
    variants = args.variant or ["dtype=float32", "dtype=float32"]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [records(run(f"{args.model_args},{v}", args.tasks, args.device, args.data_dir, Path(tmp) / str(n)))
                for n, v in enumerate(variants)]  # fmt: skip
    for (i, a), (j, b) in itertools.combinations(enumerate(runs), 2):
        compare(f"run {i} ({variants[i]}) vs run {j} ({variants[j]})", a, b)


if __name__ == "__main__":
    main()
