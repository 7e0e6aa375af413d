"""``m2v-bench frames cache``: pre-extract every video's views into the frame cache."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from m2v_bench.argtypes import positive_int
from m2v_bench.errors import M2VError
from m2v_bench.frames.pool import fill_cache
from m2v_bench.frames.views import parse_view
from m2v_bench.manifest import read_manifest
from m2v_bench.settings import FRAME_CACHE_ENV
from m2v_bench.validate import find_manifests


def cmd_cache(args: argparse.Namespace) -> int:
    cache = args.cache or os.environ.get(FRAME_CACHE_ENV)
    if not cache:
        raise M2VError(f"no frame cache folder: pass --cache DIR or set {FRAME_CACHE_ENV}")
    try:
        views = [parse_view(spec) for spec in args.view or ["keyframe", "uniform"]]
    except ValueError as exc:
        raise M2VError(str(exc)) from None
    clips = [
        record.media_path(folder)
        for folder, files in find_manifests(args.data_dir).items()
        for manifest in files
        for record in read_manifest(manifest)
        if record.modality == "video" and record.media is not None
    ]
    result = fill_cache(clips, views, cache, jobs=args.jobs, progress=not args.quiet)
    for source, view, problem in result.failed:
        print(f"{source} ({view.kind}): {problem}", file=sys.stderr)
    print(
        f"{result.decoded} decoded, {result.already_cached} already cached, {len(result.failed)} failed "
        f"({len(set(clips))} clips x {len(views)} views) -> {cache}"
    )
    return 1 if result.failed else 0


def add_parser(sub) -> None:
    top = sub.add_parser("frames", help="frame views of the videos", description="Frame views (m2v_bench/frames/).")
    steps = top.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser(
        "cache",
        help="pre-extract every video's views into the frame cache (all cores, resumable)",
        description="Decode each video of every manifest under DATA_DIR once per view into the frame cache that "
        "evaluation (model_args frame_cache=DIR, or M2V_FRAME_CACHE) and training read, so runs never wait on "
        "decoding. Clips already cached are skipped: run it again to resume.",
    )
    p.add_argument(
        "data_dir", type=Path, metavar="DATA_DIR", help="a prepared data folder, dataset folder or manifest"
    )
    p.add_argument(
        "--view",
        action="append",
        help="keyframe[:THRESHOLD] (Mllama) or uniform[:K] (LLaVA-NeXT-Video, K frames, default 16); repeatable; "
        "default: both paper views",
    )
    p.add_argument("--cache", default=None, help="cache folder (default: $M2V_FRAME_CACHE)")
    p.add_argument("--jobs", type=positive_int, default=None, help="clips decoded at once (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_cache)
