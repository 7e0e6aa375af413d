"""argparse types every command shares: checked integers whose error names the option."""

from __future__ import annotations

import argparse


def _int_at_least(minimum: int, wording: str):
    """An argparse type: an integer >= ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {wording}, got {number}")
        return number

    return parse


positive_int = _int_at_least(1, "at least 1")
"""An argparse type: an integer >= 1 (a batch size, a frame count)."""
non_negative_int = _int_at_least(0, "0 or more")
