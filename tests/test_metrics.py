import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from m2v_bench.metrics import METRICS, auroc, classification_metrics


def sklearn_reference(golds, preds):
    """The paper's metrics straight from sklearn, with invalid (-1) as a third class scored against [0, 1]."""
    return {
        "accuracy": accuracy_score(golds, preds),
        "macro_f1": f1_score(golds, preds, labels=[0, 1], average="macro", zero_division=0),
        "f1": f1_score(golds, preds, labels=[1], average="macro", zero_division=0),
        "precision": precision_score(golds, preds, labels=[1], average="macro", zero_division=0),
        "recall": recall_score(golds, preds, labels=[1], average="macro", zero_division=0),
        "invalid_rate": float(np.mean(np.asarray(preds) == -1)),
    }


@pytest.mark.parametrize("seed", range(10))
def test_random_predictions_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    golds = rng.integers(0, 2, 50).tolist()
    preds = rng.choice([0, 1, -1], size=50, p=[0.45, 0.45, 0.1]).tolist()
    assert classification_metrics(golds, preds) == pytest.approx(sklearn_reference(golds, preds))


def test_hand_computed_example():
    # gold 1 1 1 0 0, pred 1 -1 0 0 1: TP=1, FN=2 (one of them invalid), FP=1, TN=1
    m = classification_metrics([1, 1, 1, 0, 0], [1, -1, 0, 0, 1])
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert (m["precision"], m["recall"]) == pytest.approx((1 / 2, 1 / 3))
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    f1_neg = 2 * (1 / 2) * (1 / 2) / 1  # class 0: TP=1, FP=1 (gold 1 predicted 0), FN=1
    assert m["macro_f1"] == pytest.approx((m["f1"] + f1_neg) / 2)
    assert m["invalid_rate"] == pytest.approx(1 / 5)


def test_all_invalid_scores_zero_everywhere():
    m = classification_metrics([0, 1, 1], [-1, -1, -1])
    assert m == {**dict.fromkeys(set(METRICS) - {"macro_f1_strict", "media_error_rate"}, 0.0), "invalid_rate": 1.0}
    assert m == pytest.approx(sklearn_reference([0, 1, 1], [-1, -1, -1]))


@pytest.mark.parametrize(("golds", "preds"), [([0, 0, 0], [0, 1, 0]), ([1, 1], [1, 1]), ([0, 0], [0, 0])])
def test_single_class_gold(golds, preds):
    assert classification_metrics(golds, preds) == pytest.approx(sklearn_reference(golds, preds))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="2 gold labels but 1"):
        classification_metrics([0, 1], [0])
    with pytest.raises(ValueError, match="gold labels must be 0 or 1"):
        classification_metrics([2], [0])
    with pytest.raises(ValueError, match="predictions must be"):
        classification_metrics([1], [3])
    with pytest.raises(ValueError, match="no predictions"):
        classification_metrics([], [])


def test_auroc():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(auroc([1, 1], [0.2, 0.3]))


def test_strict_macro_f1_counts_an_invalid_answer_as_the_wrong_label():
    from m2v_bench.metrics import strict_macro_f1

    golds, preds = [1, 1, 0, 0], [1, -1, 0, -1]
    assert strict_macro_f1(golds, preds) == pytest.approx(classification_metrics(golds, [1, 0, 0, 1])["macro_f1"])
    assert strict_macro_f1(golds, preds) < classification_metrics(golds, preds)["macro_f1"]
    assert strict_macro_f1(golds, [1, 1, 0, 0]) == 1.0
