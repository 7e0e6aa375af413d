"""The development environment is exactly requirements/lock.txt, and the lock is complete and hashed."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements" / "lock.txt"


@pytest.fixture(scope="module")
def check_lock():
    spec = importlib.util.spec_from_file_location("check_lock", REPO / ".ci" / "check_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installed_set_equals_the_lock():
    """Run in the venv that `make` built: any missing, extra or other-version package fails."""
    made_by_make = any(Path(sys.prefix).glob(".lock-*"))
    if not made_by_make and not os.environ.get("CI"):
        pytest.skip(f"{sys.prefix} was not built by `make` from the lock")
    result = subprocess.run(
        [sys.executable, str(REPO / ".ci" / "check_lock.py"), str(LOCK)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches" in result.stdout


def test_the_venv_stamp_names_this_locks_hash():
    import hashlib

    stamps = sorted(p.name for p in Path(sys.prefix).glob(".lock-*"))
    if not stamps and not os.environ.get("CI"):
        pytest.skip(f"{sys.prefix} was not built by `make` from the lock")
    assert stamps == [f".lock-{hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]}"]


def test_differences_name_missing_extra_and_changed_packages(check_lock):
    lock = {"torch": "2.14.1", "filelock": "3.32.7", "trl": "1.16.0"}
    here = {"torch": "2.14.1", "filelock": "4.3.1", "gradio": "6.0.0"}
    assert check_lock.differences(lock, here) == [
        "differs  filelock: lock 3.32.7, here 4.3.1",
        "extra    gradio==6.0.0",
        "missing  trl==1.16.0",
    ]
    assert check_lock.differences(lock, dict(lock)) == []


def test_check_fails_on_a_lock_the_environment_does_not_match(check_lock, tmp_path):
    tampered = tmp_path / "lock.txt"
    tampered.write_text(LOCK.read_text().replace("filelock==3.", "filelock==4."))
    assert check_lock.main([str(tampered)]) == 1


def test_every_requirement_is_pinned_with_hashes(check_lock):
    text = LOCK.read_text()
    pins = check_lock.read_pins(LOCK)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])  # one block per requirement
    assert len(blocks) == len(pins) > 100
    for block in blocks:
        assert "==" in block and "--hash=sha256:" in block, block[:200]


def test_every_declared_dependency_is_in_the_lock_within_its_range(check_lock):
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = check_lock.read_pins(LOCK)
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(line)
        name = check_lock.canonical(requirement.name)
        assert name in pins, f"{name} is declared but not locked: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {line}"


def test_lmms_eval_works_with_the_locked_filelock(check_lock):
    """The break that motivated the lock: filelock 4 removed the module lmms-eval 0.7.3 imports."""
    assert check_lock.read_pins(LOCK)["filelock"].startswith("3.")
    import lmms_eval.evaluator  # noqa: F401  (imports filelock._api)
