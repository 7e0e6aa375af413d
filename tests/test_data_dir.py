"""Where evaluations read data, and which test set a result was made on: no silent fallback to synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from m2v_bench.cli import main
from m2v_bench.data_dir import DATA_DIR_ENV, data_dir, default_data_dir, identify_test_set, manifest_path
from m2v_bench.datasets import prepare, write_prepared
from m2v_bench.errors import ManifestError
from m2v_bench.manifest import read_manifest, split_hash


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "m2v-bench"


def test_unset_means_the_default_location_and_a_prepare_command(no_data):
    assert data_dir() == default_data_dir() == no_data
    with pytest.raises(ManifestError, match=r"`m2v-bench prepare mhc --root RAW` .*M2V_DATA_DIR=sample"):
        manifest_path("mhc")


def test_prepare_without_out_writes_where_the_tasks_read(no_data, sample_raw):
    raw, _ = sample_raw
    assert main(["prepare", "fhm", "--root", str(raw / "FHM")]) == 0
    assert manifest_path("fhm") == no_data / "fhm" / "test.jsonl"


def test_prepare_refuses_to_write_into_the_bundled_sample_data(monkeypatch, sample_raw, capsys):
    monkeypatch.setenv(DATA_DIR_ENV, "sample")
    assert main(["prepare", "fhm", "--root", str(sample_raw[0] / "FHM")]) == 2
    assert "give --out DIR" in capsys.readouterr().err


def test_identify_test_sets(reference_dir, prepared, tmp_path):
    result = prepare("mhc", reference_dir / "upstream_dataset" / "mhc.csv", fmt="paper")
    write_prepared(result, tmp_path, "mhc")
    manifest = tmp_path / "mhc" / "test.jsonl"
    records = read_manifest(manifest)
    assert identify_test_set("mhc", manifest, split_hash(records)) == "paper"
    changed = [records[0].__class__(**{**records[0].__dict__, "label": 1 - records[0].label}), *records[1:]]
    assert identify_test_set("mhc", manifest, split_hash(changed)) == "custom"
    sample = prepared / "mhc" / "test.jsonl"
    assert json.loads((prepared / "mhc" / "prepare_report.json").read_text())["synthetic"] is True
    assert identify_test_set("mhc", sample, split_hash(read_manifest(sample))) == "sample"
    assert identify_test_set("fhm", prepared / "fhm" / "test.jsonl", "0" * 64) == "sample"


def _lmms_eval(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    out = tmp_path / "out"
    environment = {k: v for k, v in os.environ.items() if k != DATA_DIR_ENV}
    environment.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", XDG_DATA_HOME=str(tmp_path / "xdg"),
                       M2V_CACHE=str(tmp_path / "cache"), **env)  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "lmms-eval"), "--model", "dummy", "--tasks", "m2v_mhc", "--device",
           "cpu", "--output_path", str(out), "--log_samples"]  # fmt: skip
    result = subprocess.run(cmd, env=environment, capture_output=True, text=True, timeout=900)
    return result, sorted(out.rglob("*_results.json"))


@pytest.mark.slow
def test_nothing_prepared_fails_with_the_prepare_command_and_no_results(tmp_path):
    result, results = _lmms_eval(tmp_path)
    assert results == []
    assert "m2v-bench prepare mhc --root RAW" in result.stdout + result.stderr


@pytest.mark.slow
def test_sample_only_when_asked_and_its_records_say_sample(tmp_path):
    result, results = _lmms_eval(tmp_path, M2V_DATA_DIR="sample")
    assert len(results) == 1, result.stderr[-2000:]
    (log,) = results[0].parent.glob("*_samples_m2v_mhc.jsonl")
    items = [json.loads(line)["macro_f1"] for line in log.read_text().splitlines()]
    assert len(items) == 40 and {i["test_set"] for i in items} == {"sample"}
