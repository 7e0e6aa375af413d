"""``m2v-bench validate``: check prepared manifests before anything trains or evaluates on them.

Errors (exit 1): unreadable manifest lines, duplicate ids in a split, the same id in two splits (a leak), labels
outside the label space, missing or unreadable media (zero-byte, truncated, not a video/image, no frames),
a frames folder that does not exist. Warnings: empty text (HateMM has 57 empty transcripts; the paper kept
them), and a leak that the dataset registry lists as a known upstream leak (MultiHateClip's own release has
``k9OtaMbK0Ac`` in train and test, and the paper's test set includes it; the trainers drop it).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytablewriter import MarkdownTableWriter
from tqdm import tqdm

from m2v_bench.argtypes import non_negative_int
from m2v_bench.atomic import atomic_write_text, check_json
from m2v_bench.datasets import DATASETS, KnownLeak
from m2v_bench.errors import M2VError, ManifestError
from m2v_bench.jsonl import read_jsonl
from m2v_bench.labels import LABEL_SPACES
from m2v_bench.manifest import SPLITS, Record, record_from_json
from m2v_bench.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, MediaError, probe_image, probe_video
from m2v_bench.registry import parse_aligned_name
from m2v_bench.settings import available_cores
from m2v_bench.stat_cache import FileResultCache

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Issue:
    severity: str
    kind: str
    where: str
    """The manifest file (and line, where known)."""
    id: str | None
    message: str

    def __str__(self) -> str:
        sample = f" [{self.id}]" if self.id else ""
        return f"{self.severity.upper():7} {self.kind:14} {self.where}{sample}: {self.message}"


@dataclass
class ValidationReport:
    issues: list[Issue] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    """(dataset folder, split, label) -> samples."""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == WARNING]

    def to_json(self) -> dict:
        return {
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "issues": [asdict(i) for i in self.issues],
            "counts": [
                {"dataset": d, "split": s, "label": lab, "samples": n}
                for (d, s, lab), n in sorted(self.counts.items())
            ],
        }


def find_manifests(path: Path) -> dict[Path, list[Path]]:
    """Manifest files grouped by dataset folder. ``path`` is a prepared root (``<dataset>/<split>.jsonl``), one
    dataset folder, or one .jsonl file."""
    path = Path(path)
    if path.is_file():
        return {path.parent: [path]}
    if not path.is_dir():
        raise M2VError(f"{path}: no such file or folder; prepare data first with `m2v-bench prepare`")
    groups: dict[Path, list[Path]] = {}
    for folder in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
        files = [folder / f"{split}.jsonl" for split in SPLITS if (folder / f"{split}.jsonl").is_file()]
        if files:
            groups[folder] = files
    if not groups:
        raise M2VError(f"{path}: no manifest (<split>.jsonl) here or in its sub-folders; run `m2v-bench prepare`")
    return groups


PROBE_VERSION = 1
"""Bump when what a probe checks changes: cached probe results of older versions are then not used."""


def _probe_media(record: Record, manifest: Path, deep: bool) -> tuple[str, str] | None:
    """(kind, message) for a problem of the media file itself, None when it decodes."""
    path = record.media_path(manifest.parent)
    if path is None:
        return "missing-media", "no media file recorded (media is null); add the file and prepare again"
    suffix = path.suffix.lower()
    if (record.modality == "video" and suffix in IMAGE_EXTENSIONS) or (
        record.modality == "image" and suffix in VIDEO_EXTENSIONS
    ):
        return "wrong-modality", f"{path}: a {suffix} file in a modality '{record.modality}' record; fix the modality"
    try:
        if record.modality == "video":
            probe_video(path, deep=deep)
        else:
            probe_image(path)
    except MediaError as exc:
        return exc.reason, str(exc)
    return None


def media_problems(
    records: list[Record], manifest: Path, deep: bool = False, progress: bool = False, cached: bool = False
) -> list[tuple[Record, str, str]]:
    """(record, kind, message) for every record whose media cannot be used, probing in parallel threads (PyAV and
    Pillow release the GIL while decoding). ``cached=True`` reuses the results of earlier probes of the same,
    unchanged files (:mod:`m2v_bench.stat_cache`; the lmms-eval tasks probe before every run)."""

    def probe(record: Record) -> tuple[str, str] | None:
        return _probe_media(record, manifest, deep)

    if cached:
        cache = FileResultCache(f"media-probe-v{PROBE_VERSION}-{'deep' if deep else 'quick'}", manifest)
        results = cache.map(probe, records, lambda record: record.media_path(manifest.parent))
    else:
        with ThreadPoolExecutor(max_workers=available_cores()) as pool:
            desc = f"media {manifest.parent.name}"
            results = list(tqdm(pool.map(probe, records), total=len(records), desc=desc, unit="file",
                                disable=not progress))  # fmt: skip
    problems = []
    for record, problem in zip(records, results, strict=True):
        if problem is None and record.frames_dir is not None and not Path(manifest.parent, record.frames_dir).is_dir():
            problem = ("missing-frames", f"frames folder {record.frames_dir} does not exist")
        if problem is not None:
            problems.append((record, *problem))
    return problems


def _expected_for_folder(folder: Path) -> dict[str, str]:
    """What the records of a dataset folder must say: a registered dataset's folder (``fhm/``) holds that dataset in
    its label space and modality; ``<meme>_aligned_with_<target>/`` holds memes in the target's label space."""
    name = folder.name
    if name in DATASETS:
        spec = DATASETS[name]
        return {"dataset": name, "label_space": spec.label_space_name, "modality": spec.modality}
    aligned = parse_aligned_name(name)
    if aligned is not None:
        target = aligned[1]
        return {"dataset": name, "label_space": DATASETS[target].label_space_name, "modality": "image"}
    return {}


def _misplaced(record: Record, manifest: Path, expected: dict[str, str]) -> list[str]:
    problems = []
    if manifest.stem in SPLITS and record.split != manifest.stem:
        problems.append(f"split '{record.split}' in {manifest.name}; a record's split must match its file")
    for key, value in expected.items():
        if getattr(record, key) != value:
            problems.append(
                f"{key} '{getattr(record, key)}' in the folder {manifest.parent.name}/, which holds {key} '{value}'; "
                "prepare it into its own folder"
            )
    return problems


def _known_leak(datasets: set[str], sample_id: str) -> KnownLeak | None:
    specs = [DATASETS[name] for name in datasets if name in DATASETS]
    return next((leak for spec in specs if (leak := spec.known_leak(sample_id))), None)


def validate(path: Path, check_media: bool = True, deep: bool = False, progress: bool = True) -> ValidationReport:
    report = ValidationReport()
    for folder, files in find_manifests(path).items():
        _validate_group(report, folder, files, check_media, deep, progress)
    return report


def _validate_group(
    report: ValidationReport, folder: Path, files: list[Path], check_media: bool, deep: bool, progress: bool
) -> None:
    located: list[tuple[Record, Path, str]] = []  # record, manifest, file:line
    expected = _expected_for_folder(folder)
    for manifest in files:
        try:
            records = [
                (record_from_json(obj, where), where)
                for where, obj in read_jsonl(manifest, ManifestError, "manifest record")
            ]
        except ManifestError as exc:
            report.issues.append(Issue(ERROR, "bad-manifest", str(manifest), None, str(exc)))
            continue
        if not records:
            report.issues.append(
                Issue(ERROR, "empty-manifest", str(manifest), None, "no record; prepare again or remove the file")
            )
        for record, where in records:
            located.append((record, manifest, where))
            for problem in _misplaced(record, manifest, expected):
                report.issues.append(Issue(ERROR, "wrong-folder", where, record.id, problem))

    splits_of: dict[str, dict[str, str]] = defaultdict(dict)  # id -> split -> where
    for record, _manifest, where in located:
        report.counts[(folder.name, record.split, record.label)] += 1
        space = LABEL_SPACES[record.label_space]
        if record.label not in (0, 1):
            report.issues.append(
                Issue(
                    ERROR,
                    "bad-label",
                    where,
                    record.id,
                    f"label {record.label} is outside the '{space.name}' label space "
                    f"(0 = {space.negative}, 1 = {space.positive})",
                )
            )
        if not record.text.strip():
            report.issues.append(Issue(WARNING, "empty-text", where, record.id, "text is empty"))
        seen = splits_of[record.id]
        if record.split in seen:
            report.issues.append(
                Issue(
                    ERROR,
                    "duplicate-id",
                    where,
                    record.id,
                    f"id appears twice in {record.split} (first at {seen[record.split]})",
                )
            )
        else:
            seen[record.split] = where
    datasets = {record.dataset for record, _manifest, _where in located}
    for sample_id, splits in splits_of.items():
        if len(splits) > 1:
            places = ", ".join(f"{split} ({where})" for split, where in splits.items())
            leak = _known_leak(datasets, sample_id)
            if leak is not None:
                report.issues.append(
                    Issue(
                        WARNING,
                        "known-leak",
                        next(iter(splits.values())),
                        sample_id,
                        f"in {len(splits)} splits: {places}. A known upstream leak ({leak.release}); kept because "
                        f"{leak.why_kept}",
                    )
                )
                continue
            report.issues.append(
                Issue(
                    ERROR,
                    "split-leak",
                    next(iter(splits.values())),
                    sample_id,
                    f"the same id is in {len(splits)} splits: {places}; remove it from all but one",
                )
            )
    if not check_media:
        return
    for manifest in files:
        entries = [(record, where) for record, m, where in located if m == manifest]
        problems = media_problems([record for record, _ in entries], manifest, deep, progress)
        where_of = {id(record): where for record, where in entries}
        for record, kind, message in problems:
            report.issues.append(Issue(ERROR, kind, where_of[id(record)], record.id, message))


# The `m2v-bench validate` command.


def _summary_table(report) -> str:
    rows: dict[tuple[str, str], list[int]] = {}
    for (dataset, split, label), n in report.counts.items():
        row = rows.setdefault((dataset, split), [0, 0, 0])
        if label in (0, 1):
            row[label] += n
        else:
            row[2] += n
    per_sample: dict[tuple[str, str], list[int]] = {}
    for issue in report.issues:
        dataset = Path(issue.where.split(":")[0]).parent.name
        split = Path(issue.where.split(":")[0]).stem
        per_sample.setdefault((dataset, split), [0, 0])[0 if issue.severity == "error" else 1] += 1
    writer = MarkdownTableWriter(
        headers=["dataset", "split", "samples", "label 0", "label 1", "other label", "errors", "warnings"],
        value_matrix=[
            [d, s, sum(c), c[0], c[1], c[2], *per_sample.get((d, s), [0, 0])] for (d, s), c in sorted(rows.items())
        ],
        margin=1,
    )
    return writer.dumps()


def cmd_validate(args: argparse.Namespace) -> int:
    report = validate(args.path, check_media=not args.no_media, deep=args.deep, progress=not args.quiet)
    shown: dict[str, int] = {}
    for issue in report.issues:
        shown[issue.kind] = shown.get(issue.kind, 0) + 1
        if shown[issue.kind] <= args.max_per_kind:
            print(issue)
    hidden = {kind: n - args.max_per_kind for kind, n in shown.items() if n > args.max_per_kind}
    for kind, n in hidden.items():
        print(
            f"... {n} more {kind} issue(s)" + (f" (all in {args.report})" if args.report else " (use --report FILE)")
        )
    print(_summary_table(report))
    if args.report:
        atomic_write_text(args.report, json.dumps(report.to_json(), indent=2) + "\n", check_json)
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s): {'FAILED' if failed else 'OK'}")
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check prepared manifests and their media",
        description="Check manifests: ids, leaks, labels, texts, media. Exit 1 on errors.",
    )
    p.add_argument("path", type=Path, help="a prepared folder, one dataset's folder or one .jsonl manifest")
    p.add_argument("--no-media", action="store_true", help="skip the media checks (text-only manifests)")
    p.add_argument("--deep", action="store_true", help="decode every video frame instead of first + last second")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")
    p.add_argument("--report", type=Path, default=None, help="write every issue and the counts as JSON")
    p.add_argument("--max-per-kind", type=non_negative_int, default=20, help="issues printed per kind (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_validate)
