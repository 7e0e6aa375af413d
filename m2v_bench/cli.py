"""The ``m2v-bench`` command line: every feature's subcommands, assembled in one parser.

Each feature owns its subcommands (an ``add_parser(sub)`` and its command
bodies, beside the feature's code); this module only assembles them, sets up logging and maps errors to exit codes.

Error policy: a user error (:class:`~m2v_bench.errors.M2VError`, raised where a user's file or option is read)
prints one line ``m2v-bench: error: <file[:line]> [sample]: <what> ; <fix>`` and exits 2; bad options exit 2 through
argparse; ``validate`` exits 1 on a failed check. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from m2v_bench import __version__, demo, validate
from m2v_bench.datasets import commands as prepare_commands
from m2v_bench.errors import M2VError
from m2v_bench.frames import commands as frames_commands
from m2v_bench.leaderboard import commands as leaderboard_commands
from m2v_bench.reannotate import commands as reannotate_commands
from m2v_bench.sample_data import commands as sample_data_commands
from m2v_bench.testing import commands as testing_commands

COMMANDS = (
    prepare_commands,
    validate,
    sample_data_commands,
    testing_commands,
    reannotate_commands,
    leaderboard_commands,
    frames_commands,
    demo,
)
"""The modules whose ``add_parser`` adds a subcommand, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="m2v-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` / ``sys.stderr`` is at the time (pytest's capture replaces them)."""

    def __init__(self, stream_name: str):
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging() -> None:
    """The library logs through ``logging`` (``m2v_bench.*`` loggers) and never prints; the command line shows its
    INFO messages on stdout as plain lines, warnings and errors on stderr. Records still propagate, so handlers
    that an embedding program (or pytest) puts on the root logger see them too."""
    root = logging.getLogger("m2v_bench")
    if any(isinstance(h, _ConsoleHandler) for h in root.handlers):
        return
    info = _ConsoleHandler("stdout")
    info.addFilter(lambda record: record.levelno < logging.WARNING)
    info.setFormatter(logging.Formatter("%(message)s"))
    warnings = _ConsoleHandler("stderr")
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("m2v-bench: warning: %(message)s"))
    root.addHandler(info)
    root.addHandler(warnings)
    root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return args.func(args)
    except M2VError as exc:  # only user errors: an OSError or anything else is a bug and keeps its traceback
        print(f"m2v-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("m2v-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
