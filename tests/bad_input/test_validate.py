"""Bad input to ``m2v-bench validate``: manifests, records and media (exit 1), and its arguments (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from m2v_bench.cli import main

from .harness import (
    LATIN1,
    Case,
    bomb_png,
    cases,
    check,
    png,
    record,
    truncated_png,
    utf16,
    write,
    write_lines,
)


def prepared(w: Path, folder: str = "fhm") -> Path:
    d = w / "data" / folder
    for i in range(4):
        png(d / "img" / f"{i}.png")
    write_lines(d / "train.jsonl", [record(0, "train"), record(1, "train")])
    write_lines(d / "test.jsonl", [record(2, "test"), record(3, "test")])
    return d


def validate(w: Path) -> list:
    return ["validate", w / "data", "--quiet"]


def bad_record(case_id: str, split: str, line, names: tuple = ()) -> Case:
    """Line 2 of <split>.jsonl replaced."""

    def build(w):
        d = prepared(w)
        rows = [record(0 if split == "train" else 2, split), line]
        write_lines(d / f"{split}.jsonl", rows)
        return validate(w), [f"{d / f'{split}.jsonl'}:2", *names]

    return Case(f"{split}-{case_id}", build, code=1)


def bad_media(case_id: str, make: Callable[[Path], object], kind: str, modality: str = "image") -> Case:
    def build(w):
        d = prepared(w)
        (d / "img" / "2.png").unlink()
        make(d / "img" / "2.png")
        if modality != "image":
            write_lines(d / "test.jsonl", [record(2, "test", modality=modality), record(3, "test")])
        return validate(w), [f"{d / 'test.jsonl'}:1", "[m2]", kind]

    return Case(f"media-{case_id}", build, code=1)


def bad_manifest_bytes(case_id: str, data: bytes) -> Case:
    def build(w):
        d = prepared(w)
        write(d / "test.jsonl", data)
        return validate(w), [d / "test.jsonl", "bad-manifest"]

    return Case(f"bytes-{case_id}", build, code=1)


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "gone.png")


def _loop(path: Path) -> None:
    path.symlink_to(path)


def _folder(path: Path) -> None:
    path.mkdir()


def _mp4_named_png(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)


def _link_to_etc(path: Path) -> None:
    path.symlink_to("/etc/hostname" if Path("/etc/hostname").exists() else "/etc/passwd")


def _empty_test(w: Path):
    d = prepared(w)
    write(d / "test.jsonl", "")
    return validate(w), [d / "test.jsonl", "empty-manifest"]


def _blank_test(w: Path):
    d = prepared(w)
    write(d / "test.jsonl", "\n\n   \n")
    return validate(w), [d / "test.jsonl", "empty-manifest"]


def _wrong_folder(w: Path, folder: str, names: list):
    prepared(w, folder)
    return validate(w), names


def _leak(w: Path):
    d = prepared(w)
    write_lines(d / "test.jsonl", [record(2, "test"), record(0, "test")])
    return validate(w), ["split-leak", "[m0]"]


def _duplicate(w: Path):
    d = prepared(w)
    write_lines(d / "train.jsonl", [record(0, "train"), record(0, "train")])
    return validate(w), [f"{d / 'train.jsonl'}:2", "duplicate-id", "[m0]"]


def _report_to_folder(w: Path):
    prepared(w)
    (w / "report").mkdir()
    return [*validate(w), "--report", w / "report"], [w / "report"]


def _mhc_records_in_fhm(w: Path):
    d = prepared(w)
    rows = [record(0, "train"), record(1, "train", dataset="mhc", label_space="offensive", source="mhc")]
    write_lines(d / "train.jsonl", rows)
    return validate(w), [f"{d / 'train.jsonl'}:2", "wrong-folder", "[m1]"]


VALIDATE = [
    Case("control", lambda w: (prepared(w) and validate(w), []), code=0),
    Case("empty-test-jsonl", _empty_test, code=1),
    Case("blank-lines-only-test-jsonl", _blank_test, code=1),
    bad_record("split-train", "test", record(3, "train"), ("wrong-folder", "split 'train'")),
    bad_record("split-validation", "train", record(1, "validation"), ("wrong-folder",)),
    bad_record("dataset-mhc", "train", record(1, "train", dataset="mhc"), ("dataset 'mhc'",)),
    bad_record("dataset-aligned", "train", record(1, "train", dataset="fhm_aligned_with_mhc"), ("wrong-folder",)),
    bad_record("label-space-offensive", "train", record(1, "train", label_space="offensive"), ("label_space",)),
    bad_record("label-space-misogynous", "test", record(3, "test", label_space="misogynous"), ("label_space",)),
    bad_record("modality-video-on-png", "test", record(3, "test", modality="video"), ("[m3]",)),
    bad_record("id-dotdot", "train", record(1, "train", id="../m1"), ("'../m1'",)),
    bad_record("id-slash", "train", record(1, "train", id="a/m1"), ("'a/m1'",)),
    bad_record("id-absolute", "train", record(1, "train", id="/m1"), ("'/m1'",)),
    bad_record("id-nul", "train", record(1, "train", id="m\x001"), ("id",)),
    bad_record("id-empty", "train", record(1, "train", id=""), ("empty id",)),
    bad_record("id-number", "train", record(1, "train", id=1), ("'id'",)),
    bad_record("label-2", "train", record(1, "train", label=2), ("bad-label", "[m1]")),
    bad_record("label-minus-1", "train", record(1, "train", label=-1), ("bad-label",)),
    bad_record("label-true", "train", record(1, "train", label=True), ("'label'",)),
    bad_record("label-float", "train", record(1, "train", label=1.0), ("'label'",)),
    bad_record("label-string", "train", record(1, "train", label="1"), ("'label'",)),
    bad_record("text-null", "train", record(1, "train", text=None), ("'text'",)),
    bad_record("media-number", "train", record(1, "train", media=5), ("'media'",)),
    bad_record("extra-list", "train", record(1, "train", extra=[]), ("'extra'",)),
    bad_record("unknown-field", "train", record(1, "train", lable=1), ("lable",)),
    bad_record("missing-field", "train", {k: v for k, v in record(1, "train").items() if k != "label"}, ("label",)),
    bad_record("split-unknown", "train", record(1, "dev"), ("split",)),
    bad_record("modality-audio", "train", record(1, "train", modality="audio"), ("modality",)),
    bad_record("label-space-unknown", "train", record(1, "train", label_space="toxic"), ("label_space",)),
    bad_record("not-json", "train", '{"id": "m1",', ("not valid JSON",)),
    bad_record("json-array", "train", "[]", ("JSON object",)),
    bad_record("json-null", "train", "null", ("JSON object",)),
    bad_record("media-missing", "train", record(1, "train", media="img/none.png"), ("[m1]", "missing")),
    bad_record("media-null", "train", record(1, "train", media=None), ("[m1]", "missing-media")),
    bad_record("media-dotdot-outside", "train", record(1, "train", media="../../../../etc/passwd"), ("[m1]",)),
    bad_record("media-nul", "train", record(1, "train", media="img/1\x00.png"), ("[m1]",)),
    bad_record("frames-dir-missing", "train", record(1, "train", frames_dir="frames/m1"), ("missing-frames",)),
    bad_manifest_bytes("latin-1", b'{"id": "' + LATIN1 + b'"}\n'),
    bad_manifest_bytes("utf-16-bom", utf16(json.dumps(record(2, "test")) + "\n")),
    bad_manifest_bytes("binary", bytes(range(256))),
    bad_manifest_bytes("gzip", b"\x1f\x8b\x08\x00" + b"\x00" * 32),
    bad_manifest_bytes("deeply-nested", b"[" * 100000 + b"]" * 100000 + b"\n"),
    bad_media("decompression-bomb", bomb_png, "too-large"),
    bad_media("truncated", truncated_png, "corrupt-or-truncated"),
    bad_media("zero-byte", lambda p: p.write_bytes(b""), "zero-byte"),
    bad_media("text-file", lambda p: p.write_text("hello"), "not-an-image"),
    bad_media("mp4-bytes-named-png", _mp4_named_png, "not-an-image"),
    bad_media("symlink-dangling", _dangling, "missing"),
    bad_media("symlink-loop", _loop, "missing"),
    bad_media("a-folder", _folder, "missing"),
    bad_media("symlink-outside", _link_to_etc, "not-an-image"),
    bad_media("video-modality-png", png, "wrong-modality", modality="video"),
    Case("duplicate-id", _duplicate, code=1),
    Case("split-leak", _leak, code=1),
    Case("mhc-records-in-fhm-folder", _mhc_records_in_fhm, code=1),
    Case(
        "fhm-data-in-mhc-folder", lambda w: _wrong_folder(w, "mhc", ["mhc", "wrong-folder", "dataset 'fhm'"]), code=1
    ),
    Case("fhm-data-in-mami-folder", lambda w: _wrong_folder(w, "mami", ["wrong-folder", "label_space"]), code=1),
    Case(
        "fhm-data-in-aligned-folder",
        lambda w: _wrong_folder(w, "fhm_aligned_with_mhc", ["wrong-folder", "offensive"]),
        code=1,
    ),  # fmt: skip
    Case("path-missing", lambda w: (["validate", w / "nowhere"], [w / "nowhere"])),
    Case("path-empty-folder", lambda w: ((w / "empty").mkdir() or ["validate", w / "empty"], [w / "empty"])),
    Case("report-is-a-folder", _report_to_folder),
    Case("max-per-kind-negative", lambda w: (["validate", w, "--max-per-kind", "-1"], ["--max-per-kind"])),
]


@cases(VALIDATE)
def test_validate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


def test_an_internal_error_keeps_its_traceback(tmp_path, monkeypatch):
    """Only user errors (M2VError) become one line; an OSError that no reader converted is a bug and propagates."""
    from m2v_bench import validate as validate_module

    def broken(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/proc/internal")

    monkeypatch.setattr(validate_module, "validate", broken)
    with pytest.raises(PermissionError):
        main(["validate", str(tmp_path)])
