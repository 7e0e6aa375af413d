"""The corpus's harness (``Case``, ``snapshot``, ``check``, ``cases``) and the builders more than one command's
cases use: media (``png``, ``bomb_png``, ``truncated_png``), files (``write``, ``write_lines``, ``LATIN1``,
``utf16``), raw FHM (``fhm_line``, ``fhm_raw``, ``prep``), manifest records (``record``) and the re-annotation
inputs (``memes``, ``predictions``, ``_p``, ``_video_memes``, ``_paper_csv``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from m2v_bench.cli import main

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


def record(i: int, split: str, **change) -> dict:
    return {"id": f"m{i}", "dataset": "fhm", "split": split, "modality": "image", "text": f"meme {i}",
            "label": i % 2, "label_space": "hateful", "source": "fhm", "media": f"img/{i}.png", "frames_dir": None,
            "extra": {}, **change}  # fmt: skip


def memes(w: Path, rows: list | None = None) -> Path:
    d = w / "memes"
    for i in range(4):
        png(d / "img" / f"{i}.png")
    return write_lines(d / "train.jsonl", rows if rows is not None else [record(i, "train") for i in range(4)])


def predictions(w: Path, target: str = "mhc", rows: list | None = None, name: str = "predictions.jsonl") -> Path:
    default = [{"id": f"m{i}", "prediction": p, "response": "", "target": target} for i, p in enumerate([0, 0, 1, -1])]
    return write_lines(w / name, rows if rows is not None else default)


def _video_memes(w: Path) -> Path:
    return memes(w, [record(i, "train", modality="video", dataset="mhc", label_space="offensive", source="mhc",
                            media=f"img/{i}.png") for i in range(2)])  # fmt: skip


def _p(i, prediction=0, target="mhc", **change):
    return {"id": f"m{i}", "prediction": prediction, "response": "", "target": target, **change}


def _paper_csv(w: Path, rows: list[dict] | None = None, name: str = "fhm_aligned_with_mhc.csv") -> Path:
    from m2v_bench.reannotate import write_paper_csv

    rows = rows or [{"id": f"m{i}", "image": "", "text": f"t{i}", "type": "train", "original_dataset_label": i % 2,
                     "model_prediction": 1, "human_annotation": "" if i % 2 else 1, "majority_voting": 1}
                    for i in range(4)]  # fmt: skip
    write_paper_csv(w / "csv" / name, rows)
    return w / "csv" / name
