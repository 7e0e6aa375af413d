"""The registry is the one place for datasets' roles, strategies, task names and metrics: the task files agree
with it, and a fifth dataset registered at test time goes through prepare -> validate -> lmms-eval -> leaderboard
with no change outside the registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from m2v_bench import registry
from m2v_bench.datasets import DATASETS, DatasetSpec, PrepareResult, prepare, write_prepared
from m2v_bench.labels import PARSER_VERSION, PROMPT_VERSION
from m2v_bench.metrics import METRICS, SCORE_METRICS
from m2v_bench.models.generation import MAX_NEW_TOKENS
from m2v_bench.tasks import TASKS_DIR


class _Loader(yaml.SafeLoader):
    """Reads lmms-eval task YAML: `!function module.name` becomes the string."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _yaml(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)


def test_every_registered_task_has_its_yaml_and_descriptor():
    files = {p.stem: _yaml(p) for p in TASKS_DIR.glob("m2v*.yaml")}
    tasks = {name: config for name, config in files.items() if "group" not in config}
    assert sorted(tasks) == sorted(registry.task_names())
    for name, config in tasks.items():
        assert config["task"] == name
        descriptor = TASKS_DIR / config["dataset_kwargs"]["data_files"]["test"]
        (line,) = descriptor.read_text().splitlines()
        dataset, variant = registry.parse_task(name)
        view = "keyframe" if "keyframe" in variant else DATASETS[dataset].modality  # the file the model is shown
        assert json.loads(line) == {"dataset": dataset, "view": view}, name
        template = "_score_template_yaml" if name.endswith("_score") else "_default_template_yaml"
        assert config["include"] == template
        shots = config.get("lmms_eval_specific_kwargs", {}).get("default", {}).get("shots", 0)
        assert (shots > 0) == ("fewshot" in name), name
    for name, config in files.items():
        if "group" in config:
            assert set(config["task"]) <= set(tasks), name


def test_templates_report_the_metric_modules_metrics_and_the_token_limit():
    default = _yaml(TASKS_DIR / "_default_template_yaml")
    score = _yaml(TASKS_DIR / "_score_template_yaml")
    assert tuple(m["metric"] for m in default["metric_list"]) == METRICS
    assert tuple(m["metric"] for m in score["metric_list"]) == SCORE_METRICS
    assert default["generation_kwargs"]["max_new_tokens"] == MAX_NEW_TOKENS
    assert default["metadata"]["prompt_version"] == PROMPT_VERSION
    assert default["metadata"]["parser_version"] == PARSER_VERSION
    assert registry.task_metrics("m2v_mhc") == METRICS and registry.task_metrics("m2v_fhm_score") == SCORE_METRICS


def test_roles_strategies_and_task_names():
    assert registry.video_targets() == ("mhc", "hatemm")
    assert registry.meme_sources() == ("fhm", "mami")
    assert registry.TRAINED_STRATEGIES == ("vid_ft", "om_ft", "rm_ft", "vid_rm_ft")
    assert registry.parse_task("m2v_hatemm_keyframe_fewshot") == ("hatemm", "_keyframe_fewshot")
    assert registry.parse_task("m2v_fhm_keyframe") is None and registry.parse_task("m2v_mhcx") is None
    assert [registry.STRATEGIES[s].finetune_data("mhc", "fhm") for s in registry.STRATEGIES] == [
        "-", "MHC", "FHM", "FHM (re-annotated)", "MHC + FHM (re-annotated)",
    ]  # fmt: skip


def test_published_rows_use_the_registrys_strategy_names():
    from m2v_bench.leaderboard.published import published_rows

    displays = {s.display for s in registry.STRATEGIES.values()}
    strategies = {row.strategy for row in published_rows() if not row.strategy.startswith("Best-published")}
    assert strategies == displays


# --- a fifth dataset ------------------------------------------------------------------------------------------


def _prepare_toy(spec: DatasetSpec, root: Path, table, table_name: str) -> PrepareResult:
    """The toy release: labels.json ({split: [[id, label, text], ...]}) and images/<id>.png."""
    result = PrepareResult(records=[])
    for split, rows in json.loads((root / "labels.json").read_text()).items():
        for sample_id, label, text in rows:
            result.records.append(spec.record(sample_id, split, text, label, root / "images" / f"{sample_id}.png"))
    return result


TOY = DatasetSpec(
    name="toy",
    title="Toy memes",
    short="Toy",
    modality="image",
    label_space_name="hateful",
    prepare_official=_prepare_toy,
    layout="labels.json, images/<id>.png",
)


@pytest.fixture
def toy_registered():
    registry.register_dataset(TOY)
    yield TOY
    registry.unregister_dataset(TOY.name)


@pytest.mark.slow
def test_a_fifth_dataset_needs_only_its_registry_entry_preparer_and_task_yaml(
    toy_registered, tiny_models, tmp_path, monkeypatch
):
    from m2v_bench.cli import main
    from m2v_bench.leaderboard.store import Store
    from m2v_bench.leaderboard.submit import SubmissionError, submit

    # the raw release
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = {"train": [[f"t{i}", i % 2, f"train meme {i}"] for i in range(4)],
            "test": [[f"x{i}", i % 2, f"test meme {i}"] for i in range(6)]}  # fmt: skip
    for split_rows in rows.values():
        for sample_id, _label, _text in split_rows:
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(
                raw / "images" / f"{sample_id}.png"
            )
    (raw / "labels.json").write_text(json.dumps(rows))

    # prepare -> validate
    data = tmp_path / "data"
    write_prepared(prepare("toy", raw), data, "toy")
    assert main(["validate", str(data / "toy"), "--quiet"]) == 0
    assert "toy" in registry.meme_sources() and "m2v_toy_score" in registry.task_names()

    # its task YAML (and descriptor), in an --include_path of its own
    tasks = tmp_path / "tasks"
    (tasks / "descriptors").mkdir(parents=True)
    (tasks / "descriptors" / "toy_image.jsonl").write_text('{"dataset": "toy", "view": "image"}\n')
    (tasks / "m2v_toy.yaml").write_text(
        f"task: m2v_toy\ninclude: {TASKS_DIR / '_default_template_yaml'}\n"
        "dataset_kwargs:\n  data_files:\n    test: descriptors/toy_image.jsonl\n"
    )

    # lmms-eval in this process (the registration lives in memory)
    from lmms_eval.__main__ import cli_evaluate

    out = tmp_path / "out"
    monkeypatch.setenv("M2V_DATA_DIR", str(data))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    argv = ["lmms-eval", "--model", "dummy", "--tasks", "m2v_toy", "--include_path", str(tasks),
            "--device", "cpu", "--output_path", str(out), "--log_samples"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    cli_evaluate()
    (results,) = out.rglob("*_results.json")
    assert json.loads(results.read_text())["results"]["m2v_toy"]["invalid_rate,none"] == 1.0  # dummy answers "A"

    # leaderboard submit: the base model's No-FT row on the new dataset. The leaderboard accepts only runs of the m2v
    # model on the submitted checkpoint: the dummy model's run is refused as it is, then relabelled as the
    # checkpoint's run (the dummy stands in for the m2v model, which this in-process run cannot register)
    checkpoint = tiny_models["mllama"]
    store = Store(tmp_path / "lb.sqlite")
    try:
        with pytest.raises(SubmissionError, match="model 'dummy'; evaluate with lmms-eval --model m2v"):
            submit(store, str(checkpoint), out, data, name="toy-no-ft")
        relabelled = json.loads(results.read_text())
        relabelled["config"].update(model="m2v", model_args=f"pretrained={checkpoint}")
        results.write_text(json.dumps(relabelled))
        (row,) = submit(store, str(checkpoint), out, data, name="toy-no-ft")
        assert (row["task"], row["dataset"], row["n"]) == ("m2v_toy", "toy", 6)
        assert [r["task"] for r in store.results()] == ["m2v_toy"]
    finally:
        store.close()
    assert "toy" not in DATASETS or DATASETS["toy"] is TOY
