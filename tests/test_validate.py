import json
import shutil

import pytest
from media_fixtures import good_video, text_file, truncated_copy, zero_byte

from m2v_bench.cli import main
from m2v_bench.manifest import Record, read_manifest, write_manifest
from m2v_bench.validate import validate


def video_record(sample_id, split="test", **overrides):
    fields = dict(
        id=sample_id,
        dataset="mhc",
        split=split,
        modality="video",
        text=f"transcript of {sample_id}",
        label=0,
        label_space="offensive",
        source="mhc",
        media=f"videos/{sample_id}.mp4",
    )
    fields.update(overrides)
    return Record(**fields)


@pytest.fixture
def broken_set(tmp_path):
    """A prepared MHC folder with one of every problem the foundation issue names, plus clean samples."""
    folder = tmp_path / "prepared" / "mhc"
    videos = folder / "videos"
    videos.mkdir(parents=True)
    source = good_video(videos / "ok1.mp4")
    shutil.copy(source, videos / "ok2.mp4")
    shutil.copy(source, videos / "empty_text.mp4")
    shutil.copy(source, videos / "label2.mp4")
    zero_byte(videos / "zero.mp4")
    truncated_copy(source, videos / "cut.mp4")
    text_file(videos / "text.mp4")
    write_manifest(folder / "train.jsonl", [video_record("ok1", "train"), video_record("ok2", "train")])
    write_manifest(
        folder / "test.jsonl",
        [
            video_record("zero"),
            video_record("cut"),
            video_record("text"),
            video_record("empty_text", text="  "),
            video_record("label2", label=2),
            video_record("ok2"),  # also in train: a leak
            video_record("nomedia", media=None),
        ],
    )
    return tmp_path / "prepared"


EXPECTED = {
    ("zero", "zero-byte", "error"),
    ("cut", "corrupt-or-truncated", "error"),
    ("text", "not-a-video", "error"),
    ("empty_text", "empty-text", "warning"),
    ("label2", "bad-label", "error"),
    ("ok2", "split-leak", "error"),
    ("nomedia", "missing-media", "error"),
}


def test_validate_reports_each_problem_with_its_id(broken_set):
    report = validate(broken_set, progress=False)
    assert {(i.id, i.kind, i.severity) for i in report.issues} == EXPECTED
    assert report.counts[("mhc", "test", 2)] == 1 and report.counts[("mhc", "train", 0)] == 2


def test_validate_cli_exits_non_zero_and_names_ids(broken_set, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["validate", str(broken_set), "--quiet", "--report", str(report_path)]) == 1
    out = capsys.readouterr().out
    for sample_id, kind, _severity in EXPECTED:
        assert any(sample_id in line and kind in line for line in out.splitlines()), (sample_id, kind)
    assert "label 2 is outside the 'offensive' label space" in out
    assert "6 error(s), 1 warning(s): FAILED" in out
    saved = json.loads(report_path.read_text())
    assert saved["errors"] == 6 and len(saved["issues"]) == 7


def test_clean_set_passes_and_warnings_fail_only_when_strict(tmp_path, capsys):
    folder = tmp_path / "mhc"
    good_video(folder / "videos" / "a.mp4")
    write_manifest(folder / "test.jsonl", [video_record("a", text="")])
    assert main(["validate", str(folder), "--quiet"]) == 0
    assert main(["validate", str(folder / "test.jsonl"), "--quiet", "--strict"]) == 1
    assert "0 error(s), 1 warning(s): OK" in capsys.readouterr().out


def test_duplicate_id_in_one_split(tmp_path):
    folder = tmp_path / "mhc"
    write_manifest(folder / "train.jsonl", [video_record("a", "train"), video_record("a", "train")])
    report = validate(folder, check_media=False, progress=False)
    assert [(i.kind, i.id) for i in report.errors] == [("duplicate-id", "a")]
    assert f"{folder / 'train.jsonl'}:2" in report.errors[0].where


def test_malformed_manifest_is_an_error_not_a_crash(tmp_path):
    folder = tmp_path / "mhc"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"id": "x"}\n')
    report = validate(folder, progress=False)
    assert [i.kind for i in report.errors] == ["bad-manifest"]
    assert "missing field(s)" in report.errors[0].message


def test_nothing_to_validate_is_a_clear_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert "no manifest" in capsys.readouterr().err


def test_manifest_round_trip_keeps_relative_media(broken_set):
    records = read_manifest(broken_set / "mhc" / "train.jsonl")
    assert records[0].media_path(broken_set / "mhc").is_file()
