"""Compare an environment with the lock, or two requirement files with each other.

    python .ci/check_lock.py requirements/lock.txt     # this interpreter's installed set == the lock, or exit 1
    python .ci/check_lock.py --diff LOCK OTHER.txt      # print the packages whose version differs (exit 0)

The installed set is read with importlib.metadata; the project itself (m2v-bench, installed editable by
`make`) is the one distribution allowed beyond the lock.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

PROJECT = "m2v-bench"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """{name: version} of every `name==version` line of a pip/uv requirements file (hash lines skipped)."""
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "--")):
            continue
        match = PIN.match(line)
        if not match:
            raise SystemExit(f"{path}:{number}: not a pinned requirement (name==version): {line!r}")
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def differences(expected: dict[str, str], actual: dict[str, str], where: str = "here") -> list[str]:
    """One line per package that is missing, extra or of another version in `actual`."""
    lines = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if want == have:
            continue
        if have is None:
            lines.append(f"missing  {name}=={want}")
        elif want is None:
            lines.append(f"extra    {name}=={have}")
        else:
            lines.append(f"differs  {name}: lock {want}, {where} {have}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock", type=Path)
    parser.add_argument("--diff", type=Path, metavar="OTHER", help="compare OTHER's pins with the lock instead")
    args = parser.parse_args(argv)
    lock = read_pins(args.lock)
    if args.diff:
        lines = differences(lock, read_pins(args.diff), where="resolved")
        print(f"{len(lines)} package(s) differ from {args.lock} in {args.diff}" + (":" if lines else ""))
        print("\n".join(f"  {line}" for line in lines), end="\n" if lines else "")
        return 0
    here = installed()
    here.pop(PROJECT, None)
    lines = differences(lock, here)
    if lines:
        print(f"{sys.prefix} does not match {args.lock} ({len(lines)} difference(s)); rebuild: rm -rf .venv && make")
        print("\n".join(f"  {line}" for line in lines))
        return 1
    print(f"{sys.prefix} matches {args.lock}: {len(lock)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
