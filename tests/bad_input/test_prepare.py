"""Bad input to ``m2v-bench prepare`` (FHM, MHC, HateMM, MAMI and the paper's CSV), and the manifest writer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from m2v_bench.cli import main
from m2v_bench.errors import M2VError

from .harness import (
    LATIN1,
    Case,
    cases,
    check,
    fhm_line,
    fhm_raw,
    png,
    prep,
    record,
    snapshot,
    utf16,
    write,
)


def fhm_bad_line(case_id: str, line, names=("train.jsonl:3",)) -> Case:
    def build(w):
        rows = [fhm_line(0), fhm_line(1), line, fhm_line(3)]
        return prep("fhm", fhm_raw(w, train=rows), w), [w / "fhm_raw" / "train.jsonl", *names]

    return Case(f"fhm-{case_id}", build)


def fhm_bad_id(case_id: str, value, sample: str) -> Case:
    def build(w):
        return prep("fhm", fhm_raw(w, train=[fhm_line(0), fhm_line(1, id=value)]), w), [sample]

    return Case(f"fhm-id-{case_id}", build)


def fhm_bytes(case_id: str, data: bytes, names=()) -> Case:
    def build(w):
        root = fhm_raw(w)
        write(root / "train.jsonl", data)
        return prep("fhm", root, w), [root / "train.jsonl", *names]

    return Case(f"fhm-{case_id}", build)


MHC_HEADER = "Video_ID\tMajority_Voting\tLabel\tTarget_Victim\tComponent\tDuration\n"


def mhc_raw(w: Path, train_rows: str | None = None, texts=None) -> Path:
    root = w / "mhc_raw"
    ann = root / "English_data" / "annotation"
    splits = {"train": ["a1", "a2", "a3"], "valid": ["b1"], "test": ["c1"]}
    for split, ids in splits.items():
        rows = "".join(f"{i}\t{'Offensive' if n % 2 else 'Normal'}\t0\t[]\t[]\t10\n" for n, i in enumerate(ids))
        write(ann / f"{split}.tsv", MHC_HEADER + (train_rows if split == "train" and train_rows is not None else rows))
    if texts is None:
        texts = json.dumps({i: {"title": "", "description": "", "transcript": f"words {i}"} for v in splits.values()
                            for i in v})  # fmt: skip
    write(root / "English_data" / "text.json", texts)
    return root


def mhc_case(case_id: str, names: Callable[[Path], list], **raw) -> Case:
    def build(w):
        root = mhc_raw(w, **raw)
        return prep("mhc", root, w, "--table", "official"), names(root)

    return Case(f"mhc-{case_id}", build)


def _text_json(root: Path) -> list:
    return [root / "English_data" / "text.json"]


def _train_tsv(line: int | None = None) -> Callable[[Path], list]:
    def names(root):
        path = root / "English_data" / "annotation" / "train.tsv"
        return [f"{path}:{line}" if line else path]

    return names


HATEMM_TABLE = "id,text,type,label\nhate_video_1,words one,train,1\nnon_hate_video_1,words two,test,0\n"


def hatemm_raw(w: Path, annotation: str | bytes | None = None, table: str | bytes | None = None) -> tuple[Path, Path]:
    root = w / "hatemm_raw"
    default = "video_file_name,label\nhate_video_1.mp4,Hate\nnon_hate_video_1.mp4,Non Hate\n"
    write(root / "HateMM_annotation.csv", annotation if annotation is not None else default)
    return root, write(w / "table.csv", table if table is not None else HATEMM_TABLE)


def hatemm_case(case_id: str, names: Callable[[Path, Path], list], **raw) -> Case:
    def build(w):
        root, table = hatemm_raw(w, **raw)
        return prep("hatemm", root, w, "--table", table), names(root, table)

    return Case(f"hatemm-{case_id}", build)


MAMI_COLUMNS = "file_name\tmisogynous\tshaming\tstereotype\tobjectification\tviolence\tText Transcription\n"


def mami_raw(w: Path, training: str | bytes | None = None, test: str | bytes | None = None,
             labels: str | bytes | None = None) -> Path:  # fmt: skip
    root = w / "mami_raw"
    for name in ("1.jpg", "2.jpg"):
        png(root / "TRAINING" / name)
    png(root / "test" / "3.jpg")
    default = MAMI_COLUMNS + "1.jpg\t1\t0\t0\t1\t0\tsome text\n2.jpg\t0\t0\t0\t0\t0\tother text\n"
    write(root / "TRAINING" / "training.csv", training if training is not None else default)
    write(
        root / "test" / "Test.csv", test if test is not None else "file_name\tText Transcription\n3.jpg\ttest text\n"
    )
    write(root / "test_labels.txt", labels if labels is not None else "3.jpg\t1\t0\t0\t0\t1\n")
    return root


def mami_case(case_id: str, names: Callable[[Path], list], **raw) -> Case:
    def build(w):
        root = mami_raw(w, **raw)
        return prep("mami", root, w), names(root)

    return Case(f"mami-{case_id}", build)


def _training_csv(line: int | None = None):
    def names(root):
        path = root / "TRAINING" / "training.csv"
        return [f"{path}:{line}" if line else path]

    return names


def paper_case(case_id: str, csv_text: str | bytes, names: Callable[[Path], list]) -> Case:
    def build(w):
        path = write(w / "paper" / "mhc.csv", csv_text)
        return prep("mhc", path, w, "--format", "paper"), names(path)

    return Case(f"paper-{case_id}", build)


PAPER_HEADER = "id,video,frames,image,audio,text,type,label\n"


def _prepared_before(w: Path) -> Path:
    """An earlier, good prepare into the same --out: a failed prepare must leave it as it was."""
    good = w / "good_raw"
    fhm_raw(good)
    assert main(["prepare", "fhm", "--root", str(good / "fhm_raw"), "--out", str(w / "out")]) == 0
    return w / "out"


def _over_existing(w: Path):
    _prepared_before(w)
    return prep("fhm", fhm_raw(w, train=[fhm_line(0), fhm_line(1, label=True)]), w), ["train.jsonl:2"]


def _out_is_a_file(w: Path):
    write(w / "out", "not a folder")
    return prep("fhm", fhm_raw(w), w), [w / "out"]


def _root_file(w: Path):
    return prep("fhm", write(w / "raw.txt", "x"), w), [w / "raw.txt"]


def _train_is_a_folder(w: Path):
    root = fhm_raw(w)
    (root / "dev_seen.jsonl").unlink()
    (root / "dev_seen.jsonl").mkdir()
    (root / "dev_seen.jsonl" / "x").write_text("x")
    return prep("fhm", root, w), [root / "dev_seen.jsonl"]


def _packed(w: Path):
    root = fhm_raw(w)
    for path in (root / "img").iterdir():
        path.unlink()
    (root / "img").rmdir()
    write(root / "img.tar.gz", b"\x1f\x8b")
    return prep("fhm", root, w), [root / "img.tar.gz"]


def _symlinked_train_to_nowhere(w: Path):
    root = fhm_raw(w)
    (root / "train.jsonl").unlink()
    (root / "train.jsonl").symlink_to(w / "nowhere.jsonl")
    return prep("fhm", root, w), [root]


def _symlinked_train_to_binary(w: Path):
    root = fhm_raw(w)
    (root / "train.jsonl").unlink()
    (root / "train.jsonl").symlink_to(png(w / "picture.png"))
    return prep("fhm", root, w), [root / "train.jsonl"]


def _all_empty(w: Path):
    return prep("fhm", fhm_raw(w, train=[], dev=[], test=[]), w), [w / "fhm_raw"]


PREPARE = [
    Case("fhm-control", lambda w: (prep("fhm", fhm_raw(w), w), []), code=0),
    fhm_bad_line("label-true", fhm_line(2, label=True)),
    fhm_bad_line("label-float", fhm_line(2, label=1.0)),
    fhm_bad_line("label-string", fhm_line(2, label="1")),
    fhm_bad_line("label-2", fhm_line(2, label=2)),
    fhm_bad_line("label-null", fhm_line(2, label=None)),
    fhm_bad_line("label-minus-1", fhm_line(2, label=-1)),
    fhm_bad_line("text-null", fhm_line(2, text=None)),
    fhm_bad_line("text-number", fhm_line(2, text=5)),
    fhm_bad_line("text-list", fhm_line(2, text=["a"])),
    fhm_bad_line("img-null", fhm_line(2, img=None)),
    fhm_bad_line("id-empty", fhm_line(2, id="")),
    fhm_bad_line("id-null", fhm_line(2, id=None)),
    fhm_bad_line("id-list", fhm_line(2, id=[1])),
    fhm_bad_line("id-bool", fhm_line(2, id=True)),
    fhm_bad_line("missing-label", {k: v for k, v in fhm_line(2).items() if k != "label"}),
    fhm_bad_line("missing-img", {k: v for k, v in fhm_line(2).items() if k != "img"}),
    fhm_bad_line("missing-id", {k: v for k, v in fhm_line(2).items() if k != "id"}),
    fhm_bad_line("not-json", '{"id": 2, "img": "img/00002.png",'),
    fhm_bad_line("json-list", "[1, 2, 3]"),
    fhm_bad_line("json-string", '"a meme"'),
    fhm_bad_line("deeply-nested", "[" * 100000 + "]" * 100000),
    fhm_bad_line("nan-label", '{"id": 2, "img": "img/00002.png", "label": NaN, "text": "x"}'),
    fhm_bad_id("dotdot", "../../etc/passwd", "'../../etc/passwd'"),
    fhm_bad_id("slash", "a/b", "'a/b'"),
    fhm_bad_id("absolute", "/etc/passwd", "'/etc/passwd'"),
    fhm_bad_id("backslash", "a\\b", "train sample 2"),
    fhm_bad_id("nul", "a\x00b", "train sample 2"),
    fhm_bad_id("dot", "..", "train sample 2"),
    fhm_bad_id("spaces", "   ", "train sample 2"),
    fhm_bad_id("newline", "a\nb", "train sample 2"),
    Case(
        "fhm-duplicate-id",
        lambda w: (prep("fhm", fhm_raw(w, train=[fhm_line(0), fhm_line(1), fhm_line(0)]), w), ["'0'", "twice"]),
    ),  # fmt: skip
    Case(
        "fhm-duplicate-id-as-number-and-string",
        lambda w: (prep("fhm", fhm_raw(w, train=[fhm_line(0), fhm_line(1, id="0")]), w), ["'0'"]),
    ),  # fmt: skip
    fhm_bytes("latin-1", b'{"id": 1, "img": "img/00001.png", "label": 0, "text": "' + LATIN1 + b'"}\n', ["UTF-8"]),
    fhm_bytes("utf-16-bom", utf16(json.dumps(fhm_line(1)) + "\n"), ["UTF-8"]),
    fhm_bytes("binary", bytes(range(256)) * 4),
    fhm_bytes("nul-bytes", b"\x00" * 64 + b"\n"),
    Case("fhm-all-splits-empty", _all_empty),
    Case("fhm-over-an-existing-prepare", _over_existing),
    Case("fhm-out-is-a-file", _out_is_a_file),
    Case("fhm-root-missing", lambda w: (prep("fhm", w / "nowhere", w), [w / "nowhere"])),
    Case("fhm-root-is-a-file", _root_file),
    Case("fhm-split-file-is-a-folder", _train_is_a_folder),
    Case("fhm-images-packed", _packed),
    Case("fhm-train-symlink-dangling", _symlinked_train_to_nowhere),
    Case("fhm-train-symlink-to-png", _symlinked_train_to_binary),
    Case("fhm-with-a-table", lambda w: (prep("fhm", fhm_raw(w), w, "--table", "paper"), ["--table"])),
    Case("fhm-format-paper", lambda w: (prep("fhm", fhm_raw(w), w, "--format", "paper"), ["--format paper"])),
    Case("cross-mhc-root-for-fhm", lambda w: (prep("fhm", mhc_raw(w), w), [w / "mhc_raw"])),
    Case("cross-fhm-root-for-mhc", lambda w: (prep("mhc", fhm_raw(w), w, "--table", "official"), [w / "fhm_raw"])),
    Case("cross-fhm-root-for-mami", lambda w: (prep("mami", fhm_raw(w), w), [w / "fhm_raw"])),
    Case("cross-mami-root-for-hatemm", lambda w: (prep("hatemm", mami_raw(w), w), [w / "mami_raw"])),
    Case(
        "cross-fhm-jsonl-for-mhc-table",
        lambda w: (prep("mhc", mhc_raw(w), w, "--table", fhm_raw(w) / "train.jsonl"), ["train.jsonl"]),
    ),  # fmt: skip
    Case("mhc-control", lambda w: (prep("mhc", mhc_raw(w), w, "--table", "official"), []), code=0),
    mhc_case("text-json-latin-1", _text_json, texts=b'{"a1": {"transcript": "' + LATIN1 + b'"}}'),
    mhc_case("text-json-utf-16", _text_json, texts=utf16('{"a1": {"transcript": "x"}}')),
    mhc_case("text-json-malformed", _text_json, texts='{"a1": {"transcript": "x"'),
    mhc_case("text-json-list", _text_json, texts='[{"a1": "x"}]'),
    mhc_case("text-json-entry-string", _text_json, texts='{"a1": "just a transcript"}'),
    mhc_case("text-json-transcript-number", _text_json, texts='{"a1": {"transcript": 42}}'),
    mhc_case("text-json-empty", _text_json, texts=""),
    mhc_case("tsv-bad-vote", _train_tsv(3), train_rows="a1\tNormal\t0\t[]\t[]\t1\na2\tHatefull\t0\t[]\t[]\t1\n"),
    mhc_case("tsv-surplus-cell", _train_tsv(2), train_rows="a1\tNormal\t0\t[]\t[]\t1\tSURPLUS\n"),
    mhc_case("tsv-missing-cells", _train_tsv(2), train_rows="a1\n"),
    mhc_case("tsv-id-with-slash", lambda root: ["'x/y'"], train_rows="x/y\tNormal\t0\t[]\t[]\t1\n"),
    mhc_case(
        "tsv-duplicate-id",
        lambda root: ["'a1'", "twice"],
        train_rows="a1\tNormal\t0\t[]\t[]\t1\na1\tNormal\t0\t[]\t[]\t1\n",
    ),  # fmt: skip
    Case(
        "mhc-tsv-latin-1-header",
        lambda w: (prep("mhc", _mhc_latin1_header(w), w, "--table", "official"), ["train.tsv"]),
    ),  # fmt: skip
    Case(
        "mhc-tsv-missing-column",
        lambda w: (prep("mhc", _mhc_missing_column(w), w, "--table", "official"), ["train.tsv", "Majority_Voting"]),
    ),  # fmt: skip
    Case(
        "mhc-tsv-missing",
        lambda w: (prep("mhc", _mhc_without(w, "valid.tsv"), w, "--table", "official"), [w / "mhc_raw"]),
    ),  # fmt: skip
    Case("mhc-tsv-empty", lambda w: (prep("mhc", _mhc_empty_tsv(w), w, "--table", "official"), ["train.tsv"])),
    Case("mhc-table-missing-file", lambda w: (prep("mhc", mhc_raw(w), w, "--table", w / "no.csv"), [w / "no.csv"])),
    Case(
        "mhc-official-without-text-json",
        lambda w: (prep("mhc", _mhc_without(w, "../text.json"), w, "--table", "official"), ["text.json"]),
    ),
    Case("hatemm-control", lambda w: (prep("hatemm", hatemm_raw(w)[0], w, "--table", w / "table.csv"), []), code=0),
    hatemm_case(
        "annotation-bad-label",
        lambda r, t: [f"{r / 'HateMM_annotation.csv'}:2"],
        annotation="video_file_name,label\nhate_video_1.mp4,Hateful\n",
    ),  # fmt: skip
    hatemm_case(
        "annotation-surplus-cell",
        lambda r, t: [f"{r / 'HateMM_annotation.csv'}:2"],
        annotation="video_file_name,label\nhate_video_1.mp4,Hate,extra\n",
    ),  # fmt: skip
    hatemm_case(
        "annotation-latin-1",
        lambda r, t: [r / "HateMM_annotation.csv"],
        annotation=b"video_file_name,label\n" + LATIN1 + b".mp4,Hate\n",
    ),  # fmt: skip
    hatemm_case(
        "annotation-missing-column",
        lambda r, t: ["HateMM_annotation.csv", "label"],
        annotation="video_file_name,verdict\nhate_video_1.mp4,Hate\n",
    ),  # fmt: skip
    hatemm_case("annotation-empty", lambda r, t: ["HateMM_annotation.csv"], annotation=""),
    hatemm_case("table-label-2", lambda r, t: [f"{t}:2"], table="id,text,type,label\nhate_video_1,x,train,2\n"),
    hatemm_case("table-label-word", lambda r, t: [f"{t}:2"], table="id,text,type,label\nhate_video_1,x,train,yes\n"),
    hatemm_case("table-split-unknown", lambda r, t: [f"{t}:2"], table="id,text,type,label\nhate_video_1,x,tset,1\n"),
    hatemm_case(
        "table-surplus-cell", lambda r, t: [f"{t}:2"], table="id,text,type,label\nhate_video_1,a, b,train,1\n"
    ),  # fmt: skip
    hatemm_case("table-missing-cell", lambda r, t: [f"{t}:2"], table="id,text,type,label\nhate_video_1,x,train\n"),
    hatemm_case("table-missing-column", lambda r, t: [t, "label"], table="id,text,type\nhate_video_1,x,train\n"),
    hatemm_case("table-utf-16", lambda r, t: [t], table=utf16(HATEMM_TABLE)),
    hatemm_case(
        "table-latin-1", lambda r, t: [t], table=b"id,text,type,label\nhate_video_1," + LATIN1 + b",train,1\n"
    ),
    hatemm_case("table-unclosed-quote", lambda r, t: [t], table='id,text,type,label\nhate_video_1,"x,train,1\n'),
    hatemm_case("table-id-dotdot", lambda r, t: ["'../evil'"], table=HATEMM_TABLE + "../evil,y,test,0\n"),  # fmt: skip
    hatemm_case(
        "table-duplicate-id",
        lambda r, t: ["'hate_video_1'"],
        table="id,text,type,label\nhate_video_1,x,train,1\nhate_video_1,y,train,1\n",
    ),  # fmt: skip
    hatemm_case(
        "table-mixed-up-with-mhc", lambda r, t: [t], table=MHC_HEADER + "a1\tNormal\t0\t[]\t[]\t1\n"
    ),  # fmt: skip
    Case("mami-control", lambda w: (prep("mami", mami_raw(w), w), []), code=0),
    mami_case("training-surplus-cell", _training_csv(2), training=MAMI_COLUMNS + "1.jpg\t1\t0\t0\t1\t0\ttext\tMORE\n"),
    mami_case("training-label-word", _training_csv(2), training=MAMI_COLUMNS + "1.jpg\tyes\t0\t0\t1\t0\ttext\n"),
    mami_case("training-subtype-2", _training_csv(2), training=MAMI_COLUMNS + "1.jpg\t1\t2\t0\t1\t0\ttext\n"),
    mami_case(
        "training-missing-column",
        lambda r: ["training.csv", "Text Transcription"],
        training="file_name\tmisogynous\n1.jpg\t1\n",
    ),  # fmt: skip
    mami_case(
        "training-latin-1", _training_csv(), training=MAMI_COLUMNS.encode() + b"1.jpg\t1\t0\t0\t1\t0\t" + LATIN1
    ),
    mami_case("training-empty", _training_csv(), training=""),
    mami_case(
        "training-nul-in-file-name",
        lambda r: ["train sample 1"],
        training=MAMI_COLUMNS + "a\x00b.jpg\t1\t0\t0\t1\t0\ttext\n",
    ),  # fmt: skip
    mami_case("labels-latin-1", lambda r: [r / "test_labels.txt"], labels=b"3.jpg\t1\t" + LATIN1),
    mami_case("labels-surplus-cells", lambda r: [f"{r / 'test_labels.txt'}:1"], labels="3.jpg\t1\t0\t0\t0\t1\t1\t1\n"),
    mami_case("labels-one-cell", lambda r: [f"{r / 'test_labels.txt'}:1"], labels="3.jpg\n"),
    mami_case("labels-bad-label", lambda r: [f"{r / 'test_labels.txt'}:1"], labels="3.jpg\tmaybe\n"),
    mami_case(
        "labels-missing-for-a-test-image", lambda r: [f"{r / 'test' / 'Test.csv'}:2", "3.jpg"], labels="9.jpg\t1\n"
    ),  # fmt: skip
    paper_case("label-2", PAPER_HEADER + "v1,,,,,text,train,2\n", lambda p: [f"{p}:2"]),
    paper_case("type-unknown", PAPER_HEADER + "v1,,,,,text,holdout,1\n", lambda p: [f"{p}:2"]),
    paper_case("surplus-cell", PAPER_HEADER + "v1,,,,,text,train,1,EXTRA\n", lambda p: [f"{p}:2"]),
    paper_case("nul-in-video-path", PAPER_HEADER + "v1,a\x00b.mp4,,,,text,train,1\n", lambda p: [f"{p}:2"]),
    paper_case("missing-columns", "id,text\nv1,x\n", lambda p: [p]),
    paper_case("utf-16", utf16(PAPER_HEADER + "v1,,,,,text,train,1\n"), lambda p: [p]),
    paper_case(
        "huge-transcript-then-bad-label",
        PAPER_HEADER + "v1,,,,," + "w" * 1_200_000 + ",train,7\n",
        lambda p: [f"{p}:2", "label"],
    ),  # fmt: skip
]


def _mhc_latin1_header(w: Path) -> Path:
    root = mhc_raw(w)
    write(root / "English_data" / "annotation" / "train.tsv", b"Video_ID\tMajority_" + LATIN1 + b"\n")
    return root


def _mhc_missing_column(w: Path) -> Path:
    root = mhc_raw(w)
    write(root / "English_data" / "annotation" / "train.tsv", "Video_ID\tVote\na1\tNormal\n")
    return root


def _mhc_empty_tsv(w: Path) -> Path:
    root = mhc_raw(w)
    write(root / "English_data" / "annotation" / "train.tsv", "")
    return root


def _mhc_without(w: Path, name: str) -> Path:
    root = mhc_raw(w)
    (root / "English_data" / "annotation" / name).resolve().unlink()
    return root


@cases(PREPARE)
def test_prepare(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


def test_a_long_transcript_is_prepared(tmp_path, capsys):
    """1.2 MB in one CSV cell is a real transcript, not an error (Python's csv refuses fields over 128 KiB)."""
    table = write(tmp_path / "t.csv", "id,text,type,label\nhate_video_1," + "w" * 1_200_000 + ",train,1\n")
    root, _ = hatemm_raw(tmp_path)
    assert main(["prepare", "hatemm", "--root", str(root), "--table", str(table), "--out", str(tmp_path / "o")]) == 0
    from m2v_bench.manifest import read_manifest

    assert len(read_manifest(tmp_path / "o" / "hatemm" / "train.jsonl")[0].text) == 1_200_000


# ------------------------------------------------------------------------------------------ kills mid-write


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    from m2v_bench.manifest import Record, read_manifest, write_manifest

    path = tmp_path / "train.jsonl"
    old = [Record(**{**record(0, "train"), "media": None})]
    write_manifest(path, old)
    before = snapshot(tmp_path)

    def records():
        yield Record(**{**record(1, "train"), "media": None})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_manifest(path, records())
    assert snapshot(tmp_path) == before and read_manifest(path) == old


def test_a_record_the_reader_rejects_is_never_written(tmp_path):
    from m2v_bench.manifest import Record, read_manifest, write_manifest

    path = tmp_path / "train.jsonl"
    write_manifest(path, [Record(**record(0, "train"))])
    before = snapshot(tmp_path)
    with pytest.raises(M2VError, match=f"{re.escape(str(path))}:2.*unchanged"):
        write_manifest(path, [Record(**record(1, "train")), Record(**record(2, "train", id="../x"))])
    assert snapshot(tmp_path) == before and [r.id for r in read_manifest(path)] == ["m0"]
