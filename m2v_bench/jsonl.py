"""The one JSONL reader and writer of m2v-bench: manifests, predictions, human labels, lmms-eval's per-sample logs
and FHM's release files all go through here, so every one reports a bad file the same way (file:line and why).

Writing is atomic (a temporary file, then ``os.replace``): a reader never sees half a file, and a failed write
leaves the old file as it was. :func:`append_jsonl` is for logs that grow while a run goes (resumable predictions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import jsonlines

from m2v_bench.atomic import atomic_write, user_path
from m2v_bench.errors import M2VError


def read_jsonl(
    path: str | os.PathLike[str], error: type[M2VError] = M2VError, what: str = "record"
) -> list[tuple[str, dict[str, Any]]]:
    """``(file:line, object)`` for every non-blank line. A missing file, bytes that are not UTF-8, a line that is not
    JSON or not an object raise ``error`` naming the file (and line); ``what`` names the expected record."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    rows = []
    try:
        with user_path(path), open(path, encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                    raise error(f"{where}: not valid JSON ({why}); expected a {what}") from None
                if not isinstance(obj, dict):
                    raise error(f"{where}: expected a {what} (a JSON object), got {type(obj).__name__}")
                rows.append((where, obj))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    return rows


def read_json(path: str | os.PathLike[str], fix: str, error: type[M2VError] = M2VError) -> Any:
    """A user's JSON file (a UTF-8 BOM allowed). Bytes that are not UTF-8 or text that is not JSON raise ``error``
    naming the file (and line) and ``fix``, what the user should do."""
    path = Path(path)
    try:
        with user_path(path):
            data = path.read_bytes()
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); {fix}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); {fix}") from None
    except RecursionError:
        raise error(f"{path}: not valid JSON (nested too deeply); {fix}") from None


def write_jsonl(
    path: str | os.PathLike[str],
    objects: Iterable[dict[str, Any]],
    sort_keys: bool = False,
    check: Callable[[Path], Any] | None = None,
) -> int:
    """Write objects as JSONL, atomically (:func:`m2v_bench.atomic.atomic_write`): ``check`` reads the written file
    back before it replaces the old one (default: :func:`read_jsonl`). Returns the number written."""

    count = 0

    def write(fh: IO[str]) -> None:
        nonlocal count
        writer = jsonlines.Writer(fh, compact=True, sort_keys=sort_keys)
        for obj in objects:
            writer.write(obj)
            count += 1

    atomic_write(path, write, check or read_jsonl)
    return count


def append_jsonl(fh: IO[str], obj: dict[str, Any]) -> None:
    """One line onto an open log (flush and fsync are the caller's, once per batch)."""
    fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
