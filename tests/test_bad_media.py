"""Bad media are found when a task loads, before any model call: one error naming every bad sample, or, with
M2V_BAD_MEDIA=invalid, results for every sample with the bad ones scored invalid and counted."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media_fixtures import zero_byte
from PIL import Image

from m2v_bench.manifest import read_manifest, with_absolute_media, write_manifest
from m2v_bench.media import NotAVideo, probe_video
from m2v_bench.validate import validate

BAD = ("zero", "png", "missing")


def test_an_image_renamed_mp4_is_not_a_video(tmp_path):
    path = tmp_path / "meme.mp4"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path, format="PNG")
    with pytest.raises(NotAVideo, match=r"meme.mp4.*an image \(png\)"):
        probe_video(path)


@pytest.fixture
def broken(prepared, tmp_path):
    """The sample MHC test set with three bad videos: zero bytes, a PNG named .mp4, a file that does not exist."""
    manifest = prepared / "mhc" / "test.jsonl"
    records = with_absolute_media(read_manifest(manifest), manifest.parent)
    media = tmp_path / "media"
    media.mkdir()
    png = media / "png.mp4"
    Image.fromarray(np.full((64, 64, 3), 127, np.uint8)).save(png, format="PNG")
    paths = {"zero": zero_byte(media / "zero.mp4"), "png": png, "missing": media / "missing.mp4"}
    for i, name in enumerate(BAD):
        records[i] = dataclasses.replace(records[i], id=f"bad_{name}", media=str(paths[name]))
    write_manifest(tmp_path / "data" / "mhc" / "test.jsonl", records)
    return tmp_path / "data", len(records)


def test_validate_names_the_three(broken):
    data, _ = broken
    report = validate(data, progress=False)
    assert {(i.id, i.kind) for i in report.errors} == {
        ("bad_zero", "zero-byte"), ("bad_png", "not-a-video"), ("bad_missing", "missing"),
    }  # fmt: skip


def _dummy(data: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "M2V_DATA_DIR": str(data), **env}
    cmd = [str(Path(sys.executable).parent / "lmms-eval"), "--model", "dummy", "--tasks", "m2v_mhc,m2v_mhc_score",
           "--device", "cpu", "--output_path", str(out), "--log_samples"]  # fmt: skip
    return subprocess.run(cmd, env=environment, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_by_default_one_error_names_every_bad_sample_before_the_model_runs(broken, tmp_path):
    data, _ = broken
    result = _dummy(data, tmp_path / "out")
    log = result.stdout + result.stderr
    assert not list((tmp_path / "out").rglob("*.json*"))  # no results, no per-sample log: no model call
    (line,) = {line for line in log.splitlines() if "have unusable media" in line}
    for name in BAD:
        assert f"bad_{name}" in line
    assert "3 of 40 samples" in line and "M2V_BAD_MEDIA=invalid" in line and "m2v-bench validate" in line


@pytest.mark.slow
def test_invalid_policy_scores_every_sample_and_counts_the_bad_ones(broken, tmp_path):
    data, n = broken
    result = _dummy(data, tmp_path / "out", M2V_BAD_MEDIA="invalid")
    (results_file,) = (tmp_path / "out").rglob("*_results.json")
    results = json.loads(results_file.read_text())["results"]
    assert results["m2v_mhc"]["media_error_rate,none"] == pytest.approx(3 / n), result.stderr[-2000:]
    assert results["m2v_mhc_score"]["media_error_rate,none"] == pytest.approx(3 / n)
    for task in ("m2v_mhc", "m2v_mhc_score"):
        (log,) = results_file.parent.glob(f"*_samples_{task}.jsonl")
        items = [json.loads(line)["macro_f1"] for line in log.read_text().splitlines()]
        assert len(items) == n
        marked = {i["id"]: i for i in items if i["media_error"]}
        assert sorted(marked) == sorted(f"bad_{name}" for name in BAD)
        assert all(i["pred"] == -1 for i in marked.values())


def test_a_keyframe_fallback_is_recorded_per_sample(prepared, tmp_path, monkeypatch):
    """A video with no frame above the grey-variance threshold: the keyframe view uses its most varied frame, and
    the sample's record says so."""
    import datasets

    from m2v_bench.frames import FrameSampler, FrameView
    from m2v_bench.media import write_video
    from m2v_bench.tasks.utils import process_docs, process_results

    manifest = prepared / "mhc" / "test.jsonl"
    records = with_absolute_media(read_manifest(manifest), manifest.parent)
    dark = write_video(tmp_path / "dark.mp4", [np.full((48, 64, 3), 20 + i, np.uint8) for i in range(8)])
    records[0] = dataclasses.replace(records[0], id="dark", media=str(dark))
    write_manifest(tmp_path / "data" / "mhc" / "test.jsonl", records)
    monkeypatch.setenv("M2V_DATA_DIR", str(tmp_path / "data"))
    docs = process_docs(datasets.Dataset.from_list([{"dataset": "mhc", "view": "keyframe"}]))
    flags = {doc["id"]: doc["keyframe_fallback"] for doc in docs}
    sampler, view = FrameSampler(), FrameView.keyframe()
    assert flags == {r.id: sampler.sample(r.media, view).fallback for r in records}  # one scan per sample, by id
    assert flags["dark"] is True and False in flags.values()
    assert process_results(docs[0], ["offensive"])["macro_f1"]["keyframe_fallback"] is True
