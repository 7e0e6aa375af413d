"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""

import functools
import os
import sys


class M2VError(Exception):
    """Base class of errors caused by input or configuration. The message names the file/sample and the fix."""


class ManifestError(M2VError):
    """A manifest file is missing or a record in it is malformed."""


class PrepareError(M2VError):
    """A raw dataset layout cannot be turned into manifests."""


RUN_ERROR_PREFIX = "m2v: error: "
"""How a refused task or model starts the one line it prints under lmms-eval's CLI."""


def stops_the_run(function):
    """For code lmms-eval calls (task hooks, the ``m2v`` model): an :class:`M2VError` raised under lmms-eval's CLI
    ends the process with exit code 2 and one line, ``m2v: error: <what; fix>``, on stderr. lmms-eval would retry
    it five times, print a long traceback and exit 0; a ``SystemExit`` passes through its retries and its catch-all,
    on every rank of a data-parallel run alike. With ``--verbosity DEBUG`` (or outside the CLI: tests, the library)
    the error is raised as itself, with its traceback."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except M2VError as exc:
            verbosity = os.environ.get("VERBOSITY")  # lmms-eval's CLI sets it from --verbosity
            if verbosity is None or verbosity.upper() == "DEBUG":
                raise
            print(f"{RUN_ERROR_PREFIX}{exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper
