"""The `m2v-bench` console script as a user runs it (subprocesses of the installed entry point)."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from m2v_bench.cli import build_parser
from m2v_bench.cli import main as main_cli

SUBCOMMANDS = ["prepare", "validate", "make-sample-data", "make-tiny-model", "reannotate", "leaderboard", "demo"]
SUBCOMMANDS.append("frames")  # frames cache (m2v_bench/frames/commands.py)


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
def test_demo_end_to_end_reproduces_the_papers_ordering_in_miniature(tmp_path):
    """`m2v-bench demo` for one family and target, through every real stage (`make demo` shows both families and
    both targets; `--quick` is this with 3 epochs): all 8 stages, the tables read back from the database, the site,
    and the demo's learning criteria: Vid-FT and RM-FT reach macro-F1 >= 0.8 on the synthetic MHC test set, RM-FT
    beats OM-FT by at least 0.10 (the label shift of the original meme labels), and the untrained model stays
    <= 0.6."""
    from m2v_bench.leaderboard.store import Store

    out = tmp_path / "demo"
    result = run("demo", "--family", "mllama", "--target", "mhc", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number in range(1, 9):
        assert f"[{number}/8]" in result.stdout
    assert "# Substitution (the paper's Table 3)" in result.stdout and "# Augmentation" in result.stdout
    for strategy in ("No-FT", "Vid-FT", "OM-FT", "RM-FT", "Vid+RM-FT"):
        assert f"| {strategy}" in result.stdout
    assert (out / "site" / "substitution.html").is_file()
    assert (out / "prepared" / "fhm_aligned_with_mhc" / "train.jsonl").is_file()
    assert not (out / "prepared" / "fhm_aligned_with_hatemm").exists()  # --target narrowed the run
    store = Store(out / "leaderboard.sqlite")
    try:
        f1 = {r["name"]: r["macro_f1"] for r in store.results() if r["task"] == "m2v_mhc"}
    finally:
        store.close()
    assert sorted(f1) == [f"mllama-{s}" for s in ("no_ft", "om_ft-mhc", "rm_ft-mhc", "vid_ft-mhc", "vid_rm_ft-mhc")]
    assert f1["mllama-vid_ft-mhc"] >= 0.8 and f1["mllama-rm_ft-mhc"] >= 0.8, f1
    assert f1["mllama-rm_ft-mhc"] >= f1["mllama-om_ft-mhc"] + 0.10, f1
    assert f1["mllama-no_ft"] <= 0.6, f1


def test_quick_demo_is_the_default_narrowed(monkeypatch, tmp_path):
    """`--quick` is one family, one target, 3 epochs; --family/--target narrow either selection."""
    from m2v_bench import demo

    seen = []
    monkeypatch.setattr(demo.Demo, "run", lambda self: seen.append(self.config))
    assert main_cli(["demo", "--quick", "--out", str(tmp_path)]) == 0
    assert main_cli(["demo", "--target", "hatemm", "--target", "hatemm", "--out", str(tmp_path)]) == 0
    quick, narrowed = seen
    assert (quick.families, quick.targets, quick.epochs) == (("llava_next_video",), ("mhc",), 3)
    assert (narrowed.families, narrowed.targets, narrowed.epochs) == (("llava_next_video", "mllama"), ("hatemm",), 20)


def test_demo_refuses_zero_jobs(tmp_path, capsys):
    assert main_cli(["demo", "--quick", "--jobs", "0", "--out", str(tmp_path / "demo")]) == 2
    assert "--jobs 0: the demo needs at least 1 job at a time" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_demo_failure_stops_the_run(tmp_path, monkeypatch, capsys):
    """A failing stage ends the demo with its message and no success line."""
    from m2v_bench import demo

    def broken(self):
        raise demo.M2VError("3 validation error(s)")

    monkeypatch.setattr(demo.Demo, "validate", broken)
    assert main_cli(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 2
    captured = capsys.readouterr()
    assert "[3/8] validate" in captured.out and "[4/8]" not in captured.out and "demo finished" not in captured.out
    assert "m2v-bench: error: 3 validation error(s)" in captured.err


def _options(parser: argparse.ArgumentParser, command: str = "m2v-bench") -> dict[str, list[str]]:
    """Every (sub)command's options and positionals, by command line."""
    found = {command: sorted("/".join(a.option_strings) or f"<{a.dest}>" for a in parser._actions
                             if not isinstance(a, argparse._SubParsersAction))}  # fmt: skip
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_options(sub, f"{command} {name}".removeprefix("m2v-bench ")))
    return found


def test_every_command_keeps_its_options():
    """The snapshot was taken from the parser before the commands moved into their features (main @ e13bc0d); options
    added since are added to it with the change that adds them (none removed)."""
    snapshot = json.loads((Path(__file__).parent / "snapshots" / "cli_options.json").read_text())
    assert _options(build_parser()) == snapshot
