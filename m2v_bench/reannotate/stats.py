"""Stage 5, ``stats``: Cohen's kappa per pair of votes, the flip matrix original -> final, positive rates."""

from __future__ import annotations

from collections import Counter

from sklearn.metrics import cohen_kappa_score


def agreement_stats(rows: list[dict]) -> dict:
    """Cohen's kappa for each pair of votes (on the rows where both exist), the flip matrix original -> final and
    positive rates, from rows in the paper's CSV columns."""

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
