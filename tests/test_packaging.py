"""What `pip install .` puts into site-packages: one import name, the package data, the console script."""

import shutil
import subprocess
import sys
import tomllib
from configparser import ConfigParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    # Build from a copy: an in-tree build/ folder would outlive deleted modules and leak them into later wheels.
    source = tmp_path_factory.mktemp("src") / "m2v-bench"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "*.egg-info", "__pycache__")
    )
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return target


@pytest.mark.slow
def test_only_top_level_import_name_is_m2v_bench(installed):
    importable = {
        p.name.removesuffix(".py")
        for p in installed.iterdir()
        if not p.name.endswith((".dist-info", ".egg-info")) and p.name not in ("bin", "__pycache__")
    }
    assert importable == {"m2v_bench"}
    top_level = next(installed.glob("*.dist-info"))
    assert "m2v_bench" in (top_level / "RECORD").read_text()
    assert (installed / "bin" / "m2v-bench").is_file()


@pytest.mark.slow
def test_sub_packages_and_data_are_inside(installed):
    package = installed / "m2v_bench"
    for sub in ("tasks", "trainers", "leaderboard", "datasets", "data"):
        assert (package / sub).is_dir(), sub
    for name in ("paper_mhc.csv", "paper_hatemm.csv", "demos_mhc.csv", "demos_hatemm.csv"):
        assert (package / "data" / name).is_file(), name
    shipped_yaml = {p.relative_to(package / "tasks") for p in (package / "tasks").rglob("*.yaml")}
    source_yaml = {p.relative_to(REPO / "tasks") for p in (REPO / "tasks").rglob("*.yaml")}
    assert shipped_yaml == source_yaml


def test_every_source_package_is_declared():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = {
        "m2v_bench": REPO / "m2v_bench",
        "m2v_bench.tasks": REPO / "tasks",
        "m2v_bench.trainers": REPO / "trainers",
        "m2v_bench.leaderboard": REPO / "leaderboard",
    }
    found = set()
    for name, folder in mapping.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            found.add(".".join((name, *parts)))
    assert found <= declared, f"packages missing from pyproject.toml: {found - declared}"


def test_setup_cfg_holds_no_metadata():
    config = ConfigParser()
    config.read(REPO / "setup.cfg")
    assert not {"metadata", "options"} & set(config.sections())
