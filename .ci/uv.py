"""Run the bootstrapped uv with this machine's pip package sources.

uv does not read pip's configuration. Machines may point pip at local mirrors (``index-url``,
``extra-index-url``, ``find-links``, in ``pip config`` or ``PIP_*`` variables); this script hands the same
sources to uv through its own variables, read at run time, so nothing machine-specific is written into the
repository. The lock's hashes are those of the PyPI files, so a machine without mirrors installs the same
bytes from PyPI.

Usage: python3 .ci/uv.py UV_BINARY [uv arguments...]
"""

import os
import subprocess
import sys


def pip_config() -> dict[str, str]:
    """pip's effective settings (files and PIP_* variables) as {key: value}, e.g. {'extra-index-url': ...}."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        # "global.find-links='/opt/wheels'" or ":env:.find-links='/opt/wheels'"; variables win over files.
        name = key.rsplit(".", 1)[-1]
        value = value.strip().strip("'\"")
        if key.startswith(":env:") or name not in settings:
            settings[name] = value
    return settings


def uv_environment(settings: dict[str, str]) -> dict[str, str]:
    env = {}
    for pip_key, uv_var in (
        ("index-url", "UV_DEFAULT_INDEX"),
        ("extra-index-url", "UV_INDEX"),
        ("find-links", "UV_FIND_LINKS"),
        ("cert", "SSL_CERT_FILE"),
    ):
        if settings.get(pip_key) and uv_var not in os.environ:
            # uv separates several indexes by spaces and several find-links by commas.
            value = settings[pip_key]
            env[uv_var] = ",".join(value.split()) if uv_var == "UV_FIND_LINKS" else value
    return env


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    uv, args = sys.argv[1], sys.argv[2:]
    env = dict(os.environ, **uv_environment(pip_config()))
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")  # use the machine's Python, never fetch one
    # Local mirrors hold partial copies of PyPI (one version of a package, say): like pip, pick the best
    # version across all sources. The lock's hashes make the install exact whichever source serves a file.
    env.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
    os.execve(uv, [uv, *args], env)


if __name__ == "__main__":
    main()
