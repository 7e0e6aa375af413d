"""The paper's metrics, in one place for the lmms-eval tasks and the leaderboard: accuracy, macro-F1, and the
positive class's F1, precision and recall, plus the invalid-answer rate (and AUROC when label scores exist), and
the statistics over them: a bootstrap CI of macro-F1 and the exact McNemar test of two submissions.

Predictions are 1 (positive), 0 (negative) or -1 (invalid: the answer parser found neither label, see
:mod:`m2v_bench.labels`). Two conventions score an invalid answer:

- **invalid = a third class** (the default, every metric but ``macro_f1_strict``): it is a predicted class that
  sklearn scores against ``labels=[0, 1]``, so it lowers the recall of its gold class (and accuracy) without
  counting as a false positive of the other class.
- **invalid = the wrong label** (``macro_f1_strict``): an invalid answer is replaced by the label opposite to the
  gold one, so it is also a false positive (gold negative) or a false negative (gold positive). It is never higher
  than ``macro_f1``'s convention would make a model that answered the wrong label, and it penalises chatty models
  as a label-only evaluation does.

Everything is computed with scikit-learn and scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest, bootstrap
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score

INVALID = -1
METRICS = ("accuracy", "macro_f1", "f1", "precision", "recall", "invalid_rate", "macro_f1_strict", "media_error_rate")
"""What a generating task reports (``tasks/_default_template_yaml`` lists the same, checked by a test)."""
SCORE_METRICS = ("accuracy", "macro_f1", "f1", "precision", "recall", "auroc", "media_error_rate")
"""What a ``*_score`` task reports: its predictions are never invalid, and the label scores give AUROC."""
CI_RESAMPLES = 1000
"""Bootstrap resamples of a confidence interval (:func:`macro_f1_ci`)."""


def _check(golds: Sequence[int], preds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(golds, dtype=int), np.asarray(preds, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predictions")
    if y_true.size == 0:
        raise ValueError("no predictions to score")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"gold labels must be 0 or 1, got {sorted(set(y_true.tolist()) - {0, 1})}")
    if not np.isin(y_pred, (0, 1, INVALID)).all():
        raise ValueError(f"predictions must be 0, 1 or -1, got {sorted(set(y_pred.tolist()) - {0, 1, -1})}")
    return y_true, y_pred


def classification_metrics(golds: Sequence[int], preds: Sequence[int]) -> dict[str, float]:
    """Accuracy, macro-F1, the positive class's F1, precision and recall, and the invalid rate (every metric of
    :data:`METRICS` but ``macro_f1_strict``, see :func:`strict_macro_f1`) for one set of predictions. A metric
    whose denominator is zero (e.g. precision when nothing is predicted positive) is 0.0, as sklearn's
    ``zero_division=0``."""
    y_true, y_pred = _check(golds, preds)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[1], average=None, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=[0, 1], average="macro", zero_division=0)),
        "f1": float(f1[0]),
        "precision": float(precision[0]),
        "recall": float(recall[0]),
        "invalid_rate": float(np.mean(y_pred == INVALID)),
    }


def strict_macro_f1(golds: Sequence[int], preds: Sequence[int]) -> float:
    """macro-F1 with every invalid answer counted as the wrong label (the stricter convention above)."""
    y_true, y_pred = _check(golds, preds)
    y_pred = np.where(y_pred == INVALID, 1 - y_true, y_pred)
    return float(f1_score(y_true, y_pred, labels=[0, 1], average="macro", zero_division=0))


def auroc(golds: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve of positive-label scores; NaN when the gold labels hold one class only."""
    y_true = np.asarray(golds, dtype=int)
    if len(set(y_true.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, np.asarray(scores, dtype=float)))


# Statistics over one submission (a CI) or two on the same samples (McNemar), for the leaderboard.


def macro_f1_ci(golds: np.ndarray, preds: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of macro-F1 (scipy), resampling samples with their predictions."""

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


def mcnemar_p(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> float | None:
    """Exact McNemar test (binomial on the discordant pairs, scipy) of two submissions' (gold, pred) on the same
    samples (``Store.predictions``)."""
    if not a or set(a) != set(b):
        return None
    only_a = sum(1 for i in a if (a[i][1] == a[i][0]) and (b[i][1] != b[i][0]))
    only_b = sum(1 for i in a if (a[i][1] != a[i][0]) and (b[i][1] == b[i][0]))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
