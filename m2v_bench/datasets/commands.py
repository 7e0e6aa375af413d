"""``m2v-bench prepare DATASET``: a raw release into manifests; one subcommand per registered dataset, its help
taken from the dataset's spec (layout, source, download steps, split tables)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from m2v_bench.atomic import check_folder_target
from m2v_bench.datasets import DATASETS, FORMATS, PrepareResult, prepare, write_prepared
from m2v_bench.errors import M2VError
from m2v_bench.settings import DATA_DIR_ENV, SAMPLE, configured_data_dir


def _print_prepare(name: str, result: PrepareResult, paths: dict[str, Path]) -> None:
    counts = {split: sum(1 for r in result.records if r.split == split) for split in paths}
    print(
        f"{name}: "
        + ", ".join(f"{split} {n}" for split, n in counts.items())
        + f" -> {Path(paths[next(iter(paths))]).parent}"
    )
    for warning in result.warnings:
        print(f"  warning: {warning}")


def cmd_prepare(args: argparse.Namespace) -> int:
    if args.out is None and os.environ.get(DATA_DIR_ENV) == SAMPLE:
        raise M2VError(f"{DATA_DIR_ENV}={SAMPLE} names the bundled sample data; give --out DIR to prepare elsewhere")
    out = check_folder_target(args.out or configured_data_dir(), "--out")
    result = prepare(args.dataset, args.root, fmt=args.format, table=args.table, media_root=args.media_root)
    if not result.records:
        raise M2VError(f"{args.root}: no {args.dataset} samples found; check --root and --format")
    paths = write_prepared(result, out, args.dataset)
    _print_prepare(args.dataset, result, paths)
    return 0


def add_parser(sub) -> None:
    prepare_parser = sub.add_parser(
        "prepare",
        help="turn a raw dataset into manifests",
        description="Turn a raw dataset into manifests <out>/<dataset>/<split>.jsonl. "
        "`m2v-bench prepare DATASET --help` shows that dataset's layout, source and download steps.",
    )
    datasets = prepare_parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for name, spec in DATASETS.items():
        p = datasets.add_parser(
            name,
            help=f"{spec.title}: {spec.layout}",
            description=f"Prepare {spec.title}.\n\nLayout below --root: {spec.layout}\n\n{spec.obtain}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--root", type=Path, required=True, help="the raw dataset folder (or the paper's CSV file)")
        p.add_argument(
            "--out", type=Path, default=None,
            help="folder for the prepared manifests (default: $M2V_DATA_DIR, else ~/.local/share/m2v-bench, where "
            "the lmms-eval tasks read)",
        )  # fmt: skip
        p.add_argument(
            "--format",
            choices=FORMATS,
            default="official",
            help="official distribution layout (default) or the paper's CSV format",
        )
        if spec.has_paper_table:
            official = f"'official' ({spec.official_splits}), " if spec.official_splits else ""
            p.add_argument(
                "--table",
                default=None,
                help=f"split table: 'paper' (default: the paper's splits, labels and text), {official}"
                "or a CSV in the paper's format",
            )
            p.add_argument("--media-root", type=Path, default=None, help="--format paper: where the videos are")
        p.set_defaults(func=cmd_prepare, table=None, media_root=None)  # the memes take no table
