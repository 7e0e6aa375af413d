"""Bad input where m2v-bench meets lmms-eval's CLI: a task that refuses its data (or the ``m2v`` model that refuses
its model) ends the run with a non-zero exit and one line, ``m2v: error: <file, sample; fix>``, without lmms-eval's
five retries, its traceback or its exit 0.

The corpus runs ``lmms_eval.__main__.cli_evaluate`` -- the function the ``lmms-eval`` console script calls -- in
this process with lmms-eval's ``dummy`` model (tasks refuse their data before any model call), one run per case;
the real ``lmms-eval`` executable, ``m2v`` on a tiny model, and a 2-process ``torchrun`` are run as subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media_fixtures import audio_only, good_video, truncated_copy
from PIL import Image

from m2v_bench.errors import RUN_ERROR_PREFIX
from m2v_bench.manifest import read_manifest, with_absolute_media, write_manifest

from .harness import LATIN1, bomb_png, truncated_png, write

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _png_as_mp4(path: Path) -> None:
    Image.fromarray(np.full((32, 32, 3), 127, np.uint8)).save(path, format="PNG")


def _truncated_video(path: Path) -> None:
    truncated_copy(good_video(path.with_name("whole.mp4"), frames=48), path, 0.4)


def _header_only_video(path: Path) -> None:
    truncated_copy(good_video(path.with_name("whole.mp4"), frames=48), path, 0.02)


def _empty_frames_folder(path: Path) -> None:
    path.mkdir()


def _frames_folder_of_text(path: Path) -> None:
    path.mkdir()
    (path / "0.png").write_text("not an image")


MEDIA = {  # name -> (make the bad file at the path, task, what the line says)
    "video-zero-byte": (lambda p: p.write_bytes(b""), "m2v_mhc", "zero-byte"),
    "video-truncated": (_truncated_video, "m2v_mhc", ""),
    "video-header-only": (_header_only_video, "m2v_mhc", ""),
    "video-png-renamed-mp4": (_png_as_mp4, "m2v_mhc", "not-a-video"),
    "video-text-file": (lambda p: p.write_text("hello"), "m2v_mhc", ""),
    "video-audio-only": (audio_only, "m2v_mhc", "not-a-video"),
    "video-missing": (lambda p: None, "m2v_mhc", "missing"),
    "video-dangling-symlink": (lambda p: p.symlink_to(p.parent / "gone.mp4"), "m2v_mhc", "missing"),
    "video-a-folder-of-nothing": (_empty_frames_folder, "m2v_mhc", ""),
    "video-frames-folder-of-text": (_frames_folder_of_text, "m2v_mhc", ""),
    "keyframe-video-zero-byte": (lambda p: p.write_bytes(b""), "m2v_mhc_keyframe", "zero-byte"),
    "score-video-zero-byte": (lambda p: p.write_bytes(b""), "m2v_mhc_score", "zero-byte"),
    "image-zero-byte": (lambda p: p.write_bytes(b""), "m2v_fhm", "zero-byte"),
    "image-truncated": (truncated_png, "m2v_fhm", ""),
    "image-decompression-bomb": (bomb_png, "m2v_fhm", ""),
    "image-text-file": (lambda p: p.write_text("hello"), "m2v_fhm", ""),
    "image-missing": (lambda p: None, "m2v_fhm", "missing"),
}
"""17 kinds of unusable media, each as the first sample of a test manifest."""


@pytest.fixture(scope="module", autouse=True)
def task_index_once():
    """lmms-eval indexes its 3,000 task YAMLs (4 s) on every run; the corpus's runs share the first run's index,
    everything after it (building the m2v task, its data checks, the exit) runs as in the executable."""
    import copy

    from lmms_eval.tasks import TaskManager

    from m2v_bench.lmms_plugin import register_tasks

    register_tasks()  # what lmms-eval's import does: the memo wraps the method that indexes m2v-bench's tasks too
    original, memo = TaskManager.initialize_tasks, {}

    def initialize_tasks(self, include_path=None, include_defaults=True):
        key = (repr(include_path), include_defaults)
        if key not in memo:
            memo[key] = original(self, include_path=include_path, include_defaults=include_defaults)
        return copy.deepcopy(memo[key])

    initialize_tasks._m2v_bench = True  # already includes them: the plugin must not wrap it again
    TaskManager.initialize_tasks = initialize_tasks
    yield
    TaskManager.initialize_tasks = original


@pytest.fixture(scope="module")
def data(prepared, tmp_path_factory) -> Path:
    """The sample MHC and FHM test sets with absolute media paths (a copy any case may break)."""
    root = tmp_path_factory.mktemp("lmms-data")
    for dataset in ("mhc", "fhm"):
        manifest = prepared / dataset / "test.jsonl"
        write_manifest(root / dataset / "test.jsonl", with_absolute_media(read_manifest(manifest), manifest.parent))
        shutil.copy(prepared / dataset / "prepare_report.json", root / dataset)
    return root


def _break_media(data: Path, tmp_path: Path, make, task: str) -> tuple[Path, Path, str]:
    """A copy of the data whose first sample of the task's dataset has media made by ``make``."""
    dataset = "fhm" if task.startswith("m2v_fhm") else "mhc"
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    manifest = copy / dataset / "test.jsonl"
    records = read_manifest(manifest)
    suffix = ".png" if dataset == "fhm" else ".mp4"
    bad = tmp_path / "media" / f"bad{suffix}"
    bad.parent.mkdir()
    make(bad)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[0]["media"] = str(bad)
    write(manifest, "".join(json.dumps(row) + "\n" for row in rows))
    return copy, bad, records[0].id


def _run(argv: list[str], env: dict[str, str | None], monkeypatch, capsys) -> tuple[int, str]:
    """``lmms-eval ARGV`` in this process: (exit code, stderr)."""
    from lmms_eval.__main__ import cli_evaluate

    for key, value in {**OFFLINE, **env}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("VERBOSITY", "INFO")  # lmms-eval sets it in os.environ: monkeypatch then removes it again
    monkeypatch.setattr(sys, "argv", ["lmms-eval", *argv])
    capsys.readouterr()
    try:
        cli_evaluate()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(RUN_ERROR_PREFIX)]
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err and "RetryError" not in err, err[-3000:]
    return lines[0]


def _dummy(task: str, out: Path) -> list[str]:
    return ["--model", "dummy", "--tasks", task, "--device", "cpu", "--output_path", str(out)]


@pytest.mark.parametrize("kind", list(MEDIA))
def test_bad_media_fail_the_lmms_eval_run_in_one_line(data, tmp_path, kind, monkeypatch, capsys):
    make, task, says = MEDIA[kind]
    copy, bad, sample = _break_media(data, tmp_path, make, task)
    started = time.monotonic()
    code, err = _run(_dummy(task, tmp_path / "out"), {"M2V_DATA_DIR": str(copy)}, monkeypatch, capsys)
    assert code == 2, err[-3000:]
    line = _one_line(err)
    assert str(bad) in line and sample in line and says in line and "Fix them" in line, line
    assert not list((tmp_path / "out").rglob("*_results.json"))
    assert time.monotonic() - started < 30  # no five retries with waits


def _unset(data: Path, tmp_path: Path):
    home = tmp_path / "home"  # the default data folder (~/.local/share/m2v-bench) does not exist there
    return {"M2V_DATA_DIR": None, "HOME": str(home), "XDG_DATA_HOME": None}, home


def _copy_with(data: Path, tmp_path: Path, content: bytes | None):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    manifest = copy / "mhc" / "test.jsonl"
    if content is None:
        manifest.unlink()
    else:
        manifest.write_bytes(content)
    return {"M2V_DATA_DIR": str(copy)}, manifest


LOCATIONS = {  # name -> (environment and what the line must name, what else it says)
    "data-dir-unset-and-no-default": (_unset, "M2V_DATA_DIR"),
    "data-dir-missing": (lambda d, t: ({"M2V_DATA_DIR": str(t / "nowhere")}, t / "nowhere"), "not a folder"),
    "data-dir-is-a-file": (lambda d, t: ({"M2V_DATA_DIR": str(write(t / "file", "x"))}, t / "file"), ""),
    "manifest-missing": (lambda d, t: _copy_with(d, t, None), "m2v-bench prepare mhc"),
    "manifest-empty": (lambda d, t: _copy_with(d, t, b""), ""),
    "manifest-blank-lines": (lambda d, t: _copy_with(d, t, b"\n \n\n"), ""),
    "manifest-not-utf8": (lambda d, t: _copy_with(d, t, LATIN1 + b"\n"), ""),
    "manifest-malformed-json": (lambda d, t: _copy_with(d, t, b'{"id": "x", \n'), ""),
}
"""8 ways the test data cannot be found or read."""


@pytest.mark.parametrize("kind", list(LOCATIONS))
def test_data_that_cannot_be_read_fail_the_lmms_eval_run_in_one_line(data, tmp_path, kind, monkeypatch, capsys):
    build, says = LOCATIONS[kind]
    env, named = build(data, tmp_path)
    code, err = _run(_dummy("m2v_mhc", tmp_path / "out"), env, monkeypatch, capsys)
    assert code == 2, err[-3000:]
    line = _one_line(err)
    assert str(named) in line and says in line, line


def test_debug_verbosity_keeps_the_traceback(data, tmp_path, monkeypatch, capsys):
    copy, _, _ = _break_media(data, tmp_path, lambda p: p.write_bytes(b""), "m2v_mhc")
    argv = [*_dummy("m2v_mhc", tmp_path / "out"), "--verbosity", "DEBUG"]
    with pytest.raises(Exception, match="M2VError"):  # lmms-eval re-raises it after its retries, traceback and all
        _run(argv, {"M2V_DATA_DIR": str(copy)}, monkeypatch, capsys)


def _subprocess(cmd: list[str], copy: Path, timeout: int = 300) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    env = {**os.environ, **OFFLINE, "M2V_DATA_DIR": str(copy)}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


@pytest.mark.slow
def test_the_lmms_eval_executable_with_m2v_exits_2(data, tiny_models, tmp_path):
    copy, bad, _ = _break_media(data, tmp_path, lambda p: p.write_bytes(b""), "m2v_mhc")
    cmd = [str(BIN / "lmms-eval"), "--model", "m2v", "--model_args", f"pretrained={tiny_models['qwen2_5_vl']}",
           "--tasks", "m2v_mhc", "--device", "cpu", "--output_path", str(tmp_path / "out")]  # fmt: skip
    result, _ = _subprocess(cmd, copy)
    assert result.returncode == 2, result.stderr[-3000:]
    assert str(bad) in _one_line(result.stderr)


def test_a_misspelt_model_arg_of_m2v_is_one_line(data, tiny_models, tmp_path, monkeypatch, capsys):
    copy, _, _ = _break_media(data, tmp_path, lambda p: p.write_bytes(b""), "m2v_mhc")
    argv = ["--model", "m2v", "--model_args", f"pretrained={tiny_models['qwen2_5_vl']},frame=4", "--tasks",
            "m2v_mhc", "--device", "cpu", "--output_path", str(tmp_path / "out")]  # fmt: skip
    code, err = _run(argv, {"M2V_DATA_DIR": str(copy)}, monkeypatch, capsys)
    assert code == 2 and "unknown model_args ['frame']" in _one_line(err)


@pytest.mark.slow
def test_a_two_process_torchrun_with_one_zero_byte_video_exits_within_60_s(data, tiny_models, tmp_path):
    copy, _, _ = _break_media(data, tmp_path, lambda p: p.write_bytes(b""), "m2v_mhc")
    marker = f"m2v-torchrun-{os.getpid()}"
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29631", "-m", "lmms_eval",
           "--model", "m2v", "--model_args", f"pretrained={tiny_models['mllama']}", "--tasks", "m2v_mhc",
           "--device", "cpu", "--output_path", str(tmp_path / marker)]  # fmt: skip
    result, seconds = _subprocess(cmd, copy, timeout=120)
    assert result.returncode != 0 and seconds < 60, (seconds, result.stderr[-3000:])
    assert RUN_ERROR_PREFIX in result.stderr
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert not left, f"ranks left running: {left}"
