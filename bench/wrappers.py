"""Which of lmms-eval's built-in model wrappers run the m2v tasks, per family, on the tiny checkpoints (CPU): a video
generate task, an image generate task and a score task, each through the real ``lmms-eval`` command with
``--limit 2``. Prints a Markdown table (the README's) and, per failure, the first error line.

    OMP_NUM_THREADS=1 python bench/wrappers.py [--out runs/wrappers]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from m2v_bench.leaderboard.worker import first_error
from m2v_bench.testing.tiny import build_tiny

WRAPPERS = {  # wrapper -> (families it is meant for, extra model args)
    "m2v": (("mllama", "llava_next_video", "qwen2_5_vl", "qwen3_vl", "llava_onevision", "internvl", "gemma3"), ""),
    "llama_vision": (("mllama",), ",device_map=cpu"),
    "qwen2_5_vl": (("qwen2_5_vl",), ",device_map=cpu"),
    "qwen3_vl": (("qwen3_vl",), ",device_map=cpu"),
    "llava_hf": (("llava_next_video", "llava_onevision"), ",device_map=cpu"),
    "internvl_hf": (("internvl",), ",device_map=cpu"),
    "huggingface": (("gemma3", "qwen2_5_vl"), ",device_map=cpu"),
}
TASKS = {"video": "m2v_mhc", "image": "m2v_fhm", "score": "m2v_fhm_score"}


def run(wrapper: str, checkpoint: Path, extra: str, task: str, out: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "M2V_DATA_DIR": "sample"}
    frames = ",frames=4" if wrapper == "m2v" else ""
    cmd = [str(Path(sys.executable).parent / "lmms-eval"), "--model", wrapper, "--model_args",
           f"pretrained={checkpoint}{frames}{extra}", "--tasks", task, "--limit", "2", "--device", "cpu",
           "--output_path", str(out)]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if list(out.rglob("*_results.json")):
        return "runs"
    cause = first_error(result.stdout + "\n" + result.stderr) or f"exit {result.returncode}, no results"
    return f"fails: {cause[:110]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--wrapper", action="append", choices=list(WRAPPERS), help="only this wrapper (repeatable)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="m2v-wrappers-"))
    rows = []
    for wrapper, (families, extra) in WRAPPERS.items():
        if args.wrapper and wrapper not in args.wrapper:
            continue
        for family in families:
            checkpoint = root / "tiny" / family
            if not (checkpoint / "config.json").is_file():
                build_tiny(family, checkpoint)
            cells = [run(wrapper, checkpoint, extra, task, root / "out" / wrapper / family / kind)
                     for kind, task in TASKS.items()]  # fmt: skip
            rows.append((wrapper, family, *cells))
            print(f"{wrapper} {family}: {cells}", file=sys.stderr, flush=True)
    print("| wrapper | family | video task | image task | score task |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")


if __name__ == "__main__":
    main()
