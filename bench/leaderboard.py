"""Leaderboard benchmark: ingest one submission of 4 tasks x 1,000 test samples, then aggregate every view; and the
web API reading the tables with 1,000 submissions stored.

    python bench/leaderboard.py [--repeats 5] [--submissions 1000] [--requests 200]

Builds 4 synthetic test manifests of 1,000 samples and lmms-eval-style outputs for them (per-sample logs and the
run's results.json), then times ``submit`` (read, verify ids/labels/hash, re-parse every response, check
results.json, recompute metrics, bootstrap CI, store) and the substitution, augmentation and ranking views (with
McNemar against a No-FT submission), on a fresh SQLite file each repeat.

API: stores ``--submissions`` verified submissions (MHC and HateMM results on the paper's test sets, 200 and 220
per-sample predictions each), serves the FastAPI app with uvicorn (no UI) in this process, and reads
``/api/tables/{substitution,augmentation,ranking}`` ``--requests`` times each, one client in sequence; prints
requests/s and p50/p95 latency, first (cold: right after a write) and then warm.
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

from m2v_bench.datasets import DATASETS as SPECS
from m2v_bench.labels import PARSER_VERSION, PROMPT_VERSION, get_label_space
from m2v_bench.leaderboard import views
from m2v_bench.leaderboard.store import Store, Submission
from m2v_bench.leaderboard.submit import current_task_version, submit
from m2v_bench.manifest import Record, split_hash, write_manifest
from m2v_bench.models.provenance import PROVENANCE_FILE

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
        for weights in ("adapter_config.json", "adapter_model.safetensors"):
            (checkpoint / weights).write_text("{}")
        out = root / f"out-{name}" / "m2v"
        out.mkdir(parents=True)
        stamp = "20260101_000000"
        tasks = [f"m2v_{dataset}" for dataset in golds]
        metadata = {"version": current_task_version("m2v_mhc"), "prompt_version": PROMPT_VERSION,
                    "parser_version": PARSER_VERSION}  # fmt: skip
        (out / f"{stamp}_results.json").write_text(json.dumps({
            "config": {"model": "m2v", "model_args": f"pretrained={checkpoint}"},
            "versions": {t: metadata["version"] for t in tasks},
            "configs": {t: {"metadata": metadata} for t in tasks}}))  # fmt: skip
        for dataset, (records, test_hash) in golds.items():
            space = get_label_space(SPECS[dataset].label_space_name)
            lines = []
            for doc_id, record in enumerate(records):
                pred = record.label if rng.random() < 0.7 else int(rng.integers(-1, 2))
                response = space.word(pred) if pred >= 0 else "I cannot tell."
                item = {"id": record.id, "gold": record.label, "pred": pred, "response": response,
                        "test_sha256": test_hash, "test_set": "custom", "prompt_version": PROMPT_VERSION,
                        "parser_version": PARSER_VERSION}  # fmt: skip
                lines.append(json.dumps({"doc_id": doc_id, **{m: item for m in ("accuracy", "macro_f1")}}))
            (out / f"{stamp}_samples_m2v_{dataset}.jsonl").write_text("\n".join(lines) + "\n")
        outputs[name] = (checkpoint, out.parent)
    return data, outputs


def fill(store: Store, count: int, rng: np.random.Generator) -> None:
    """``count`` verified submissions on the paper's test sets (MHC 200, HateMM 220 samples), one No-FT per family."""
    strategies = ["vid_ft", "rm_ft", "om_ft", "vid_rm_ft"]
    for i in range(count):
        family = ("llava_next_video", "mllama")[i % 2]
        strategy = "no_ft" if i < 2 else strategies[i % 4]
        memes = strategy in ("rm_ft", "om_ft", "vid_rm_ft")
        sub = Submission(f"sub{i:04d}", family, strategy, None if strategy == "no_ft" else "mhc",
                         "fhm" if memes else None, "base", None, {}, status="verified")  # fmt: skip
        rows, predictions = [], {}
        for task, n in (("m2v_mhc", 200), ("m2v_hatemm", 220)):
            golds = rng.integers(0, 2, n)
            preds = np.where(rng.random(n) < 0.7, golds, rng.integers(-1, 2, n))
            rows.append({"task": task, "dataset": task[4:], "test_sha256": "0" * 64, "test_set": "paper", "n": n,
                         "accuracy": float(np.mean(golds == preds)), "macro_f1": float(rng.random()), "f1": 0.5,
                         "precision": 0.5, "recall": 0.5, "invalid_rate": float(np.mean(preds == -1)), "auroc": None,
                         "macro_f1_low": 0.1, "macro_f1_high": 0.9})  # fmt: skip
            predictions[task] = [{"id": f"{task}-{j}", "gold": int(g), "pred": int(p)}
                                 for j, (g, p) in enumerate(zip(golds, preds, strict=True))]  # fmt: skip
        store.put(sub, rows, predictions)


def bench_api(root: Path, submissions: int, requests: int) -> list[tuple[str, float, float, float]]:
    """(endpoint, requests/s, p50 ms, p95 ms) for cold (first after a write) and warm reads of each table."""
    import socket
    import threading

    import httpx
    import uvicorn

    from m2v_bench.leaderboard.server import create_app
    from m2v_bench.leaderboard.service import Config

    store = Store(root / "api.sqlite")
    fill(store, submissions, np.random.default_rng(1))
    store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Config(db=root / "api.sqlite", data_dir=root / "data", token="t"), ui=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    figures = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
        for view in ("substitution", "augmentation", "ranking"):
            path = f"/api/tables/{view}"
            for kind in ("cold", "warm"):
                latencies = []
                for _ in range(requests if kind == "warm" else max(3, requests // 20)):
                    if kind == "cold":  # a write (a queued request) before each read
                        app.state.leaderboard.store.add_job(f"j{time.perf_counter_ns()}", "org/m", None, None, "b")
                    start = time.perf_counter()
                    response = client.get(path)
                    latencies.append(time.perf_counter() - start)
                    response.raise_for_status()
                p50, p95 = (1000 * float(np.percentile(latencies, q)) for q in (50, 95))
                figures.append((f"GET {path} ({kind})", len(latencies) / sum(latencies), p50, p95))
    server.should_exit = True
    thread.join(timeout=30)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
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
    figures = bench_api(root, args.submissions, args.requests)
    print(f"\nAPI with {args.submissions} verified submissions stored (one client, sequential):")
    print("| request | requests/s | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    for name, rate, p50, p95 in figures:
        print(f"| {name} | {rate:.1f} | {p50:.1f} | {p95:.1f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
