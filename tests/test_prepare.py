"""Preparers round-trip the synthetic raw layouts (official and paper CSV) back to the generator's truth, and
fail with errors that name the file/line and the fix."""

import json
import shutil
from pathlib import Path

import pytest

from m2v_bench.cli import main
from m2v_bench.datasets import DATASETS, prepare, write_prepared
from m2v_bench.errors import PrepareError
from m2v_bench.manifest import read_manifest, split_hash
from m2v_bench.sample_data import prepare_commands


def truth_of(samples):
    return sorted((s.id, s.split, s.label, s.text) for s in samples)


def records_of(records):
    return sorted((r.id, r.split, r.label, r.text) for r in records)


@pytest.mark.parametrize("dataset", ["mhc", "hatemm", "fhm", "mami"])
def test_official_layout_round_trip(sample_raw, tmp_path, dataset):
    raw, samples = sample_raw
    kwargs = dict(prepare_commands(raw))[dataset]
    result = prepare(dataset, kwargs["root"], table=kwargs.get("table"))
    assert records_of(result.records) == truth_of(samples[dataset])
    assert result.excluded == [] and result.warnings == []
    spec = DATASETS[dataset]
    for record in result.records:
        assert (record.dataset, record.source, record.modality) == (dataset, dataset, spec.modality)
        assert record.label_space == spec.label_space_name
        assert Path(record.media).stem == record.id and Path(record.media).is_file()
    # written manifests resolve media relative to their folder
    paths = write_prepared(result, tmp_path, dataset)
    for split, path in paths.items():
        for record in read_manifest(path):
            assert record.split == split and not Path(record.media).is_absolute()
            assert record.media_path(path.parent).resolve() == next(
                Path(r.media).resolve() for r in result.records if r.id == record.id
            )
    report = json.loads((tmp_path / dataset / "prepare_report.json").read_text())
    assert report["splits"]["test"]["sha256"] == split_hash([r for r in result.records if r.split == "test"])


@pytest.mark.parametrize("dataset", ["mhc", "hatemm"])
def test_paper_csv_round_trip_equals_official(sample_raw, dataset):
    raw, samples = sample_raw
    kwargs = dict(prepare_commands(raw))[dataset]
    official = prepare(dataset, kwargs["root"], table=kwargs["table"])
    paper = prepare(dataset, raw / "paper" / f"{dataset}.csv", fmt="paper")
    assert records_of(paper.records) == records_of(official.records) == truth_of(samples[dataset])
    media = {r.id: Path(r.media).resolve() for r in official.records}
    assert {r.id: Path(r.media).resolve() for r in paper.records} == media


def test_mhc_official_splits_and_transcripts(sample_raw):
    raw, samples = sample_raw
    result = prepare("mhc", raw / "MultiHateClip", table="official")
    assert records_of(result.records) == truth_of(samples["mhc"])
    votes = {r.extra["mhc_label"] for r in result.records}
    assert votes == {"Hateful", "Offensive", "Normal"}
    assert all((r.extra["mhc_label"] != "Normal") == bool(r.label) for r in result.records)


def test_paper_format_finds_media_under_media_root(sample_raw, tmp_path):
    raw, samples = sample_raw
    csv_copy = tmp_path / "elsewhere" / "mhc.csv"
    csv_copy.parent.mkdir()
    shutil.copy(raw / "paper" / "mhc.csv", csv_copy)
    without = prepare("mhc", csv_copy, fmt="paper")
    assert all(r.media is None for r in without.records) and "no media file" in without.warnings[0]
    found = prepare("mhc", csv_copy, fmt="paper", media_root=raw / "MultiHateClip")
    assert all(r.media and Path(r.media).stem == r.id for r in found.records)


def test_synthetic_videos_with_the_papers_table_fail_clearly(sample_raw):
    raw, _ = sample_raw
    with pytest.raises(PrepareError, match="pass --table PATH"):
        prepare("hatemm", raw / "HateMM")


def test_ids_outside_the_table_are_reported_not_dropped_silently(sample_raw, tmp_path):
    raw, samples = sample_raw
    table = tmp_path / "table.csv"
    lines = (raw / "paper" / "hatemm.csv").read_text().splitlines(keepends=True)
    table.write_text("".join(lines[:-3]))  # the table forgets the last 3 videos
    result = prepare("hatemm", raw / "HateMM", table=str(table))
    assert len(result.records) == len(samples["hatemm"]) - 3
    assert len(result.excluded) == 3 and all("not in the split table" in e["reason"] for e in result.excluded)
    assert "3 annotated sample(s) are not in the split table" in result.warnings[0]


def _copy_tree(raw, name, tmp_path):
    return Path(shutil.copytree(raw / name, tmp_path / name))


def test_bad_mhc_vote_names_file_and_line(sample_raw, tmp_path):
    root = _copy_tree(sample_raw[0], "MultiHateClip", tmp_path)
    tsv = root / "English_data" / "annotation" / "valid.tsv"
    lines = tsv.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("Normal", "Toxic").replace("Offensive", "Toxic").replace("Hateful", "Toxic")
    tsv.write_text("".join(lines))
    with pytest.raises(PrepareError, match=rf"{tsv}:3: Majority_Voting must be one of"):
        prepare("mhc", root, table="official")


def test_fhm_line_without_label(sample_raw, tmp_path):
    root = _copy_tree(sample_raw[0], "FHM", tmp_path)
    path = root / "test_seen.jsonl"
    lines = path.read_text().splitlines()
    obj = json.loads(lines[1])
    del obj["label"]
    lines[1] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=rf"{path}:2: missing 'label'"):
        prepare("fhm", root)


def test_mami_test_without_gold_labels(sample_raw, tmp_path):
    root = _copy_tree(sample_raw[0], "MAMI", tmp_path)
    (root / "test_labels.txt").unlink()
    with pytest.raises(PrepareError, match="test_labels.txt"):
        prepare("mami", root)


def test_hatemm_needs_a_table_and_memes_take_none(sample_raw):
    raw, _ = sample_raw
    with pytest.raises(PrepareError, match="HateMM has no official split"):
        prepare("hatemm", raw / "HateMM", table="official")
    with pytest.raises(PrepareError, match="own splits"):
        prepare("fhm", raw / "FHM", table=str(raw / "paper" / "mhc.csv"))


def test_prepare_cli_user_errors_are_one_line(tmp_path, capsys):
    assert main(["prepare", "fhm", "--root", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("m2v-bench: error: --root") and err.count("\n") == 1 and "Traceback" not in err


def test_binary_annotation_file_is_a_clear_error(sample_raw, tmp_path):
    root = _copy_tree(sample_raw[0], "HateMM", tmp_path)
    (root / "HateMM_annotation.csv").write_bytes(b"\xff\xfe\x00binary\x00" * 50)
    with pytest.raises(PrepareError, match="HateMM_annotation.csv:.*not a readable UTF-8 table"):
        prepare("hatemm", root, table=str(sample_raw[0] / "paper" / "hatemm.csv"))


# --- the real releases' variants -----------------------------------------------------------------------------


def _rewrite_mhc_header(root: Path, old: str, new: str) -> None:
    for tsv in (root / "English_data" / "annotation").glob("*.tsv"):
        lines = tsv.read_text().splitlines(keepends=True)
        lines[0] = lines[0].replace(old, new)
        tsv.write_text("".join(lines))


def test_mhc_current_and_first_upload_column_names(sample_raw, tmp_path):
    raw, samples = sample_raw
    table = str(raw / "paper" / "mhc.csv")
    current = prepare("mhc", raw / "MultiHateClip", table=table)  # the sample data write the current names
    hateful = next(r for r in current.records if r.extra["mhc_label"] == "Hateful")
    assert hateful.extra["target_victim"] == ["Zorbian"] and hateful.extra["component"] == []
    assert current.warnings == []

    root = _copy_tree(raw, "MultiHateClip", tmp_path)
    _rewrite_mhc_header(root, "Target_Victim\tComponent", "Target_Victimg\tComponentg")
    first_upload = prepare("mhc", root, table=table)
    assert [r.extra for r in first_upload.records] == [r.extra for r in current.records]
    assert first_upload.warnings == []

    _rewrite_mhc_header(root, "Target_Victimg", "Victims")
    renamed = prepare("mhc", root, table=table)
    assert records_of(renamed.records) == truth_of(samples["mhc"])
    assert all("target_victim" not in r.extra for r in renamed.records)
    warned = [w for w in renamed.warnings if "Target_Victim or Target_Victimg" in w]
    assert len(warned) == 3 and all(".tsv" in w for w in warned)  # one per split file, naming it


def test_yt_dlp_file_names_are_found(sample_raw, tmp_path):
    raw, samples = sample_raw
    root = _copy_tree(raw, "MultiHateClip", tmp_path)
    videos = root / "English_data" / "videos"
    for path in list(videos.glob("*.mp4")):
        path.rename(videos / f"A video title, with [brackets] [{path.stem}].mp4")
    result = prepare("mhc", root, table=str(raw / "paper" / "mhc.csv"))
    assert records_of(result.records) == truth_of(samples["mhc"]) and result.warnings == []
    assert all(Path(r.media).name.endswith(f"[{r.id}].mp4") for r in result.records)


def test_unmatched_video_names_are_explained(sample_raw, tmp_path):
    raw, _ = sample_raw
    root = _copy_tree(raw, "MultiHateClip", tmp_path)
    victim = sorted((root / "English_data" / "videos").glob("*.mp4"))[0]
    renamed = victim.with_name(f"{victim.stem}_720p.mp4")
    victim.rename(renamed)
    result = prepare("mhc", root, table=str(raw / "paper" / "mhc.csv"))
    assert [r.id for r in result.records if r.media is None] == [victim.stem]
    (warning,) = [w for w in result.warnings if "no media file" in w]
    assert "<id>.<ext>" in warning and "[<id>].<ext>" in warning and str(renamed) in warning


def _fhm_phase_one(raw: Path, tmp_path: Path) -> Path:
    root = _copy_tree(raw, "FHM", tmp_path)
    (root / "dev_seen.jsonl").rename(root / "dev.jsonl")
    lines = [json.loads(line) for line in (root / "test_seen.jsonl").read_text().splitlines() if line.strip()]
    (root / "test_seen.jsonl").unlink()
    (root / "test.jsonl").write_text("".join(json.dumps({k: v for k, v in o.items() if k != "label"}) + "\n"
                                             for o in lines))  # fmt: skip
    return root


def test_fhm_phase_one_layout(sample_raw, tmp_path):
    raw, samples = sample_raw
    root = _fhm_phase_one(raw, tmp_path)
    result = prepare("fhm", root)
    expected = [s for s in truth_of(samples["fhm"]) if s[1] != "test"]
    assert records_of(result.records) == expected and {r.split for r in result.records} == {"train", "validation"}
    (warning,) = result.warnings
    assert "test.jsonl has no labels" in warning and "no FHM test split" in warning
    assert main(["prepare", "fhm", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    assert main(["validate", str(tmp_path / "out" / "fhm"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "fhm").glob("*.jsonl")) == ["train.jsonl", "validation.jsonl"]


def test_fhm_images_still_packed(sample_raw, tmp_path, capsys):
    import tarfile

    root = _fhm_phase_one(sample_raw[0], tmp_path)
    with tarfile.open(root / "img.tar.gz", "w:gz") as tar:
        tar.add(root / "img", arcname="img")
    shutil.rmtree(root / "img")
    assert main(["prepare", "fhm", "--root", str(root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "img.tar.gz" in err and "still packed" in err and f"tar -xf {root / 'img.tar.gz'}" in err
    assert not (tmp_path / "out").exists()


def test_mami_gold_labels_with_a_header_line(sample_raw, tmp_path):
    raw, samples = sample_raw
    root = _copy_tree(raw, "MAMI", tmp_path)
    gold = root / "test_labels.txt"
    gold.write_text("file_name\tmisogynous\tshaming\tstereotype\tobjectification\tviolence\n" + gold.read_text())
    result = prepare("mami", root)
    assert records_of(result.records) == truth_of(samples["mami"])
    (warning,) = result.warnings
    assert f"{gold}:1: a header line" in warning
    assert main(["prepare", "mami", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    assert main(["validate", str(tmp_path / "out" / "mami"), "--quiet"]) == 0


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_prepare_help_shows_the_datasets_own_layout_and_source(dataset, capsys):
    with pytest.raises(SystemExit):
        main(["prepare", dataset, "--help"])
    out = capsys.readouterr().out
    spec = DATASETS[dataset]
    assert spec.layout in out.replace("\n", " ") or spec.layout.split(",")[0] in out
    assert "Source:" in out and spec.title in out
    for other in DATASETS.values():
        if other.name != dataset:
            assert other.obtain.splitlines()[0] not in out
