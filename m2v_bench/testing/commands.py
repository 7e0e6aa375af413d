"""``m2v-bench make-tiny-model``: a tiny random checkpoint of a model family, for tests and the demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from m2v_bench.atomic import check_folder_target
from m2v_bench.testing.tiny import TINY_BUILDERS, build_tiny


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    check_folder_target(args.out)
    path = build_tiny(args.family, args.out)
    print(f"wrote a tiny random {args.family} checkpoint with its processor to {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "make-tiny-model",
        help="write a tiny random checkpoint of a model family",
        description="Write a tiny random checkpoint (real classes, small config, locally trained tokenizer) that "
        "AutoModelForImageTextToText and AutoProcessor reload offline. For tests and the demo.",
    )
    p.add_argument("family", choices=list(TINY_BUILDERS))
    p.add_argument("out", type=Path)
    p.set_defaults(func=cmd_make_tiny_model)
