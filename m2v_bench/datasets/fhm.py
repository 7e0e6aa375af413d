"""Facebook Hateful Memes: JSONL files (one object per line with id, img, label, text) and the images in
``img/``. Phase-2 layout: ``train.jsonl``, ``dev_seen.jsonl`` -> validation, ``test_seen.jsonl`` -> test (the
"unseen" files overlap with these and are not used). Phase-1 / Kaggle layout: ``train.jsonl``, ``dev.jsonl``
-> validation, and a ``test.jsonl`` whose lines carry no label: that release has no usable test split, which is
reported, not guessed."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.datasets.common import DatasetSpec, PrepareResult, TableRow, count_missing_media, media_or_none
from m2v_bench.errors import PrepareError
from m2v_bench.jsonl import read_jsonl

# split -> the files that may hold it, in order of preference (phase 2 first, then phase 1)
SPLIT_FILES = {
    "train": ("train.jsonl",),
    "validation": ("dev_seen.jsonl", "dev.jsonl"),
    "test": ("test_seen.jsonl", "test.jsonl"),
}
PACKED_IMAGES = ("img.tar.gz", "img.tgz", "img.zip", "img.tar")


def _data_dir(root: Path) -> Path:
    for candidate in (root, root / "data"):
        if (candidate / "train.jsonl").is_file():
            return candidate
    raise PrepareError(f"{root}: train.jsonl not found; --root must be the folder of the FHM release (with img/)")


def _check_images_unpacked(data_dir: Path) -> None:
    if (data_dir / "img").is_dir():
        return
    packed = next((data_dir / name for name in PACKED_IMAGES if (data_dir / name).is_file()), None)
    if packed is not None:
        command = f"unzip {packed} -d {data_dir}" if packed.suffix == ".zip" else f"tar -xf {packed} -C {data_dir}"
        raise PrepareError(f"{packed}: the FHM images are still packed; unpack them first ({command}), then rerun")


def prepare(spec: DatasetSpec, root: Path, table: list[TableRow] | None, table_name: str) -> PrepareResult:
    if table is not None:
        raise PrepareError("FHM comes with its own splits; --table is only for MHC and HateMM")
    data_dir = _data_dir(root)
    _check_images_unpacked(data_dir)
    result = PrepareResult(records=[])
    for split, candidates in SPLIT_FILES.items():
        for name in candidates:
            if (data_dir / name).exists() and not (data_dir / name).is_file():
                raise PrepareError(f"{data_dir / name}: not a file (a folder?); the FHM {split} split is a JSONL file")
        present = [data_dir / name for name in candidates if (data_dir / name).is_file()]
        if not present:
            result.warnings.append(f"none of {', '.join(candidates)} in {data_dir}: the FHM {split} split is empty")
            continue
        path = present[0]
        for other in present[1:]:
            result.warnings.append(f"{other} not used: {path.name} holds the {split} split")
        lines = read_jsonl(path, PrepareError, "FHM line (id, img, text, label)")
        if split == "test" and lines and all("label" not in obj for _, obj in lines):
            result.warnings.append(
                f"{path} has no labels (the phase-1 test file): no FHM test split is prepared; "
                "the labelled test set is test_seen.jsonl of the phase-2 release"
            )
            continue
        for where, obj in lines:
            for key in ("id", "img", "text", "label"):
                if key not in obj:
                    raise PrepareError(f"{where}: missing '{key}' (FHM lines need id, img, text and label)")
            if type(obj["label"]) is not int or obj["label"] not in (0, 1):
                raise PrepareError(f"{where}: label must be the integer 0 or 1, got {obj['label']!r}")
            if not isinstance(obj["text"], str) or not isinstance(obj["img"], str):
                raise PrepareError(f"{where}: 'text' and 'img' must be strings")
            if obj["id"] in (None, "") or isinstance(obj["id"], (dict, list, bool)):
                raise PrepareError(f"{where}: 'id' must be a non-empty number or string, got {obj['id']!r}")
            image = media_or_none(data_dir / obj["img"])
            result.records.append(spec.record(str(obj["id"]), split, obj["text"], obj["label"], image))
    unused = [p.name for p in sorted(data_dir.glob("*_unseen.jsonl"))]
    if unused:
        result.warnings.append(f"not used (they overlap with the seen splits): {', '.join(unused)}")
    count_missing_media(result.records, result, f"Images are looked up as {data_dir}/<img>.")
    return result
