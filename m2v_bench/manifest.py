"""The manifest: one JSON line per sample, the single interface between preparers, tasks, trainers, the
re-annotation pipeline and the leaderboard.

A prepared dataset is a folder ``<out>/<dataset>/`` with one file per split (``train.jsonl``,
``validation.jsonl``, ``test.jsonl``). Media paths in a record are relative to the manifest file's folder
when the media lies below a common root, so a prepared folder can be moved together with its raw data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2v_bench.errors import ManifestError
from m2v_bench.jsonl import read_jsonl, write_jsonl
from m2v_bench.labels import LABEL_SPACES

SPLITS = ("train", "validation", "test")
MODALITIES = ("image", "video")


@dataclass(frozen=True)
class Record:
    """One sample. ``label`` is 0/1 in ``label_space``; ``source`` is the dataset the sample comes from (a meme
    re-annotated towards MHC keeps ``source="fhm"`` but has ``label_space="offensive"``)."""

    id: str
    dataset: str
    split: str
    modality: str
    text: str
    label: int
    label_space: str
    source: str
    media: str | None = None
    """Video file (modality video) or image file (modality image); ``None`` when the media is not present."""
    frames_dir: str | None = None
    """Optional folder of already extracted frames of a video."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Dataset-specific fields: the original label (e.g. MHC's 3-way label), target group, ..."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def media_path(self, manifest_dir: str | os.PathLike[str]) -> Path | None:
        """The media as a path, resolving a relative path against the manifest's folder."""
        if self.media is None:
            return None
        return Path(manifest_dir, self.media)


_FIELDS = {f.name: f for f in dataclasses.fields(Record)}
_REQUIRED = [
    name
    for name, f in _FIELDS.items()
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]
_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "dataset": (str,),
    "split": (str,),
    "modality": (str,),
    "text": (str,),
    "label": (int,),
    "label_space": (str,),
    "source": (str,),
    "media": (str, type(None)),
    "frames_dir": (str, type(None)),
    "extra": (dict,),
}


def record_from_json(obj: Any, where: str) -> Record:
    """Build a record from a decoded JSON object, with errors naming ``where`` (file:line) and the fix.

    Only the schema is checked here (fields, types, allowed modality/split/label space); whether labels fit
    and media exist is :mod:`m2v_bench.validate`'s job, so a bad dataset can still be loaded and reported.
    """
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object per line, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(_FIELDS))
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {unknown}; put dataset-specific fields under 'extra'")
    missing = [name for name in _REQUIRED if name not in obj]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {missing}")
    for name, value in obj.items():
        # bool is an int subclass: a label of `true` is a mistake, not 1.
        if not isinstance(value, _TYPES[name]) or (name == "label" and isinstance(value, bool)):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in _TYPES[name])
            raise ManifestError(f"{where}: field '{name}' must be {expected}, got {json.dumps(value)}")
    if obj["modality"] not in MODALITIES:
        raise ManifestError(f"{where}: modality must be one of {MODALITIES}, got {obj['modality']!r}")
    if obj["split"] not in SPLITS:
        raise ManifestError(f"{where}: split must be one of {SPLITS}, got {obj['split']!r}")
    if obj["label_space"] not in LABEL_SPACES:
        raise ManifestError(f"{where}: label_space must be one of {sorted(LABEL_SPACES)}, got {obj['label_space']!r}")
    check_id(obj["id"], where)
    return Record(**obj)


def check_id(sample_id: str, where: str) -> None:
    """A sample id becomes part of file names (frame caches, per-sample logs, media look-ups): no empty id, no path
    separator, no ``.``/``..``, no control character (NUL)."""
    if not sample_id.strip():
        raise ManifestError(f"{where}: empty id; every sample needs its dataset's id")
    bad = next((c for c in sample_id if c in "/\\" or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None or sample_id in (".", ".."):
        shown = repr(bad) if bad is not None else repr(sample_id)
        raise ManifestError(
            f"{where}: id {sample_id!r} contains {shown}; ids must not hold path separators, '..' or control "
            "characters (fix the id in the raw data)"
        )


def read_manifest(path: str | os.PathLike[str]) -> list[Record]:
    """Read a JSONL manifest. Raises :class:`ManifestError` naming the file and line of the first bad record."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest; make one with `m2v-bench prepare <dataset> ...`")
    return [record_from_json(obj, where) for where, obj in read_jsonl(path, ManifestError, "manifest record")]


def write_manifest(path: str | os.PathLike[str], records: Iterable[Record]) -> int:
    """Write records as JSONL, atomically, after reading the written file back with :func:`read_manifest` (what it
    would reject is never written; the old file stays). Returns the number written."""
    return write_jsonl(path, (record.to_json() for record in records), sort_keys=True, check=read_manifest)


def split_hash(records: Iterable[Record]) -> str:
    """A stable content hash of a split: sha256 over the sorted (id, label, text) triples.

    Independent of record order, media paths and extra fields, so it identifies *which samples with which
    gold labels and texts* a result was computed on (the leaderboard checks it before accepting a result).
    """
    triples = sorted((r.id, r.label, r.text) for r in records)
    digest = hashlib.sha256()
    for triple in triples:
        digest.update(json.dumps(triple, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def with_absolute_media(records: Iterable[Record], manifest_dir: str | os.PathLike[str]) -> list[Record]:
    """The records with media paths made absolute (resolved against the manifest's folder), for records that leave
    their manifest: written into another manifest, handed to a model or a data loader."""
    return [
        dataclasses.replace(r, media=str(r.media_path(manifest_dir).resolve())) if r.media is not None else r
        for r in records
    ]
