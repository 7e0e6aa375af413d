"""Re-annotation: the paper's released votes reproduced through queue/import/vote, stats against an independent
computation, resumable predictions with tiny models, and bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from m2v_bench import reannotate as re_
from m2v_bench.cli import main
from m2v_bench.errors import M2VError
from m2v_bench.manifest import Record, read_manifest, write_manifest
from m2v_bench.models.families import FAMILIES


def read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


QUEUE_SIZES = {
    "fhm_aligned_with_hatemm": 1136,
    "fhm_aligned_with_mhc": 1223,
    "mami_aligned_with_hatemm": 1295,
    "mami_aligned_with_mhc": 1617,
}


def reference_inputs(path: Path, work: Path) -> tuple[Path, Path, list[dict]]:
    """A meme manifest (original labels) and a predictions file built from one released CSV."""
    source, target = path.stem.split("_aligned_with_")
    space = {"fhm": "hateful", "mami": "misogynous"}[source]
    rows = read_rows(path)
    memes = [
        Record(id=r["id"], dataset=source, split="train", modality="image", text=r["text"],
               label=int(r["original_dataset_label"]), label_space=space, source=source)
        for r in rows
    ]  # fmt: skip
    write_manifest(work / "memes.jsonl", memes)
    with open(work / "predictions.jsonl", "w") as fh:
        for r in rows:
            record = {"id": r["id"], "prediction": int(r["model_prediction"]), "response": "", "target": target}
            fh.write(json.dumps(record) + "\n")
    return work / "memes.jsonl", work / "predictions.jsonl", rows


@pytest.mark.parametrize("name", list(QUEUE_SIZES))
def test_released_votes_are_reproduced_through_the_cli(reference_dir, tmp_path, name, capsys):
    path = reference_dir / "upstream_dataset" / "reannotated_meme" / f"{name}.csv"
    target = name.split("_aligned_with_")[1]
    memes, predictions, rows = reference_inputs(path, tmp_path)
    queue = tmp_path / "queue.csv"
    assert main(["reannotate", "queue", "--memes", str(memes), "--predictions", str(predictions),
                 "--out-csv", str(queue), "--out-labelstudio", str(tmp_path / "queue.json")]) == 0  # fmt: skip
    queued = re_.read_queue(queue)
    assert len(queued) == QUEUE_SIZES[name]
    by_id = {r["id"]: r for r in rows}
    answers = tmp_path / "answers.csv"
    with open(queue, encoding="utf-8") as src, open(answers, "w", encoding="utf-8", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        for row in reader:  # the annotators fill in the queue file, as a person would
            writer.writerow({**row, "human_label": by_id[row["id"]]["human_annotation"], "annotator": "paper"})
    human = tmp_path / "human.jsonl"
    assert main(["reannotate", "import", str(answers), "--queue", str(queue), "--target", target,
                 "--out", str(human)]) == 0  # fmt: skip
    out = tmp_path / "aligned"
    assert main(["reannotate", "vote", "--memes", str(memes), "--predictions", str(predictions),
                 "--human", str(human), "--target", target, "--out", str(out)]) == 0  # fmt: skip
    voted = {r.id: r for r in read_manifest(out / name / "train.jsonl")}
    assert len(voted) == 3000
    assert sum(voted[r["id"]].label == int(r["majority_voting"]) for r in rows) == 3000
    assert {r.label_space for r in voted.values()} == {"offensive" if target == "mhc" else "hateful"}
    written = read_rows(out / f"{name}.csv")
    assert [(w["id"], w["human_annotation"], w["majority_voting"]) for w in written] == [
        (r["id"], r["human_annotation"], r["majority_voting"]) for r in rows
    ]


def _kappa(x, y) -> float:
    """Cohen's kappa from its definition, independent of sklearn."""
    x, y = np.asarray(x), np.asarray(y)
    observed = np.mean(x == y)
    expected = sum(np.mean(x == c) * np.mean(y == c) for c in (0, 1))
    return (observed - expected) / (1 - expected)


@pytest.mark.parametrize("name", list(QUEUE_SIZES))
def test_stats_match_an_independent_computation(reference_dir, name):
    path = reference_dir / "upstream_dataset" / "reannotated_meme" / f"{name}.csv"
    raw = read_rows(path)
    stats = re_.agreement_stats(re_.read_paper_csv(path))
    original = [int(r["original_dataset_label"]) for r in raw]
    model = [int(r["model_prediction"]) for r in raw]
    asked = [r for r in raw if r["human_annotation"] != ""]
    assert stats["queued"] == QUEUE_SIZES[name] == len(asked)
    assert stats["kappa"]["original_dataset_label vs model_prediction"]["kappa"] == pytest.approx(
        _kappa(original, model)
    )
    k = stats["kappa"]["model_prediction vs human_annotation"]
    assert k["n"] == len(asked)
    assert k["kappa"] == pytest.approx(_kappa([int(r["model_prediction"]) for r in asked],
                                              [int(r["human_annotation"]) for r in asked]))  # fmt: skip
    flips = Counter(f"{r['original_dataset_label']}->{r['majority_voting']}" for r in raw)
    assert stats["flips"] == {key: flips.get(key, 0) for key in ("0->0", "0->1", "1->0", "1->1")}
    assert stats["positive_rate_final"] == pytest.approx(np.mean([int(r["majority_voting"]) for r in raw]))


def test_stats_cli_prints_the_table(reference_dir, tmp_path, capsys):
    folder = reference_dir / "upstream_dataset" / "reannotated_meme"
    report = tmp_path / "stats.json"
    assert main(["reannotate", "stats", *map(str, sorted(folder.glob("*.csv"))), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "kappa orig/model" in out and "| mami_aligned_with_mhc" in out
    assert json.loads(report.read_text())["fhm_aligned_with_mhc"]["queued"] == 1223


def test_released_csv_loads_as_an_aligned_manifest(reference_dir, tmp_path):
    path = reference_dir / "upstream_dataset" / "reannotated_meme" / "mami_aligned_with_mhc.csv"
    assert (
        main(["reannotate", "released", str(path), "--source", "mami", "--target", "mhc", "--out", str(tmp_path)]) == 0
    )
    records = read_manifest(tmp_path / "mami_aligned_with_mhc" / "train.jsonl")
    rows = read_rows(path)
    assert [(r.id, r.label) for r in records] == [(r["id"], int(r["majority_voting"])) for r in rows]
    assert {(r.label_space, r.source, r.dataset) for r in records} == {("offensive", "mami", "mami_aligned_with_mhc")}


# ------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def small(tmp_path):
    memes = [Record(id=f"m{i}", dataset="fhm", split="train", modality="image", text=f"t{i}", label=i % 2,
                    label_space="hateful", source="fhm") for i in range(4)]  # fmt: skip
    write_manifest(tmp_path / "memes.jsonl", memes)
    predictions = tmp_path / "predictions.jsonl"
    lines = [{"id": f"m{i}", "prediction": p, "response": "", "target": "mhc"} for i, p in enumerate([0, 0, 1, -1])]
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    queue = tmp_path / "queue.csv"
    re_.write_queue(re_.conflicts(memes, re_.read_predictions(predictions)), re_.read_predictions(predictions),
                    "mhc", queue, tmp_path / "queue.json")  # fmt: skip
    return tmp_path, memes, predictions, queue


def test_queue_holds_exactly_the_conflicts_including_invalid(small):
    _, _, _, queue = small
    assert re_.read_queue(queue) == ["m1", "m2", "m3"]  # m1: 1 vs 0, m2: 0 vs 1, m3: invalid answer
    tasks = json.loads(queue.with_suffix(".json").read_text())
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == ["non-offensive"]
    assert "predictions" not in tasks[2]  # no pre-annotation from an invalid answer


def test_torn_last_line_is_reported_and_repaired_without_loss(small):
    _, _, predictions, _ = small
    complete = predictions.read_bytes()
    predictions.write_bytes(complete + b'{"id": "m9", "predi')
    with pytest.raises(M2VError, match="last line is incomplete"):
        re_.read_predictions(predictions)
    assert len(re_.read_predictions(predictions, repair=True)) == 4
    assert predictions.read_bytes() == complete


def _answers(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("id,human_label,annotator\n" + "".join(f"{i},{label},{who}\n" for i, label, who in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("m7", "1", "a")], "meme 'm7' is not in the annotation queue"),
        ([("m1", "2", "a")], "label '2' is neither 0/1 nor 'offensive'/'non-offensive'"),
        ([("m1", "1", "a"), ("m1", "0", "a")], "annotator 'a' answered 0 for meme m1, but 1 at"),
    ],
)
def test_bad_answers_are_clear_errors(small, rows, message):
    tmp_path, _, _, queue = small
    with pytest.raises(M2VError, match=message) as info:
        re_.import_answers([_answers(tmp_path / "answers.csv", rows)], re_.read_queue(queue), "mhc")
    assert "answers.csv:" in str(info.value)


def test_several_annotators_majority_and_ties(small):
    tmp_path, memes, predictions, queue = small
    rows = [("m1", "offensive", "a"), ("m1", "1", "b"), ("m1", "0", "c"), ("m2", "0", "a"), ("m2", "1", "b"),
            ("m3", "non-offensive", "a"), ("m3", "0", "a")]  # fmt: skip
    labels = re_.import_answers([_answers(tmp_path / "answers.csv", rows)], re_.read_queue(queue), "mhc")
    assert (labels["m1"].label, labels["m2"].label, labels["m3"].label) == (1, None, 0)
    result = re_.vote(memes, re_.read_predictions(predictions), labels, "mhc")
    assert result.unresolved == ["m2"]  # a tie is never guessed
    assert {r.id: r.label for r in result.records} == {"m0": 0, "m1": 1, "m3": 0}


def test_labelstudio_export_is_imported(small):
    tmp_path, _, _, queue = small

    def answer(choice):
        return {"completed_by": 3, "result": [{"value": {"choices": [choice]}}]}

    export = [
        {"data": {"id": "m1"}, "annotations": [answer("offensive")]},
        {"data": {"id": "m3"}, "annotations": [answer("non-offensive"), {"was_cancelled": True, "result": []}]},
    ]
    (tmp_path / "export.json").write_text(json.dumps(export))
    labels = re_.import_answers([tmp_path / "export.json"], re_.read_queue(queue), "mhc")
    assert {k: (v.label, v.votes) for k, v in labels.items()} == {"m1": (1, {"3": 1}), "m3": (0, {"3": 0})}


def test_vote_refuses_unresolved_conflicts_unless_partial(small, capsys):
    tmp_path, _, predictions, _ = small
    args = ["reannotate", "vote", "--memes", str(tmp_path / "memes.jsonl"), "--predictions", str(predictions),
            "--target", "mhc", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 2
    assert "3 conflict(s) have no human label yet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main([*args, "--partial"]) == 0
    assert [r.id for r in read_manifest(tmp_path / "out" / "fhm_aligned_with_mhc" / "train.jsonl")] == ["m0"]


# ---------------------------------------------------------------------------------- predict, killed and resumed


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models


def _predict_cmd(model: Path, memes: Path, out: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "m2v-bench"), "reannotate", "predict", "--memes", str(memes),
            "--target", "mhc", "--model", str(model), "--batch-size", "1", "--out", str(out), "--quiet"]  # fmt: skip


@pytest.mark.slow
def test_predict_survives_sigkill_and_resumes_to_the_same_file(tiny, sample_raw, tmp_path):
    """One process. The resume logic does not depend on the family; the data-parallel SIGKILL tests below run the
    other family (Mllama)."""
    family = "llava_next_video"
    from m2v_bench.datasets import prepare, write_prepared

    write_prepared(prepare("fhm", sample_raw[0] / "FHM"), tmp_path, "fhm")
    memes = tmp_path / "fhm" / "first.jsonl"
    write_manifest(memes, read_manifest(tmp_path / "fhm" / "train.jsonl")[:48])
    total = 48
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    whole = tmp_path / "whole.jsonl"
    subprocess.run(_predict_cmd(tiny[family], memes, whole), check=True, env=env, capture_output=True, timeout=600)
    killed = tmp_path / "killed.jsonl"
    process = subprocess.Popen(_predict_cmd(tiny[family], memes, killed), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and (not killed.exists() or killed.read_bytes().count(b"\n") < 5):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    lines_at_kill = killed.read_bytes().count(b"\n")
    assert 5 <= lines_at_kill < total, "the run must be killed mid-way"
    subprocess.run(_predict_cmd(tiny[family], memes, killed), check=True, env=env, capture_output=True, timeout=600)
    resumed = [json.loads(line) for line in killed.read_text().splitlines()]
    reference = [json.loads(line) for line in whole.read_text().splitlines()]
    assert len(resumed) == total and len({r["id"] for r in resumed}) == total  # no gaps, no duplicates
    assert sorted(resumed, key=lambda r: r["id"]) == sorted(reference, key=lambda r: r["id"])


@pytest.fixture(scope="module")
def four_memes(sample_raw, tmp_path_factory) -> Path:
    from m2v_bench.datasets import prepare, write_prepared

    root = tmp_path_factory.mktemp("four_memes")
    write_prepared(prepare("fhm", sample_raw[0] / "FHM"), root, "fhm")
    memes = root / "fhm" / "first.jsonl"
    write_manifest(memes, read_manifest(root / "fhm" / "train.jsonl")[:4])
    return memes


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_predicts_through_the_cli(tiny, four_memes, tmp_path, family):
    """`reannotate predict` with each family's tiny checkpoint, in this process: one prediction a meme, each a
    label of the target's space or -1 (a random model's answer is rarely a label), with the raw response kept."""
    memes = four_memes
    out = tmp_path / "predictions.jsonl"
    assert main([*_predict_cmd(tiny[family], memes, out)[1:], "--batch-size", "2", "--shots", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in read_manifest(memes)]
    assert {r["prediction"] for r in rows} <= {-1, 0, 1} and all(isinstance(r["response"], str) for r in rows)
    assert {r["target"] for r in rows} == {"mhc"}


# ------------------------------------------------------------------------- predict, data-parallel across ranks


class EchoGenerator:
    """A deterministic stand-in model: the answer depends on the meme's text only (not on the batch)."""

    batch_size = 2

    def __init__(self, fail_after: int | None = None, barrier=None):
        self.calls = 0
        self.fail_after = fail_after
        self.barrier = barrier

    def generate(self, items):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            if self.barrier is not None:
                self.barrier.abort()  # the launcher tears the other ranks down
            raise RuntimeError("killed")
        return ["offensive" if "meme 3" in p or "meme 1" in p else "non-offensive" for p, _ in items]


def _memes(tmp_path: Path, count: int = 11) -> list[Record]:
    (tmp_path / "m.png").write_bytes(b"png")
    image = str(tmp_path / "m.png")
    return [Record(id=f"m{i:02d}", dataset="fhm", split="train", modality="image", text=f"meme {i}", label=i % 2,
                   label_space="hateful", source="fhm", media=image) for i in range(count)]  # fmt: skip


def _run_ranks(memes, out: Path, world: int, fail_rank: int | None = None, fail_after: int = 1) -> list:
    """``predict`` as ``world`` ranks (threads joined by a barrier, as processes are by torch.distributed)."""
    import threading

    barrier = threading.Barrier(world, timeout=60)
    errors: list = [None] * world

    def rank(r):
        generator = EchoGenerator(fail_after if r == fail_rank else None, barrier)
        try:
            re_.predict(memes, "mhc", generator, out, progress=False, rank=r, world_size=world,
                        wait_for_everyone=barrier.wait)  # fmt: skip
        except Exception as exc:  # noqa: BLE001  (collected for the test to assert on)
            errors[r] = exc

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_data_parallel_predict_writes_the_single_process_file(tmp_path):
    memes = _memes(tmp_path)
    single = tmp_path / "single.jsonl"
    re_.predict(memes, "mhc", EchoGenerator(), single, progress=False)
    for world in (2, 3):
        out = tmp_path / f"world{world}.jsonl"
        assert _run_ranks(memes, out, world) == [None] * world
        assert out.read_bytes() == single.read_bytes()
        assert re_.part_files(out) == []


@pytest.mark.parametrize("resume_world", [1, 2, 3])
def test_a_killed_data_parallel_run_resumes_to_the_single_process_file(tmp_path, resume_world):
    memes = _memes(tmp_path)
    single = tmp_path / "single.jsonl"
    re_.predict(memes, "mhc", EchoGenerator(), single, progress=False)
    out = tmp_path / "pred.jsonl"
    errors = _run_ranks(memes, out, 2, fail_rank=1, fail_after=1)
    assert isinstance(errors[1], RuntimeError) and errors[0] is not None  # rank 0 left at the barrier
    parts = re_.part_files(out)
    assert [p.name for p in parts] == ["pred.jsonl.rank0.part", "pred.jsonl.rank1.part"]
    with open(parts[1], "a") as fh:
        fh.write('{"id": "m09", "predic')  # rank 1 was killed mid-line
    assert not out.exists()  # nothing merged yet: the run never finished
    if resume_world == 1:
        re_.predict(memes, "mhc", EchoGenerator(), out, progress=False)
    else:
        assert _run_ranks(memes, out, resume_world) == [None] * resume_world
    assert out.read_bytes() == single.read_bytes()  # no id lost, none twice, the same order
    assert re_.part_files(out) == []


def test_merge_is_idempotent_and_refuses_conflicting_parts(tmp_path):
    out = tmp_path / "pred.jsonl"
    line = {"id": "m1", "prediction": 1, "response": "offensive", "target": "mhc"}
    out.write_text(json.dumps(line) + "\n")
    part = re_.part_path(out, 0)
    part.write_text(json.dumps(line) + "\n")  # merged before, killed before the part was deleted
    assert list(re_.merge_parts(out, ["m1"])) == ["m1"] and not part.exists()
    assert out.read_text().count("\n") == 1
    part.write_text(json.dumps({**line, "prediction": 0}) + "\n")
    with pytest.raises(M2VError, match=r"rank0.part: a different prediction for meme m1"):
        re_.merge_parts(out, ["m1"])


DP_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def single_process_predictions(tiny, sample_raw, tmp_path_factory) -> tuple[Path, Path]:
    """40 memes and Mllama's single-process predictions of them: the reference both killed ranks resume to."""
    from m2v_bench.datasets import prepare, write_prepared

    root = tmp_path_factory.mktemp("single_process")
    write_prepared(prepare("fhm", sample_raw[0] / "FHM"), root, "fhm")
    memes = root / "fhm" / "first.jsonl"
    write_manifest(memes, read_manifest(root / "fhm" / "train.jsonl")[:40])
    single = root / "single.jsonl"
    subprocess.run(_predict_cmd(tiny["mllama"], memes, single), check=True, env={**os.environ, **DP_ENV},
                   capture_output=True, timeout=600)  # fmt: skip
    return memes, single


@pytest.mark.slow
@pytest.mark.parametrize("killed", [0, 1])
def test_two_process_predict_killed_by_sigkill_resumes_to_the_single_process_output(
    tiny, single_process_predictions, tmp_path, killed
):
    """The real launcher: torchrun starts 2 ranks (gloo on CPU); one is SIGKILLed mid-run (torchrun then stops the
    other), and a second 2-process run resumes. The result is byte for byte the single-process file."""
    import psutil

    memes, single = single_process_predictions
    env = {**os.environ, **DP_ENV}
    model = tiny["mllama"]
    out = tmp_path / "dp.jsonl"
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "-m", "m2v_bench"]
    cmd = [*torchrun, *_predict_cmd(model, memes, out)[1:]]
    launcher = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = re_.part_path(out, killed)
    deadline = time.time() + 300
    while time.time() < deadline and (not part.exists() or part.read_bytes().count(b"\n") < 3):
        time.sleep(0.005)
    ranks = {int(p.environ()["RANK"]): p for p in psutil.Process(launcher.pid).children() if "RANK" in p.environ()}
    assert sorted(ranks) == [0, 1], "torchrun must really start two processes"
    ranks[killed].send_signal(signal.SIGKILL)
    assert launcher.wait(timeout=120) != 0
    for process in ranks.values():  # torchrun stops the other rank itself; make sure before resuming
        if process.is_running():
            process.send_signal(signal.SIGKILL)
    parts = re_.part_files(out)
    written = sum(p.read_bytes().count(b"\n") for p in parts)
    assert len(parts) == 2 and 3 <= written < 40, "the run must be killed mid-way, with both ranks writing"
    assert not out.exists()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re_.part_files(out) == []
    assert out.read_bytes() == single.read_bytes()
    assert len({json.loads(line)["id"] for line in out.read_text().splitlines()}) == 40


def test_memes_from_a_relative_manifest_get_absolute_media(tmp_path, monkeypatch):
    """The aligned manifest lives in another folder than the memes': its media paths must not depend on either."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "m0.png").write_bytes(b"png")
    meme = Record(id="m0", dataset="fhm", split="train", modality="image", text="t", label=1, label_space="hateful",
                  source="fhm", media="../raw/m0.png")  # fmt: skip
    write_manifest(tmp_path / "prepared" / "train.jsonl", [meme])
    loaded = re_.load_memes(Path("prepared/train.jsonl"))
    assert Path(loaded[0].media).is_absolute() and Path(loaded[0].media) == tmp_path / "raw" / "m0.png"
