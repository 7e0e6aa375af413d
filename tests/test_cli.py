"""The `m2v-bench` console script as a user runs it (subprocesses of the installed entry point)."""

import subprocess
import sys
from pathlib import Path

import pytest

from m2v_bench.cli import build_parser

SUBCOMMANDS = ["prepare", "validate", "make-sample-data", "make-tiny-model", "reannotate", "leaderboard", "demo"]


EXE = Path(sys.executable).parent / "m2v-bench"  # the console script of the environment running the tests


def run(*args):
    if not EXE.is_file():
        pytest.fail(f"{EXE} is missing: install the project (make install)")
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=600)


def test_every_subcommand_has_help():
    top = run("--help")
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout
        sub = run(name, "--help")
        assert sub.returncode == 0 and sub.stdout.startswith(f"usage: m2v-bench {name}"), sub.stderr


def test_prepare_help_lists_the_official_layouts():
    out = run("prepare", "--help").stdout
    assert "HateMM_annotation.csv" in out and "test_labels.txt" in out and "English_data/annotation" in out


def test_parser_knows_all_subcommands():
    actions = [a for a in build_parser()._actions if a.dest == "command"]
    assert sorted(actions[0].choices) == sorted(SUBCOMMANDS)


def test_user_error_is_one_line_without_traceback(tmp_path):
    result = run("validate", str(tmp_path / "nothing"))
    assert result.returncode == 2
    missing = tmp_path / "nothing"
    assert result.stderr.strip().splitlines() == [
        f"m2v-bench: error: {missing}: no such file or folder; prepare data first with `m2v-bench prepare`"
    ]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    result = run("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[3/3] validate" in result.stdout and "0 error" not in result.stderr
    for dataset in ("mhc", "hatemm", "fhm", "mami"):
        assert (tmp_path / "demo" / "prepared" / dataset / "test.jsonl").is_file()
    assert "| mhc     | test" in result.stdout
    # a later stage failing is not reported as success: corrupt one video and validate again
    video = next((tmp_path / "demo" / "raw" / "HateMM" / "hate_videos").glob("*.mp4"))
    video.write_bytes(b"")
    again = run("validate", str(tmp_path / "demo" / "prepared"), "--quiet")
    assert again.returncode == 1 and video.stem in again.stdout and "zero-byte" in again.stdout
