"""Synthetic raw datasets in the official layouts of MHC, HateMM, FHM and MAMI: the embedded default of the
demo and the tests (real mp4 videos written with PyAV, PNG memes with rendered text).

They form a *label-shift benchmark*, so the paper's phenomenon can be reproduced in miniature.

Generative rule
---------------
Every sample carries one **cue**, shown in both modalities: a symbol drawn on the meme / in the video frames,
and a phrase in the meme text / transcript next to one neutral sentence::

    none      no symbol / the neutral sentence only
    hate      red triangle      / a phrase attacking the (fictional) Zorbian group
    insult    orange cross      / a personal insult
    misogyny  purple circle     / a sexist stereotype about women

Neutral distractor shapes (green squares, blue bars) appear in every sample. A dataset's label is positive iff
the sample's cue is in the dataset's definition (:data:`DEFINITIONS`); each split holds 40% positives under its
own dataset's definition (:data:`POSITIVE_RATE`):

    hatemm  "hateful"     = {hate}                 (video definition)
    mhc     "offensive"   = {hate, insult}         (video definition; MHC's 3-way label: Hateful if hate,
                                                    else Offensive if insult, else Normal)
    fhm     "hateful"     = {hate, misogyny}       (the memes' ORIGINAL label: FHM counts attacks on sex)
    mami    "misogynous"  = {misogyny}             (the memes' ORIGINAL label)

So memes re-annotated to a video definition (:func:`label_under`) get different labels than their original
ones: training on original meme labels teaches the wrong cue set (most of all MAMI -> MHC), while the
re-annotated labels follow the video datasets' rule. The cue is in the text as well as in the pixels so that a
model can carry it from memes to videos (the tiny demo models' vision towers are random and frozen; the text is
what their LoRA can learn to read), and the cues' phrases share no word, so the rule is learnable from a hundred
examples. ``truth.jsonl`` in the output lists every sample's cue and its label under every definition;
``annotators/<meme>_<target>.csv`` holds a synthetic annotator's answers under each video definition (the demo's
stand-in for human annotation).
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from m2v_bench.data_dir import SAMPLE_MARKER
from m2v_bench.jsonl import write_jsonl
from m2v_bench.media import write_video
from m2v_bench.registry import meme_sources, video_targets

GENERATOR_VERSION = 4
"""Bump whenever the generated data change (the cached default sample data are keyed by it)."""

CUES = ("none", "hate", "insult", "misogyny")

DEFINITIONS: dict[str, frozenset[str]] = {
    "hatemm": frozenset({"hate"}),
    "mhc": frozenset({"hate", "insult"}),
    "fhm": frozenset({"hate", "misogyny"}),
    "mami": frozenset({"misogyny"}),
}

TEXT_CUES = {
    "hate": ("zorbians are vermin", "drive every zorbian out of town", "zorbians deserve no rights"),
    "insult": ("you absolute clown", "what a pathetic loser", "shut up you idiot"),
    "misogyny": ("women belong in the kitchen", "girls belong at home", "her only value is her looks"),
}
"""Each cue's phrases share no word with another cue's phrases (a model that reads words can tell the cues apart)."""
NEUTRAL_SENTENCES = (
    "the weather is nice today",
    "we went to the park after lunch",
    "this recipe needs three eggs",
    "look at my new bike",
    "the game starts at eight",
    "my cat sleeps all day",
    "traffic was slow this morning",
    "the library opens on sunday",
)
COLOURS = {"hate": (220, 30, 30), "insult": (255, 140, 0), "misogyny": (150, 40, 200)}

POSITIVE_RATE = 0.4
"""Share of positives per split under the dataset's own definition (the real datasets have 34-50%)."""

# Cue probabilities (none, hate, insult, misogyny) per dataset. FHM's memes carry insult and misogyny often: the
# cues on which its original definition and the video datasets' disagree.
CUE_PROBS = {
    "mhc": (0.4, 0.2, 0.2, 0.2),
    "hatemm": (0.4, 0.2, 0.2, 0.2),
    "fhm": (0.3, 0.2, 0.25, 0.25),
    "mami": (0.35, 0.15, 0.15, 0.35),
}


@dataclass(frozen=True)
class SampleDataConfig:
    seed: int = 0
    video_splits: tuple[int, int, int] = (96, 12, 40)
    """train, validation, test videos per video dataset."""
    fhm_splits: tuple[int, int, int] = (128, 16, 32)
    mami_splits: tuple[int, int] = (64, 32)
    """train, test (MAMI has no validation split)."""
    video_size: tuple[int, int] = (128, 96)
    video_frames: int = 24
    fps: int = 8
    image_size: int = 128


@dataclass
class Sample:
    dataset: str
    id: str
    split: str
    cue: str
    text: str
    lead_frames: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> int:
        return self.labels[self.dataset]


def label_under(cue: str, definition: str) -> int:
    """The label of a sample with this cue under a dataset's definition (see module docstring)."""
    return int(cue in DEFINITIONS[definition])


def _draw_cue(rng: np.random.Generator, dataset: str) -> str:
    return str(rng.choice(CUES, p=CUE_PROBS[dataset]))


def _text(rng: np.random.Generator, cue: str) -> str:
    parts = [str(rng.choice(NEUTRAL_SENTENCES))]
    if cue != "none":
        parts.insert(int(rng.integers(0, len(parts) + 1)), str(rng.choice(TEXT_CUES[cue])))
    return " ".join(parts)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth two-colour gradient (grey-level variance well above the keyframe threshold of 100)."""
    a, b = rng.integers(30, 225, size=(2, 3))
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    row = (a[None, None, :] * (1 - t) + b[None, None, :] * t).astype(np.float32)
    return np.repeat(row, height, axis=0)


def _draw_symbol(draw: ImageDraw.ImageDraw, cue: str, cx: float, cy: float, r: float) -> None:
    if cue == "hate":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLOURS[cue])
    elif cue == "insult":
        w = max(2, int(r / 2))
        draw.line([(cx - r, cy - r), (cx + r, cy + r)], fill=COLOURS[cue], width=w)
        draw.line([(cx - r, cy + r), (cx + r, cy - r)], fill=COLOURS[cue], width=w)
    elif cue == "misogyny":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLOURS[cue])


def _draw_distractors(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    for _ in range(2):
        x, y = rng.integers(0, width - 12), rng.integers(0, height - 12)
        draw.rectangle([x, y, x + 10, y + 10], fill=(40, 170, 70))
    x = rng.integers(0, width - 24)
    draw.rectangle([x, height - 8, x + 24, height - 4], fill=(40, 90, 220))


def render_meme(rng: np.random.Generator, sample: Sample, size: int) -> Image.Image:
    image = Image.fromarray(_background(rng, size, size).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    _draw_distractors(draw, rng, size, size)
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    _draw_symbol(draw, sample.cue, cx, cy * 0.8, size * 0.15)
    font = ImageFont.load_default()
    words, lines, line = sample.text.split(), [], ""
    for word in words:  # wrap to the image width
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) > size - 8 and line:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    y = size - 4 - 11 * len(lines[-4:])
    for text_line in lines[-4:]:
        draw.text((4, y), text_line, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        y += 11
    return image


def render_video_frames(rng: np.random.Generator, sample: Sample, config: SampleDataConfig) -> list[np.ndarray]:
    """Black lead-in frames (a keyframe sampler must skip them), then the scene: background, distractors and
    the cue symbol drifting across the frame."""
    width, height = config.video_size
    background = Image.fromarray(_background(rng, width, height).astype(np.uint8))
    _draw_distractors(ImageDraw.Draw(background), rng, width, height)
    start = rng.uniform(0.25, 0.75, size=2) * (width, height)
    velocity = rng.uniform(-1.5, 1.5, size=2)
    frames = []
    for index in range(config.video_frames):
        if index < sample.lead_frames:
            frames.append(np.zeros((height, width, 3), dtype=np.uint8))
            continue
        frame = background.copy()
        radius = height * 0.15
        cx, cy = np.clip(start + velocity * index, radius, (width - radius, height - radius))
        _draw_symbol(ImageDraw.Draw(frame), sample.cue, cx, cy, radius)
        frames.append(np.asarray(frame))
    return frames


def _make_samples(rng: np.random.Generator, dataset: str, splits: dict[str, int], make_id) -> list[Sample]:
    """Each split has round(count * POSITIVE_RATE) positives under the dataset's own definition: a cue is drawn
    from the dataset's cue distribution until the sample has the label its slot asks for."""
    samples = []
    for split, count in splits.items():
        positives = round(count * POSITIVE_RATE)
        slots = [1] * positives + [0] * (count - positives)
        rng.shuffle(slots)
        for wanted in slots:
            cue = _draw_cue(rng, dataset)
            while label_under(cue, dataset) != wanted:
                cue = _draw_cue(rng, dataset)
            sample = Sample(dataset, "", split, cue, _text(rng, cue))
            sample.labels = {name: label_under(cue, name) for name in DEFINITIONS}
            sample.id = make_id(sample)
            samples.append(sample)
    return samples


def _youtube_id(rng: np.random.Generator) -> str:
    alphabet = list(string.ascii_letters + string.digits + "-_")
    return "".join(rng.choice(alphabet, size=11))


def make_sample_data(out: Path, config: SampleDataConfig = SampleDataConfig()) -> dict[str, list[Sample]]:
    """Write the four raw datasets, paper-format CSVs for the video datasets, ``truth.jsonl`` and a README
    into ``out`` (replacing earlier sample data there). Returns the samples per dataset."""
    rng = np.random.default_rng(config.seed)
    out = Path(out)
    for name in ("MultiHateClip", "HateMM", "FHM", "MAMI", "paper", "annotators"):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    train, val, test = config.video_splits
    video_splits = {"train": train, "validation": val, "test": test}
    counters = {"hate_video": 0, "non_hate_video": 0}

    def hatemm_id(sample: Sample) -> str:
        prefix = "hate_video" if sample.label else "non_hate_video"
        counters[prefix] += 1
        return f"{prefix}_s{counters[prefix]}"  # "s": never the id of a real HateMM video

    samples = {
        "mhc": _make_samples(rng, "mhc", video_splits, lambda s: _youtube_id(rng)),
        "hatemm": _make_samples(rng, "hatemm", video_splits, hatemm_id),
        "fhm": _make_samples(
            rng,
            "fhm",
            dict(zip(("train", "validation", "test"), config.fhm_splits, strict=True)),
            lambda s: str(int(rng.integers(10000, 99999))),
        ),
        "mami": _make_samples(
            rng,
            "mami",
            dict(zip(("train", "test"), config.mami_splits, strict=True)),
            lambda s: str(int(rng.integers(1, 99999))),
        ),
    }
    _dedupe_ids(rng, samples)
    for sample in samples["mhc"] + samples["hatemm"]:
        sample.lead_frames = int(rng.integers(0, 6))
    _write_mhc(out, rng, samples["mhc"], config)
    _write_hatemm(out, rng, samples["hatemm"], config)
    _write_fhm(out, rng, samples["fhm"], config)
    _write_mami(out, rng, samples["mami"], config)
    _write_annotators(out, samples)
    (out / SAMPLE_MARKER).write_text("m2v-bench synthetic sample data: `m2v-bench prepare` marks what it makes here\n")
    write_jsonl(out / "truth.jsonl", (asdict(s) for group in samples.values() for s in group), sort_keys=True)
    (out / "README.md").write_text(
        "# m2v-bench synthetic sample data\n\nGenerated by `m2v-bench make-sample-data` "
        f"(seed {config.seed}, generator version {GENERATOR_VERSION}). Layouts follow each dataset's official "
        "release; `paper/` holds the video datasets' split tables in the paper's CSV format.\n\n## Generative rule\n"
        + __doc__.split("Generative rule\n---------------\n")[1]
    )
    return samples


def _write_annotators(out: Path, samples: dict[str, list[Sample]]) -> None:
    """``annotators/<meme>_<target>.csv``: a synthetic annotator's answer for every meme under a video dataset's
    definition, in the format `m2v-bench reannotate import` reads (it stands in for people in the demo)."""
    folder = out / "annotators"
    folder.mkdir(parents=True)
    memes = [name for name in meme_sources() if name in samples]
    for meme in memes:
        for target in (name for name in video_targets() if name in DEFINITIONS):
            with open(folder / f"{meme}_{target}.csv", "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["id", "human_label", "annotator"])
                writer.writerows([s.id, s.labels[target], "synthetic-annotator"] for s in samples[meme])


def _dedupe_ids(rng: np.random.Generator, samples: dict[str, list[Sample]]) -> None:
    for dataset_samples in samples.values():
        seen: set[str] = set()
        for sample in dataset_samples:
            while sample.id in seen:
                sample.id = f"{sample.id}{int(rng.integers(0, 10))}"
            seen.add(sample.id)


def _write_paper_csv(path: Path, samples: list[Sample], video_paths: dict[str, Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "video", "frames", "image", "audio", "text", "type", "label"])
        for s in samples:
            rel = Path("..") / video_paths[s.id].relative_to(path.parent.parent)
            writer.writerow([s.id, rel.as_posix(), "", "", "", s.text, s.split, s.label])


def _write_mhc(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
    base = out / "MultiHateClip" / "English_data"
    (base / "annotation").mkdir(parents=True)
    paths = {}
    for s in samples:
        paths[s.id] = write_video(base / "videos" / f"{s.id}.mp4", render_video_frames(rng, s, config), config.fps)
    for split, filename in (("train", "train.tsv"), ("validation", "valid.tsv"), ("test", "test.tsv")):
        with open(base / "annotation" / filename, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(["Video_ID", "Majority_Voting", "Label", "Target_Victim", "Component", "Duration"])
            for s in (s for s in samples if s.split == split):
                vote = "Hateful" if s.cue == "hate" else "Offensive" if s.label else "Normal"
                target = "['Zorbian']" if vote == "Hateful" else "[]"
                writer.writerow([s.id, vote, str([vote, vote]), target, "[]", "[]"])
    texts = {
        s.id: {"title": "", "description": "", "transcript": s.text, "label": "", "language_check": True}
        for s in samples
    }
    (base / "text.json").write_text(json.dumps(texts, indent=1))
    _write_paper_csv(out / "paper" / "mhc.csv", samples, paths)


def _write_hatemm(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
    base = out / "HateMM"
    base.mkdir(parents=True)
    paths = {}
    for s in samples:
        folder = "hate_videos" if s.label else "non_hate_videos"
        paths[s.id] = write_video(base / folder / f"{s.id}.mp4", render_video_frames(rng, s, config), config.fps)
    with open(base / "HateMM_annotation.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["video_file_name", "label", "hate_snippet", "target"])
        for s in samples:
            if s.label:
                writer.writerow([f"{s.id}.mp4", "Hate", "[['00:00:00', '00:00:03']]", "Zorbians"])
            else:
                writer.writerow([f"{s.id}.mp4", "Non Hate", "", ""])
    _write_paper_csv(out / "paper" / "hatemm.csv", samples, paths)


def _write_fhm(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
    base = out / "FHM"
    (base / "img").mkdir(parents=True)
    files = {"train": "train.jsonl", "validation": "dev_seen.jsonl", "test": "test_seen.jsonl"}
    with contextlib.ExitStack() as stack:
        handles = {
            split: stack.enter_context(open(base / name, "w", encoding="utf-8")) for split, name in files.items()
        }
        for s in samples:
            render_meme(rng, s, config.image_size).save(base / "img" / f"{s.id}.png")
            line = {"id": int(s.id), "img": f"img/{s.id}.png", "label": s.label, "text": s.text}
            handles[s.split].write(json.dumps(line) + "\n")


def _write_mami(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
    base = out / "MAMI"
    folders = {"train": base / "TRAINING", "test": base / "test"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    subtypes = ["shaming", "stereotype", "objectification", "violence"]
    with (
        open(folders["train"] / "training.csv", "w", encoding="utf-8", newline="") as train_fh,
        open(folders["test"] / "Test.csv", "w", encoding="utf-8", newline="") as test_fh,
        open(base / "test_labels.txt", "w", encoding="utf-8", newline="") as gold_fh,
    ):
        train = csv.writer(train_fh, delimiter="\t", lineterminator="\n")
        test = csv.writer(test_fh, delimiter="\t", lineterminator="\n")
        gold = csv.writer(gold_fh, delimiter="\t", lineterminator="\n")
        train.writerow(["file_name", "misogynous", *subtypes, "Text Transcription"])
        test.writerow(["file_name", "Text Transcription"])
        for s in samples:
            name = f"{s.id}.png"
            render_meme(rng, s, config.image_size).save(folders[s.split] / name)
            flags = [0, s.label, 0, 0]  # stereotype: the only subtype of the synthetic misogyny cue
            if s.split == "train":
                train.writerow([name, s.label, *flags, s.text])
            else:
                test.writerow([name, s.text])
                gold.writerow([name, s.label, *flags])


def prepare_commands(raw: Path) -> list[tuple[str, dict]]:
    """The `m2v-bench prepare` calls that turn the sample data into manifests: the same a user makes on real data
    (the video datasets with their own split tables, since their ids are not the paper's)."""
    return [
        ("mhc", {"root": raw / "MultiHateClip", "table": str(raw / "paper" / "mhc.csv")}),
        ("hatemm", {"root": raw / "HateMM", "table": str(raw / "paper" / "hatemm.csv")}),
        ("fhm", {"root": raw / "FHM"}),
        ("mami", {"root": raw / "MAMI"}),
    ]


def prepare_sample_data(raw: Path, out: Path) -> dict:
    """Prepare every dataset of the sample data in ``raw`` into ``out``; returns the PrepareResult per dataset."""
    from m2v_bench.datasets import prepare, write_prepared

    results = {}
    for name, kwargs in prepare_commands(raw):
        results[name] = prepare(name, kwargs["root"], table=kwargs.get("table"))
        write_prepared(results[name], out, name)
    return results


def default_prepared_dir(cache: Path | None = None) -> Path:
    """The prepared sample data that tasks use with ``M2V_DATA_DIR=sample``, made on first use (seed 0, a few
    seconds) under :func:`m2v_bench.data_dir.cache_home` and reused after."""
    from filelock import FileLock

    from m2v_bench import __version__
    from m2v_bench.data_dir import cache_home

    cache = cache or cache_home()
    root = cache / f"sample-data-{__version__}-v{GENERATOR_VERSION}-seed0"
    done = root / "prepared" / ".complete"
    if done.is_file():
        return root / "prepared"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not done.is_file():
            make_sample_data(root / "raw", SampleDataConfig(seed=0))
            prepare_sample_data(root / "raw", root / "prepared")
            done.touch()
    return root / "prepared"
