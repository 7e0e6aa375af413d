"""The paper's released data: bundled tables match it, and its splits come out of `prepare` exactly."""

import csv
from collections import Counter

import pytest

from m2v_bench.cli import main
from m2v_bench.datasets import DATASETS, bundled_paper_table, prepare
from m2v_bench.datasets.common import read_paper_table
from m2v_bench.manifest import read_manifest
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


def test_validate_flags_the_mhc_train_test_leak(reference_dir, tmp_path):
    result = prepare("mhc", reference_dir / "upstream_dataset" / "mhc.csv", fmt="paper")
    from m2v_bench.datasets import write_prepared

    write_prepared(result, tmp_path, "mhc")
    report = validate(tmp_path / "mhc", check_media=False, progress=False)
    leaks = [i for i in report.errors if i.kind == "split-leak"]
    assert [i.id for i in leaks] == ["k9OtaMbK0Ac"]
    assert "train" in leaks[0].message and "test" in leaks[0].message
    assert not [i for i in report.issues if i.kind == "empty-text"]


def test_hatemm_empty_transcripts_are_warnings(reference_dir):
    result = prepare("hatemm", reference_dir / "upstream_dataset", fmt="paper")
    assert sum(1 for r in result.records if not r.text.strip()) == 57
