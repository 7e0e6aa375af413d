"""Training data: which manifests a strategy mixes, and how a record becomes one supervised example.

A strategy differs from another only in its data mixture (the paper's Section 4), as the registry
(:data:`m2v_bench.registry.STRATEGIES`) states it:

=========== =========================================================================================
strategy    training data
=========== =========================================================================================
vid_ft      the target video dataset's train split
om_ft       the meme dataset's train split with its ORIGINAL labels
rm_ft       the meme dataset's train split RE-ANNOTATED to the target's definition
vid_rm_ft   both vid_ft's and rm_ft's data
=========== =========================================================================================

Every example asks the target's question in the target's words (the paper maps meme labels onto the target's label
words too): the prompt of :mod:`m2v_bench.labels`, "video" for videos and "image" for memes, and the answer is the
label word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from m2v_bench.datasets import get_dataset
from m2v_bench.errors import M2VError
from m2v_bench.manifest import Record, read_manifest, split_hash, with_absolute_media
from m2v_bench.registry import aligned_name, check_meme_source, check_target, get_strategy
from m2v_bench.settings import BAD_MEDIA_ENV, bad_media_policy
from m2v_bench.validate import media_problems


@dataclass
class M2VDataArguments:
    """What to train on (parsed by TRL's parser next to SFTConfig and ModelConfig)."""

    strategy: str | None = field(
        default=None,
        metadata={
            "help": "the recipe's strategy (vid_ft, om_ft, rm_ft, vid_rm_ft); a strategy script refuses another"
        },
    )
    target: str = field(default="mhc", metadata={"help": "target video dataset: mhc or hatemm"})
    meme_source: str = field(default="fhm", metadata={"help": "meme dataset for om_ft/rm_ft/vid_rm_ft: fhm or mami"})
    data_dir: str = field(default="data", metadata={"help": "prepared manifests (<data_dir>/<dataset>/train.jsonl)"})
    aligned_dir: str | None = field(
        default=None,
        metadata={"help": "folder of re-annotated meme manifests (<dir>/<meme>_aligned_with_<target>/train.jsonl);"
                  " default: data_dir"},
    )  # fmt: skip
    video_fraction: float = field(default=1.0, metadata={"help": "share of the video train split to use (0, 1]"})
    frames: int | None = field(
        default=None, metadata={"help": "uniform frames per video (default: the family's, the paper's 16)"}
    )
    frame_cache: str | None = field(default=None, metadata={"help": "frame cache folder (epochs 2.. skip decoding)"})


@dataclass(frozen=True)
class Source:
    """One manifest a run trains on, for the provenance."""

    path: str
    records: int
    """Records of the manifest's train split, before anything was dropped."""
    sha256: str
    role: str
    dropped_test_ids: tuple[str, ...] = ()
    """Known upstream leaks (the dataset registry's ``known_leaks``) left out because the test split has them."""


def _load(path: Path, role: str, sources: list[Source], target: str | None = None) -> list[Record]:
    """The train split of a manifest. For the target's own videos (``target``), an id that is also in the test
    split is a known upstream leak, dropped and recorded, or an error."""
    if not path.is_file():
        raise M2VError(f"{path}: missing training manifest ({role}); prepare it (m2v-bench prepare / reannotate)")
    records = [r for r in read_manifest(path) if r.split == "train"]
    if not records:
        raise M2VError(f"{path}: no train-split record")
    dropped: tuple[str, ...] = ()
    if target is not None:
        records, dropped = _without_test_ids(records, path, target)
    sources.append(Source(str(path), len(records) + len(dropped), split_hash(records), role, dropped))
    return with_absolute_media(records, path.parent)


def _without_test_ids(records: list[Record], path: Path, target: str) -> tuple[list[Record], tuple[str, ...]]:
    spec = get_dataset(target)
    test = path.parent / "test.jsonl"
    test_ids = {r.id for r in read_manifest(test)} if test.is_file() else set()
    # a known leak is dropped even when the test manifest is not beside the training one
    overlap = {r.id for r in records if r.id in test_ids or spec.known_leak(r.id)}
    unknown = sorted(i for i in overlap if spec.known_leak(i) is None)
    if unknown:
        raise M2VError(
            f"{path}: {len(unknown)} training id(s) are also in {test} (e.g. {unknown[:3]}): a train/test leak; "
            f"`m2v-bench validate {path.parent}` lists them, fix the split"
        )
    return [r for r in records if r.id not in overlap], tuple(sorted(overlap))


def check_strategy(strategy: str, args: M2VDataArguments):
    """The combinations of strategy, target, meme source and video fraction that make sense; returns the target's
    dataset spec. A video strategy needs a video target; a video fraction needs a strategy that trains on videos."""
    spec = get_strategy(strategy)
    if not spec.trains:
        raise M2VError(f"{strategy} trains nothing (it is the base model): evaluate the base model instead")
    target = check_target(args.target)
    if spec.memes is not None:
        check_meme_source(args.meme_source)
    if not spec.videos and args.video_fraction != 1:
        raise M2VError(
            f"video_fraction {args.video_fraction}: {strategy} trains on no video, so it would be ignored but "
            "recorded; drop the option (it applies to vid_ft and vid_rm_ft)"
        )
    if not 0 < args.video_fraction <= 1:
        raise M2VError(f"video_fraction must be in (0, 1], got {args.video_fraction}")
    return target


def training_records(strategy: str, args: M2VDataArguments, seed: int = 42) -> tuple[list[Record], list[Source]]:
    """The records of a strategy's mixture and the manifests they came from (``seed``: the video_fraction draw)."""
    spec = get_strategy(strategy)
    target = check_strategy(strategy, args)
    data_dir = Path(args.data_dir)
    sources: list[Source] = []
    records: list[Record] = []
    if spec.videos:
        videos = _load(data_dir / args.target / "train.jsonl", "video", sources, target=args.target)
        if args.video_fraction < 1:
            videos = random.Random(seed).sample(videos, max(1, round(len(videos) * args.video_fraction)))
        records += videos
    if spec.memes == "original":
        records += _load(data_dir / args.meme_source / "train.jsonl", "memes, original labels", sources)
    if spec.memes == "reannotated":
        aligned = Path(args.aligned_dir or data_dir) / aligned_name(args.meme_source, args.target) / "train.jsonl"
        memes = _load(aligned, "memes, re-annotated", sources)
        wrong = {r.label_space for r in memes} - {target.label_space_name}
        if wrong:
            raise M2VError(
                f"{aligned}: labels are in {wrong}, not the target's {target.label_space_name!r}; "
                f"re-annotate towards {args.target}"
            )
        records += memes
    missing = [r.id for r in records if r.media is None]
    if missing:
        raise M2VError(f"{len(missing)} training sample(s) have no media (e.g. {missing[:3]}); `m2v-bench validate`")
    return records, sources


def usable_records(records: list[Record], sources: list[Source]) -> tuple[list[Record], list[dict]]:
    """Every training sample's media probed before the model loads, as evaluation probes its test set: unusable
    media stop the run in one line listing them, or, with ``M2V_BAD_MEDIA=invalid``, are left out. Returns the
    records kept and the ones left out ({id, media, problem}: the provenance records them)."""
    policy = bad_media_policy()
    manifest = Path(sources[0].path) if sources else Path("train.jsonl")  # the probe cache's namespace
    problems = media_problems(records, manifest, cached=True)
    if not problems:
        return records, []
    skipped = [{"id": r.id, "media": r.media, "problem": kind} for r, kind, _ in problems]
    if policy == "error":
        listing = "; ".join(f"{s['id']} ({s['problem']}: {s['media']})" for s in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        raise M2VError(
            f"{len(skipped)} of {len(records)} training samples have unusable media, found before the model loads: "
            f"{listing}{more}. Fix them (`m2v-bench validate` reports them), or set {BAD_MEDIA_ENV}=invalid to "
            "train without them"
        )
    bad = {s["id"] for s in skipped}
    return [r for r in records if r.id not in bad], skipped


def to_example(record: Record, target: str) -> dict:
    """A record as one SFT example: the target's prompt and label word (meme labels map onto the target's words)."""
    space = get_dataset(target).label_space
    modality = "video" if record.modality == "video" else "image"
    return {"id": record.id, "media": record.media, "prompt": space.prompt(record.text, modality),
            "answer": space.word(record.label)}  # fmt: skip
