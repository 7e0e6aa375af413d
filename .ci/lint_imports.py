#!/usr/bin/env python3
"""import-linter on the package as it installs (``make lint``; the contracts are in pyproject.toml).

grimp, import-linter's import graph, finds a package's modules on disk, while the editable install maps
``m2v_bench.tasks``, ``.trainers`` and ``.leaderboard`` from the top-level folders (``[tool.setuptools]
package-dir``), which grimp does not see. So the package is laid out as its wheel lays it out, in a temporary
folder, and lint-imports runs on that copy. ``python .ci/lint_imports.py [--tree DIR]`` (``--tree``: lint an
already laid-out copy, e.g. one a test has changed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lay_out(dest: Path, root: Path = ROOT) -> Path:
    """Copy every package's modules (``[tool.setuptools] packages``, through ``package-dir``) to ``dest``."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = setuptools.get("package-dir", {})
    for package in setuptools["packages"]:
        parent = package.rpartition(".")[0]
        if package in folders:
            source = root / folders[package]
        else:  # a sub-package of a mapped package lies below that package's folder
            source = root / folders.get(parent, parent.replace(".", "/")) / package.rpartition(".")[2]
        target = dest / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, target / module.name)
    return dest


def lint(tree: Path, config: Path = ROOT / "pyproject.toml") -> subprocess.CompletedProcess:
    """lint-imports on a laid-out ``tree``, with its packages first on the path (not the editable install's)."""
    binary = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [str(binary), "--no-cache", "--no-logo", str(config)]
    return subprocess.run(command, cwd=tree, env=env, text=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=None, help="an already laid-out copy to lint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="m2v-lint-imports-") as tmp:
        tree = args.tree or lay_out(Path(tmp))
        result = lint(tree)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
