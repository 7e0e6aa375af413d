"""What every preparer shares: the dataset spec, the split table, the media index and the writer."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from m2v_bench import csvio
from m2v_bench.atomic import atomic_write_text, make_dirs
from m2v_bench.errors import PrepareError
from m2v_bench.labels import Demonstration, LabelSpace, Modality, get_label_space
from m2v_bench.manifest import SPLITS, Record, record_from_json, split_hash, write_manifest
from m2v_bench.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

SPLIT_ALIASES = {"train": "train", "valid": "validation", "val": "validation", "dev": "validation"}
SPLIT_ALIASES.update({s: s for s in SPLITS})


@dataclass
class PrepareResult:
    """Records plus everything a user must know about what was not taken over as is."""

    records: list[Record]
    warnings: list[str] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    """Samples of the raw layout that are not in the manifests, each with its id and reason."""
    synthetic: bool = False
    """Made from m2v-bench's synthetic sample data (recorded in prepare_report.json; evaluations say `sample`)."""


@dataclass(frozen=True)
class KnownLeak:
    """An id that the upstream release itself puts into two splits, kept there on purpose (the paper's test set
    includes it). ``m2v-bench validate`` reports it as a warning, and the trainers drop it from training data."""

    id: str
    release: str
    """Where the upstream release has it, e.g. "MultiHateClip English_data/annotation: train.tsv and test.tsv"."""
    why_kept: str


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of the dataset registry (``m2v_bench.datasets.DATASETS``)."""

    name: str
    title: str
    short: str
    """As the paper's tables name it (MHC, HateMM, FHM, MAMI)."""
    modality: Modality
    label_space_name: str
    prepare_official: Callable[..., PrepareResult]
    layout: str
    """One-line description of the official distribution layout (shown by ``prepare --help``)."""
    has_paper_table: bool = False
    """The paper's split/label/transcript table ships with m2v-bench (MHC, HateMM)."""
    obtain: str = ""
    """Where the official release comes from and how to download and unpack it (``prepare <dataset> --help``)."""
    official_splits: str = ""
    """For a dataset with a paper table: what ``--table official`` (the release's own splits) gives, shown in
    ``prepare <dataset> --help``; empty where the release has no splits of its own (HateMM)."""
    known_leaks: tuple[KnownLeak, ...] = ()

    def known_leak(self, sample_id: str) -> KnownLeak | None:
        return next((leak for leak in self.known_leaks if leak.id == sample_id), None)

    @property
    def label_space(self) -> LabelSpace:
        return get_label_space(self.label_space_name)

    def record(
        self,
        sample_id: str,
        split: str,
        text: str,
        label: int,
        media: Path | None,
        frames_dir: Path | None = None,
        extra: dict | None = None,
    ) -> Record:
        """A record of this dataset, with its original label space (media may be None: not found)."""
        return Record(
            id=sample_id,
            dataset=self.name,
            split=split,
            modality=self.modality,
            text=text,
            label=label,
            label_space=self.label_space_name,
            source=self.name,
            media=str(media) if media else None,
            frames_dir=str(frames_dir) if frames_dir else None,
            extra=extra or {},
        )

    def demonstrations(self) -> list[Demonstration]:
        """The paper's few-shot demonstration samples of this dataset (empty for meme datasets)."""
        name = f"demos_{self.name}.csv"
        data = resources.files("m2v_bench") / "data" / name
        if not data.is_file():
            return []
        with data.open(encoding="utf-8", newline="") as fh:
            return [Demonstration(r["id"], int(r["label"]), r["description"], r["text"]) for r in csv.DictReader(fh)]


@dataclass(frozen=True)
class TableRow:
    """One row of a split table: the paper's (or a user's) assignment of a sample to a split, with its label
    and text. ``where`` is file:line for messages."""

    id: str
    split: str
    label: int
    text: str
    where: str
    media: str | None = None
    frames_dir: str | None = None


def normalise_split(value: str, where: str) -> str:
    try:
        return SPLIT_ALIASES[value.strip().lower()]
    except KeyError:
        raise PrepareError(f"{where}: unknown split {value!r}; expected one of {sorted(SPLIT_ALIASES)}") from None


def parse_binary_label(value: str, where: str) -> int:
    if value.strip() in ("0", "1"):
        return int(value)
    raise PrepareError(f"{where}: label must be 0 or 1, got {value!r}")


def read_csv_rows(path: Path, delimiter: str = ",", required: Iterable[str] = ()) -> list[tuple[str, dict[str, str]]]:
    """:func:`m2v_bench.csvio.read_csv_rows` for a raw release's tables: problems are a :class:`PrepareError`."""
    return csvio.read_csv_rows(path, delimiter, required, error=PrepareError)


SPLIT_TABLE_COLUMNS = ("id", "text", "type", "label")
"""The columns a split table in the paper's CSV format must have (``mhc.csv``, ``hatemm.csv``)."""


def read_paper_table(path: Path) -> list[TableRow]:
    """A table in the paper's released CSV format (``id, video, frames, image, audio, text, type, label``;
    only id, text, type and label are required). Media columns are kept as written."""
    rows = []
    for where, row in read_csv_rows(path, required=SPLIT_TABLE_COLUMNS):
        rows.append(
            TableRow(
                id=row["id"].strip(),
                split=normalise_split(row["type"], where),
                label=parse_binary_label(row["label"], where),
                text=row["text"] or "",
                where=where,
                media=(row.get("video") or row.get("image") or None),
                frames_dir=row.get("frames") or None,
            )
        )
    return rows


def bundled_paper_table(dataset: str) -> list[TableRow]:
    """The paper's split/label/transcript table shipped as package data (derived from the paper's
    repository, see README "Data attribution")."""
    data = resources.files("m2v_bench") / "data" / f"paper_{dataset}.csv"
    with resources.as_file(data) as path:
        return read_paper_table(Path(path))


class MediaIndex:
    """Finds a sample's media file by id below a root folder. Accepted names (``NAMING``): ``<id>.<ext>``
    anywhere below the root, any file inside a folder named ``<id>`` (e.g. ``<id>/video.mp4``), and yt-dlp's
    default ``<title> [<id>].<ext>``."""

    NAMING = "<id>.<ext>, <id>/<any name>.<ext> or yt-dlp's '<title> [<id>].<ext>'"
    _BRACKETED_ID = re.compile(r"\[([^\[\]]+)\]$")

    def __init__(self, root: Path, extensions: tuple[str, ...]):
        self.root = root
        self._by_id: dict[str, Path] = {}
        self.ambiguous: dict[str, list[Path]] = {}
        self.files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for filename in sorted(filenames):
                if not filename.lower().endswith(extensions):
                    continue
                path = Path(dirpath, filename)
                self.files.append(path)
                for key in self.keys(path):
                    if key in self._by_id and self._by_id[key] != path:
                        self.ambiguous.setdefault(key, [self._by_id[key]]).append(path)
                    else:
                        self._by_id.setdefault(key, path)

    def keys(self, path: Path) -> set[str]:
        """The ids a file may stand for."""
        keys = {path.stem}
        if path.parent != self.root:
            keys.add(path.parent.name)
        bracketed = self._BRACKETED_ID.search(path.stem)
        if bracketed:
            keys.add(bracketed.group(1))
        return keys

    @classmethod
    def for_modality(cls, root: Path, modality: Modality) -> MediaIndex:
        return cls(root, VIDEO_EXTENSIONS if modality == "video" else IMAGE_EXTENSIONS)

    def get(self, sample_id: str) -> Path | None:
        return self._by_id.get(sample_id)

    def ids(self) -> set[str]:
        return set(self._by_id)

    def unmatched_example(self, wanted: set[str]) -> Path | None:
        """A media file that was seen below the root but stands for none of the wanted ids."""
        return next((path for path in self.files if not self.keys(path) & wanted), None)


def media_or_none(path: Path) -> Path | None:
    return path if path.is_file() else None


def count_missing_media(records: list[Record], result: PrepareResult, hint: str) -> None:
    missing = [r.id for r in records if r.media is None]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        result.warnings.append(
            f"{len(missing)} sample(s) have no media file ({shown}); they are kept with media=null and "
            f"`m2v-bench validate` reports them. {hint}"
        )


def write_prepared(result: PrepareResult, out_dir: Path, dataset: str) -> dict[str, Path]:
    """Write ``<out>/<dataset>/<split>.jsonl`` (media paths relative to that folder) and
    ``prepare_report.json`` (counts, split hashes, warnings, excluded samples). Returns the manifest paths."""
    target = out_dir / dataset
    by_split: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for record in result.records:
        by_split[record.split].append(_relative_media(record, target))
    # Every record must pass the manifest reader before anything is written: a bad one fails the run with nothing
    # changed, instead of leaving manifests that `validate` and the tasks then reject.
    for split, records in by_split.items():
        ids: dict[str, int] = {}
        for number, record in enumerate(records, start=1):
            record_from_json(record.to_json(), f"{dataset} {split} sample {number} ({record.id!r})")
            if record.id in ids:
                raise PrepareError(
                    f"{dataset} {split}: id {record.id!r} appears twice (samples {ids[record.id]} and {number}); "
                    "remove the duplicate from the raw data"
                )
            ids[record.id] = number
    make_dirs(target)
    paths = {}
    for split, records in by_split.items():
        path = target / f"{split}.jsonl"
        if records:
            write_manifest(path, records)
            paths[split] = path
        elif path.exists():  # a stale split from an earlier run must not survive
            path.unlink()
    report = {
        "dataset": dataset,
        "splits": {
            split: {
                "samples": len(records),
                "labels": dict(sorted(Counter(r.label for r in records).items())),
                "sha256": split_hash(records),
            }
            for split, records in by_split.items()
            if records
        },
        "warnings": result.warnings,
        "excluded": result.excluded,
        "synthetic": result.synthetic,
    }
    atomic_write_text(target / "prepare_report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return paths


def _relative_media(record: Record, manifest_dir: Path) -> Record:
    def rel(value: str | None) -> str | None:
        if value is None:
            return None
        return os.path.relpath(Path(value).resolve(), manifest_dir.resolve())

    return replace(record, media=rel(record.media), frames_dir=rel(record.frames_dir))


@dataclass(frozen=True)
class Annotation:
    """A sample as the official annotation file describes it: its binary label, and for datasets whose
    official release has them, its split and text."""

    id: str
    label: int
    where: str
    split: str | None = None
    text: str | None = None
    extra: dict = field(default_factory=dict)


def assemble(
    spec: DatasetSpec,
    annotations: list[Annotation],
    media: MediaIndex,
    table: list[TableRow] | None,
    table_name: str,
) -> PrepareResult:
    """Join official annotations, a split table and the media found on disk into records.

    With a table, the table decides which samples exist and their split, label and text (so the paper's test
    sets are reproduced exactly); official labels are kept in ``extra`` and disagreements are reported. Without
    a table, the annotations must carry split and text.
    """
    result = PrepareResult(records=[])
    by_id = {a.id: a for a in annotations}
    if table is None:
        rows = []
        for a in annotations:
            if a.split is None or a.text is None:
                raise PrepareError(f"{a.where}: the official release has no split/text for {a.id}; pass --table")
            rows.append(TableRow(a.id, a.split, a.label, a.text, a.where))
    else:
        rows = table
        known = {row.id for row in rows}
        outside = [a for a in annotations if a.id not in known]
        if annotations and len(outside) == len(annotations):
            raise PrepareError(
                f"none of the {len(annotations)} annotated samples is in the split table {table_name}; "
                "if this is not the real dataset (e.g. synthetic sample data), pass --table PATH with its own table"
            )
        for a in outside:
            result.excluded.append({"id": a.id, "reason": f"not in the split table {table_name}", "where": a.where})
        if outside:
            result.warnings.append(
                f"{len(outside)} annotated sample(s) are not in the split table {table_name} and are left out "
                f"(listed under 'excluded' in prepare_report.json)"
            )
    disagree = []
    for row in rows:
        annotation = by_id.get(row.id)
        extra = dict(annotation.extra) if annotation else {}
        if annotation is not None and annotation.label != row.label:
            disagree.append(row.id)
            extra["official_label_binary"] = annotation.label
        path = media.get(row.id)
        if row.id in media.ambiguous:
            result.warnings.append(f"{row.id}: several media files match ({media.ambiguous[row.id]}); using {path}")
        result.records.append(spec.record(row.id, row.split, row.text, row.label, path, extra=extra))
    if table is not None:
        unannotated = [row.id for row in rows if row.id not in by_id]
        if unannotated and annotations:
            result.warnings.append(
                f"{len(unannotated)} sample(s) of the split table have no row in the official annotations "
                f"(e.g. {', '.join(unannotated[:5])}); their label comes from the table"
            )
    if disagree:
        result.warnings.append(
            f"{len(disagree)} sample(s) have a different label in the split table than in the official annotations "
            f"(e.g. {', '.join(disagree[:5])}); the table's label is used, the official one is in extra"
        )
    hint = f"Media are looked up below {media.root} as {MediaIndex.NAMING}."
    if any(r.media is None for r in result.records):
        seen = media.unmatched_example({row.id for row in rows})
        hint += f" Seen but matching no id, e.g.: {seen}." if seen else " No media file was found there at all."
    count_missing_media(result.records, result, hint)
    return result
