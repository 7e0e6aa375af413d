"""The lmms-eval tasks: registration with no flag, docs from M2V_DATA_DIR, prompts, metrics, the CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from m2v_bench.data_dir import DATA_DIR_ENV
from m2v_bench.labels import PARSER_VERSION, PROMPT_VERSION, Answer
from m2v_bench.manifest import read_manifest
from m2v_bench.metrics import METRICS, SCORE_METRICS
from m2v_bench.tasks import TASKS_DIR

SNAPSHOTS = Path(__file__).parent / "snapshots" / "prompts.json"
TASKS = ["m2v_mhc", "m2v_hatemm", "m2v_fhm", "m2v_mami"]
VARIANTS = [
    "m2v_mhc_keyframe",
    "m2v_hatemm_keyframe",
    "m2v_mhc_fewshot",
    "m2v_hatemm_fewshot",
    "m2v_mhc_keyframe_fewshot",
    "m2v_hatemm_keyframe_fewshot",
]
SCORE = ["m2v_mhc_score", "m2v_hatemm_score", "m2v_fhm_score", "m2v_mami_score"]
GROUPS = {"m2v_video": TASKS[:2], "m2v_memes": TASKS[2:], "m2v": TASKS}


@pytest.fixture
def data_dir(prepared, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(prepared))
    return prepared


@pytest.fixture(scope="session")
def manager():
    import lmms_eval.models  # noqa: F401  (loads the entry points, as the CLI and the evaluator do)
    from lmms_eval.tasks import TaskManager

    return TaskManager()  # indexing lmms-eval's few hundred task folders takes seconds: once per session


def task_dict(names, manager):
    from lmms_eval.tasks import get_task_dict

    return get_task_dict(names, manager)


def leaf_tasks(tasks):
    """{name: task} of the leaves of get_task_dict's (possibly nested) result."""
    found = {}
    for key, value in tasks.items():
        if isinstance(value, dict):
            found.update(leaf_tasks(value))
        else:
            found[getattr(key, "group_name", key) if not isinstance(key, str) else key] = value
    return found


def test_entry_point_registers_tasks_without_include_path():
    import lmms_eval.models  # noqa: F401
    from lmms_eval.tasks import TaskManager

    manager = TaskManager()
    missing = [name for name in [*TASKS, *VARIANTS, *SCORE, *GROUPS] if name not in manager.all_tasks]
    assert not missing, (
        f"lmms-eval no longer sees {missing} without --include_path: the lmms_eval.models entry-point hook "
        "(m2v_bench.lmms_plugin) stopped working with this lmms-eval release"
    )
    assert sum(1 for name in manager.all_tasks if name == "m2v_mhc") == 1


def test_fallback_include_path_is_printed():
    out = subprocess.run([sys.executable, "-m", "m2v_bench.tasks"], capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == TASKS_DIR and (TASKS_DIR / "m2v_mhc.yaml").is_file()


@pytest.mark.parametrize("name", TASKS + VARIANTS + SCORE)
def test_docs_come_from_the_data_dir(data_dir, manager, name):
    task = leaf_tasks(task_dict([name], manager))[name]
    docs = list(task.test_docs())
    dataset = name.split("_")[1]
    records = read_manifest(data_dir / dataset / "test.jsonl")
    assert [d["id"] for d in docs] == [r.id for r in records]
    assert [d["label"] for d in docs] == [r.label for r in records]
    assert all(Path(d["media"]).is_file() for d in docs)


def test_visuals_per_view(data_dir, manager):
    tasks = leaf_tasks(task_dict(["m2v_mhc", "m2v_mhc_keyframe", "m2v_fhm"], manager))
    video = tasks["m2v_mhc"].test_docs()[0]
    assert tasks["m2v_mhc"].config.doc_to_visual(video) == [video["media"]]
    keyframe = tasks["m2v_mhc_keyframe"].config.doc_to_visual(tasks["m2v_mhc_keyframe"].test_docs()[0])
    assert [im.size for im in keyframe] == [(560, 560)]
    assert False in {d["keyframe_fallback"] for d in tasks["m2v_mhc_keyframe"].test_docs()} <= {False, True}
    assert {d["keyframe_fallback"] for d in tasks["m2v_mhc"].test_docs()} == {None}
    meme = tasks["m2v_fhm"].config.doc_to_visual(tasks["m2v_fhm"].test_docs()[0])
    assert meme[0].mode == "RGB" and meme[0].size == (128, 128)


def _render_prompts() -> dict:
    """Each task's prompt for one fixed doc, with the task's own settings and version."""
    from lmms_eval.utils import load_yaml_config

    doc = {"id": "x", "text": "an example transcript", "label": 1, "media": None}
    rendered = {}
    for name in TASKS + VARIANTS + SCORE:
        config = load_yaml_config(str(TASKS_DIR / f"{name}.yaml"))
        dataset = name.split("_")[1]
        view = "keyframe" if "keyframe" in name else "image" if dataset in ("fhm", "mami") else "video"
        space = {"mhc": "offensive", "hatemm": "hateful", "fhm": "hateful", "mami": "misogynous"}[dataset]
        kwargs = config["lmms_eval_specific_kwargs"]["default"]
        prompt = config["doc_to_text"]({**doc, "dataset": dataset, "view": view, "label_space": space}, kwargs)
        rendered[name] = {"version": config["metadata"]["version"], "prompt": prompt}
    return rendered


def test_prompts_match_snapshots_and_versions():
    """A prompt change must come with a version bump: update tests/snapshots/prompts.json (run this test with
    M2V_UPDATE_SNAPSHOTS=1) AND metadata.version in the task YAMLs together."""
    rendered = _render_prompts()
    if os.environ.get("M2V_UPDATE_SNAPSHOTS"):
        SNAPSHOTS.parent.mkdir(exist_ok=True)
        SNAPSHOTS.write_text(json.dumps({"prompt_version": PROMPT_VERSION, "tasks": rendered}, indent=1) + "\n")
    snapshot = json.loads(SNAPSHOTS.read_text())
    assert snapshot["prompt_version"] == PROMPT_VERSION
    for name, now in rendered.items():
        before = snapshot["tasks"][name]
        if now["prompt"] != before["prompt"]:
            assert now["version"] > before["version"], f"{name}: prompt changed without bumping metadata.version"
            pytest.fail(f"{name}: prompt changed (version bumped): update {SNAPSHOTS} with M2V_UPDATE_SNAPSHOTS=1")
        assert now["version"] == before["version"], f"{name}: version changed but the snapshot was not updated"
    assert "Video with vision content: " in rendered["m2v_mhc_fewshot"]["prompt"]
    assert "Analyze the image and text" in rendered["m2v_mhc_keyframe"]["prompt"]


def test_score_variant_predicts_the_likelier_answer():
    from lmms_eval.utils import load_yaml_config

    config = load_yaml_config(str(TASKS_DIR / "m2v_mami_score.yaml"))
    doc = {"id": "m1", "label": 0, "label_space": "misogynous", "test_sha256": "abc", "test_set": "custom"}
    assert config["doc_to_choice"](doc) == ["non-misogynous", "misogynous"]
    out = config["process_results"](doc, ["(-1.5, True)", "(-4.0, False)"])  # lmms-eval hands over strings
    assert out["auroc"] == {"id": "m1", "gold": 0, "pred": 0, "score": -2.5, "test_sha256": "abc",
                            "test_set": "custom", "prompt_version": PROMPT_VERSION, "media_error": None,
                            "keyframe_fallback": None}  # fmt: skip
    items = [out["auroc"], config["process_results"]({**doc, "label": 1}, [(-3.0, False), (-1.0, True)])["auroc"]]
    aggregations = {m["metric"]: m["aggregation"] for m in config["metric_list"]}
    assert aggregations["auroc"](items) == 1.0 and aggregations["media_error_rate"](items) == 0.0


def test_process_results_keeps_everything_needed_to_recompute():
    from lmms_eval.utils import load_yaml_config

    config = load_yaml_config(str(TASKS_DIR / "m2v_hatemm.yaml"))
    doc = {"id": "v7", "label": 1, "label_space": "hateful", "test_sha256": "abc", "test_set": "custom"}
    out = config["process_results"](doc, ["Non-hateful."])
    assert set(out) == set(METRICS)
    assert out["macro_f1"] == {"id": "v7", "gold": 1, "pred": int(Answer.NEGATIVE), "response": "Non-hateful.",
                               "test_sha256": "abc", "test_set": "custom", "prompt_version": PROMPT_VERSION,
                               "parser_version": PARSER_VERSION, "media_error": None,
                               "keyframe_fallback": None}  # fmt: skip
    items = [out["accuracy"], config["process_results"]({**doc, "id": "v8"}, ["hateful"])["accuracy"]]
    assert config["metric_list"][0]["aggregation"](items) == 0.5


def test_reference_manifests_count_the_papers_test_sets(reference_dir, manager, tmp_path, monkeypatch):
    from m2v_bench.datasets import prepare, write_prepared

    for dataset in ("mhc", "hatemm"):
        result = prepare(dataset, reference_dir / "upstream_dataset" / f"{dataset}.csv", fmt="paper")
        write_prepared(result, tmp_path, dataset)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("M2V_BAD_MEDIA", "invalid")  # the videos are not here: count the docs, each marked
    tasks = leaf_tasks(task_dict(["m2v_mhc", "m2v_hatemm"], manager))
    assert len(tasks["m2v_mhc"].test_docs()) == 200
    assert len(tasks["m2v_hatemm"].test_docs()) == 220
    assert all(d["media_error"].startswith("missing-media") for d in tasks["m2v_hatemm"].test_docs())
    assert {d["test_set"] for d in tasks["m2v_mhc"].test_docs()} == {"paper"}


def lmms_eval(*args, env_extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env_extra}
    exe = Path(sys.executable).parent / "lmms-eval"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=900)


def run_dummy(tasks: str, out: Path, data: Path) -> dict:
    result = lmms_eval(
        "--model", "dummy", "--tasks", tasks, "--device", "cpu", "--output_path", str(out), "--log_samples",
        env_extra={DATA_DIR_ENV: str(data)},
    )  # fmt: skip
    files = list(out.rglob("*_results.json"))
    assert len(files) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(files[0].read_text())


@pytest.mark.slow
def test_lmms_eval_cli_dummy_model_all_tasks_and_groups(prepared, tmp_path):
    """Groups sharing tasks cannot be in one lmms-eval run: `m2v` + the variants, then the two smaller groups."""
    results = run_dummy(",".join(["m2v", *VARIANTS, *SCORE]), tmp_path / "all", prepared)
    for name in TASKS + VARIANTS:
        values = results["results"][name]
        for metric in METRICS:
            assert f"{metric},none" in values, (name, metric)
        assert values["invalid_rate,none"] == 1.0  # the dummy model answers "A"
    assert "macro_f1,none" in results["groups"]["m2v"]
    for name in SCORE:
        assert {f"{m},none" for m in SCORE_METRICS} <= set(results["results"][name])
    samples = list((tmp_path / "all").rglob("*_samples_m2v_mhc.jsonl"))
    assert samples, "no per-sample log"
    lines = [json.loads(line) for line in samples[0].read_text().splitlines()]
    assert len(lines) == len(read_manifest(prepared / "mhc" / "test.jsonl"))
    assert {"id", "gold", "pred", "response", "test_sha256"} <= set(lines[0]["macro_f1"])
    assert lines[0]["macro_f1"]["test_set"] == "sample"
    split = run_dummy("m2v_video,m2v_memes", tmp_path / "groups", prepared)
    assert {"m2v_video", "m2v_memes"} <= set(split["groups"])
    assert set(split["results"]) >= set(TASKS)


@pytest.mark.slow
def test_lmms_eval_failure_path_writes_no_results(tmp_path):
    """A task that cannot load its data ends lmms-eval's run with exit 2, no results file, and our line naming the
    command that makes the data."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    result = lmms_eval(
        "--model", "dummy", "--tasks", "m2v_mhc", "--device", "cpu", "--output_path", str(out),
        env_extra={DATA_DIR_ENV: str(empty)},
    )  # fmt: skip
    assert result.returncode == 2 and not list(out.rglob("*_results.json"))
    assert "m2v-bench prepare mhc --root RAW" in result.stderr
