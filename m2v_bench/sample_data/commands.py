"""``m2v-bench make-sample-data``: the synthetic raw releases, in the official layouts."""

from __future__ import annotations

import argparse
from pathlib import Path

from m2v_bench.atomic import check_folder_target
from m2v_bench.sample_data import SampleDataConfig, make_sample_data


def cmd_make_sample_data(args: argparse.Namespace) -> int:
    check_folder_target(args.out)
    samples = make_sample_data(args.out, SampleDataConfig(seed=args.seed))
    print(f"wrote synthetic raw datasets to {args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in samples.items()))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "make-sample-data",
        help="write synthetic raw datasets in the official layouts",
        description="Write small synthetic MHC, HateMM, FHM and MAMI releases (label-shift design).",
    )
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_sample_data)
