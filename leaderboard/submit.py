"""Submitting a checkpoint's lmms-eval results: read its provenance and per-sample logs, verify them against the
current test manifests, recompute every metric, store.

Self-reported numbers (``*_results.json``) are never trusted: metrics are recomputed from the per-sample records
(id, gold, prediction) with :mod:`m2v_bench.metrics`. A submission is rejected, with the reason, when a log is
truncated or malformed, holds a non-finite number, misses or adds or repeats a test id, disagrees with a gold label,
was made on another version of the test set (content hash), names an unknown task, or when its name could escape
the store (``../``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
from m2v_bench.leaderboard.store import Store, Submission

from m2v_bench.errors import M2VError
from m2v_bench.jsonl import read_jsonl
from m2v_bench.manifest import read_manifest, split_hash
from m2v_bench.metrics import auroc, classification_metrics
from m2v_bench.models.loading import PROVENANCE_FILE
from m2v_bench.registry import parse_task

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
CI_RESAMPLES = 1000


class SubmissionError(M2VError):
    """A submission the leaderboard does not accept; the message says why."""


def macro_f1_ci(golds: np.ndarray, preds: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of macro-F1 (scipy), resampling samples with their predictions."""
    from scipy.stats import bootstrap

    def statistic(g, p, axis=-1):
        scores = []
        for label in (0, 1):
            tp = np.sum((p == label) & (g == label), axis=axis)
            fp = np.sum((p == label) & (g != label), axis=axis)
            fn = np.sum((p != label) & (g == label), axis=axis)
            denominator = 2 * tp + fp + fn
            scores.append(np.divide(2 * tp, denominator, out=np.zeros(np.shape(tp), float), where=denominator > 0))
        return (scores[0] + scores[1]) / 2

    if len(golds) < 2:
        value = float(statistic(golds, preds))
        return value, value
    result = bootstrap((golds, preds), statistic, paired=True, vectorized=True, n_resamples=CI_RESAMPLES,
                       confidence_level=confidence, method="percentile", random_state=0)  # fmt: skip
    low, high = result.confidence_interval
    return float(np.nan_to_num(low)), float(np.nan_to_num(high))


def read_samples(path: Path) -> list[dict]:
    """The per-sample records of one lmms-eval ``*_samples_<task>.jsonl`` log."""
    data = path.read_text(encoding="utf-8")
    if data and not data.endswith("\n"):
        raise SubmissionError(f"{path}: truncated (the last line is incomplete); evaluate again")
    items = []
    for where, sample in read_jsonl(path, SubmissionError, "m2v per-sample record"):
        try:
            item = sample["macro_f1"]
            record = {"id": str(item["id"]), "gold": item["gold"], "pred": item["pred"],
                      "response": item.get("response"), "score": item.get("score"),
                      "test_sha256": item.get("test_sha256")}  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise SubmissionError(f"{where}: not an m2v per-sample record ({exc})") from None
        for key in ("gold", "pred", "score"):
            value = record[key]
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise SubmissionError(f"{where}: {key} is {value!r}, not a finite number")
        if record["gold"] not in (0, 1) or record["pred"] not in (-1, 0, 1):
            raise SubmissionError(f"{where}: gold must be 0/1 and pred -1/0/1")
        items.append(record)
    if not items:
        raise SubmissionError(f"{path}: no sample")
    return items


def find_logs(results_dir: Path) -> dict[str, Path]:
    """Task -> its per-sample log in an lmms-eval output folder (the newest when a task ran several times)."""
    if not results_dir.is_dir():
        raise SubmissionError(f"{results_dir}: no such lmms-eval output folder")
    logs: dict[str, Path] = {}
    for path in sorted(results_dir.rglob("*_samples_*.jsonl")):
        task = path.stem.split("_samples_", 1)[1]
        if parse_task(task) is None:
            raise SubmissionError(f"{path}: unknown task {task!r}; the leaderboard takes the m2v tasks")
        logs[task] = path
    if not logs:
        raise SubmissionError(
            f"{results_dir}: no per-sample log (*_samples_<task>.jsonl); run lmms-eval --log_samples"
        )
    return logs


def verify(task: str, items: list[dict], data_dir: Path, where: Path) -> tuple[str, str]:
    """Check a task's samples against the current test manifest; returns (dataset, test hash)."""
    dataset, _variant = parse_task(task)
    manifest = data_dir / dataset / "test.jsonl"
    if not manifest.is_file():
        raise SubmissionError(f"{manifest}: no test manifest to verify {task} against")
    records = read_manifest(manifest)
    expected = split_hash(records)
    hashes = {i["test_sha256"] for i in items}
    if hashes != {expected}:
        raise SubmissionError(f"{where}: made on another test set (hash {sorted(map(str, hashes))[0][:12]}..., "
                              f"current {expected[:12]}...); evaluate again on the current data")  # fmt: skip
    ids = [i["id"] for i in items]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    gold = {r.id: r.label for r in records}
    missing, extra = sorted(set(gold) - set(ids)), sorted(set(ids) - set(gold))
    for problem, found in (("duplicate", duplicates), ("missing", missing), ("unknown", extra)):
        if found:
            raise SubmissionError(f"{where}: {len(found)} {problem} test id(s): {', '.join(found[:5])}")
    wrong = [i["id"] for i in items if gold[i["id"]] != i["gold"]]
    if wrong:
        raise SubmissionError(f"{where}: gold labels differ from the test manifest for {', '.join(wrong[:5])}")
    return dataset, expected


def describe(checkpoint: str) -> dict:
    """The provenance of a fine-tuned checkpoint, or a No-FT description of a base model."""
    from m2v_bench.models.loading import detect_family, read_provenance

    path = Path(checkpoint)
    provenance = read_provenance(str(path)) if path.is_dir() else {}
    if provenance:
        return provenance
    if path.is_dir() and (path / "adapter_config.json").is_file():
        raise SubmissionError(f"{path}: an adapter without {PROVENANCE_FILE}; train it with the m2v-bench recipes")
    family = detect_family(checkpoint)
    return {"family": family.name, "base_model": checkpoint, "strategy": "no_ft", "target": None}


def submit(store: Store, checkpoint: str, results_dir: Path, data_dir: Path, name: str | None = None) -> list[dict]:
    """Verify, recompute and store one checkpoint's results; returns the stored result rows."""
    name = name or Path(checkpoint.rstrip("/")).name
    if not NAME.fullmatch(name):
        raise SubmissionError(f"name {name!r}: use letters, digits and . _ + - only (no paths)")
    provenance = describe(checkpoint)
    rows, predictions = [], {}
    for task, path in sorted(find_logs(results_dir).items()):
        items = read_samples(path)
        dataset, test_hash = verify(task, items, data_dir, path)
        golds = np.array([i["gold"] for i in items])
        preds = np.array([i["pred"] for i in items])
        metrics = classification_metrics(golds, preds)
        scores = [i["score"] for i in items]
        low, high = macro_f1_ci(golds, preds)
        rows.append({"task": task, "dataset": dataset, "test_sha256": test_hash, "n": len(items), **metrics,
                     "auroc": auroc(golds, scores) if None not in scores else None,
                     "macro_f1_low": low, "macro_f1_high": high})  # fmt: skip
        predictions[task] = items
    submission = Submission(
        name=name,
        family=provenance["family"],
        strategy=provenance["strategy"],
        target=provenance.get("target"),
        meme_source=provenance.get("meme_source"),
        base_model=str(provenance.get("base_model")),
        video_fraction=provenance.get("video_fraction"),
        provenance=provenance,
    )
    store.put(submission, rows, predictions)
    return rows
