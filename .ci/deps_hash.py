"""Print a short hash of everything that decides the contents of the development venv.

The venv is cached outside the clone (see Makefile); it is keyed by the declared dependencies and the
constraints file, not by the whole pyproject.toml, so unrelated metadata edits do not rebuild 6 GB.
"""

import hashlib
import pathlib
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
project = tomllib.loads((root / "pyproject.toml").read_text())
parts = [
    repr(project["build-system"]["requires"]),
    repr(project["project"]["dependencies"]),
    repr(sorted(project["project"].get("optional-dependencies", {}).items())),
    (root / "requirements" / "constraints.txt").read_text(),
    f"{sys.version_info.major}.{sys.version_info.minor}",
]
print(hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16])
