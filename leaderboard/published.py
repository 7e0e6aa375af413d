"""The paper's published rows (Tables 3 and 4), shipped as package data, each with the confusion matrix that best
reproduces its five metrics on the test sets (MHC: 200 videos, 67 offensive; HateMM: 220, 96 hateful), searched
over every integer matrix, and a flag saying whether that matrix reproduces all five to the published rounding
(+-0.005). It does for every row but the two "best published" ones, which come from other papers' setups.

Source: the paper's repository (Social-AI-Studio/CrossModalTransferLearning; Wang, Tan, Lee, WWW 2025).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np

from m2v_bench.metrics import classification_metrics

TEST_SETS = {"MHC": (200, 67), "HateMM": (220, 96)}
"""Test-set size and positives of each target, as the paper's splits give them."""
TOLERANCE = 0.005
"""Published metrics have two decimals."""
PUBLISHED_METRICS = ("accuracy", "macro_f1", "f1", "recall", "precision")


@dataclass(frozen=True)
class PublishedRow:
    table: str
    model: str
    strategy: str
    finetune_data: str
    target: str
    metrics: dict[str, float]
    confusion: dict[str, int]
    """tp, fp, fn, tn reconstructed from recall, precision and the test set's size."""
    recomputed: dict[str, float]
    consistent: bool


def reconstruct(target: str, metrics: dict[str, float]) -> dict[str, int]:
    """The confusion matrix (tp, fp, fn, tn) on ``target``'s test set whose metrics are closest to ``metrics`` (the
    largest of the five absolute differences is minimal), found by trying every matrix."""
    total, positives = TEST_SETS[target]
    tp = np.arange(positives + 1)[:, None].astype(float)
    fp = np.arange(total - positives + 1)[None, :].astype(float)
    fn, tn = positives - tp, total - positives - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_pos = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        f1_neg = np.nan_to_num(2 * tn / (2 * tn + fn + fp))
        candidates = {
            "accuracy": (tp + tn) / total + 0 * fp, "macro_f1": (f1_pos + f1_neg) / 2, "f1": f1_pos,
            "recall": tp / positives + 0 * fp, "precision": np.nan_to_num(tp / (tp + fp)),
        }  # fmt: skip
    deviation = np.max([np.abs(candidates[m] - metrics[m]) for m in PUBLISHED_METRICS], axis=0)
    i, j = np.unravel_index(np.argmin(deviation), deviation.shape)
    return {"tp": int(i), "fp": int(j), "fn": positives - int(i), "tn": total - positives - int(j)}


def published_rows() -> list[PublishedRow]:
    data = resources.files("m2v_bench") / "data" / "paper_results.csv"
    rows = []
    with data.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            metrics = {
                "accuracy": float(row["accuracy"]), "macro_f1": float(row["macro_f1"]), "f1": float(row["f1_pos"]),
                "recall": float(row["recall_pos"]), "precision": float(row["precision_pos"]),
            }  # fmt: skip
            confusion = reconstruct(row["target"], metrics)
            golds = [1] * (confusion["tp"] + confusion["fn"]) + [0] * (confusion["fp"] + confusion["tn"])
            preds = [1] * confusion["tp"] + [0] * confusion["fn"] + [1] * confusion["fp"] + [0] * confusion["tn"]
            recomputed = classification_metrics(golds, preds)
            consistent = all(abs(recomputed[m] - metrics[m]) <= TOLERANCE + 1e-9 for m in PUBLISHED_METRICS)
            rows.append(PublishedRow(row["table"], row["model"], row["strategy"], row["finetune_data"], row["target"],
                                     metrics, confusion, recomputed, consistent))  # fmt: skip
    return rows
