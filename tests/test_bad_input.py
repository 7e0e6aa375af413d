"""The bad-input corpus (issue 17): what a hostile or careless user gives every command, generated at test time.

Each case builds a small workspace under ``tmp_path`` (raw datasets, manifests, media, predictions, recipes, ...),
runs the command in-process (``m2v_bench.cli.main`` or the recipe's ``run``) and asserts

- the exit code (2: a user error, 1: ``validate`` found errors);
- one ``error:`` line (no traceback) that names the file, line or sample (the case's ``names``), never ``:0``;
- that no file in the workspace changed or appeared (inputs and outputs, snapshotted before and after).

Case tables are grouped by command: ``PREPARE``, ``VALIDATE``, ``PREDICT``, ``QUEUE``, ``IMPORT``, ``VOTE``, ``STATS``,
``RELEASED``, ``LEADERBOARD``, ``TRAINING``, ``OTHER`` (make-sample-data, make-tiny-model, demo); the frame sampler
and the lmms-eval task functions are library calls (``FRAMES``, ``TASKS``). The tables of the commands that succeed
cheaply (prepare of each dataset, validate, queue, import, vote, stats, released) have a control case (the unmodified
workspace succeeds), so a case fails for its own mutation, not for a broken base.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from m2v_bench.cli import main
from m2v_bench.errors import M2VError

REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------------------------------- harness


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], tuple[list, list]]
    """workspace -> (argv, what the message must name: a file, file:line or sample id)."""
    code: int = 2


def snapshot(root: Path) -> dict[str, str]:
    """Every file (content hash), folder and symlink below root."""
    seen = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                seen[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                seen[key] = "dir"
            else:
                seen[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


_ZERO_LINE = re.compile(r"\.(jsonl|csv|tsv|json|txt|yaml):0\b")


def check(case: Case, tmp_path: Path, capsys, runner: Callable[[list[str]], int] = main) -> str:
    argv, names = case.build(tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    try:
        code = runner([str(a) for a in argv])
    except SystemExit as exc:  # argparse, and the recipes' one-line errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == case.code, f"exit {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert "Traceback" not in out + err
    if case.code == 0:  # a control case: the unmodified workspace is accepted
        return out
    if case.code == 2:
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1, err
        message = lines[0]
    else:
        message = out
    for name in names:
        assert str(name) in message, f"{name!r} not named in: {message}"
    assert not _ZERO_LINE.search(message), message
    assert snapshot(tmp_path) == before, "a file changed or appeared"
    return message


def cases(table: list[Case]):
    return pytest.mark.parametrize("case", table, ids=[c.id for c in table])


# ---------------------------------------------------------------------------------------------------- builders


def png(path: Path, size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 20, 20)).save(path)
    return path


def bomb_png(path: Path) -> Path:
    """A valid PNG header declaring 30000 x 30000 pixels (900 MP, above Pillow's decompression-bomb limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (30000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def truncated_png(path: Path) -> Path:
    png(path, (64, 64))
    Image.effect_noise((64, 64), 80).convert("RGB").save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_lines(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


LATIN1 = "caf\xe9 na\xefve".encode("latin-1")


def utf16(text: str) -> bytes:
    return text.encode("utf-16")  # with its BOM


# ------------------------------------------------------------------------------------------------------ prepare


def fhm_line(i: int, **change) -> dict:
    return {"id": i, "img": f"img/{i:05d}.png", "label": i % 2, "text": f"meme {i}", **change}


def fhm_raw(w: Path, train: list | None = None, dev: list | None = None, test: list | None = None) -> Path:
    root = w / "fhm_raw"
    for i in range(7):
        png(root / "img" / f"{i:05d}.png")
    write_lines(root / "train.jsonl", train if train is not None else [fhm_line(i) for i in range(4)])
    write_lines(root / "dev_seen.jsonl", dev if dev is not None else [fhm_line(4)])
    write_lines(root / "test_seen.jsonl", test if test is not None else [fhm_line(5)])
    return root


def prep(dataset: str, root: Path, w: Path, *extra) -> list:
    return ["prepare", dataset, "--root", root, "--out", w / "out", *extra]


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


# ----------------------------------------------------------------------------------------------------- validate


def record(i: int, split: str, **change) -> dict:
    return {"id": f"m{i}", "dataset": "fhm", "split": split, "modality": "image", "text": f"meme {i}",
            "label": i % 2, "label_space": "hateful", "source": "fhm", "media": f"img/{i}.png", "frames_dir": None,
            "extra": {}, **change}  # fmt: skip


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


# -------------------------------------------------------------------------------------------------- reannotate


def memes(w: Path, rows: list | None = None) -> Path:
    d = w / "memes"
    for i in range(4):
        png(d / "img" / f"{i}.png")
    return write_lines(d / "train.jsonl", rows if rows is not None else [record(i, "train") for i in range(4)])


def predictions(w: Path, target: str = "mhc", rows: list | None = None, name: str = "predictions.jsonl") -> Path:
    default = [{"id": f"m{i}", "prediction": p, "response": "", "target": target} for i, p in enumerate([0, 0, 1, -1])]
    return write_lines(w / name, rows if rows is not None else default)


def queue(w: Path, target: str = "mhc") -> Path:
    from m2v_bench import reannotate as re_
    from m2v_bench.manifest import read_manifest

    items = read_manifest(memes(w))
    preds = re_.read_predictions(predictions(w, target))
    re_.write_queue(re_.conflicts(items, preds), preds, target, w / "queue.csv")
    return w / "queue.csv"


def human(w: Path, rows: list | None = None) -> Path:
    default = [{"id": f"m{i}", "label": 1, "votes": {"a": 1}, "target": "mhc"} for i in (1, 2, 3)]
    return write_lines(w / "human.jsonl", rows if rows is not None else default)


def predict_case(case_id: str, build: Callable[[Path], tuple[list, list]]) -> Case:
    return Case(f"predict-{case_id}", build)


def _predict(w: Path, *extra, memes_path: Path | None = None, out: Path | None = None, target: str = "mhc") -> list:
    return ["reannotate", "predict", "--memes", memes_path or memes(w), "--target", target, "--model", "nowhere-model",
            "--out", out or w / "new_predictions.jsonl", *extra]  # fmt: skip


def _video_memes(w: Path) -> Path:
    return memes(w, [record(i, "train", modality="video", dataset="mhc", label_space="offensive", source="mhc",
                            media=f"img/{i}.png") for i in range(2)])  # fmt: skip


PREDICT = [
    predict_case("batch-size-0", lambda w: (_predict(w, "--batch-size", "0"), ["--batch-size"])),
    predict_case("batch-size-negative", lambda w: (_predict(w, "--batch-size", "-4"), ["--batch-size"])),
    predict_case("batch-size-word", lambda w: (_predict(w, "--batch-size", "eight"), ["--batch-size"])),
    predict_case("shots-negative", lambda w: (_predict(w, "--shots", "-1"), ["--shots"])),
    predict_case("target-fhm", lambda w: (_predict(w, target="fhm"), ["'fhm'"])),
    predict_case("target-unknown", lambda w: (_predict(w, target="mhcc"), ["'mhcc'"])),
    predict_case("memes-missing", lambda w: (_predict(w, memes_path=w / "none.jsonl"), [w / "none.jsonl"])),
    predict_case("memes-are-videos", lambda w: (_predict(w, memes_path=_video_memes(w)), ["train.jsonl"])),
    predict_case("memes-empty", lambda w: (_predict(w, memes_path=write(w / "e.jsonl", "")), [w / "e.jsonl"])),
    predict_case("memes-latin-1", lambda w: (_predict(w, memes_path=write(w / "l.jsonl", LATIN1)), [w / "l.jsonl"])),
    predict_case(
        "memes-already-aligned",
        lambda w: (
            _predict(w, memes_path=memes(w, [record(0, "train", dataset="fhm_aligned_with_mhc")])),
            ["already re-annotated"],
        ),
    ),  # fmt: skip
    predict_case(
        "memes-duplicate-ids",
        lambda w: (_predict(w, memes_path=memes(w, [record(0, "train"), record(0, "train")])), ["[m0]"]),
    ),
    predict_case(
        "out-of-another-target",
        lambda w: (_predict(w, out=predictions(w, "hatemm")), [w / "predictions.jsonl", "'hatemm'"]),
    ),
    predict_case(
        "out-of-other-memes",
        lambda w: (
            _predict(w, out=predictions(w, rows=[{"id": "zz", "prediction": 1, "response": "", "target": "mhc"}])),
            ["'zz'"],
        ),
    ),  # fmt: skip
    predict_case(
        "out-is-a-folder", lambda w: (_predict(w, out=(w / "outdir").mkdir() or w / "outdir"), [w / "outdir"])
    ),  # fmt: skip
    predict_case(
        "out-bad-record",
        lambda w: (_predict(w, out=write_lines(w / "p.jsonl", [{"id": "m0"}])), [f"{w / 'p.jsonl'}:1"]),
    ),  # fmt: skip
    predict_case("model-missing", lambda w: (_predict(w), ["nowhere-model"])),
]


def _queue_args(w: Path, preds: Path | None = None, memes_path: Path | None = None, **out) -> list:
    return ["reannotate", "queue", "--memes", memes_path or memes(w), "--predictions", preds or predictions(w),
            "--out-csv", out.get("csv", w / "out" / "queue.csv"),
            *(["--out-labelstudio", out["ls"]] if "ls" in out else [])]  # fmt: skip


def queue_preds(case_id: str, rows: list | str | bytes, names: Callable[[Path], list]) -> Case:
    def build(w):
        path = write(w / "p.jsonl", rows) if isinstance(rows, (str, bytes)) else write_lines(w / "p.jsonl", rows)
        return _queue_args(w, path), names(w)

    return Case(f"queue-{case_id}", build)


def _p(i, prediction=0, target="mhc", **change):
    return {"id": f"m{i}", "prediction": prediction, "response": "", "target": target, **change}


QUEUE = [
    Case("queue-control", lambda w: (_queue_args(w), []), code=0),
    queue_preds("empty", "", lambda w: [w / "p.jsonl"]),
    queue_preds("missing-memes", [_p(0), _p(1)], lambda w: ["no prediction yet"]),
    queue_preds("ids-of-another-meme-set", [*(_p(i) for i in range(4)), _p(9)], lambda w: [w / "p.jsonl", "'m9'"]),
    queue_preds("mixed-targets", [_p(0), _p(1, target="hatemm")], lambda w: [f"{w / 'p.jsonl'}:2", "'hatemm'"]),
    queue_preds("prediction-2", [_p(0), _p(1, prediction=2)], lambda w: [f"{w / 'p.jsonl'}:2"]),
    queue_preds("prediction-word", [_p(0), _p(1, prediction="yes")], lambda w: [f"{w / 'p.jsonl'}:2"]),
    queue_preds("no-target", [_p(0), {"id": "m1", "prediction": 1, "response": ""}], lambda w: [f"{w / 'p.jsonl'}:2"]),
    queue_preds("two-different-for-one-meme", [_p(0), _p(0, prediction=1)], lambda w: [f"{w / 'p.jsonl'}:2", "m0"]),
    queue_preds("torn-last-line", json.dumps(_p(0)) + "\n" + '{"id": "m1", "pred', lambda w: [w / "p.jsonl"]),
    queue_preds("latin-1", LATIN1 + b"\n", lambda w: [w / "p.jsonl"]),
    queue_preds("utf-16", utf16(json.dumps(_p(0)) + "\n"), lambda w: [w / "p.jsonl"]),
    queue_preds("not-json", "{\n", lambda w: [f"{w / 'p.jsonl'}:1"]),
    Case("queue-predictions-missing", lambda w: (_queue_args(w, w / "none.jsonl"), [w / "none.jsonl"])),
    Case("queue-predictions-folder", lambda w: (_queue_args(w, (w / "pd").mkdir() or w / "pd"), [w / "pd"])),
    Case("queue-memes-missing", lambda w: (_queue_args(w, memes_path=w / "m.jsonl"), [w / "m.jsonl"])),
    Case("queue-memes-videos", lambda w: (_queue_args(w, memes_path=_video_memes(w)), ["train.jsonl"])),
    Case("queue-out-csv-is-a-folder", lambda w: (_queue_args(w, csv=(w / "q").mkdir() or w / "q"), [w / "q"])),
    Case("queue-out-csv-parent-is-a-file", lambda w: (_queue_args(w, csv=write(w / "f", "x") / "q.csv"), [w / "f"])),
    Case(
        "queue-out-labelstudio-is-a-folder", lambda w: (_queue_args(w, ls=(w / "ls").mkdir() or w / "ls"), [w / "ls"])
    ),  # fmt: skip
]


def _import(w: Path, answers: Path, target: str = "mhc", queue_path: Path | None = None) -> list:
    return ["reannotate", "import", answers, "--queue", queue_path or queue(w), "--target", target,
            "--out", w / "out" / "human.jsonl"]  # fmt: skip


def answers_csv(case_id: str, text: str | bytes, names: Callable[[Path], list], target: str = "mhc") -> Case:
    def build(w):
        return _import(w, write(w / "answers.csv", text), target), names(w)

    return Case(f"import-csv-{case_id}", build)


def answers_ls(case_id: str, data, names: Callable[[Path], list]) -> Case:
    def build(w):
        text = data if isinstance(data, (str, bytes)) else json.dumps(data)
        return _import(w, write(w / "export.json", text)), names(w)

    return Case(f"import-labelstudio-{case_id}", build)


def _ls_task(meme="m1", choices=("offensive",), **change):
    result = [{"value": {"choices": list(choices)}}]
    return {"data": {"id": meme}, "annotations": [{"completed_by": 1, "result": result}], **change}


IMPORT = [
    Case(
        "import-control",
        lambda w: (_import(w, write(w / "answers.csv", "id,human_label,annotator\nm1,1,a\n")), []),
        code=0,
    ),  # fmt: skip
    answers_csv("label-2", "id,human_label,annotator\nm1,2,a\n", lambda w: [f"{w / 'answers.csv'}:2", "'2'"]),
    answers_csv("label-yes", "id,human_label,annotator\nm1,yes,a\n", lambda w: [f"{w / 'answers.csv'}:2", "'yes'"]),
    answers_csv(
        "label-of-another-target",
        "id,human_label,annotator\nm1,hateful,a\n",
        lambda w: [f"{w / 'answers.csv'}:2", "'hateful'"],
    ),  # fmt: skip
    answers_csv(
        "label-sentence",
        "id,human_label,annotator\nm1,I think it is offensive,a\n",
        lambda w: [f"{w / 'answers.csv'}:2"],
    ),  # fmt: skip
    answers_csv("unknown-id", "id,human_label,annotator\nm0,1,a\n", lambda w: [f"{w / 'answers.csv'}:2", "'m0'"]),
    answers_csv("id-dotdot", "id,human_label,annotator\n../m1,1,a\n", lambda w: [f"{w / 'answers.csv'}:2"]),
    answers_csv(
        "contradicting-annotator",
        "id,human_label,annotator\nm1,1,a\nm1,0,a\n",
        lambda w: [f"{w / 'answers.csv'}:3", "'a'"],
    ),  # fmt: skip
    answers_csv("surplus-cell", "id,human_label,annotator\nm1,1,a,EXTRA\n", lambda w: [f"{w / 'answers.csv'}:2"]),
    answers_csv("missing-label-column", "id,verdict\nm1,1\n", lambda w: [w / "answers.csv", "human_label"]),
    answers_csv("missing-id-column", "meme,human_label\nm1,1\n", lambda w: [w / "answers.csv", "id"]),
    answers_csv("latin-1", b"id,human_label,annotator\nm1,1," + LATIN1 + b"\n", lambda w: [w / "answers.csv"]),
    answers_csv("utf-16", utf16("id,human_label,annotator\nm1,1,a\n"), lambda w: [w / "answers.csv"]),
    answers_csv("empty", "", lambda w: [w / "answers.csv"]),
    answers_csv("target-fhm", "id,human_label,annotator\nm1,1,a\n", lambda w: ["'fhm'"], target="fhm"),
    answers_ls("malformed", '[{"data": {"id": "m1"}', lambda w: [w / "export.json"]),
    answers_ls("latin-1", b'[{"data": {"id": "' + LATIN1 + b'"}}]', lambda w: [w / "export.json"]),
    answers_ls("an-object", {"tasks": []}, lambda w: [w / "export.json", "list of tasks"]),
    answers_ls("task-is-a-string", ["m1"], lambda w: [f"{w / 'export.json'}: task 1"]),
    answers_ls("no-data", [{"annotations": []}], lambda w: [f"{w / 'export.json'}: task 1"]),
    answers_ls("annotations-not-a-list", [_ls_task(annotations={"a": 1})], lambda w: ["task 1", "m1"]),
    answers_ls("annotation-not-an-object", [_ls_task(annotations=["offensive"])], lambda w: ["task 1", "m1"]),
    answers_ls("result-wrong-shape", [_ls_task(annotations=[{"result": "offensive"}])], lambda w: ["task 1", "m1"]),
    answers_ls("two-choices", [_ls_task(choices=("offensive", "non-offensive"))], lambda w: ["task 1", "m1"]),
    answers_ls("choice-yes", [_ls_task(choices=("yes",))], lambda w: ["task 1", "'yes'"]),
    answers_ls("unknown-meme", [_ls_task(meme="m0")], lambda w: ["task 1", "'m0'"]),
    Case(
        "import-queue-missing",
        lambda w: (_import(w, write(w / "a.csv", "id,label\n"), queue_path=w / "q.csv"), [w / "q.csv"]),
    ),  # fmt: skip
    Case(
        "import-queue-latin-1",
        lambda w: (
            _import(w, write(w / "a.csv", "id,label\n"), queue_path=write(w / "q.csv", b"id\n" + LATIN1)),
            [w / "q.csv"],
        ),
    ),
    Case(
        "import-queue-duplicate-id",
        lambda w: (
            _import(w, write(w / "a.csv", "id,label\n"), queue_path=write(w / "q.csv", "id\nm1\nm1\n")),
            [f"{w / 'q.csv'}:3", "'m1'"],
        ),
    ),  # fmt: skip
    Case("import-answers-missing", lambda w: (_import(w, w / "none.csv"), [w / "none.csv"])),
    Case(
        "import-out-is-a-folder",
        lambda w: (
            [*_import(w, write(w / "a.csv", "id,label\nm1,1\n"))[:-1], (w / "o").mkdir() or w / "o"],
            [w / "o"],
        ),
    ),  # fmt: skip
]


def _vote(w: Path, preds: Path | None = None, human_path: Path | None = None, target: str = "mhc", *extra) -> list:
    human_args = ["--human", human_path] if human_path else []
    return ["reannotate", "vote", "--memes", memes(w), "--predictions", preds or predictions(w), *human_args,
            "--target", target, "--out", w / "out", *extra]  # fmt: skip


def vote_human(case_id: str, rows: list | str | bytes, names: Callable[[Path], list], *extra) -> Case:
    def build(w):
        path = write(w / "h.jsonl", rows) if isinstance(rows, (str, bytes)) else write_lines(w / "h.jsonl", rows)
        return _vote(w, None, path, "mhc", *extra), names(w)

    return Case(f"vote-human-{case_id}", build)


def _h(i, label=1, **change):
    return {"id": f"m{i}", "label": label, "votes": {"a": label}, "target": "mhc", **change}


def _complete_human():
    return [_h(1), _h(2), _h(3)]


VOTE = [
    Case("vote-control", lambda w: (_vote(w, None, human(w)), []), code=0),
    Case(
        "vote-predictions-for-another-target",
        lambda w: (_vote(w, predictions(w, "hatemm"), human(w)), [w / "predictions.jsonl", "'hatemm'"]),
    ),
    Case("vote-target-fhm", lambda w: (_vote(w, None, human(w), "fhm"), ["'fhm'"])),
    Case("vote-target-unknown", lambda w: (_vote(w, None, human(w), "tiktok"), ["'tiktok'"])),
    Case(
        "vote-predictions-for-other-memes",
        lambda w: (_vote(w, predictions(w, rows=[*(_p(i) for i in range(4)), _p(7)]), human(w)), ["'m7'"]),
    ),
    Case(
        "vote-predictions-missing-memes",
        lambda w: (_vote(w, predictions(w, rows=[_p(0)]), human(w)), ["no prediction yet"]),
    ),  # fmt: skip
    Case("vote-unresolved-without-partial", lambda w: (_vote(w), ["3 conflict(s)", "--partial"])),
    Case(
        "vote-partial-nothing-resolved",
        lambda w: (
            _vote(w, predictions(w, rows=[_p(i, 1 - i % 2) for i in range(4)]), None, "mhc", "--partial"),
            [w / "memes" / "train.jsonl", "no meme is resolved"],
        ),
    ),  # fmt: skip
    Case("vote-human-missing-file", lambda w: (_vote(w, None, w / "none.jsonl"), [w / "none.jsonl"])),
    vote_human("label-2", [_h(1), _h(2, label=2), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2", "[m2]"]),
    vote_human("label-yes", [_h(1), _h(2, label="yes"), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2", "[m2]"]),
    vote_human("label-true", [_h(1), _h(2, label=True), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("label-float", [_h(1), _h(2, label=1.0), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("vote-value-2", [_h(1), {**_h(2), "votes": {"a": 2}}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("votes-a-list", [_h(1), {**_h(2), "votes": [1]}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("another-target", [_h(1), _h(2, target="hatemm"), _h(3)], lambda w: [f"{w / 'h.jsonl'}:2", "hatemm"]),
    vote_human("unknown-meme", [*_complete_human(), _h(9)], lambda w: ["'m9'"]),
    vote_human("agreeing-meme", [*_complete_human(), _h(0)], lambda w: ["'m0'"]),
    vote_human("id-number", [_h(1), {**_h(2), "id": 2}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("duplicate", [*_complete_human(), _h(1)], lambda w: [f"{w / 'h.jsonl'}:4", "m1"]),
    vote_human("no-label", [_h(1), {"id": "m2"}, _h(3)], lambda w: [f"{w / 'h.jsonl'}:2"]),
    vote_human("latin-1", LATIN1, lambda w: [w / "h.jsonl"]),
    vote_human("not-json", "{{\n", lambda w: [f"{w / 'h.jsonl'}:1"]),
    vote_human("partial-with-a-bad-label", [_h(1, label=5)], lambda w: [f"{w / 'h.jsonl'}:1"], "--partial"),
    Case("vote-out-is-a-file", lambda w: ([*_vote(w, None, human(w))[:-1], write(w / "o", "x")], [w / "o"])),
]


def _paper_csv(w: Path, rows: list[dict] | None = None, name: str = "fhm_aligned_with_mhc.csv") -> Path:
    from m2v_bench.reannotate import write_paper_csv

    rows = rows or [{"id": f"m{i}", "image": "", "text": f"t{i}", "type": "train", "original_dataset_label": i % 2,
                     "model_prediction": 1, "human_annotation": "" if i % 2 else 1, "majority_voting": 1}
                    for i in range(4)]  # fmt: skip
    write_paper_csv(w / "csv" / name, rows)
    return w / "csv" / name


def stats_csv(case_id: str, text: str | bytes | Callable[[str], str], names: Callable[[Path], list]) -> Case:
    def build(w):
        path = _paper_csv(w)
        path.write_bytes(text(path.read_text()).encode() if callable(text) else
                         text if isinstance(text, bytes) else text.encode())  # fmt: skip
        return ["reannotate", "stats", path, "--json", w / "out.json"], names(path)

    return Case(f"stats-{case_id}", build)


def _replace_line(n: int, old: str, new: str):
    def change(text: str) -> str:
        lines = text.splitlines(keepends=True)
        lines[n - 1] = lines[n - 1].replace(old, new)
        return "".join(lines)

    return change


STATS = [
    Case("stats-control", lambda w: (["reannotate", "stats", _paper_csv(w)], []), code=0),
    stats_csv("majority-2", _replace_line(2, ",1\n", ",2\n"), lambda p: [f"{p}:2", "majority_voting"]),
    stats_csv("original-minus-1", _replace_line(3, "m1,,t1,train,1", "m1,,t1,train,-1"), lambda p: [f"{p}:3"]),
    stats_csv("human-yes", _replace_line(2, "train,0,1,1,1", "train,0,1,yes,1"), lambda p: [f"{p}:2"]),
    stats_csv("prediction-word", _replace_line(2, "train,0,1,", "train,0,hateful,"), lambda p: [f"{p}:2"]),
    stats_csv("surplus-cell", _replace_line(2, "\n", ",EXTRA\n"), lambda p: [f"{p}:2"]),
    stats_csv("missing-cell", _replace_line(2, ",1\n", "\n"), lambda p: [f"{p}:2"]),
    stats_csv("missing-column", lambda t: t.replace("majority_voting", "vote"), lambda p: [p, "majority_voting"]),
    stats_csv("latin-1", b"id," + LATIN1, lambda p: [p]),
    stats_csv("utf-16", utf16("id,image\n"), lambda p: [p]),
    stats_csv("empty", b"", lambda p: [p]),
    Case("stats-missing-file", lambda w: (["reannotate", "stats", w / "none.csv"], [w / "none.csv"])),
    Case("stats-a-folder", lambda w: (["reannotate", "stats", (w / "d").mkdir() or w / "d"], [w / "d"])),
    Case(
        "stats-json-is-a-folder",
        lambda w: (["reannotate", "stats", _paper_csv(w), "--json", (w / "j").mkdir() or w / "j"], [w / "j"]),
    ),  # fmt: skip
]


def _released(w: Path, csv_path: Path | None = None, source: str = "fhm", target: str = "mhc", *extra) -> list:
    return ["reannotate", "released", csv_path or _paper_csv(w), "--source", source, "--target", target,
            "--out", w / "out", *extra]  # fmt: skip


RELEASED = [
    Case("released-control", lambda w: (_released(w), []), code=0),
    Case("released-target-fhm", lambda w: (_released(w, None, "fhm", "fhm"), ["'fhm'"])),
    Case("released-source-unknown", lambda w: (_released(w, None, "memes"), ["'memes'"])),
    Case(
        "released-id-dotdot",
        lambda w: (
            _released(
                w,
                _paper_csv(
                    w,
                    [
                        {
                            "id": "../x",
                            "image": "",
                            "text": "t",
                            "type": "train",
                            "original_dataset_label": 0,
                            "model_prediction": 0,
                            "human_annotation": "",
                            "majority_voting": 0,
                        }
                    ],
                ),
            ),
            ["'../x'"],
        ),
    ),  # fmt: skip
    Case("released-csv-missing", lambda w: (_released(w, w / "none.csv"), [w / "none.csv"])),
    Case("released-csv-latin-1", lambda w: (_released(w, write(w / "l.csv", b"id," + LATIN1)), [w / "l.csv"])),
    Case(
        "released-memes-missing",
        lambda w: (_released(w, None, "fhm", "mhc", "--memes", w / "m.jsonl"), [w / "m.jsonl"]),
    ),  # fmt: skip
    Case("released-out-is-a-file", lambda w: ([*_released(w)[:-1], write(w / "o", "x")], [w / "o"])),
]


@cases(PREDICT + QUEUE + IMPORT + VOTE + STATS + RELEASED)
def test_reannotate(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


def test_queue_neutralises_spreadsheet_formulas(tmp_path):
    from m2v_bench import reannotate as re_
    from m2v_bench.manifest import read_manifest

    texts = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "plain", "\tTAB"]
    rows = [record(i, "train", text=t, id=f"m{i}") for i, t in enumerate(texts)]
    items = read_manifest(memes(tmp_path, rows))
    preds = re_.read_predictions(predictions(tmp_path, rows=[_p(i, 1 - i % 2) for i in range(len(texts))]))
    re_.write_queue(items, preds, "mhc", tmp_path / "q.csv")
    import csv

    with open(tmp_path / "q.csv", encoding="utf-8", newline="") as fh:
        cells = [row["text"] for row in csv.DictReader(fh)]
    assert cells == ['\'=HYPERLINK("http://x")', "'+1+1", "'-2", "'@SUM(A1)", "plain", "'\tTAB"]
    assert re_.read_queue(tmp_path / "q.csv") == [f"m{i}" for i in range(len(texts))]  # ids are kept as they are


# -------------------------------------------------------------------------------------------------- leaderboard


def _text_db(w: Path) -> Path:
    return write(w / "lb.sqlite", "this is a text file, not a database\n")


def _folder_db(w: Path) -> Path:
    (w / "lb.sqlite").mkdir()
    return w / "lb.sqlite"


def _foreign_db(w: Path) -> Path:
    db = sqlite3.connect(w / "lb.sqlite")
    db.execute("CREATE TABLE users (name TEXT)")
    db.execute("INSERT INTO users VALUES ('alice')")
    db.commit()
    db.close()
    return w / "lb.sqlite"


def _checkpoint(w: Path, provenance: str | bytes | None = None) -> Path:
    folder = w / "ckpt"
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "adapter_config.json", "{}")
    write(folder / "adapter_model.safetensors", "")  # submit checks that the weights exist before the --db
    good = json.dumps({"family": "mllama", "strategy": "vid_ft", "target": "mhc", "base_model": "x"})
    write(folder / "m2v_provenance.json", provenance if provenance is not None else good)
    (w / "results").mkdir(exist_ok=True)
    return folder


def lb(case_id: str, make_db: Callable[[Path], Path], step: str) -> Case:
    def build(w):
        db = make_db(w)
        tail = {"show": ["show"], "build": ["build", w / "site"],
                "submit": ["submit", _checkpoint(w), "--results", w / "results", "--data-dir", w]}[step]  # fmt: skip
        return ["leaderboard", "--db", db, *tail], [db]

    return Case(f"{step}-db-{case_id}", build)


def provenance_case(case_id: str, text: str | bytes) -> Case:
    def build(w):
        folder = _checkpoint(w, text)
        argv = ["leaderboard", "--db", w / "lb.sqlite", "submit", folder, "--results", w / "results", "--data-dir", w]
        return argv, [folder / "m2v_provenance.json"]

    return Case(f"submit-provenance-{case_id}", build)


LEADERBOARD = [
    *(
        lb(name, make, step)
        for name, make in (("text-file", _text_db), ("folder", _folder_db), ("foreign-sqlite", _foreign_db))
        for step in ("show", "build", "submit")
    ),  # fmt: skip
    provenance_case("list", '[{"family": "mllama"}]'),
    provenance_case("no-family", '{"strategy": "vid_ft"}'),
    provenance_case("family-null", '{"family": null, "strategy": "vid_ft"}'),
    provenance_case("no-strategy", '{"family": "mllama"}'),
    provenance_case("malformed", '{"family": "mllama",'),
    provenance_case("empty", ""),
    provenance_case("latin-1", b'{"family": "' + LATIN1 + b'"}'),
]


def _a_file(w: Path) -> Path:
    return write(w / "taken", "a file where a folder is expected")


OTHER = [
    Case("make-sample-data-out-is-a-file", lambda w: (["make-sample-data", _a_file(w)], [w / "taken"])),
    Case("make-sample-data-parent-is-a-file", lambda w: (["make-sample-data", _a_file(w) / "sub"], [w / "taken"])),
    Case("make-tiny-model-out-is-a-file", lambda w: (["make-tiny-model", "mllama", _a_file(w)], [w / "taken"])),
    Case("make-tiny-model-unknown-family", lambda w: (["make-tiny-model", "gpt2", w / "m"], ["gpt2"])),
    Case("demo-out-is-a-file", lambda w: (["demo", "--quick", "--out", _a_file(w)], [w / "taken"])),
    Case("demo-jobs-0", lambda w: (["demo", "--quick", "--jobs", "0", "--out", w / "demo"], ["--jobs 0"])),
    Case(
        "leaderboard-build-out-is-a-file",
        lambda w: (["leaderboard", "--db", w / "lb.sqlite", "build", _a_file(w)], [w / "taken"]),
    ),  # fmt: skip
    Case(
        "prepare-out-parent-is-a-file",
        lambda w: (prep("fhm", fhm_raw(w), w)[:-1] + [_a_file(w) / "out"], [w / "taken"]),
    ),  # fmt: skip
    Case("unknown-command", lambda w: (["prepair", "fhm"], ["prepair"])),
    Case("unknown-dataset", lambda w: (["prepare", "tiktok", "--root", w], ["tiktok"])),
]


@cases(LEADERBOARD + OTHER)
def test_leaderboard_and_other_commands(case, tmp_path, capsys):
    check(case, tmp_path, capsys)


# ------------------------------------------------------------------------------------------------------ training


def _recipe(w: Path, text: str | bytes | None = None) -> Path:
    base = (REPO / "recipes" / "tiny" / "mllama.yaml").read_text()
    return write(w / "recipe.yaml", text if text is not None else base)


def train(case_id: str, extra: Callable[[Path], list] | list, names: Callable[[Path], list] | list,
          strategy: str = "vid_ft", recipe: str | bytes | None = None, config: bool = True) -> Case:  # fmt: skip
    def build(w):
        args = ["--config", _recipe(w, recipe)] if config else []
        more = extra(w) if callable(extra) else extra
        return [strategy, *args, "--output_dir", w / "run", *more], names(w) if callable(names) else names

    return Case(f"{strategy}-{case_id}", build)


def _run_recipe(argv: list[str]) -> int:
    from m2v_bench.trainers.sft import run

    strategy, *rest = argv
    return run(strategy, rest) and 0


def _torn_checkpoint(w: Path) -> Path:
    folder = w / "old" / "checkpoint-4"
    write(folder / "trainer_state.json", json.dumps({"global_step": 4}))
    write(folder / "adapter_model.safetensors", b'\x10\x00\x00\x00\x00\x00\x00\x00{"a":')
    return folder


TRAINING = [
    train(
        "yaml-unknown-key",
        [],
        ["recipe.yaml", "'learnig_rate'", "'learning_rate'"],
        recipe="learnig_rate: 0.1\nmodel_name_or_path: x\n",
    ),  # fmt: skip
    train("yaml-unknown-key-no-match", [], ["recipe.yaml", "'zzzzzz'"], recipe="zzzzzz: 1\n"),
    train("cli-unknown-flag", ["--lora_rr", "8"], ["'lora_rr'", "'lora_r'"]),
    train("yaml-malformed", [], ["recipe.yaml:3", "YAML"], recipe="a: 1\nb: [1, 2\nc: 3\n"),
    train("yaml-tab-indent", [], ["recipe.yaml", "YAML"], recipe="a:\n\t- 1\n"),
    train("yaml-a-list", [], ["recipe.yaml", "mapping"], recipe="- a\n- b\n"),
    train("yaml-a-string", [], ["recipe.yaml", "mapping"], recipe="just text\n"),
    train("yaml-empty", [], ["recipe.yaml", "mapping"], recipe=""),
    train("yaml-latin-1", [], ["recipe.yaml", "UTF-8"], recipe=b"target: " + LATIN1),
    train("yaml-bad-value", [], ["learning_rate"], recipe="model_name_or_path: x\nlearning_rate: fast\n"),
    train("config-missing-file", lambda w: ["--config", w / "none.yaml"], lambda w: [w / "none.yaml"], config=False),
    train("config-without-value", ["--config"], ["--config"], config=False),
    train("no-config", [], ["--config"], config=False),
    train("max-length-0", ["--max_length", "0"], ["max_length 0"]),
    train("max-length-negative", ["--max_length", "-5"], ["max_length -5"]),
    train("zero-epochs", ["--num_train_epochs", "0"], ["num_train_epochs"]),
    train("zero-steps", ["--max_steps", "0"], ["max_steps 0"]),
    train("zero-batch", ["--per_device_train_batch_size", "0"], ["per_device_train_batch_size"]),
    train("frames-0", ["--frames", "0"], ["frames 0"]),
    train("target-fhm", ["--target", "fhm"], ["'fhm'"]),
    train("target-mami", ["--target", "mami"], ["'mami'"], strategy="vid_rm_ft"),
    train("target-unknown", ["--target", "tiktok"], ["'tiktok'"]),
    train("meme-source-mhc", ["--meme_source", "mhc"], ["'mhc'"], strategy="rm_ft"),
    train("video-fraction-0", ["--video_fraction", "0"], ["video_fraction 0.0", "om_ft"], strategy="om_ft"),
    train("video-fraction-half", ["--video_fraction", "0.5"], ["video_fraction 0.5", "rm_ft"], strategy="rm_ft"),
    train("video-fraction-zero", ["--video_fraction", "0"], ["video_fraction"]),
    train("video-fraction-above-1", ["--video_fraction", "1.5"], ["video_fraction"]),
    train(
        "strategy-mismatch",
        ["--use_cpu", "true"],
        ["strategy: vid_ft"],
        strategy="om_ft",
        recipe=(REPO / "recipes" / "mllama" / "vid_ft.yaml").read_text(),
    ),  # fmt: skip
    train("resume-missing-checkpoint", lambda w: ["--resume_from_checkpoint", w / "nope"], lambda w: [w / "nope"]),
    train(
        "resume-torn-checkpoint",
        lambda w: ["--resume_from_checkpoint", _torn_checkpoint(w)],
        lambda w: [w / "old" / "checkpoint-4", "adapter_model.safetensors"],
    ),  # fmt: skip
    train(
        "data-dir-missing",
        lambda w: ["--data_dir", w / "nodata", "--model_name_or_path", _tiny_config(w)],
        lambda w: [w / "nodata"],
    ),  # fmt: skip
]


def _tiny_config(w: Path) -> Path:
    """A model folder whose config names a known family (enough for everything before the weights load)."""
    folder = w / "model"
    write(folder / "config.json", json.dumps({"model_type": "mllama"}))
    return folder


@cases(TRAINING)
def test_training(case, tmp_path, capsys):
    check(case, tmp_path, capsys, runner=_run_recipe)


def test_recipe_script_errors_are_one_line(tmp_path):
    """The recipe scripts are thin: one subprocess proves the script path prints the same one line, exit 2."""
    recipe = write(tmp_path / "r.yaml", "learnig_rate: 0.1\n")
    result = subprocess.run([sys.executable, str(REPO / "recipes" / "vid_ft.py"), "--config", str(recipe)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "r.yaml" in line and "'learning_rate'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]


def _save_checkpoint(folder: Path, step: int, torn: bool = False) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(64, 64)}, str(folder / "adapter_model.safetensors"))
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 8}))
    if torn:
        data = (folder / "adapter_model.safetensors").read_bytes()
        (folder / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    return folder


def test_a_torn_newest_checkpoint_falls_back_to_the_previous_and_says_so(tmp_path, caplog):
    from m2v_bench.trainers.sft import _last_checkpoint, resolve_resume

    _save_checkpoint(tmp_path / "checkpoint-2", 2)
    _save_checkpoint(tmp_path / "checkpoint-4", 4)
    _save_checkpoint(tmp_path / "checkpoint-6", 6, torn=True)
    (tmp_path / "checkpoint-8").mkdir()  # killed before anything was saved
    with caplog.at_level("WARNING"):
        assert _last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-4")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "checkpoint-8 is incomplete" in said and "checkpoint-6 is incomplete" in said and "previous" in said
    assert resolve_resume("true", str(tmp_path)) == str(tmp_path / "checkpoint-4")
    with pytest.raises(M2VError, match="checkpoint-6: adapter_model.safetensors is truncated"):
        resolve_resume(str(tmp_path / "checkpoint-6"), str(tmp_path))


def test_resuming_a_finished_run_trains_nothing(tmp_path, monkeypatch, capsys):
    """A run that reached its last step is not trained one step further (nothing written, exit 2)."""
    from types import SimpleNamespace

    from m2v_bench.trainers import sft

    _save_checkpoint(tmp_path / "run" / "checkpoint-8", 8)
    trained = []
    trainer = SimpleNamespace(processing_class=None, accelerator=SimpleNamespace(num_processes=1),
                              train=lambda **kw: trained.append(kw))  # fmt: skip
    monkeypatch.setattr(sft, "build_trainer", lambda *a: (trainer, None, [], [{}] * 16, None))
    recipe = _recipe(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        sft.run("vid_ft", ["--config", str(recipe), "--output_dir", str(tmp_path / "run"), "--num_train_epochs", "2",
                           "--per_device_train_batch_size", "4", "--resume_from_checkpoint", "true"])  # fmt: skip
    assert exit_.value.code == 2 and not trained
    assert "already finished (step 8 of 8)" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


# -------------------------------------------------------------------------------------- frame sampler and tasks


def _video(path: Path) -> Path:
    import numpy as np

    from m2v_bench.media import write_video

    return write_video(path, [np.full((16, 16, 3), 30 * i, np.uint8) for i in range(4)], fps=4)


def frames_case(case_id: str, act: Callable[[Path], object], match: Callable[[Path], str]) -> tuple:
    return pytest.param(act, match, id=case_id)


def _view(**kwargs):
    from m2v_bench.frames import FrameView

    return lambda w: FrameView(**kwargs)


def _sample(make: Callable[[Path], Path], view=None, cache: Callable[[Path], Path] | None = None):
    def act(w):
        from m2v_bench.frames import FrameSampler, FrameView

        source = make(w)
        sampler = FrameSampler(cache_dir=cache(w) if cache else None)
        return sampler.sample(source, view or FrameView.uniform(2))

    return act


def _frames_folder(w: Path, bad: Callable[[Path], object]) -> Path:
    folder = w / "frames"
    png(folder / "0001.png")
    bad(folder / "0002.png")
    return folder


FRAMES = [
    frames_case(
        "keyframe-size-0x0",
        lambda w: __import__("m2v_bench.frames").frames.FrameView.keyframe(size=(0, 0)),
        lambda w: r"size .*\(0, 0\)",
    ),  # fmt: skip
    frames_case("keyframe-size-negative", _view(kind="keyframe", size=(-1, 5)), lambda w: "size"),
    frames_case("keyframe-size-one-number", _view(kind="keyframe", size=(5,)), lambda w: "size"),
    frames_case("keyframe-size-float", _view(kind="keyframe", size=(5.5, 5)), lambda w: "size"),
    frames_case("keyframe-threshold-nan", _view(kind="keyframe", threshold=float("nan")), lambda w: "threshold"),
    frames_case("keyframe-threshold-negative", _view(kind="keyframe", threshold=-1.0), lambda w: "threshold"),
    frames_case("uniform-k-0", _view(kind="uniform", k=0), lambda w: "k >= 1"),
    frames_case("uniform-k-negative", _view(kind="uniform", k=-3), lambda w: "k >= 1"),
    frames_case("view-kind-unknown", _view(kind="random"), lambda w: "'random'"),
    frames_case(
        "cache-dir-is-a-file",
        _sample(lambda w: _video(w / "v.mp4"), cache=lambda w: write(w / "cache", "x")),
        lambda w: re.escape(str(w / "cache")),
    ),  # fmt: skip
    frames_case("video-missing", _sample(lambda w: w / "none.mp4"), lambda w: re.escape(str(w / "none.mp4"))),
    frames_case("video-zero-byte", _sample(lambda w: write(w / "z.mp4", b"")), lambda w: re.escape(str(w / "z.mp4"))),
    frames_case(
        "video-is-text", _sample(lambda w: write(w / "t.mp4", "hello")), lambda w: re.escape(str(w / "t.mp4"))
    ),
    frames_case(
        "video-truncated",
        _sample(lambda w: write(w / "v.mp4", _video(w / "full.mp4").read_bytes()[:600])),
        lambda w: re.escape(str(w / "v.mp4")),
    ),  # fmt: skip
    frames_case(
        "frame-folder-truncated-png",
        _sample(lambda w: _frames_folder(w, truncated_png)),
        lambda w: re.escape(str(w / "frames" / "0002.png")),
    ),  # fmt: skip
    frames_case(
        "frame-folder-bomb-png",
        _sample(lambda w: _frames_folder(w, bomb_png)),
        lambda w: re.escape(str(w / "frames" / "0002.png")),
    ),  # fmt: skip
    frames_case(
        "frame-folder-empty",
        _sample(lambda w: (w / "frames").mkdir() or w / "frames"),
        lambda w: re.escape(str(w / "frames")),
    ),  # fmt: skip
]


@pytest.mark.parametrize(("act", "match"), FRAMES)
def test_frame_sampler(act, match, tmp_path):
    with pytest.raises(M2VError, match=match(tmp_path)):
        act(tmp_path)


def test_cache_dir_from_the_environment_that_is_a_file_is_named(tmp_path, monkeypatch):
    from m2v_bench.frames import CACHE_ENV, FrameSampler

    monkeypatch.setenv(CACHE_ENV, str(write(tmp_path / "c", "x")))
    with pytest.raises(M2VError, match=f"{CACHE_ENV}={re.escape(str(tmp_path / 'c'))}"):
        FrameSampler()


@pytest.mark.parametrize("broken", ["missing-keys", "not-json", "wrong-types", "array-mismatch"])
def test_a_broken_frame_cache_entry_is_decoded_again(tmp_path, broken, caplog):
    from m2v_bench.frames import FrameSampler, FrameView

    video = _video(tmp_path / "v.mp4")
    sampler = FrameSampler(cache_dir=tmp_path / "cache")
    first = sampler.sample(video, FrameView.uniform(2))
    (meta,) = (tmp_path / "cache").rglob("*.json")
    value = {"missing-keys": json.dumps({"indices": [0, 3]}), "not-json": "{",
             "wrong-types": json.dumps({"indices": 5, "total_frames": "x", "fallback": 0}),
             "array-mismatch": json.dumps({"indices": [0, 1, 2], "total_frames": 4, "fallback": 0})}  # fmt: skip
    meta.write_text(value[broken])
    again = sampler.sample(video, FrameView.uniform(2))
    assert again.indices == first.indices and not again.meta.get("cached")
    assert json.loads(meta.read_text())["indices"] == first.indices  # rewritten whole


TASKS = [
    pytest.param(truncated_png, "corrupt", id="image-truncated"),
    pytest.param(bomb_png, "refused", id="image-decompression-bomb"),
    pytest.param(lambda p: write(p, b""), "empty", id="image-zero-byte"),
    pytest.param(lambda p: write(p, "text"), "not an image", id="image-text"),
]


@pytest.mark.parametrize(("make", "why"), TASKS)
def test_lmms_eval_task_images_name_the_file(tmp_path, make, why):
    """lmms-eval's doc_to_visual used to raise Pillow's "image file is truncated" without the file."""
    from m2v_bench.tasks.utils import doc_to_visual

    path = tmp_path / "meme.png"
    make(path)
    with pytest.raises(M2VError, match=re.escape(str(path)) + f".*{why}"):
        doc_to_visual({"id": "m1", "dataset": "fhm", "media": str(path), "view": "image"})


@pytest.mark.parametrize(("name", "value"), [("frames", 0), ("frames", -2), ("batch_size", 0), ("frames", "four")])
def test_model_args_frames_and_batch_size_must_be_positive(name, value):
    """``lmms-eval --model m2v --model_args frames=0`` (and batch_size=0) is one line, before any model loads."""
    from m2v_bench.models.generation import Generator

    with pytest.raises(M2VError, match=f"{name}="):
        Generator(None, **{name: value})


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


KILLED_WRITER = """
import os, signal, sys
from m2v_bench.jsonl import write_jsonl
def rows():
    for i in range(100000):
        if i == 50000:
            os.kill(os.getpid(), signal.SIGKILL)
        yield {"id": i, "text": "x" * 50}
write_jsonl(sys.argv[1], rows())
"""


def test_sigkill_mid_write_leaves_the_old_file_intact(tmp_path):
    path = write_lines(tmp_path / "predictions.jsonl", [{"id": "old"}])
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], capture_output=True, timeout=120)
    assert result.returncode == -9
    assert path.read_text() == '{"id": "old"}\n'
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p != path)
    assert all(name.startswith(".predictions.jsonl.") and name.endswith(".tmp") for name in leftovers), leftovers


def test_the_corpus_is_large_and_covers_every_command():
    tables = {"prepare": PREPARE, "validate": VALIDATE, "predict": PREDICT, "queue": QUEUE, "import": IMPORT,
              "vote": VOTE, "stats": STATS, "released": RELEASED, "leaderboard": LEADERBOARD, "training": TRAINING,
              "other commands": OTHER,
              "frames": FRAMES, "tasks": TASKS}  # fmt: skip
    sizes = {name: len(table) for name, table in tables.items()}
    assert all(sizes.values()) and sum(sizes.values()) >= 200, sizes
    ids = [c.id for table in tables.values() for c in table if isinstance(c, Case)]
    assert len(ids) == len(set(ids)), "case ids must be unique"


KILLED_SUBMITTER = """
import os, signal, sys
from m2v_bench.leaderboard.store import Store, Submission

def submission(name):
    return Submission(name, "mllama", "vid_ft", "mhc", None, "base", 1.0, {"family": "mllama"})

row = {"task": "m2v_mhc", "dataset": "mhc", "test_sha256": "0" * 64, "n": 2, "accuracy": 1.0, "macro_f1": 1.0,
       "f1": 1.0, "precision": 1.0, "recall": 1.0, "invalid_rate": 0.0, "auroc": None, "macro_f1_low": 1.0,
       "macro_f1_high": 1.0}
samples = {"m2v_mhc": [{"id": "a", "gold": 1, "pred": 1}, {"id": "b", "gold": 0, "pred": 0}]}
store = Store(sys.argv[1])
if sys.argv[2] == "first":
    store.put(submission("first"), [row], samples)
    sys.exit(0)
real = store.db.executemany
def killed(*args):  # the predictions are half inserted, inside put's transaction
    real(*args)
    os.kill(os.getpid(), signal.SIGKILL)
fake = {"execute": store.db.execute, "executemany": staticmethod(killed), "in_transaction": False}
store.db = type("Db", (), fake)()
store.put(submission("first"), [row], samples, replace=True)  # an explicit re-submission: a new version
"""


def test_sigkill_mid_submit_keeps_the_stored_submission(tmp_path):
    """SIGKILL inside the leaderboard's write transaction: the earlier submission is still whole, nothing half-written
    (the guarantee the issue measured under 47 kills; here deterministic)."""
    from m2v_bench.leaderboard.store import Store

    db = tmp_path / "lb.sqlite"
    assert subprocess.run([sys.executable, "-c", KILLED_SUBMITTER, str(db), "first"], timeout=120).returncode == 0
    store = Store(db)
    before = (store.submissions(), store.results(), store.predictions("first", "m2v_mhc"))
    store.close()
    result = subprocess.run([sys.executable, "-c", KILLED_SUBMITTER, str(db), "kill"], timeout=120)
    assert result.returncode == -9
    store = Store(db)
    assert (store.submissions(), store.results(), store.predictions("first", "m2v_mhc")) == before
    store.close()


def test_an_internal_error_keeps_its_traceback(tmp_path, monkeypatch):
    """Only user errors (M2VError) become one line; an OSError that no reader converted is a bug and propagates."""
    from m2v_bench import validate as validate_module

    def broken(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/proc/internal")

    monkeypatch.setattr(validate_module, "validate", broken)
    with pytest.raises(PermissionError):
        main(["validate", str(tmp_path)])
