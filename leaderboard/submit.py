"""Submitting a checkpoint's lmms-eval results: read its provenance and per-sample logs, verify them against the
current test manifests, recompute every metric, store.

Self-reported numbers (``*_results.json``) are never trusted: metrics are recomputed from the per-sample records
(id, gold, prediction) with :mod:`m2v_bench.metrics`. A submission is rejected, with the reason, when a log is
truncated or malformed, holds a non-finite number, misses or adds or repeats a test id, disagrees with a gold label,
was made on another version of the test set (content hash), names an unknown task, or when its name could escape
the store (``../``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from m2v_bench.data_dir import identify_test_set
from m2v_bench.datasets import DATASETS
from m2v_bench.errors import M2VError
from m2v_bench.jsonl import read_jsonl
from m2v_bench.labels import PARSER_VERSION, PROMPT_VERSION, get_label_space
from m2v_bench.leaderboard.runs import newest_run
from m2v_bench.leaderboard.store import NameTaken, Store, Submission
from m2v_bench.manifest import read_manifest, split_hash
from m2v_bench.metrics import INVALID, auroc, classification_metrics, macro_f1_ci
from m2v_bench.models.loading import checkpoint_family, detect_family
from m2v_bench.models.provenance import PROVENANCE_FILE, read_provenance, validate_provenance
from m2v_bench.models.refs import is_hub_id
from m2v_bench.registry import STRATEGIES, parse_task

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


class SubmissionError(M2VError):
    """A submission the leaderboard does not accept; the message says why."""


def is_utf8(text: str) -> bool:
    """Whether a str can be written as UTF-8 (JSON's ``\\ud800`` escapes make lone surrogates, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
                      "test_sha256": item.get("test_sha256"), "test_set": item.get("test_set"),
                      "raw": item}  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise SubmissionError(f"{where}: not an m2v per-sample record ({exc})") from None
        for key in ("gold", "pred", "score"):
            value = record[key]
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise SubmissionError(f"{where}: {key} is {value!r}, not a finite number")
        if record["gold"] not in (0, 1) or record["pred"] not in (-1, 0, 1):
            raise SubmissionError(f"{where}: gold must be 0/1 and pred -1/0/1")
        for key in ("id", "response"):  # a JSON escape (\\ud800) makes a lone surrogate, which UTF-8 cannot store
            if isinstance(record[key], str) and not is_utf8(record[key]):
                raise SubmissionError(f"{where}: {key} holds a lone surrogate (\\ud800-\\udfff); not text")
        items.append(record)
    if not items:
        raise SubmissionError(f"{path}: no sample")
    return items


def find_logs(results_dir: Path) -> tuple[Path, dict[str, Path]]:
    """The newest lmms-eval run in an output folder (:func:`~m2v_bench.leaderboard.runs.newest_run`): (its
    ``*_results.json``, task -> per-sample log), every task an m2v task."""
    run = newest_run(results_dir, SubmissionError)
    for task, path in run.logs.items():
        if parse_task(task) is None:
            raise SubmissionError(f"{path}: unknown task {task!r}; the leaderboard takes the m2v tasks")
    if not run.results.is_file():
        raise SubmissionError(f"{run.results}: missing; submit the whole lmms-eval output folder of the run")
    return run.results, run.logs


def current_task_version(task: str) -> int:
    """``metadata.version`` of the installed task template (``_default_template_yaml``, which the score variants'
    template includes; a task's own YAML sets no version), so a task registered at run time is versioned like the
    bundled ones."""

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    text = resources.files("m2v_bench.tasks").joinpath("_default_template_yaml").read_text(encoding="utf-8")
    return int(yaml.load(text, Loader=_Loader)["metadata"]["version"])


def model_args(text: str) -> dict[str, str]:
    """lmms-eval's ``key=value,key=value`` model_args."""
    pairs = [part.split("=", 1) for part in str(text).split(",") if part.strip()]
    return {pair[0].strip(): pair[1].strip() for pair in pairs if len(pair) == 2}


def _same_model(a: str | None, b: str | None) -> bool:
    """Two model references (local path or hub id) name the same model."""
    if not a or not b:
        return a == b
    if Path(a).exists() or Path(b).exists():
        return Path(a).resolve() == Path(b).resolve()
    return a.rstrip("/") == b.rstrip("/")


def check_results(path: Path, tasks: list[str], checkpoint: str, provenance: dict) -> dict:
    """lmms-eval's ``results.json`` of the run: the m2v model, on this checkpoint, with the current task, prompt and
    parser versions. Returns its ``config``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config, versions, configs = data["config"], data["versions"], data["configs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SubmissionError(f"{path}: not an lmms-eval results file ({exc})") from None
    if not all(isinstance(part, dict) for part in (config, versions, configs)):
        raise SubmissionError(f"{path}: not an lmms-eval results file (config, versions and configs must be objects)")
    if config.get("model") != "m2v":
        raise SubmissionError(f"{path}: model {config.get('model')!r}; evaluate with lmms-eval --model m2v")
    args = model_args(config.get("model_args", ""))
    adapter, base = args.get("adapter"), args.get("pretrained")
    evaluated = adapter or base
    if not _same_model(evaluated, checkpoint):
        raise SubmissionError(f"{path}: model_args name {evaluated!r}, not the submitted checkpoint {checkpoint!r}")
    if adapter and not _same_model(base, str(provenance.get("base_model"))):
        raise SubmissionError(
            f"{path}: model_args pretrained={base!r}, but the adapter was trained on {provenance.get('base_model')!r}"
        )
    for task in tasks:
        expected = current_task_version(task)
        if versions.get(task) != expected:
            raise SubmissionError(f"{path}: task {task} version {versions.get(task)!r}, current {expected}; "
                                  "evaluate again with the current tasks")  # fmt: skip
        metadata = (configs.get(task) or {}).get("metadata") or {}
        for key, current in (("prompt_version", PROMPT_VERSION), ("parser_version", PARSER_VERSION)):
            if metadata.get(key) != current:
                raise SubmissionError(f"{path}: task {task} {key} {metadata.get(key)!r}, current {current}; "
                                      "evaluate again with the current tasks")  # fmt: skip
    return config


def check_predictions(task: str, items: list[dict], where: Path) -> None:
    """Every logged ``pred`` must be what the current parser makes of the logged response (or, for the score
    variants, the sign of the logged score), and the record must carry the current prompt/parser versions."""
    dataset, variant = parse_task(task)
    space = get_label_space(DATASETS[dataset].label_space_name)
    for item in items:
        for key, current in (("prompt_version", PROMPT_VERSION), ("parser_version", PARSER_VERSION)):
            # the score variants parse no response, so their records carry no parser_version
            if (key in item["raw"] or variant != "_score") and item["raw"].get(key) != current:
                raise SubmissionError(f"{where}: sample {item['id']}: {key} {item['raw'].get(key)!r}, current "
                                      f"{current}; evaluate again")  # fmt: skip
        if item["raw"].get("media_error"):
            expected = INVALID
        elif variant == "_score":
            if item["score"] is None:
                raise SubmissionError(f"{where}: sample {item['id']}: no score in a score task")
            expected = int(item["score"] > 0)
        else:
            if not isinstance(item["response"], str):
                raise SubmissionError(f"{where}: sample {item['id']}: no response to check the prediction against")
            expected = int(space.parse(item["response"]))
        if item["pred"] != expected:
            raise SubmissionError(
                f"{where}: sample {item['id']}: logged pred {item['pred']} but the response parses to {expected} "
                f"(parser version {PARSER_VERSION}); the log was edited or made by another parser"
            )


def verify(task: str, items: list[dict], data_dir: Path, where: Path) -> tuple[str, str, str]:
    """Check a task's samples against the current test manifest; returns (dataset, test hash, test set), the test set
    being the leaderboard's own identification of its manifest (``paper``, ``sample`` or ``custom``)."""
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
    test_set = identify_test_set(dataset, manifest, expected)
    logged = {i["test_set"] for i in items} - {None}
    if logged and logged != {test_set}:
        raise SubmissionError(f"{where}: logged test set {sorted(logged)}, but the manifest is the {test_set} one")
    return dataset, expected, test_set


ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def local_folder(checkpoint: str, local_first: bool = True) -> Path | None:
    """The local folder a checkpoint names, or None for a hub id. ``local_first`` (a user's command line, as
    transformers does): a folder of a hub id's relative name wins; else (the server) a hub id is always the hub's."""
    path = Path(checkpoint)
    if not local_first and not path.is_absolute() and is_hub_id(checkpoint):
        return None
    return path if path.is_dir() else None


def describe(checkpoint: str, local_first: bool = True) -> dict:
    """The validated provenance of a fine-tuned checkpoint (which must hold adapter weights), or a No-FT description
    of a base model. ``local_first``: see :func:`local_folder`."""
    path = local_folder(checkpoint, local_first)
    if path is not None and (path / PROVENANCE_FILE).is_file():
        where = str(path / PROVENANCE_FILE)
        try:
            provenance = read_provenance(str(path))
        except ValueError as exc:
            raise SubmissionError(f"{where}: not JSON ({exc})") from None
        provenance = validate_provenance(provenance, where, SubmissionError)
        if STRATEGIES[provenance["strategy"]].trains and not (
            (path / "adapter_config.json").is_file() and any((path / w).is_file() for w in ADAPTER_WEIGHTS)
        ):
            raise SubmissionError(
                f"{path}: a {provenance['strategy']} provenance without adapter weights (adapter_config.json + "
                "adapter_model.safetensors); submit the trained adapter"
            )
        return provenance
    if path is not None and (path / "adapter_config.json").is_file():
        raise SubmissionError(f"{path}: an adapter without {PROVENANCE_FILE}; train it with the m2v-bench recipes")
    if local_first or path is not None:
        family = detect_family(checkpoint)
    else:  # the hub's config.json, never a folder of that name where the server runs
        family = checkpoint_family(checkpoint)
        if family is None:
            raise SubmissionError(f"{checkpoint}: cannot read its config.json from the hub")
    return {"family": family.name, "base_model": checkpoint, "strategy": "no_ft", "target": None}


def evaluate_logs(
    checkpoint: str, results_dir: Path, data_dir: Path, provenance: dict | None = None, local_first: bool = True
) -> tuple[dict, list[dict], dict, dict]:
    """Verify one checkpoint's newest lmms-eval run and recompute its metrics: (provenance, result rows, task ->
    per-sample records, the run's lmms-eval config). ``provenance``: for a checkpoint that is not a local folder (a
    hub adapter), the provenance its worker read, validated here. ``local_first``: see :func:`local_folder`.
    Nothing is stored."""
    if provenance is not None and local_folder(checkpoint, local_first) is None:
        provenance = validate_provenance(provenance, f"{checkpoint} (provenance sent by the worker)", SubmissionError)
    else:
        provenance = describe(checkpoint, local_first)
    results_json, logs = find_logs(results_dir)
    config = check_results(results_json, sorted(logs), checkpoint, provenance)
    rows, predictions = [], {}
    for task, path in sorted(logs.items()):
        items = read_samples(path)
        dataset, test_hash, test_set = verify(task, items, data_dir, path)
        check_predictions(task, items, path)
        golds = np.array([i["gold"] for i in items])
        preds = np.array([i["pred"] for i in items])
        metrics = classification_metrics(golds, preds)
        scores = [i["score"] for i in items]
        low, high = macro_f1_ci(golds, preds)
        rows.append({"task": task, "dataset": dataset, "test_sha256": test_hash, "test_set": test_set,
                     "n": len(items), **metrics, "auroc": auroc(golds, scores) if None not in scores else None,
                     "macro_f1_low": low, "macro_f1_high": high})  # fmt: skip
        predictions[task] = items
    return provenance, rows, predictions, config


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise SubmissionError(f"name {name!r}: use letters, digits and . _ + - only (no paths)")
    return name


def submit(
    store: Store,
    checkpoint: str,
    results_dir: Path,
    data_dir: Path,
    name: str | None = None,
    replace: bool = False,
    status: str = "self-reported",
    environment: dict | None = None,
) -> list[dict]:
    """Verify, recompute and store one checkpoint's results; returns the stored result rows. A taken name is an
    error unless ``replace`` (a new version; the old one stays in the store's history). Logs uploaded by their
    author are ``self-reported``; a leaderboard worker stores its own runs as ``verified``."""
    submission, rows, predictions = verify_submission(checkpoint, results_dir, data_dir, name, status, environment)
    return store_submission(store, submission, rows, predictions, replace)


def verify_submission(
    checkpoint: str,
    results_dir: Path,
    data_dir: Path,
    name: str | None = None,
    status: str = "self-reported",
    environment: dict | None = None,
) -> tuple[Submission, list[dict], dict]:
    """Everything :func:`submit` checks and computes, before any store is opened: (the submission, its result rows,
    task -> per-sample predictions)."""
    name = check_name(name or Path(checkpoint.rstrip("/")).name)
    provenance, rows, predictions, _config = evaluate_logs(checkpoint, results_dir, data_dir)
    if provenance["strategy"] != "no_ft":  # the row names the adapter beside its base
        provenance = {**provenance, "adapter": checkpoint}
    submission = Submission(
        name=name,
        family=provenance["family"],
        strategy=provenance["strategy"],
        target=provenance.get("target"),
        meme_source=provenance.get("meme_source"),
        base_model=str(provenance.get("base_model")),
        video_fraction=provenance.get("video_fraction"),
        provenance=provenance,
        status=status,
        environment=environment,
    )
    return submission, rows, predictions


def store_submission(
    store: Store, submission: Submission, rows: list[dict], predictions: dict, replace: bool = False
) -> list[dict]:
    """Store a verified submission (a taken name is an error unless ``replace``); returns its result rows."""
    try:
        store.put(submission, rows, predictions, replace=replace)
    except NameTaken as exc:
        raise SubmissionError(str(exc)) from None
    return rows
