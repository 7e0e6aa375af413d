"""The one CSV/TSV reader of m2v-bench (raw releases, split tables, annotation queues and answers, re-annotation
CSVs) and the one spreadsheet-safe cell for the CSVs it writes. Beside :mod:`m2v_bench.jsonl`, the JSONL one."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from pathlib import Path

from m2v_bench.atomic import user_path
from m2v_bench.errors import M2VError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula (= + - @, tab, CR) gets a leading ``'``
    (OWASP's advice against CSV injection: annotators open the queue in Excel or LibreOffice, readers the
    leaderboard's exports). A lone ``-``, the empty-value mark, is no formula."""
    return "'" + text if text.startswith(_FORMULA_START) and text != "-" else text


def raise_csv_field_limit() -> None:
    """Python's csv module refuses fields over 128 KiB; a transcript of a long video is longer. Lift the limit."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # a C long is 32 bits on some platforms
            limit //= 2


def read_csv_rows(
    path: Path, delimiter: str = ",", required: Iterable[str] = (), error: type[M2VError] = M2VError
) -> list[tuple[str, dict[str, str]]]:
    """Rows of a CSV/TSV with their file:line, checking the header has the required columns and every row has as
    many cells as the header (a surplus cell is an error, never dropped). Problems raise ``error`` (a dataset's
    preparer passes :class:`~m2v_bench.errors.PrepareError`)."""
    if not path.is_file():
        raise error(f"{path}: file not found" + (" (it is a folder)" if path.is_dir() else ""))
    raise_csv_field_limit()
    rows = []
    with user_path(path), open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            if not reader.fieldnames:
                raise error(f"{path}: empty file; expected a header row with {list(required)}")
            missing = [c for c in required if c not in reader.fieldnames]
            if missing:
                raise error(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
            width = len(reader.fieldnames)
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise error(
                        f"{where}: {width + len(row[None])} cells, the header has {width}; quote cells that hold "
                        f"the delimiter {delimiter!r} or remove the surplus cells"
                    )
                if any(value is None for value in row.values()):
                    cells = sum(value is not None for value in row.values())
                    raise error(f"{where}: {cells} cells, the header has {width}; fill in the missing cells")
                rows.append((where, row))
        except (UnicodeDecodeError, csv.Error) as exc:
            line = f":{reader.line_num}" if reader.line_num else ""
            raise error(f"{path}{line}: not a readable UTF-8 table ({exc})") from None
    return rows
