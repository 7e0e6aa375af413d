"""Writing the user's files: validated, atomic, and with errors that name the path.

:func:`atomic_write` is how m2v-bench writes the files its commands produce from a user's data (manifests,
``prepare_report.json``, the validate report, re-annotation predictions, queues, human labels and CSVs, the Label
Studio import, the stats, the adapter's provenance): the content goes to a temporary file beside the target, is read
back with the same reader that will read the real file later, and only then replaces the old file (``os.replace``).
A bad record, a full disk or a kill mid-write therefore leaves the old file as it was, and nothing half-written
ever appears. What it does not cover, and is a plain write: the synthetic sample data (made again on demand), the
model card beside an adapter, and the static leaderboard site; the leaderboard's database writes SQLite
transactions, and the frame cache renames each of its files into place.

:func:`user_path` turns the operating system's errors on a path the user named (no permission, a folder where a
file is expected, a file where a folder is expected) into :class:`~m2v_bench.errors.M2VError` naming that path;
any other ``OSError`` stays a bug with a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from m2v_bench.errors import M2VError


def os_error_message(path: str | os.PathLike[str], exc: OSError, action: str) -> str:
    reason = exc.strerror or exc.__class__.__name__
    return f"{path}: cannot {action} ({reason}); check the path and its permissions"


@contextlib.contextmanager
def user_path(path: str | os.PathLike[str], action: str = "read") -> Iterator[None]:
    """Inside the block, an ``OSError`` is the user's path that cannot be read or written: an M2VError naming it."""
    try:
        yield
    except M2VError:
        raise
    except OSError as exc:
        raise M2VError(os_error_message(getattr(exc, "filename", None) or path, exc, action)) from None


def check_folder_target(folder: str | os.PathLike[str], option: str = "") -> Path:
    """An output folder a command will create or fill: it, or its nearest existing ancestor, must be a folder.
    Checked before anything is written, so a file in the way is one line, not a half-made output."""
    folder = Path(folder)
    existing = next((p for p in [folder, *folder.parents] if p.exists() or p.is_symlink()), None)
    if existing is not None and not existing.is_dir():
        named = f"{option} {folder}" if option else str(folder)
        where = "" if existing == folder else f" ({existing} is a file)"
        raise M2VError(f"{named}: not a folder{where}; give a folder path")
    return folder


def make_dirs(folder: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` with an error naming the folder when a file is in the way or permissions forbid it."""
    folder = Path(folder)
    with user_path(folder, "create the folder"):
        if folder.exists() and not folder.is_dir():
            raise M2VError(f"{folder}: is a file, not a folder; give a folder path")
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[str]], Any],
    check: Callable[[Path], Any] | None = None,
    newline: str | None = None,
) -> Path:
    """Write a text file atomically: ``write(fh)`` fills a temporary file beside ``path``; ``check(tmp)`` reads it
    back (the reader of that kind of file; it raises on anything it would reject), then the temporary file replaces
    ``path`` and the rename is made durable (:func:`fsync_dir`). On any error the temporary file is removed and
    ``path`` is untouched."""
    path = Path(path)
    if path.is_dir():
        raise M2VError(f"{path}: is a folder; give a file path to write")
    created = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    done = False
    try:
        with user_path(path, "write"), open(tmp, "w", encoding="utf-8", newline=newline) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if check is not None:
            try:
                check(tmp)
            except M2VError as exc:  # the reader names the temporary file; the user knows the target
                message = f"{str(exc).replace(str(tmp), str(path))} (not written: {path} is unchanged)"
                try:
                    error = type(exc)(message)
                except TypeError:  # an M2VError subclass with another constructor
                    error = M2VError(message)
                raise error from None
        with user_path(path, "write"):
            os.replace(tmp, path)
        fsync_dir(path.parent)
        done = True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not done:  # a failed write leaves no folder it made either
            for folder in created:  # deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return path


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable, so a caller may act on it (delete what was merged into the new file); a
    no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str, check: Callable[[Path], Any] | None = None) -> Path:
    return atomic_write(path, lambda fh: fh.write(text), check)


def check_json(tmp: Path) -> None:
    """Read back a JSON file (a reader for :func:`atomic_write`)."""
    json.loads(tmp.read_text(encoding="utf-8"))
