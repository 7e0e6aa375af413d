"""The README is a user's document: short, its set-up is the two make commands, and its quick start runs as written
(tiny model, bundled sample data, offline) and produces lmms-eval's results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MAX_BYTES = 12_000
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def _section(text: str, title: str) -> str:
    """The text under the first heading named ``title`` (any level), up to the next heading of that level or
    above."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", text, re.MULTILINE)
    assert match, f"README has no heading {title!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _bash_blocks(text: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == "bash"]


def _commands(block: str) -> list[str]:
    """The block's commands: comments and blank lines left out."""
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def test_readme_is_at_most_12000_bytes():
    size = len(README.read_bytes())
    assert size <= MAX_BYTES, f"README.md is {size} bytes; at most {MAX_BYTES} (details: bench/, CHANGELOG.md)"


def test_set_up_is_exactly_make_demo_and_make_test():
    section = _section(README.read_text(encoding="utf-8"), "Set-up")
    blocks = _bash_blocks(section)
    assert len(blocks) == 1, f"the Set-up section has {len(blocks)} bash blocks, expected one"
    assert _commands(blocks[0]) == ["make demo", "make test"]


@pytest.mark.slow
def test_quick_start_runs_as_written(tmp_path):
    """The first bash block under "Quick start", run by bash in an empty folder with the venv first on PATH; the
    results file and the per-sample log are checked too."""
    blocks = _bash_blocks(_section(README.read_text(encoding="utf-8"), "Quick start"))
    assert blocks, "the Quick start section has no bash block"
    script = tmp_path / "quick_start.sh"
    script.write_text(blocks[0], encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("M2V_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        M2V_CACHE=str(tmp_path / "cache"),  # the sample data are made from scratch, as on a fresh machine
    )
    result = subprocess.run(
        ["bash", "-e", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    files = list(work.rglob("*_results.json"))
    assert len(files) == 1, result.stderr[-3000:]
    results = json.loads(files[0].read_text())["results"]
    (task,) = results
    assert task.startswith("m2v_")
    assert 0.0 <= results[task]["macro_f1,none"] <= 1.0
    samples = list(work.rglob(f"*_samples_{task}.jsonl"))
    assert len(samples) == 1 and samples[0].read_text().strip(), "no per-sample log"
