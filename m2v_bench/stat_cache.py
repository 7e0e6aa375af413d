"""Results of expensive per-file checks, kept across processes while the file stays the same.

Every lmms-eval run of an m2v task probes every sample's media before the model runs (``tasks/utils.py``), and the
keyframe view also scans each clip for its keyframe. On unchanged data these answers do not change, so they are kept
in ``cache_home()/file-results/<namespace>/<hash of the manifest path>.json`` and reused. An entry is keyed by the
file's identity as the OS reports it: device, inode, size, and the modification and change times in nanoseconds.
Rewriting, truncating, replacing or touching a file changes at least one of them (the change time cannot be set
back by a user), so a changed file is always checked again. A cache that cannot be read or written is ignored: it
only ever saves work. Cache files not written for MAX_AGE_DAYS are deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from m2v_bench.settings import available_cores, cache_home

logger = logging.getLogger(__name__)

FORMAT = 1
MAX_AGE_DAYS = 30
"""Cache files not written for this long (their manifest is gone or no longer evaluated) are deleted."""


def file_identity(path: str | os.PathLike[str]) -> list[int] | None:
    """(device, inode, size, mtime_ns, ctime_ns) of a file; None when it cannot be stat'ed (never cached)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class FileResultCache:
    """{file path: JSON-able result} for one kind of check (``namespace``) over the files of one manifest."""

    def __init__(self, namespace: str, manifest: str | os.PathLike[str], root: Path | None = None):
        digest = hashlib.sha256(str(Path(manifest).resolve()).encode()).hexdigest()[:24]
        self.path = (root or cache_home()) / "file-results" / namespace / f"{digest}.json"
        self._entries = self._load()
        self._dirty = False

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
            return {}
        return data["entries"]

    def get(self, path: str | os.PathLike[str]) -> tuple[bool, Any]:
        """(True, result) when ``path`` was checked and has not changed since; (False, None) otherwise."""
        entry = self._entries.get(str(path))
        identity = file_identity(path)
        if identity is not None and isinstance(entry, dict) and entry.get("identity") == identity:
            return True, entry.get("result")
        return False, None

    def put(self, path: str | os.PathLike[str], result: Any, identity: list[int] | None = None) -> None:
        """Keep ``result`` for ``path`` as it is now, or as it was when ``identity`` was taken (before the check)."""
        identity = identity if identity is not None else file_identity(path)
        if identity is not None:
            self._entries[str(path)] = {"identity": identity, "result": result}
            self._dirty = True

    def save(self) -> None:
        """Write the entries (atomically; concurrent writers each leave a whole file). Failures are only logged."""
        if not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, suffix=".tmp", delete=False) as handle:
                json.dump({"format": FORMAT, "entries": self._entries}, handle)
            os.replace(handle.name, self.path)
            self._dirty = False
            self._prune()
        except OSError as exc:
            logger.debug("file-result cache %s not written: %s", self.path, exc)

    def _prune(self) -> None:
        cutoff = time.time() - MAX_AGE_DAYS * 86400
        for entry in os.scandir(self.path.parent):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass  # another process pruned it first

    def map(self, check: Callable[[Any], Any], items: Iterable[Any], path_of: Callable[[Any], Any]) -> list[Any]:
        """``[check(item) for item in items]``, computing (in parallel threads) only the results of the items whose
        file (``path_of(item)``; None: always computed) is not in the cache, then saving the cache."""
        items = list(items)
        results: list[Any] = [None] * len(items)
        todo: list[tuple[int, Any, list[int] | None]] = []  # (index, path, identity before the check)
        for index, item in enumerate(items):
            path = path_of(item)
            hit, value = self.get(path) if path is not None else (False, None)
            if hit:
                results[index] = value
            else:
                todo.append((index, path, file_identity(path) if path is not None else None))
        if todo:
            with ThreadPoolExecutor(max_workers=available_cores()) as pool:
                values = pool.map(lambda job: check(items[job[0]]), todo)
                for (index, path, identity), value in zip(todo, values, strict=True):
                    results[index] = value
                    if identity is not None:
                        self.put(path, value, identity)
            self.save()
        return results
