"""The ``m2v-bench`` command line. Each subcommand is a thin layer over the library.

Error policy: a user error (:class:`~m2v_bench.errors.M2VError`, raised where a user's file or option is read)
prints one line ``m2v-bench: error: <file[:line]> [sample]: <what> ; <fix>`` and exits 2; bad options exit 2 through
argparse; ``validate`` exits 1 on a failed check. Anything else is a bug and keeps its traceback. Every file a
command writes is written atomically and read back first (:mod:`m2v_bench.atomic`): on an error, no output file
changes or appears."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pytablewriter import MarkdownTableWriter

from m2v_bench import __version__
from m2v_bench.errors import M2VError


def _int_at_least(minimum: int, wording: str):
    """An argparse type: an integer >= ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {wording}, got {number}")
        return number

    return parse


positive_int = _int_at_least(1, "at least 1")
"""An argparse type: an integer >= 1 (a batch size, a frame count)."""
non_negative_int = _int_at_least(0, "0 or more")


def _print_prepare(name: str, result, paths: dict[str, Path]) -> None:
    counts = {split: sum(1 for r in result.records if r.split == split) for split in paths}
    print(
        f"{name}: "
        + ", ".join(f"{split} {n}" for split, n in counts.items())
        + f" -> {Path(paths[next(iter(paths))]).parent}"
    )
    for warning in result.warnings:
        print(f"  warning: {warning}")


def cmd_prepare(args: argparse.Namespace) -> int:
    from m2v_bench.atomic import check_folder_target
    from m2v_bench.data_dir import DATA_DIR_ENV, SAMPLE, data_dir
    from m2v_bench.datasets import prepare, write_prepared

    if args.out is None and os.environ.get(DATA_DIR_ENV) == SAMPLE:
        raise M2VError(f"{DATA_DIR_ENV}={SAMPLE} names the bundled sample data; give --out DIR to prepare elsewhere")
    out = check_folder_target(args.out or data_dir(), "--out")
    result = prepare(args.dataset, args.root, fmt=args.format, table=args.table, media_root=args.media_root)
    if not result.records:
        raise M2VError(f"{args.root}: no {args.dataset} samples found; check --root and --format")
    paths = write_prepared(result, out, args.dataset)
    _print_prepare(args.dataset, result, paths)
    return 0


def _summary_table(report) -> str:
    rows: dict[tuple[str, str], list[int]] = {}
    for (dataset, split, label), n in report.counts.items():
        row = rows.setdefault((dataset, split), [0, 0, 0])
        if label in (0, 1):
            row[label] += n
        else:
            row[2] += n
    per_sample: dict[tuple[str, str], list[int]] = {}
    for issue in report.issues:
        dataset = Path(issue.where.split(":")[0]).parent.name
        split = Path(issue.where.split(":")[0]).stem
        per_sample.setdefault((dataset, split), [0, 0])[0 if issue.severity == "error" else 1] += 1
    writer = MarkdownTableWriter(
        headers=["dataset", "split", "samples", "label 0", "label 1", "other label", "errors", "warnings"],
        value_matrix=[
            [d, s, sum(c), c[0], c[1], c[2], *per_sample.get((d, s), [0, 0])] for (d, s), c in sorted(rows.items())
        ],
        margin=1,
    )
    return writer.dumps()


def cmd_validate(args: argparse.Namespace) -> int:
    from m2v_bench.validate import validate

    report = validate(args.path, check_media=not args.no_media, deep=args.deep, progress=not args.quiet)
    shown: dict[str, int] = {}
    for issue in report.issues:
        shown[issue.kind] = shown.get(issue.kind, 0) + 1
        if shown[issue.kind] <= args.max_per_kind:
            print(issue)
    hidden = {kind: n - args.max_per_kind for kind, n in shown.items() if n > args.max_per_kind}
    for kind, n in hidden.items():
        print(
            f"... {n} more {kind} issue(s)" + (f" (all in {args.report})" if args.report else " (use --report FILE)")
        )
    print(_summary_table(report))
    if args.report:
        from m2v_bench.atomic import atomic_write_text, check_json

        atomic_write_text(args.report, json.dumps(report.to_json(), indent=2) + "\n", check_json)
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s): {'FAILED' if failed else 'OK'}")
    return 1 if failed else 0


def cmd_make_sample_data(args: argparse.Namespace) -> int:
    from m2v_bench.atomic import check_folder_target
    from m2v_bench.sample_data import SampleDataConfig, make_sample_data

    check_folder_target(args.out)
    samples = make_sample_data(args.out, SampleDataConfig(seed=args.seed))
    print(f"wrote synthetic raw datasets to {args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in samples.items()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from m2v_bench.atomic import check_folder_target
    from m2v_bench.demo import run

    check_folder_target(args.out, "--out")
    run(args.out, quick=args.quick, seed=args.seed, jobs=args.jobs, families=args.family, targets=args.target)
    return 0


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from m2v_bench.atomic import check_folder_target
    from m2v_bench.models.families import get_family

    check_folder_target(args.out)
    path = get_family(args.family).build_tiny(args.out)
    print(f"wrote a tiny random {args.family} checkpoint with its processor to {path}")
    return 0


def _data_parallel_state(device: str | None):
    """accelerate's view of this process (rank, world size, barrier) and the device its model goes to. Under
    ``accelerate launch`` / ``torchrun`` each process takes its own accelerator (``cuda:{local rank}``) unless
    ``--device`` names one index; CPU processes (no GPU, or ``--device cpu``) join over gloo."""
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    if state.num_processes > 1 and device in (None, "cuda"):
        device = str(state.device)
    return state, device


def cmd_re_predict(args: argparse.Namespace) -> int:
    from m2v_bench import reannotate as re_
    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load

    re_.target_space(args.target)
    memes = re_.load_memes(args.memes)
    state, device = _data_parallel_state(args.device)
    if state.is_main_process:  # a file of another target is refused before the model loads (rank 0 owns --out)
        done = re_.read_predictions(args.out, repair=True)
        if done:
            re_.check_predictions(done, memes, args.target, args.out)
    loaded = load(args.model, adapter=args.adapter, dtype=args.dtype, device=device)
    generator = Generator(loaded, batch_size=args.batch_size, frame_cache=None)
    done = re_.predict(memes, args.target, generator, args.out, shots=args.shots, progress=not args.quiet,
                       rank=state.process_index, world_size=state.num_processes,
                       wait_for_everyone=state.wait_for_everyone)  # fmt: skip
    if not state.is_main_process:
        return 0
    counts = Counter(p.prediction for p in done.values())
    print(f"{len(done)} predictions in {args.out}: {counts[1]} positive, {counts[0]} negative, {counts[-1]} invalid")
    return 0


def cmd_re_queue(args: argparse.Namespace) -> int:
    from m2v_bench import reannotate as re_

    memes = re_.load_memes(args.memes)
    predictions = re_.read_predictions(args.predictions)
    target = re_.check_predictions(predictions, memes, None, args.predictions)
    queue = re_.conflicts(memes, predictions)
    re_.write_queue(queue, predictions, target, args.out_csv, args.out_labelstudio)
    print(
        f"{len(queue)} of {len(memes)} memes need a human label -> {args.out_csv}"
        + (f" and {args.out_labelstudio}" if args.out_labelstudio else "")
    )
    return 0


def cmd_re_import(args: argparse.Namespace) -> int:
    from m2v_bench import reannotate as re_

    queue_ids = re_.read_queue(args.queue)
    labels = re_.import_answers(args.answers, queue_ids, args.target)
    re_.write_human(args.out, labels)
    ties = sorted(h.id for h in labels.values() if h.label is None)
    print(
        f"{len(labels)} of {len(queue_ids)} queued memes answered -> {args.out}"
        + (f"; annotators tie on {len(ties)}: {', '.join(ties[:10])}" if ties else "")
    )
    return 0


def cmd_re_vote(args: argparse.Namespace) -> int:
    from m2v_bench import reannotate as re_
    from m2v_bench.manifest import record_from_json, write_manifest

    re_.target_space(args.target)
    memes = re_.load_memes(args.memes)
    predictions = re_.read_predictions(args.predictions)
    re_.check_predictions(predictions, memes, args.target, args.predictions)
    human = re_.read_human(args.human, args.target) if args.human else {}
    result = re_.vote(memes, predictions, human, args.target)
    if result.unresolved and not args.partial:
        raise M2VError(
            f"{len(result.unresolved)} conflict(s) have no human label yet (e.g. {', '.join(result.unresolved[:5])}); "
            "collect them (queue/import) or pass --partial to write only the resolved memes"
        )
    if not result.records:
        raise M2VError(
            f"{args.memes}: no meme is resolved ({len(result.unresolved)} conflict(s) without a human label); "
            "nothing written: import human labels first (`reannotate queue` / `reannotate import`)"
        )
    name = re_.aligned_name(memes[0].source, args.target)
    manifest = args.out / name / "train.jsonl"
    for number, record in enumerate(result.records, start=1):  # both outputs are checked before either is written
        record_from_json(record.to_json(), f"{manifest} record {number}")
    re_.write_paper_csv(args.out / f"{name}.csv", result.rows)
    write_manifest(manifest, result.records)
    print(f"{len(result.records)} memes aligned with {args.target} -> {manifest} and {args.out / f'{name}.csv'}")
    if result.unresolved:
        print(f"left out, unresolved: {', '.join(result.unresolved)}")
    return 0


def cmd_re_stats(args: argparse.Namespace) -> int:
    from m2v_bench import reannotate as re_

    report = {}
    rows = []
    for path in args.csv:
        stats = re_.agreement_stats(re_.read_paper_csv(path))
        report[path.stem] = stats
        kappa = stats["kappa"]
        rows.append([path.stem, stats["n"], stats["queued"],
                     *(None if v["kappa"] is None else round(v["kappa"], 3) for v in kappa.values()),
                     *stats["flips"].values(), round(stats["positive_rate_original"], 3),
                     round(stats["positive_rate_final"], 3)])  # fmt: skip
    headers = ["set", "memes", "queued", "kappa orig/model", "kappa orig/human", "kappa model/human",
               "0->0", "0->1", "1->0", "1->1", "pos. rate before", "pos. rate after"]  # fmt: skip
    print(MarkdownTableWriter(headers=headers, value_matrix=rows, margin=1).dumps())
    if args.json:
        from m2v_bench.atomic import atomic_write_text, check_json

        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n", check_json)
    return 0


def cmd_re_released(args: argparse.Namespace) -> int:
    from m2v_bench import reannotate as re_
    from m2v_bench.manifest import write_manifest

    memes = {m.id: m for m in re_.load_memes(args.memes)} if args.memes else None
    records = re_.released_records(args.csv, args.source, args.target, memes)
    manifest = args.out / re_.aligned_name(args.source, args.target) / "train.jsonl"
    write_manifest(manifest, records)
    missing = sum(1 for r in records if r.media is None)
    print(f"{len(records)} memes -> {manifest}" + (f" ({missing} without an image: pass --memes)" if missing else ""))
    return 0


def cmd_frames_cache(args: argparse.Namespace) -> int:
    from m2v_bench.decode_pool import fill_cache
    from m2v_bench.frames import CACHE_ENV, parse_view
    from m2v_bench.manifest import read_manifest
    from m2v_bench.validate import find_manifests

    cache = args.cache or os.environ.get(CACHE_ENV)
    if not cache:
        raise M2VError(f"no frame cache folder: pass --cache DIR or set {CACHE_ENV}")
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


def _add_frames(sub) -> None:
    top = sub.add_parser("frames", help="frame views of the videos", description="Frame views (m2v_bench/frames.py).")
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
    p.set_defaults(func=cmd_frames_cache)


def _add_reannotate(sub) -> None:
    top = sub.add_parser(
        "reannotate",
        help="align meme labels with a video dataset's definition",
        description="Re-annotation: predict -> queue -> import -> vote, then stats. See m2v_bench/reannotate.py.",
    )
    steps = top.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser(
        "predict",
        help="few-shot model predictions (resumable; data-parallel under torchrun / accelerate launch)",
        description="Few-shot predictions, appended to --out as they come; a rerun resumes. Data-parallel: "
        "`torchrun --nproc_per_node N -m m2v_bench reannotate predict ...` (or `accelerate launch --num_processes N "
        "-m m2v_bench ...` on GPUs): each rank predicts its share into OUT.rank<i>.part, merged into --out at the "
        "end (or by the next run after a kill); the file equals a single-process run's.",
    )
    p.add_argument("--memes", type=Path, required=True, help="a prepared meme manifest (e.g. data/fhm/train.jsonl)")
    p.add_argument("--target", required=True, help="mhc or hatemm")
    p.add_argument("--model", required=True, help="checkpoint folder or hub id")
    p.add_argument("--adapter", default=None)
    p.add_argument("--shots", type=non_negative_int, default=8,
                   help="demonstrations of the target (default: the paper's 8)")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, required=True, help="predictions JSONL (appended to; a rerun resumes)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_re_predict)
    p = steps.add_parser("queue", help="export the conflicts for human annotation")
    p.add_argument("--memes", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-labelstudio", type=Path, default=None, help="also write a Label Studio import (JSON)")
    p.set_defaults(func=cmd_re_queue)
    p = steps.add_parser("import", help="read annotators' answers (CSV or Label Studio export)")
    p.add_argument("answers", type=Path, nargs="+")
    p.add_argument("--queue", type=Path, required=True, help="the queue CSV the answers are for")
    p.add_argument("--target", required=True)
    p.add_argument("--out", type=Path, required=True, help="human labels JSONL")
    p.set_defaults(func=cmd_re_import)
    p = steps.add_parser("vote", help="majority vote -> aligned manifest + the paper's CSV format")
    p.add_argument("--memes", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--human", type=Path, default=None)
    p.add_argument("--target", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--partial", action="store_true", help="write the resolved memes even if conflicts remain")
    p.set_defaults(func=cmd_re_vote)
    p = steps.add_parser("stats", help="agreement (Cohen's kappa), flips, positive rates")
    p.add_argument("csv", type=Path, nargs="+", help="re-annotation CSVs in the paper's format")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=cmd_re_stats)
    p = steps.add_parser("released", help="an aligned manifest from the paper's released CSV")
    p.add_argument("csv", type=Path)
    p.add_argument("--source", required=True, help="fhm or mami")
    p.add_argument("--target", required=True)
    p.add_argument("--memes", type=Path, default=None, help="prepared meme manifest that has the images")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_re_released)


def _add_leaderboard(sub) -> None:
    from m2v_bench.leaderboard.commands import add_parser

    add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    from m2v_bench.datasets import DATASETS, FORMATS

    parser = argparse.ArgumentParser(prog="m2v-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
            p.add_argument(
                "--table",
                default=None,
                help="split table: 'paper' (default: the paper's splits, labels and text), "
                + ("'official' (MultiHateClip's own splits; text = its transcript alone), " if name == "mhc" else "")
                + "or a CSV in the paper's format",
            )
            p.add_argument("--media-root", type=Path, default=None, help="--format paper: where the videos are")
        p.set_defaults(func=cmd_prepare, table=None, media_root=None)  # the memes take no table

    p = sub.add_parser(
        "validate",
        help="check prepared manifests and their media",
        description="Check manifests: ids, leaks, labels, texts, media. Exit 1 on errors.",
    )
    p.add_argument("path", type=Path, help="a prepared folder, one dataset's folder or one .jsonl manifest")
    p.add_argument("--no-media", action="store_true", help="skip the media checks (text-only manifests)")
    p.add_argument("--deep", action="store_true", help="decode every video frame instead of first + last second")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")
    p.add_argument("--report", type=Path, default=None, help="write every issue and the counts as JSON")
    p.add_argument("--max-per-kind", type=non_negative_int, default=20, help="issues printed per kind (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "make-sample-data",
        help="write synthetic raw datasets in the official layouts",
        description="Write small synthetic MHC, HateMM, FHM and MAMI releases (label-shift design).",
    )
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_sample_data)

    from m2v_bench.models.families import FAMILIES
    from m2v_bench.registry import video_targets

    p = sub.add_parser(
        "make-tiny-model",
        help="write a tiny random checkpoint of a model family",
        description="Write a tiny random checkpoint (real classes, small config, locally trained tokenizer) that "
        "AutoModelForImageTextToText and AutoProcessor reload offline. For tests and the demo.",
    )
    p.add_argument("family", choices=list(FAMILIES))
    p.add_argument("out", type=Path)
    p.set_defaults(func=cmd_make_tiny_model)

    _add_reannotate(sub)
    _add_leaderboard(sub)
    _add_frames(sub)

    p = sub.add_parser(
        "demo",
        help="run the main job on the bundled synthetic data",
        description="The paper in miniature on the bundled synthetic data: prepare -> validate -> re-annotate -> "
        "train every strategy -> lmms-eval -> leaderboard tables and site.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help="one family, one target, fewer epochs (about 1.5 minutes on 2 CPUs)"
    )
    p.add_argument("--jobs", type=int, default=None, help="trainings/evaluations at once (default: CPUs, at most 4)")
    p.add_argument("--family", action="append", choices=list(FAMILIES), help="only this model family (repeatable)")
    p.add_argument("--target", action="append", choices=video_targets(), help="only this video dataset (repeatable)")
    p.set_defaults(func=cmd_demo)
    return parser


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` / ``sys.stderr`` is at the time (pytest's capture replaces them)."""

    def __init__(self, stream_name: str):
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging() -> None:
    """The library logs through ``logging`` (``m2v_bench.*`` loggers) and never prints; the command line shows its
    INFO messages on stdout as plain lines, warnings and errors on stderr. Records still propagate, so handlers
    that an embedding program (or pytest) puts on the root logger see them too."""
    root = logging.getLogger("m2v_bench")
    if any(isinstance(h, _ConsoleHandler) for h in root.handlers):
        return
    info = _ConsoleHandler("stdout")
    info.addFilter(lambda record: record.levelno < logging.WARNING)
    info.setFormatter(logging.Formatter("%(message)s"))
    warnings = _ConsoleHandler("stderr")
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("m2v-bench: warning: %(message)s"))
    root.addHandler(info)
    root.addHandler(warnings)
    root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return args.func(args)
    except M2VError as exc:  # only user errors: an OSError or anything else is a bug and keeps its traceback
        print(f"m2v-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("m2v-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
