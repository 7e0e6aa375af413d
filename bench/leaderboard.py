"""Leaderboard benchmark: ingest one submission of 4 tasks x 1,000 test samples, then aggregate every view.

    python bench/leaderboard.py [--repeats 5]

Builds 4 synthetic test manifests of 1,000 samples and lmms-eval-style per-sample logs for them, then times
``submit`` (read, verify ids/labels/hash, recompute metrics, bootstrap CI, store) and the substitution, augmentation
and ranking views (with McNemar against a No-FT submission), on a fresh SQLite file each repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from m2v_bench.leaderboard import views
from m2v_bench.leaderboard.store import Store
from m2v_bench.leaderboard.submit import submit

from m2v_bench.manifest import Record, split_hash, write_manifest
from m2v_bench.models.loading import PROVENANCE_FILE

N = 1000
DATASETS = {"mhc": "offensive", "hatemm": "hateful", "fhm": "hateful", "mami": "misogynous"}


def make_inputs(root: Path, rng: np.random.Generator) -> tuple[Path, dict[str, Path]]:
    data = root / "data"
    outputs = {}
    golds = {}
    for dataset, space in DATASETS.items():
        records = [
            Record(id=f"{dataset}-{i}", dataset=dataset, split="test", modality="video", text=f"t{i}",
                   label=int(rng.integers(0, 2)), label_space=space, source=dataset)
            for i in range(N)
        ]  # fmt: skip
        write_manifest(data / dataset / "test.jsonl", records)
        golds[dataset] = (records, split_hash(records))
    for name, strategy in (("base", "no_ft"), ("tuned", "vid_ft")):
        checkpoint = root / name
        checkpoint.mkdir()
        (checkpoint / PROVENANCE_FILE).write_text(json.dumps(
            {"family": "llava_next_video", "strategy": strategy, "target": "mhc", "base_model": "tiny"}))  # fmt: skip
        out = root / f"out-{name}" / "m2v"
        out.mkdir(parents=True)
        for dataset, (records, test_hash) in golds.items():
            lines = []
            for doc_id, record in enumerate(records):
                pred = record.label if rng.random() < 0.7 else int(rng.integers(-1, 2))
                item = {"id": record.id, "gold": record.label, "pred": pred, "response": "x", "test_sha256": test_hash}
                lines.append(json.dumps({"doc_id": doc_id, **{m: item for m in ("accuracy", "macro_f1")}}))
            (out / f"2026_samples_m2v_{dataset}.jsonl").write_text("\n".join(lines) + "\n")
        outputs[name] = (checkpoint, out.parent)
    return data, outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="m2v-bench-lb-"))
    data, outputs = make_inputs(root, np.random.default_rng(0))
    ingest, aggregate = [], []
    for repeat in range(args.repeats):
        store = Store(root / f"lb{repeat}.sqlite")
        submit(store, str(outputs["base"][0]), outputs["base"][1], data, name="base")
        start = time.perf_counter()
        submit(store, str(outputs["tuned"][0]), outputs["tuned"][1], data, name="tuned")
        middle = time.perf_counter()
        views.substitution(store), views.augmentation(store), views.ranking(store)
        end = time.perf_counter()
        ingest.append(middle - start)
        aggregate.append(end - middle)
        store.close()
    total = statistics.median(i + a for i, a in zip(ingest, aggregate, strict=True))
    print(f"one submission of 4 tasks x {N} samples, median of {args.repeats}:")
    print(f"| ingest (verify, recompute, bootstrap CI, store) | {statistics.median(ingest):.3f} s |")
    print(f"| aggregate (substitution, augmentation, ranking with McNemar) | {statistics.median(aggregate):.3f} s |")
    print(f"| total | {total:.3f} s |")
    ok = total < 2.0
    print(f"\ntarget: ingest + aggregate < 2 s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
