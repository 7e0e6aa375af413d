"""The four official release layouts (MultiHateClip, HateMM, FHM, MAMI), the paper's CSV split tables and the
synthetic annotators' answers, written from drawn samples."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import numpy as np

from m2v_bench.media import write_video
from m2v_bench.registry import meme_sources, video_targets
from m2v_bench.sample_data.render import render_meme, render_video_frames
from m2v_bench.sample_data.rule import DEFINITIONS, Sample, SampleDataConfig


def write_annotators(out: Path, samples: dict[str, list[Sample]]) -> None:
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


def write_paper_csv(path: Path, samples: list[Sample], video_paths: dict[str, Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "video", "frames", "image", "audio", "text", "type", "label"])
        for s in samples:
            rel = Path("..") / video_paths[s.id].relative_to(path.parent.parent)
            writer.writerow([s.id, rel.as_posix(), "", "", "", s.text, s.split, s.label])


def write_mhc(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
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
    write_paper_csv(out / "paper" / "mhc.csv", samples, paths)


def write_hatemm(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
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
    write_paper_csv(out / "paper" / "hatemm.csv", samples, paths)


def write_fhm(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
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


def write_mami(out: Path, rng: np.random.Generator, samples: list[Sample], config: SampleDataConfig) -> None:
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
