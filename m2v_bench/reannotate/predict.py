"""Stage 1, ``predict``: few-shot predictions of a VLM under the target's definition, appended to a JSONL file
keyed by meme id (a killed run resumes where it stopped), data-parallel with one part file per rank."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from m2v_bench.atomic import atomic_write, make_dirs, user_path
from m2v_bench.datasets import get_dataset
from m2v_bench.errors import M2VError
from m2v_bench.jsonl import append_jsonl, read_jsonl
from m2v_bench.labels import few_shot_prompt
from m2v_bench.manifest import Record
from m2v_bench.reannotate.memes import target_space

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    id: str
    prediction: int
    """1, 0, or -1 (invalid answer)."""
    response: str
    target: str


def read_predictions(path: Path, repair: bool = False) -> dict[str, Prediction]:
    """Predictions by meme id. A torn last line (a run killed mid-write) is an error, or with ``repair`` is cut off
    so that meme is predicted again; complete lines are never dropped."""
    if path.is_dir():
        raise M2VError(f"{path}: is a folder; give the predictions file (JSONL)")
    if not path.is_file():
        return {}
    with user_path(path):
        data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:  # the last line has no newline: torn
        if not repair:
            raise M2VError(
                f"{path}: the last line is incomplete (a run was killed while writing); run `predict` again to "
                "resume: it drops that line and predicts its meme again"
            )
        torn = lines.pop()
        with open(path, "r+b") as fh:
            fh.truncate(len(data) - len(torn))
        logger.warning("%s: dropped an incomplete last line (%d bytes); that meme is predicted again", path, len(torn))
    predictions: dict[str, Prediction] = {}
    for where, obj in read_jsonl(path, what="prediction record"):
        try:
            prediction = Prediction(str(obj["id"]), int(obj["prediction"]), obj["response"], obj["target"])
        except (KeyError, TypeError, ValueError) as exc:
            raise M2VError(f"{where}: not a prediction record ({exc}); remove the line to predict it again") from None
        if prediction.prediction not in (-1, 0, 1):
            raise M2VError(f"{where}: prediction must be 1, 0 or -1, got {prediction.prediction}")
        if prediction.id in predictions and predictions[prediction.id] != prediction:
            raise M2VError(f"{where}: a second, different prediction for meme {prediction.id}")
        first = next(iter(predictions.values()), None)
        if first is not None and prediction.target != first.target:
            raise M2VError(
                f"{where}: a prediction for target {prediction.target!r} in a file of {first.target!r} predictions; "
                "keep one target per predictions file"
            )
        predictions[prediction.id] = prediction
    return predictions


def part_path(out: Path, rank: int) -> Path:
    """Rank ``rank``'s own predictions file in a data-parallel ``predict`` (beside ``out``; merged into it)."""
    return out.with_name(f"{out.name}.rank{rank}.part")


def part_files(out: Path) -> list[Path]:
    """Every rank's predictions file of ``out`` still waiting to be merged, whatever the number of ranks."""
    return sorted(out.parent.glob(f"{glob.escape(out.name)}.rank*.part"))


def merge_parts(out: Path, order: list[str]) -> dict[str, Prediction]:
    """Fold the ranks' part files into ``out`` (memes in ``order``, the order a single-process run writes them;
    ids not in ``order`` keep their place after them), then delete the parts. Torn last lines (a rank killed while
    writing) are cut off. Crash-safe: ``out`` is replaced atomically before any part is deleted, and a part merged
    twice adds nothing (the same prediction twice is one prediction)."""
    done = read_predictions(out, repair=True)
    parts = part_files(out)
    if not parts:
        return done
    for part in parts:
        for prediction in read_predictions(part, repair=True).values():
            if done.get(prediction.id, prediction) != prediction:
                raise M2VError(
                    f"{part}: a different prediction for meme {prediction.id} than {out} holds; "
                    "remove one of the two lines"
                )
            done.setdefault(prediction.id, prediction)
    merged = _in_order(done, order)
    _rewrite(out, merged)
    for part in parts:
        part.unlink()
    logger.info("merged %d part file(s) into %s (%d predictions)", len(parts), out, len(merged))
    return merged


def _in_order(predictions: dict[str, Prediction], order: list[str]) -> dict[str, Prediction]:
    """``predictions`` in the memes' order; ids not in ``order`` keep their relative place after them."""
    position = {meme_id: index for index, meme_id in enumerate(order)}
    ordered = sorted(predictions.values(), key=lambda p: position.get(p.id, len(position)))  # stable
    return {p.id: p for p in ordered}


def _rewrite(out: Path, predictions: dict[str, Prediction]) -> None:
    """Replace ``out`` with ``predictions`` through :func:`~m2v_bench.atomic.atomic_write` (fsynced, read back,
    renamed, and the rename made durable before a caller deletes what was merged)."""

    def write(fh) -> None:
        for prediction in predictions.values():
            append_jsonl(fh, prediction.__dict__)

    atomic_write(out, write, read_predictions)


def check_predictions(predictions: dict[str, Prediction], memes: list[Record], target: str | None, path: Path) -> str:
    """Predictions must be for ``target`` (when given) and for memes of the manifest; returns their target."""
    if not predictions:
        raise M2VError(f"{path}: no predictions; run `m2v-bench reannotate predict` first")
    found = next(iter(predictions.values())).target
    if target is not None and found != target:
        raise M2VError(
            f"{path}: predictions were made for target {found!r}, not {target!r}; predict for {target} "
            f"(`reannotate predict --target {target}`) or pass --target {found}"
        )
    ids = {m.id for m in memes}
    unknown = sorted(i for i in predictions if i not in ids)
    if unknown:
        raise M2VError(
            f"{path}: {len(unknown)} prediction(s) for memes not in the manifest (e.g. {unknown[:3]}); "
            "predictions and --memes must come from the same meme set"
        )
    return found


def predict(
    memes: list[Record],
    target: str,
    generator,
    out: Path,
    shots: int = 8,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
    wait_for_everyone: Callable[[], None] | None = None,
) -> dict[str, Prediction]:
    """Few-shot predictions of ``memes`` under ``target``'s definition, appended to ``out`` batch by batch (flushed
    and fsynced); memes already in ``out`` are skipped, so a killed run resumes where it stopped.

    Data-parallel (``world_size`` > 1, one call per rank, ``wait_for_everyone`` a barrier across them): rank 0
    first merges what a killed run left in part files into ``out``; every rank then takes every ``world_size``-th
    meme still missing from ``out`` and appends its answers to its own part file (:func:`part_path`); when all are
    done, rank 0 merges the parts into ``out`` in the memes' order, the file a single-process run writes. Every rank
    returns every prediction in ``out``."""
    if not 0 <= rank < world_size:
        raise M2VError(f"rank {rank} is outside a world of {world_size} process(es)")
    if world_size > 1 and wait_for_everyone is None:
        raise M2VError("a data-parallel predict needs wait_for_everyone (a barrier across the ranks)")
    wait = wait_for_everyone or (lambda: None)
    space = target_space(target)
    demos = get_dataset(target).demonstrations()[:shots]
    if shots > len(demos):
        raise M2VError(f"--shots {shots}: {target} has {len(demos)} demonstrations")
    order = [m.id for m in memes]
    if rank == 0:
        merge_parts(out, order)  # a killed data-parallel run's parts (also when resumed by one process)
    wait()
    done = read_predictions(out, repair=world_size == 1)
    wrong_target = [p.id for p in done.values() if p.target != target]
    if wrong_target:
        raise M2VError(f"{out} holds predictions for another target ({wrong_target[:3]}...); use another file")
    remaining = [m for m in memes if m.id not in done]
    missing = [m.id for m in remaining if m.media is None]
    if missing:
        raise M2VError(f"meme {missing[0]} has no image (media is null); `m2v-bench validate` lists them")
    todo = remaining[rank::world_size]
    destination = out if world_size == 1 else part_path(out, rank)
    make_dirs(destination.parent)
    desc = f"predict {target}" + (f" [rank {rank}/{world_size}]" if world_size > 1 else "")
    total = len(memes) if world_size == 1 else len(todo)
    bar = tqdm(total=total, initial=total - len(todo), desc=desc, disable=not progress, position=rank)
    with user_path(destination, "append to"), open(destination, "a", encoding="utf-8") as fh:
        for start in range(0, len(todo), generator.batch_size):
            batch = todo[start : start + generator.batch_size]
            items = [(few_shot_prompt(meme.text, space, "image", demos), [meme.media]) for meme in batch]
            for meme, response in zip(batch, generator.generate(items), strict=True):
                prediction = Prediction(meme.id, int(space.parse(response)), response, target)
                append_jsonl(fh, prediction.__dict__)
                done[meme.id] = prediction
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(batch))
    bar.close()
    if world_size == 1:
        ordered = _in_order(done, order)
        if list(ordered) != list(done):  # resumed after a data-parallel run: its parts came in rank by rank
            _rewrite(out, ordered)
        return ordered
    wait()
    if rank == 0:
        done = merge_parts(out, order)
    wait()
    return done if rank == 0 else read_predictions(out)
