"""Model references: a checkpoint is named by a hub id (``org/name``) or by a local folder, and shown by its own
name (``Qwen/Qwen2.5-VL-7B-Instruct`` -> ``Qwen2.5-VL-7B-Instruct``; a local folder by its folder name, marked
local)."""

from __future__ import annotations

import re
from pathlib import PurePath

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
"""The form of a hub repository id: ``org/name``, neither part starting with a dot or a dash."""


def is_hub_id(reference: str) -> bool:
    """Whether ``reference`` has the form of a hub id (``org/name``, no ``..``); anything else is a local path."""
    return bool(HUB_ID.fullmatch(reference)) and ".." not in reference


def checkpoint_label(reference: str | None) -> str:
    """How a table names a checkpoint: a hub id's model name, a local folder's name with ``(local)``."""
    if not reference:
        return "?"
    reference = str(reference).rstrip("/")
    if is_hub_id(reference):
        return reference.split("/", 1)[1]
    return f"{PurePath(reference).name or reference} (local)"


_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
_SYMBOLIC_REF = re.compile(r"(?:[A-Z_]+_)?HEAD")


def is_git_ref(revision: str) -> bool:
    """Whether ``revision`` is a name git accepts for a branch, tag or commit (``git check-ref-format``'s rules, at
    most 64 characters): no control characters, spaces, ``~ ^ : ? * [ \\``, ``..``, ``@{`` or ``//``; no part that
    starts with a dot or ends with ``.lock``; not ``@``, and no leading or trailing ``/`` or trailing ``.``. Stricter
    than git: no part starts with ``-`` (a revision is passed on to git and the hub, where ``--upload-pack=x`` would be
    an option), and no symbolic ref (``HEAD``, ``FETCH_HEAD``, ...), which names no fixed branch, tag or commit."""
    if not revision or len(revision) > 64 or revision == "@" or _REF_FORBIDDEN.search(revision):
        return False
    if revision.startswith("/") or revision.endswith(("/", ".")) or _SYMBOLIC_REF.fullmatch(revision):
        return False
    return not any(part.startswith((".", "-")) or part.endswith(".lock") for part in revision.split("/"))
