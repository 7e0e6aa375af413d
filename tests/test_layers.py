"""The layer contracts of `make lint` (import-linter, pyproject.toml ``[tool.importlinter]``) hold, and they catch
an upward import or a cycle, at module level or inside a function."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _lint_module():
    spec = importlib.util.spec_from_file_location("lint_imports", REPO / ".ci" / "lint_imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lint_imports():
    if not Path(sys.executable).with_name("lint-imports").is_file():
        pytest.fail("lint-imports is not installed beside this Python; it is in the lock (dev extra)")
    return _lint_module()


def _tree(lint_imports, tmp_path: Path) -> Path:
    return lint_imports.lay_out(tmp_path / "tree")


def test_the_package_keeps_its_contracts(lint_imports, tmp_path):
    tree = _tree(lint_imports, tmp_path)
    assert (tree / "m2v_bench" / "leaderboard" / "server.py").is_file()  # the mapped folders are in the copy
    assert (tree / "m2v_bench" / "tasks" / "utils.py").is_file()
    result = lint_imports.lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "code", "contract", "names"),
    [
        # an upward import at module level: the base layer importing the command line
        ("errors.py", "from m2v_bench import cli  # noqa\n", "m2v_bench layers", "m2v_bench.errors -> m2v_bench.cli"),
        # an upward import hidden in a function: the datasets reading where prepared data are found
        ("datasets/common.py", "def _late():\n    from m2v_bench import data_dir  # noqa\n", "No import cycle",
         "m2v_bench.datasets.common -> m2v_bench.data_dir"),
        # a cycle inside a feature: the UI importing the server that mounts it
        ("leaderboard/ui.py", "def _late():\n    from m2v_bench.leaderboard import server  # noqa\n",
         "Leaderboard", "m2v_bench.leaderboard.ui -> m2v_bench.leaderboard.server"),
    ],
)  # fmt: skip
def test_an_upward_import_or_a_cycle_breaks_the_lint(lint_imports, tmp_path, module, code, contract, names):
    tree = _tree(lint_imports, tmp_path)
    path = (tree / "m2v_bench" / module).resolve()
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code, encoding="utf-8")
    result = lint_imports.lint(tree)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert names in broken
