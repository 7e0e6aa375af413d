"""Bad input to the training recipes (YAML, flags, checkpoints), in-process and through one recipe script."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from m2v_bench.errors import M2VError

from .harness import LATIN1, Case, cases, check, snapshot, write

REPO = Path(__file__).resolve().parent.parent.parent


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
    monkeypatch.setattr(sft, "build_trainer", lambda *a: (trainer, None, [], [{}] * 16, None, []))
    recipe = _recipe(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        sft.run("vid_ft", ["--config", str(recipe), "--output_dir", str(tmp_path / "run"), "--num_train_epochs", "2",
                           "--per_device_train_batch_size", "4", "--resume_from_checkpoint", "true"])  # fmt: skip
    assert exit_.value.code == 2 and not trained
    assert "already finished (step 8 of 8)" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def _training_copy(prepared: Path, w: Path, break_first=None) -> Path:
    """The sample data's MHC and FHM training manifests (absolute media), the first video broken by
    ``break_first``."""
    from m2v_bench.manifest import read_manifest, with_absolute_media, write_manifest

    for dataset in ("mhc", "fhm"):
        for split in ("train", "test"):
            manifest = prepared / dataset / f"{split}.jsonl"
            records = with_absolute_media(read_manifest(manifest), manifest.parent)
            if break_first is not None and dataset == "mhc" and split == "train":
                bad = w / "media" / "bad.mp4"
                break_first(bad, Path(records[0].media))
                records[0] = records[0].__class__(**{**records[0].__dict__, "media": str(bad)})
            write_manifest(w / "data" / dataset / f"{split}.jsonl", records)
    return w / "data"


def _truncate(bad: Path, good: Path) -> None:
    bad.parent.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 3])


def _zero(bad: Path, good: Path) -> None:
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"")


@pytest.mark.parametrize(
    ("case", "break_first", "extra", "says"),
    [
        ("video-truncated", _truncate, [], ["bad.mp4", "unusable media", "M2V_BAD_MEDIA=invalid"]),
        ("video-zero-byte", _zero, [], ["bad.mp4", "zero-byte"]),
        ("max-length-below-a-video", None, ["--max_length", "20"], ["llava_next_video", "above max_length=20",
                                                                  "at frames=4"]),
    ],
)  # fmt: skip
def test_training_checks_media_and_length_before_the_model_loads(
    tiny_models, prepared, tmp_path, capsys, monkeypatch, case, break_first, extra, says
):
    """Every training sample's media is probed and the longest samples are measured against max_length before the
    weights load: one line, exit 2, and no output folder (a truncated video used to pass 6 steps unnoticed)."""
    import transformers

    data = _training_copy(prepared, tmp_path, break_first)
    loads = []
    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained",
                        lambda *a, **k: loads.append(a) or pytest.fail("the model loaded"))  # fmt: skip
    argv = ["vid_ft", "--config", str(REPO / "recipes" / "tiny" / "llava_next_video.yaml"), "--model_name_or_path",
            str(tiny_models["llava_next_video"]), "--data_dir", str(data), "--output_dir", str(tmp_path / "run"),
            *extra]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        _run_recipe(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert all(s in line for s in says), line
    assert not loads and not (tmp_path / "run").exists()


def test_bad_training_media_can_be_left_out_and_counted(tiny_models, prepared, tmp_path, monkeypatch):
    from m2v_bench.trainers.sft import run

    data = _training_copy(prepared, tmp_path, _truncate)
    monkeypatch.setenv("M2V_BAD_MEDIA", "invalid")
    argv = ["--config", str(REPO / "recipes" / "tiny" / "llava_next_video.yaml"), "--model_name_or_path",
            str(tiny_models["llava_next_video"]), "--data_dir", str(data), "--output_dir", str(tmp_path / "run"),
            "--max_steps", "1", "--save_strategy", "no"]  # fmt: skip
    adapter = run("vid_ft", argv)
    provenance = json.loads((adapter / "m2v_provenance.json").read_text())
    (skipped,) = provenance["skipped_media"]
    assert skipped["media"].endswith("bad.mp4") and skipped["problem"]  # the probe's kind, e.g. zero-frames
    assert provenance["examples"] == provenance["training_data"][0]["records"] - 1
