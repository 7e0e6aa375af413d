"""The paper's released data: bundled tables match it, and its splits come out of `prepare` exactly."""

import csv
import dataclasses
import os
from collections import Counter

import numpy as np
import pytest

from m2v_bench.cli import main
from m2v_bench.datasets import DATASETS, bundled_paper_table, prepare, write_prepared
from m2v_bench.datasets.common import read_paper_table
from m2v_bench.errors import M2VError
from m2v_bench.manifest import read_manifest
from m2v_bench.media import write_video
from m2v_bench.validate import validate


@pytest.mark.parametrize("dataset", ["mhc", "hatemm"])
def test_bundled_tables_equal_the_reference(reference_dir, dataset):
    reference = read_paper_table(reference_dir / "upstream_dataset" / f"{dataset}.csv")
    bundled = bundled_paper_table(dataset)
    assert [(r.id, r.split, r.label, r.text) for r in bundled] == [(r.id, r.split, r.label, r.text) for r in reference]


# The order in which the paper's scripts use the demonstrations (FEW_SHOT_LST): k shots = the first k.
PAPER_DEMO_ORDER = {
    "hatemm": [
        "non_hate_video_1",
        "hate_video_67",
        "hate_video_131",
        "non_hate_video_276",
        "hate_video_226",
        "non_hate_video_350",
        "hate_video_307",
        "non_hate_video_418",
    ],
    "mhc": [
        "pQbEa24u-HM",
        "bONmkrUFgNs",
        "0BqXuLbTxks",
        "YLUQBKOOGHc",
        "uAEdVB7e4UM",
        "lUZDahwzuX4",
        "o0AzXXiIRNw",
        "PDIR3yEIS2M",
    ],
}


@pytest.mark.parametrize("dataset", ["mhc", "hatemm"])
def test_bundled_demonstrations_equal_the_reference(reference_dir, dataset):
    with open(reference_dir / "upstream_dataset" / f"{dataset}_demo_description.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    spec = DATASETS[dataset]
    demos = spec.demonstrations()
    assert [d.id for d in demos] == PAPER_DEMO_ORDER[dataset]
    assert sorted((d.id, spec.label_space.word(d.label), d.description, d.text) for d in demos) == sorted(
        (r["id"], r["label"], r["description"], r["text"]) for r in rows
    )
    assert Counter(d.label for d in demos) == {0: 4, 1: 4}


@pytest.mark.parametrize(
    ("dataset", "sizes"),
    [
        ("mhc", {"train": (701, 237), "validation": (100, 35), "test": (200, 67)}),
        ("hatemm", {"train": (762, 292), "validation": (97, 39), "test": (220, 96)}),
    ],
)
def test_paper_csv_gives_the_papers_splits(reference_dir, tmp_path, dataset, sizes, capsys):
    csv_path = reference_dir / "upstream_dataset" / f"{dataset}.csv"
    assert main(["prepare", dataset, "--format", "paper", "--root", str(csv_path), "--out", str(tmp_path)]) == 0
    assert "have no media file" in capsys.readouterr().out  # the authors' disk paths do not exist here
    for split, (total, positive) in sizes.items():
        records = read_manifest(tmp_path / dataset / f"{split}.jsonl")
        assert (len(records), sum(r.label for r in records)) == (total, positive)
        assert all(r.media is None and r.label_space == DATASETS[dataset].label_space_name for r in records)


def test_mhc_known_leak_is_a_warning_and_never_trained_on(reference_dir, tmp_path, capsys):
    """MultiHateClip's release has k9OtaMbK0Ac in train and test, and so has the paper's table: validate warns,
    naming the id and the release, exits 0; the trainers drop it and record that."""
    from m2v_bench.trainers.data import M2VDataArguments, training_records

    media = tmp_path / "videos"
    media.mkdir()
    clip = write_video(tmp_path / "clip.mp4", [np.full((32, 32, 3), 90 + i, np.uint8) for i in range(8)])
    result = prepare("mhc", reference_dir / "upstream_dataset" / "mhc.csv", fmt="paper", media_root=media)
    for sample_id in {r.id for r in result.records}:  # one real clip under every id, so the media checks pass too
        os.link(clip, media / f"{sample_id}.mp4")
    result = prepare("mhc", reference_dir / "upstream_dataset" / "mhc.csv", fmt="paper", media_root=media)
    write_prepared(result, tmp_path / "data", "mhc")

    assert main(["validate", str(tmp_path / "data" / "mhc"), "--quiet"]) == 0
    out = capsys.readouterr().out
    leak_lines = [line for line in out.splitlines() if "known-leak" in line]
    assert len(leak_lines) == 1 and "k9OtaMbK0Ac" in leak_lines[0] and "MultiHateClip" in leak_lines[0]
    assert "split-leak" not in out and "0 error(s)" in out

    records, sources = training_records("vid_ft", M2VDataArguments(target="mhc", data_dir=str(tmp_path / "data")))
    test_ids = {r.id for r in read_manifest(tmp_path / "data" / "mhc" / "test.jsonl")}
    assert len(test_ids) == 200 and not {r.id for r in records} & test_ids
    assert len(records) == 700 and sources[0].records == 701
    assert sources[0].dropped_test_ids == ("k9OtaMbK0Ac",)


def test_another_train_test_leak_stays_an_error(reference_dir, tmp_path):
    from m2v_bench.trainers.data import M2VDataArguments, training_records

    result = prepare("mhc", reference_dir / "upstream_dataset" / "mhc.csv", fmt="paper")
    train_id = next(r.id for r in result.records if r.split == "train" and r.id != "k9OtaMbK0Ac")
    moved = next(r for r in result.records if r.split == "test")
    result.records.append(dataclasses.replace(moved, id=train_id))
    write_prepared(result, tmp_path, "mhc")
    report = validate(tmp_path / "mhc", check_media=False, progress=False)
    assert sorted((i.id, i.kind, i.severity) for i in report.issues if "leak" in i.kind) == sorted(
        [("k9OtaMbK0Ac", "known-leak", "warning"), (train_id, "split-leak", "error")]
    )
    with pytest.raises(M2VError, match=rf"also in .*test.jsonl.*{train_id}.*m2v-bench validate"):
        training_records("vid_ft", M2VDataArguments(target="mhc", data_dir=str(tmp_path)))


def test_hatemm_empty_transcripts_are_warnings(reference_dir):
    result = prepare("hatemm", reference_dir / "upstream_dataset", fmt="paper")
    assert sum(1 for r in result.records if not r.text.strip()) == 57
