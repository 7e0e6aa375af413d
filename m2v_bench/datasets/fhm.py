"""Facebook Hateful Memes: ``train.jsonl``, ``dev_seen.jsonl``, ``test_seen.jsonl`` (one JSON object per line
with id, img, label, text) and the images in ``img/``. Splits: train -> train, dev_seen -> validation,
test_seen -> test (the "unseen" files of phase 2 overlap with these and are not used)."""

from __future__ import annotations

import json
from pathlib import Path

from m2v_bench.datasets.common import DatasetSpec, PrepareResult, TableRow, count_missing_media, media_or_none
from m2v_bench.errors import PrepareError

SPLIT_FILES = {"train.jsonl": "train", "dev_seen.jsonl": "validation", "test_seen.jsonl": "test"}


def _data_dir(root: Path) -> Path:
    for candidate in (root, root / "data"):
        if (candidate / "train.jsonl").is_file():
            return candidate
    raise PrepareError(f"{root}: train.jsonl not found; --root must be the folder of the FHM release (with img/)")


def prepare(spec: DatasetSpec, root: Path, table: list[TableRow] | None, table_name: str) -> PrepareResult:
    if table is not None:
        raise PrepareError("FHM comes with its own splits; --table is only for MHC and HateMM")
    data_dir = _data_dir(root)
    result = PrepareResult(records=[])
    for filename, split in SPLIT_FILES.items():
        path = data_dir / filename
        if not path.is_file():
            result.warnings.append(f"{path} not found: the FHM {split} split is empty")
            continue
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PrepareError(f"{where}: not valid JSON ({exc.msg})") from None
                for key in ("id", "img", "text", "label"):
                    if key not in obj:
                        raise PrepareError(f"{where}: missing '{key}' (FHM lines need id, img, text and label)")
                if obj["label"] not in (0, 1):
                    raise PrepareError(f"{where}: label must be 0 or 1, got {obj['label']!r}")
                image = media_or_none(data_dir / obj["img"])
                result.records.append(spec.record(str(obj["id"]), split, obj["text"], obj["label"], image))
    unused = [p.name for p in sorted(data_dir.glob("*_unseen.jsonl"))]
    if unused:
        result.warnings.append(f"not used (they overlap with the seen splits): {', '.join(unused)}")
    count_missing_media(result.records, result, f"Images are looked up as {data_dir}/<img>.")
    return result
