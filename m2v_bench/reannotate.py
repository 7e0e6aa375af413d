"""Re-annotation: align meme labels with a target video dataset's label definition (the paper's Section 3).

Three votes per meme: its original label, a VLM's few-shot prediction under the target's definition
(demonstrations = the target's video samples, described in text), and a human label collected only where the first
two disagree. Stages, each a ``m2v-bench reannotate`` subcommand:

1. ``predict``: append-only JSONL of predictions keyed by meme id; a killed run resumes where it stopped. Runs
   data-parallel under ``accelerate launch`` / ``torchrun`` (one part file per rank, merged into the same file).
2. ``queue``: the conflicts (original != prediction; an invalid prediction is a conflict too) as CSV and as a
   Label Studio import with the model's answer as a pre-annotation.
3. ``import``: annotators' answers (CSV or Label Studio export; several annotators per meme) -> one human label per
   meme (their majority; a tie stays unresolved).
4. ``vote``: agreeing memes keep their label; conflicts take the human label -- the 2-of-3 majority, since the human
   breaks the tie between the two other votes. Conflicts without a human label are reported, never guessed.
5. ``stats``: Cohen's kappa per pair of votes, the flip matrix original -> final, positive rates.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from m2v_bench.atomic import atomic_write, atomic_write_text, check_json, make_dirs, user_path
from m2v_bench.errors import M2VError
from m2v_bench.jsonl import append_jsonl, read_json, read_jsonl, write_jsonl
from m2v_bench.labels import Answer, LabelSpace, few_shot_prompt
from m2v_bench.manifest import Record

logger = logging.getLogger(__name__)

REANNOTATED_CSV_COLUMNS = (
    "id", "image", "text", "type", "original_dataset_label", "model_prediction", "human_annotation", "majority_voting",
)  # fmt: skip
"""The columns of the paper's released re-annotation (``<meme>_aligned_with_<target>.csv``)."""


def target_space(target: str) -> LabelSpace:
    from m2v_bench.registry import check_target

    return check_target(target).label_space


def aligned_name(source: str, target: str) -> str:
    """The paper's name of a re-annotated meme set, e.g. ``fhm_aligned_with_mhc``."""
    return f"{source}_aligned_with_{target}"


# ------------------------------------------------------------------------------------------------- predictions


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
    """Replace ``out`` atomically (a temporary file, fsynced, then renamed) with ``predictions``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".merging")
    with open(tmp, "w", encoding="utf-8") as fh:
        for prediction in predictions.values():
            append_jsonl(fh, prediction.__dict__)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    _fsync_dir(out.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable before acting on it (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    from tqdm import tqdm

    from m2v_bench.datasets import get_dataset

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


def load_memes(manifest: Path) -> list[Record]:
    from m2v_bench.manifest import read_manifest, with_absolute_media

    memes = with_absolute_media(read_manifest(manifest), manifest.parent)
    if not memes:
        raise M2VError(f"{manifest}: no meme in the manifest; prepare the meme dataset first")
    if any(m.modality != "image" for m in memes):
        raise M2VError(f"{manifest}: re-annotation takes meme (image) manifests")
    sources = sorted({m.source for m in memes})
    if len(sources) > 1:
        raise M2VError(f"{manifest}: memes of several sources {sources}; re-annotate one meme dataset at a time")
    aligned = [m.id for m in memes if m.dataset != m.source]
    if aligned:
        raise M2VError(
            f"{manifest}: meme {aligned[0]} is already re-annotated ({memes[0].dataset}); give the prepared meme "
            "manifest with its original labels (e.g. data/fhm/train.jsonl)"
        )
    seen: set[str] = set()
    for meme in memes:
        if meme.id in seen:
            raise M2VError(f"{manifest} [{meme.id}]: the meme id appears twice; `m2v-bench validate` lists them")
        seen.add(meme.id)
    return memes


# ------------------------------------------------------------------------------------------------------- queue


def conflicts(memes: list[Record], predictions: dict[str, Prediction]) -> list[Record]:
    """Memes whose original label and model prediction disagree (an invalid prediction disagrees)."""
    missing = [m.id for m in memes if m.id not in predictions]
    if missing:
        raise M2VError(f"{len(missing)} meme(s) have no prediction yet (e.g. {missing[:3]}); run `predict` first")
    return [m for m in memes if predictions[m.id].prediction != m.label]


def write_queue(items: list[Record], predictions: dict[str, Prediction], target: str, csv_path: Path,
                labelstudio_path: Path | None = None) -> None:  # fmt: skip
    """The annotation queue as CSV (fill in ``human_label`` with 0/1 or a label word) and as a Label Studio import
    (choices = the target's two label words; the model's answer as a pre-annotation)."""
    space = target_space(target)
    for path in (csv_path, labelstudio_path):  # both outputs are checked before either is written
        if path is not None and path.is_dir():
            raise M2VError(f"{path}: is a folder; give a file path to write")

    def write(fh) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(QUEUE_COLUMNS)
        for meme in items:
            writer.writerow([meme.id, meme.media or "", spreadsheet_safe(meme.text), meme.label,
                             predictions[meme.id].prediction, "", ""])  # fmt: skip

    def check(path: Path) -> None:
        if read_queue(path) != [m.id for m in items]:
            raise M2VError(f"{path}: the queue does not read back as written (ids changed)")

    atomic_write(csv_path, write, check, newline="")
    if labelstudio_path is None:
        return
    tasks = []
    for meme in items:
        task = {"data": {"id": meme.id, "image": meme.media or "", "text": meme.text, "target": target}}
        predicted = predictions[meme.id].prediction
        if predicted in (0, 1):
            task["predictions"] = [{
                "model_version": "m2v-bench few-shot",
                "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                            "value": {"choices": [space.word(predicted)]}}],
            }]  # fmt: skip
        tasks.append(task)
    atomic_write_text(labelstudio_path, json.dumps(tasks, indent=1, ensure_ascii=False) + "\n", check_json)


QUEUE_COLUMNS = ("id", "image", "text", "original_label", "model_prediction", "human_label", "annotator")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula (= + - @, tab, CR) gets a leading ``'``
    (OWASP's advice against CSV injection: annotators open the queue in Excel or LibreOffice)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def read_queue(path: Path) -> list[str]:
    from m2v_bench.datasets.common import read_csv_rows

    if not path.is_file():
        raise M2VError(f"{path}: no queue file; make it with `m2v-bench reannotate queue`")
    ids: dict[str, str] = {}
    for where, row in read_csv_rows(path, required=("id",)):
        meme_id = row["id"].strip()
        if not meme_id:
            raise M2VError(f"{where}: empty id in the queue")
        if meme_id in ids:
            raise M2VError(f"{where}: meme {meme_id!r} is queued twice (first at {ids[meme_id]})")
        ids[meme_id] = where
    return list(ids)


# ------------------------------------------------------------------------------------------------------ import


@dataclass
class HumanLabel:
    id: str
    label: int | None
    """None: the annotators tie."""
    votes: dict[str, int] = field(default_factory=dict)
    """annotator -> label."""
    target: str | None = None
    """The target whose label words the annotators answered in (None in files from before it was recorded)."""


def _label_value(value, space: LabelSpace, where: str) -> int:
    text = str(value).strip()
    if text in ("0", "1"):
        return int(text)
    parsed = space.parse_word(text)  # people type labels: "yes" or a sentence is a mistake, not an answer
    if parsed is Answer.INVALID:
        raise M2VError(f"{where}: label {value!r} is neither 0/1 nor '{space.positive}'/'{space.negative}'")
    return int(parsed)


def _answers_from_csv(path: Path, space: LabelSpace) -> Iterable[tuple[str, str, int, str]]:
    from m2v_bench.datasets.common import read_csv_rows

    rows = read_csv_rows(path, required=("id",))
    header = list(rows[0][1]) if rows else []
    if rows and "human_label" not in header and "label" not in header:
        raise M2VError(f"{path}: needs columns id and human_label (or label); found {header}")
    column = "human_label" if "human_label" in header else "label"
    for where, row in rows:
        if (row[column] or "").strip() == "":
            continue  # not answered yet
        annotator = (row.get("annotator") or "").strip() or path.name
        yield row["id"].strip(), annotator, _label_value(row[column], space, where), where


def _answers_from_labelstudio(path: Path, space: LabelSpace) -> Iterable[tuple[str, str, int, str]]:
    tasks = read_json(path, "export it again from Label Studio (JSON)")
    if not isinstance(tasks, list):
        raise M2VError(f"{path}: expected Label Studio's JSON export (a list of tasks), got {type(tasks).__name__}")
    for number, task in enumerate(tasks, start=1):
        where = f"{path}: task {number}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), (str, int)) or isinstance(data["id"], bool):
            raise M2VError(f"{where}: expected a task object with data.id (the meme id); export it again as JSON")
        meme_id = str(data["id"])
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise M2VError(f"{where} ({meme_id}): 'annotations' must be a list")
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise M2VError(f"{where} ({meme_id}): an annotation must be an object, got {annotation!r:.40}")
            if annotation.get("was_cancelled"):
                continue
            try:
                choices = [c for r in annotation.get("result", []) for c in r.get("value", {}).get("choices", [])]
            except (AttributeError, TypeError):
                raise M2VError(f"{where} ({meme_id}): an annotation result is not Label Studio's shape") from None
            if len(choices) != 1:
                raise M2VError(f"{where} ({meme_id}): expected one choice per annotation, got {choices}")
            annotator = str(annotation.get("completed_by", "labelstudio"))
            yield meme_id, annotator, _label_value(choices[0], space, where), where


def import_answers(paths: list[Path], queue_ids: list[str], target: str) -> dict[str, HumanLabel]:
    """Annotators' answers -> one HumanLabel per answered meme. Unknown ids, labels outside the label space and one
    annotator giving two different answers for a meme are errors naming the file and row."""
    space = target_space(target)
    queued = set(queue_ids)
    labels: dict[str, HumanLabel] = {}
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for path in paths:
        if not path.is_file():
            raise M2VError(f"{path}: no such answers file")
        reader = _answers_from_labelstudio if path.suffix.lower() == ".json" else _answers_from_csv
        for meme_id, annotator, label, where in reader(path, space):
            if meme_id not in queued:
                raise M2VError(f"{where}: meme {meme_id!r} is not in the annotation queue; check the id")
            earlier = seen.get((meme_id, annotator))
            if earlier and earlier[0] != label:
                raise M2VError(
                    f"{where}: annotator {annotator!r} answered {label} for meme {meme_id}, "
                    f"but {earlier[0]} at {earlier[1]}; keep one of the two answers"
                )
            seen[(meme_id, annotator)] = (label, where)
            labels.setdefault(meme_id, HumanLabel(meme_id, None, target=target)).votes[annotator] = label
    for human in labels.values():
        counts = Counter(human.votes.values()).most_common()
        human.label = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else None
    return labels


def write_human(path: Path, labels: dict[str, HumanLabel]) -> None:
    write_jsonl(path, (human.__dict__ for human in labels.values()), check=read_human)


def read_human(path: Path, target: str | None = None) -> dict[str, HumanLabel]:
    """Human labels by meme id: 0, 1 or null (a tie), each vote 0 or 1; with ``target``, labels recorded for
    another target are an error."""
    if not path.is_file():
        raise M2VError(f"{path}: no human labels; make them with `m2v-bench reannotate import`")
    labels: dict[str, HumanLabel] = {}
    for where, obj in read_jsonl(path, what="human-label record"):
        try:
            human = HumanLabel(obj["id"], obj["label"], obj.get("votes", {}), obj.get("target"))
        except KeyError as exc:
            raise M2VError(f"{where}: not a human-label record (no {exc})") from None
        if not isinstance(human.id, str) or not human.id:
            raise M2VError(f"{where}: 'id' must be a meme id (a non-empty string), got {human.id!r}")
        if human.label is not None and (type(human.label) is not int or human.label not in (0, 1)):
            raise M2VError(
                f"{where} [{human.id}]: label must be 0, 1 or null (a tie), got {json.dumps(human.label)}; "
                "import the answers again with `reannotate import`"
            )
        votes = human.votes
        if not isinstance(votes, dict) or any(type(v) is not int or v not in (0, 1) for v in votes.values()):
            raise M2VError(f"{where} [{human.id}]: votes must map annotators to 0 or 1, got {json.dumps(votes)}")
        if target is not None and human.target not in (None, target):
            raise M2VError(
                f"{where} [{human.id}]: a human label for target {human.target!r}, not {target!r}; use the labels "
                f"imported with --target {target}"
            )
        if human.id in labels:
            raise M2VError(f"{where}: a second human label for meme {human.id}")
        labels[human.id] = human
    return labels


# -------------------------------------------------------------------------------------------------------- vote


@dataclass
class VoteResult:
    rows: list[dict]
    """One row per resolved meme, in the paper's released CSV columns."""
    records: list[Record]
    """The aligned manifest: labels in the target's label space."""
    unresolved: list[str]


def vote(
    memes: list[Record], predictions: dict[str, Prediction], human: dict[str, HumanLabel], target: str
) -> VoteResult:
    space = target_space(target)
    conflicted = {m.id for m in conflicts(memes, predictions)}
    if predictions:
        found = next(iter(predictions.values())).target
        if found != target:
            raise M2VError(f"the predictions were made for target {found!r}, not {target!r}; predict for {target}")
    unknown = sorted(i for i in human if i not in conflicted)
    if unknown:
        raise M2VError(
            f"{len(unknown)} human label(s) for memes that are not in conflict or not in the manifest "
            f"(e.g. {unknown[:3]}); the human labels must come from this meme set's queue"
        )
    result = VoteResult([], [], [])
    for meme in memes:
        predicted = predictions[meme.id].prediction
        human_label = human[meme.id].label if meme.id in human else None
        if meme.id not in conflicted:
            final = meme.label
        elif human_label is None:
            result.unresolved.append(meme.id)
            continue
        else:
            final = human_label
        result.rows.append({
            "id": meme.id, "image": meme.media or "", "text": meme.text, "type": meme.split,
            "original_dataset_label": meme.label, "model_prediction": predicted,
            "human_annotation": human_label if meme.id in conflicted else "", "majority_voting": final,
        })  # fmt: skip
        result.records.append(
            replace(
                meme,
                dataset=aligned_name(meme.source, target),
                label=final,
                label_space=space.name,
                extra={
                    **meme.extra,
                    "original_label": meme.label,
                    "original_label_space": meme.label_space,
                    "model_prediction": predicted,
                    "human_annotation": human_label,
                },
            )  # fmt: skip
        )
    return result


def write_paper_csv(path: Path, rows: list[dict]) -> None:
    """The paper's CSV, atomically, read back with :func:`read_paper_csv` first."""

    def write(fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=REANNOTATED_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    atomic_write(path, write, read_paper_csv, newline="")


def read_paper_csv(path: Path) -> list[dict]:
    """The paper's released re-annotation (reference/upstream_dataset/reannotated_meme/*.csv) as typed rows."""
    from m2v_bench.datasets.common import read_csv_rows

    rows = []
    for where, row in read_csv_rows(path, required=REANNOTATED_CSV_COLUMNS):
        typed = dict(row)
        for column in ("original_dataset_label", "model_prediction", "majority_voting"):
            value = row[column].strip()
            allowed = ("0", "1", "-1") if column == "model_prediction" else ("0", "1")
            if value not in allowed:
                raise M2VError(f"{where}: {column} must be {' or '.join(allowed)}, got {row[column]!r}")
            typed[column] = int(value)
        human = row["human_annotation"].strip()
        if human not in ("", "0", "1"):
            raise M2VError(f"{where}: human_annotation must be empty, 0 or 1, got {human!r}")
        typed["human_annotation"] = int(human) if human else None
        rows.append(typed)
    return rows


def released_records(path: Path, source: str, target: str, memes: dict[str, Record] | None = None) -> list[Record]:
    """An aligned manifest straight from the paper's released CSV (labels = its majority_voting), with images from
    a prepared meme manifest when given (the CSV's image paths point into the authors' disk)."""
    from m2v_bench.datasets import get_dataset

    space = target_space(target)
    get_dataset(source)
    records = []
    for row in read_paper_csv(path):
        meme = (memes or {}).get(row["id"])
        records.append(
            Record(
                id=row["id"],
                dataset=aligned_name(source, target),
                split="train",
                modality="image",
                text=row["text"],
                label=row["majority_voting"],
                label_space=space.name,
                source=source,
                media=meme.media if meme else None,
                extra={
                    "original_label": row["original_dataset_label"],
                    "model_prediction": row["model_prediction"],
                    "human_annotation": row["human_annotation"],
                },
            )  # fmt: skip
        )
    return records


# ------------------------------------------------------------------------------------------------------- stats


def agreement_stats(rows: list[dict]) -> dict:
    """Cohen's kappa for each pair of votes (on the rows where both exist), the flip matrix original -> final and
    positive rates, from rows in the paper's CSV columns."""
    from sklearn.metrics import cohen_kappa_score

    def pairs(a: str, b: str):
        kept = [(r[a], r[b]) for r in rows if r[a] not in (None, "") and r[b] not in (None, "")]
        return [x for x, _ in kept], [y for _, y in kept]

    kappas = {}
    for a, b in (("original_dataset_label", "model_prediction"), ("original_dataset_label", "human_annotation"),
                 ("model_prediction", "human_annotation")):  # fmt: skip
        x, y = pairs(a, b)
        kappas[f"{a} vs {b}"] = {"kappa": float(cohen_kappa_score(x, y)) if len(set(x) | set(y)) > 1 else None,
                                 "n": len(x)}  # fmt: skip
    flips = Counter((int(r["original_dataset_label"]), int(r["majority_voting"])) for r in rows)
    n = len(rows)
    return {
        "n": n,
        "queued": sum(1 for r in rows if r["human_annotation"] not in (None, "")),
        "kappa": kappas,
        "flips": {f"{a}->{b}": flips.get((a, b), 0) for a in (0, 1) for b in (0, 1)},
        "positive_rate_original": sum(int(r["original_dataset_label"]) for r in rows) / n if n else 0.0,
        "positive_rate_final": sum(int(r["majority_voting"]) for r in rows) / n if n else 0.0,
    }
