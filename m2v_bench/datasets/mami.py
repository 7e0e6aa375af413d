"""MAMI (SemEval-2022 Task 5): ``training.csv`` (tab-separated: file_name, misogynous, shaming, stereotype,
objectification, violence, Text Transcription) with the training images beside it; the test set is
``Test.csv`` (file_name, Text Transcription) with its images beside it, plus the gold file
``test_labels.txt`` (tab-separated, no header: file_name, misogynous, shaming, stereotype, objectification,
violence). Files are found anywhere below the root. MAMI has no validation split. The id of a meme is its
file name without extension."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.datasets.common import (
    DatasetSpec,
    PrepareResult,
    TableRow,
    count_missing_media,
    media_or_none,
    parse_binary_label,
    read_csv_rows,
)
from m2v_bench.errors import PrepareError
from m2v_bench.manifest import Record

SUBTYPES = ("shaming", "stereotype", "objectification", "violence")
TEXT_COLUMN = "Text Transcription"


def _find(root: Path, name: str) -> Path | None:
    matches = sorted(p for p in root.rglob("*") if p.name.lower() == name.lower() and p.is_file())
    if len(matches) > 1:
        raise PrepareError(f"{root}: several files named {name} ({[str(m) for m in matches]}); point --root at one")
    return matches[0] if matches else None


def _record(spec: DatasetSpec, split: str, file_name: str, text: str, label: int, folder: Path, extra) -> Record:
    return spec.record(Path(file_name).stem, split, text, label, media_or_none(folder / file_name), extra=extra)


def _is_header(cells: list[str]) -> bool:
    """A first line such as ``file_name<TAB>misogynous<TAB>shaming...``: its label cells are column names."""
    return len(cells) >= 2 and cells[1].strip().lower() in ("misogynous", *SUBTYPES)


def _gold(path: Path, warnings: list[str]) -> dict[str, tuple[int, dict[str, int]]]:
    gold = {}
    try:
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise PrepareError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        where = f"{path}:{lineno}"
        if not gold and _is_header(cells):
            # the official file has no header; some copies add one
            warnings.append(f"{where}: a header line ({', '.join(c.strip() for c in cells)}), skipped")
            continue
        if len(cells) < 2:
            raise PrepareError(f"{where}: expected tab-separated file_name and misogynous label")
        if len(cells) > 2 + len(SUBTYPES):
            raise PrepareError(f"{where}: {len(cells)} cells, at most {2 + len(SUBTYPES)} expected (file_name, "
                               f"misogynous, {', '.join(SUBTYPES)})")  # fmt: skip
        subtypes = {name: parse_binary_label(v, where) for name, v in zip(SUBTYPES, cells[2:], strict=False)}
        gold[Path(cells[0].strip()).stem] = (parse_binary_label(cells[1], where), subtypes)
    return gold


def prepare(spec: DatasetSpec, root: Path, table: list[TableRow] | None, table_name: str) -> PrepareResult:
    if table is not None:
        raise PrepareError("MAMI comes with its own splits; --table is only for MHC and HateMM")
    training = _find(root, "training.csv")
    if training is None:
        raise PrepareError(f"{root}: training.csv not found below --root (the MAMI training release)")
    result = PrepareResult(records=[])
    for where, row in read_csv_rows(training, delimiter="\t", required=("file_name", "misogynous", TEXT_COLUMN)):
        extra = {name: parse_binary_label(row[name], where) for name in SUBTYPES if row.get(name) not in (None, "")}
        label = parse_binary_label(row["misogynous"], where)
        result.records.append(
            _record(spec, "train", row["file_name"], row[TEXT_COLUMN], label, training.parent, extra)
        )
    test = _find(root, "Test.csv")
    if test is None:
        result.warnings.append("Test.csv not found below --root: the MAMI test split is empty")
    else:
        labels_file = _find(root, "test_labels.txt")
        if labels_file is None:
            raise PrepareError(f"{test}: the test gold labels test_labels.txt are not below --root; add them")
        gold = _gold(labels_file, result.warnings)
        for where, row in read_csv_rows(test, delimiter="\t", required=("file_name", TEXT_COLUMN)):
            sample_id = Path(row["file_name"]).stem
            if sample_id not in gold:
                raise PrepareError(f"{where}: {row['file_name']} has no gold label in {labels_file}")
            label, extra = gold[sample_id]
            result.records.append(_record(spec, "test", row["file_name"], row[TEXT_COLUMN], label, test.parent, extra))
    count_missing_media(result.records, result, "Images are looked up beside training.csv and Test.csv.")
    return result
