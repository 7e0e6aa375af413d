"""``m2v-bench reannotate predict|queue|import|vote|stats|released``: the re-annotation stages' command lines."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from pytablewriter import MarkdownTableWriter

from m2v_bench import reannotate as re_
from m2v_bench.argtypes import non_negative_int, positive_int
from m2v_bench.atomic import atomic_write_text, check_json
from m2v_bench.manifest import write_manifest
from m2v_bench.registry import aligned_name


def _data_parallel_state(device: str | None):
    """accelerate's view of this process (rank, world size, barrier) and the device its model goes to. Under
    ``accelerate launch`` / ``torchrun`` each process takes its own accelerator (``cuda:{local rank}``) unless
    ``--device`` names one index; CPU processes (no GPU, or ``--device cpu``) join over gloo."""
    # imported here for start-up time: torch and accelerate take seconds, and only `predict` needs them
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    if state.num_processes > 1 and device in (None, "cuda"):
        device = str(state.device)
    return state, device


def cmd_predict(args: argparse.Namespace) -> int:
    # imported here for start-up time: the model stack (torch, transformers) is for `predict` only
    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load

    re_.target_space(args.target)
    memes = re_.load_memes(args.memes)
    state, device = _data_parallel_state(args.device)
    if state.is_main_process:  # a file of another target is refused before the model loads (rank 0 owns --out)
        done = re_.read_predictions(args.out, repair=True)
        if done:
            re_.check_predictions(done, memes, args.target, args.out)
    state.wait_for_everyone()  # every rank reads --out after rank 0 repaired it
    done = re_.read_predictions(args.out)
    # the images still to predict, before the model loads and before --out is made
    re_.check_images([m for m in memes if m.id not in done], args.memes)
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


def cmd_queue(args: argparse.Namespace) -> int:
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


def cmd_import(args: argparse.Namespace) -> int:
    queue_ids = re_.read_queue(args.queue)
    labels = re_.import_answers(args.answers, queue_ids, args.target)
    re_.write_human(args.out, labels)
    ties = sorted(h.id for h in labels.values() if h.label is None)
    print(
        f"{len(labels)} of {len(queue_ids)} queued memes answered -> {args.out}"
        + (f"; annotators tie on {len(ties)}: {', '.join(ties[:10])}" if ties else "")
    )
    return 0


def cmd_vote(args: argparse.Namespace) -> int:
    re_.target_space(args.target)
    memes = re_.load_memes(args.memes)
    predictions = re_.read_predictions(args.predictions)
    re_.check_predictions(predictions, memes, args.target, args.predictions)
    human = re_.read_human(args.human, args.target) if args.human else {}
    result = re_.vote(memes, predictions, human, args.target)
    manifest, csv_path = re_.write_aligned(args.out, result, args.memes, memes[0].source, args.target, args.partial)
    print(f"{len(result.records)} memes aligned with {args.target} -> {manifest} and {csv_path}")
    if result.unresolved:
        print(f"left out, unresolved: {', '.join(result.unresolved)}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
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
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n", check_json)
    return 0


def cmd_released(args: argparse.Namespace) -> int:
    memes = {m.id: m for m in re_.load_memes(args.memes)} if args.memes else None
    records = re_.released_records(args.csv, args.source, args.target, memes)
    manifest = args.out / aligned_name(args.source, args.target) / "train.jsonl"
    write_manifest(manifest, records)
    missing = sum(1 for r in records if r.media is None)
    print(f"{len(records)} memes -> {manifest}" + (f" ({missing} without an image: pass --memes)" if missing else ""))
    return 0


def add_parser(sub) -> None:
    top = sub.add_parser(
        "reannotate",
        help="align meme labels with a video dataset's definition",
        description="Re-annotation: predict -> queue -> import -> vote, then stats. See m2v_bench/reannotate/.",
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
    p.set_defaults(func=cmd_predict)
    p = steps.add_parser("queue", help="export the conflicts for human annotation")
    p.add_argument("--memes", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-labelstudio", type=Path, default=None, help="also write a Label Studio import (JSON)")
    p.set_defaults(func=cmd_queue)
    p = steps.add_parser("import", help="read annotators' answers (CSV or Label Studio export)")
    p.add_argument("answers", type=Path, nargs="+")
    p.add_argument("--queue", type=Path, required=True, help="the queue CSV the answers are for")
    p.add_argument("--target", required=True)
    p.add_argument("--out", type=Path, required=True, help="human labels JSONL")
    p.set_defaults(func=cmd_import)
    p = steps.add_parser("vote", help="majority vote -> aligned manifest + the paper's CSV format")
    p.add_argument("--memes", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--human", type=Path, default=None)
    p.add_argument("--target", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--partial", action="store_true", help="write the resolved memes even if conflicts remain")
    p.set_defaults(func=cmd_vote)
    p = steps.add_parser("stats", help="agreement (Cohen's kappa), flips, positive rates")
    p.add_argument("csv", type=Path, nargs="+", help="re-annotation CSVs in the paper's format")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=cmd_stats)
    p = steps.add_parser("released", help="an aligned manifest from the paper's released CSV")
    p.add_argument("csv", type=Path)
    p.add_argument("--source", required=True, help="fhm or mami")
    p.add_argument("--target", required=True)
    p.add_argument("--memes", type=Path, default=None, help="prepared meme manifest that has the images")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_released)
