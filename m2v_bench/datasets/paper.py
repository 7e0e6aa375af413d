"""The paper's own CSV format (reference/upstream_dataset/{mhc,hatemm}.csv): ``id, video, frames, image, audio,
text, type, label``. Media paths in it point into the authors' disk; they are tried relative to the CSV's
folder and to ``--media-root``, and otherwise looked up by id below ``--media-root``."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.datasets.common import DatasetSpec, MediaIndex, PrepareResult, count_missing_media, read_paper_table
from m2v_bench.errors import PrepareError


def paper_csv(spec: DatasetSpec, root: Path) -> Path:
    """``--root`` may be the CSV itself or a folder holding ``<dataset>.csv``."""
    path = root if root.is_file() else root / f"{spec.name}.csv"
    if not path.is_file():
        raise PrepareError(f"{root}: no {spec.name}.csv in the paper's format here; pass the CSV file as --root")
    return path


def _resolve(value: str | None, bases: list[Path]) -> Path | None:
    if not value:
        return None
    for base in bases:
        candidate = base / value
        if candidate.exists():
            return candidate
    return None


def prepare(spec: DatasetSpec, root: Path, media_root: Path | None) -> PrepareResult:
    path = paper_csv(spec, root)
    bases = [path.parent] + ([media_root] if media_root else [])
    index = MediaIndex.for_modality(media_root, spec.modality) if media_root else None
    result = PrepareResult(records=[])
    for row in read_paper_table(path):
        for column, value in (("video/image", row.media), ("frames", row.frames_dir)):
            if value and "\x00" in value:
                raise PrepareError(f"{row.where}: the {column} path holds a NUL character; fix the path")
        media = _resolve(row.media, bases)
        if media is None and index is not None:
            media = index.get(row.id)
        frames = _resolve(row.frames_dir, bases)
        frames = frames if frames and frames.is_dir() else None
        result.records.append(spec.record(row.id, row.split, row.text, row.label, media, frames_dir=frames))
    count_missing_media(result.records, result, "Pass --media-root DIR with the videos (<id>.mp4 or <id>/video.mp4).")
    return result
