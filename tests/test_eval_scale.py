"""Evaluation at scale with lmms-eval's `m2v` model: data-parallel processes, batching, the decode pipeline, and
score tasks that decode once per document."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BIN, offline_env
from PIL import Image

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler
from m2v_bench.frames.pool import DecodePool
from m2v_bench.media import write_video
from m2v_bench.models.families import FAMILIES
from m2v_bench.models.generation import answer_token_count, prefetch


def test_prefetch_keeps_order_bounds_batches_in_flight_and_raises():
    started: list[int] = []
    lock = threading.Lock()

    def prepare(item):
        with lock:
            started.append(item)
        time.sleep(0.001 * (item % 3))  # finish out of order
        return item * 10

    batches = [list(range(start, start + 3)) for start in range(0, 30, 3)]
    seen = []
    for number, results in enumerate(prefetch(batches, prepare, workers=4, ahead=2)):
        time.sleep(0.02)  # the "model" is slow: the pool would run ahead if it were not bounded
        with lock:
            assert max(started) < 3 * (number + 1 + 2), "more than `ahead` batches were prepared ahead of the model"
        seen.append(results)
    assert seen == [[item * 10 for item in batch] for batch in batches]

    def failing(item):
        if item == 4:
            raise ValueError("bad clip 4")
        return item

    results = prefetch(batches, failing, workers=2)
    assert next(results) == [0, 1, 2]
    with pytest.raises(ValueError, match="bad clip 4"):
        next(results)


def _requests(docs):
    from lmms_eval.api.instance import Instance

    def visuals(doc):
        return [doc["image"]] if doc["video"] is None else [doc["video"]]

    generate = [
        Instance("generate_until", (doc["text"], {"max_new_tokens": 5 + n % 2, "until": ["\n"]}, visuals, n, "t",
                 "test"), idx=0, metadata={"task": "t", "doc_id": n, "repeats": 1})
        for n, doc in enumerate(docs)
    ]  # fmt: skip
    score = [
        Instance("loglikelihood", (doc["text"], answer, visuals, n, "t", "test"), idx=i,
                 metadata={"task": "t", "doc_id": n, "repeats": 1})
        for n, doc in enumerate(docs) for i, answer in enumerate(["non-offensive", "offensive"])
    ]  # fmt: skip
    return generate, score


@pytest.fixture(scope="module")
def mixed_docs(tmp_path_factory):
    """Videos and images, prompts of different lengths (so sorting by length reorders them)."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    docs = []
    for n in range(5):
        frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(10)]
        docs.append(
            {"video": str(write_video(root / f"{n}.mp4", frames)), "image": None, "text": "clip " * (3 * n + 1)}
        )
    for n in range(4):
        image = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
        docs.append({"video": None, "image": image, "text": "meme text " * (4 - n)})
    return docs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_results_do_not_depend_on_batch_size(tiny_models, mixed_docs, name, monkeypatch):
    """Batch 1 and batch 4 give the same answers and scores, in the requests' order, across two gen_kwargs groups;
    and each document's visuals are decoded once for both of its answers, which go through one forward."""
    from m2v_bench.models.lmms_model import M2V

    decoded = []
    sample = DecodePool.sample  # what the pipeline decodes with (in decoder processes)
    monkeypatch.setattr(
        DecodePool, "sample", lambda self, source, view: decoded.append(source) or sample(self, source, view)
    )
    outputs = {}
    for batch_size in (1, 4):
        lm = M2V(pretrained=str(tiny_models[name]), dtype="float32", frames=4, batch_size=batch_size)
        lm.task_dict = {"t": {"test": mixed_docs}}
        generate, score = _requests(mixed_docs)
        answers = lm.generate_until(generate)
        decoded.clear()
        scores = lm.loglikelihood(score)
        assert sorted(decoded) == sorted(doc["video"] for doc in mixed_docs if doc["video"]), "one decode per document"
        outputs[batch_size] = answers, scores
    (answers_1, scores_1), (answers_4, scores_4) = outputs[1], outputs[4]
    assert answers_1 == answers_4
    assert [s[1] for s in scores_1] == [s[1] for s in scores_4]
    assert [s[0] for s in scores_1] == pytest.approx([s[0] for s in scores_4], abs=1e-4)
    # the order is the requests': scoring one document alone gives its entry
    lm.batch_size_per_gpu = 1
    alone_scores = lm.loglikelihood(score[6:8])
    assert [s[0] for s in alone_scores] == pytest.approx([s[0] for s in scores_4[6:8]], abs=1e-4)
    alone = lm.generate_until([generate[7]])
    assert alone == [answers_4[7]]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_score_answers_share_the_prompt(tiny_models, mixed_docs, name):
    """A document's prompt and visuals go through the model once, its two answers together in one more forward on
    the prompt's cache; the scores are those of scoring each answer on its own, in full."""
    from m2v_bench.models.lmms_model import M2V

    lm = M2V(pretrained=str(tiny_models[name]), dtype="float32", frames=4, batch_size=4)
    lm.task_dict = {"t": {"test": mixed_docs}}
    vision = next(m for n, m in lm.model.named_modules() if n.endswith(("vision_tower", "vision_model", "visual")))
    forwards, encoded = [], []
    lm.model.register_forward_hook(lambda module, args, kwargs, output: forwards.append(kwargs["input_ids"].shape[0]),
                                   with_kwargs=True)  # fmt: skip
    vision.register_forward_hook(lambda module, args, output: encoded.append(1))
    _, score = _requests(mixed_docs)  # 5 videos + 4 images, 2 answers each
    scores = lm.loglikelihood(score)
    assert forwards == [1, 2] * len(mixed_docs)
    assert len(encoded) == len(mixed_docs)
    gen = lm.generator
    for request, (value, _) in list(zip(score, scores, strict=True))[8:12]:  # a video's and an image's answers
        context, answer, visuals, doc_id = request.args[:4]
        kind, payload = gen.prepare(visuals(mixed_docs[doc_id]))
        text = gen.chat(kind, len(payload), context)
        full = gen.encode([text + answer], kind, [payload])
        count = answer_token_count(gen.processor.tokenizer, text, text + answer)
        with torch.inference_mode():
            logits = lm.model(**full).logits[0, -count - 1 : -1].float()
        target = full["input_ids"][0, -count:]
        assert value == pytest.approx(torch.log_softmax(logits, -1).gather(1, target[:, None]).sum().item(), abs=1e-4)


def test_device_map_with_several_processes_is_a_clear_error(tiny_models, monkeypatch):
    from m2v_bench.models import lmms_model

    class TwoProcesses:
        num_processes, process_index = 2, 0

    monkeypatch.setattr(lmms_model, "_accelerator", lambda device: TwoProcesses())
    with pytest.raises(M2VError, match="device_map=auto spreads ONE model .* 2 processes"):
        lmms_model.M2V(pretrained=str(tiny_models["mllama"]), device_map="auto")


def _evaluate(command: list[str], checkpoint: Path, out: Path, data: Path, batch_size: int) -> tuple[dict, str]:
    args = ["-m", "lmms_eval", "--model", "m2v", "--model_args", f"pretrained={checkpoint},frames=4",
            "--tasks", "m2v_mhc,m2v_fhm_score", "--device", "cpu", "--batch_size", str(batch_size),
            "--output_path", str(out), "--log_samples"]  # fmt: skip
    result = subprocess.run([*command, *args], env=offline_env(M2V_DATA_DIR=str(data)), capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert list(out.rglob("*_results.json")), result.stderr[-3000:]
    samples = {}
    for path in out.rglob("*_samples_*.jsonl"):
        task = path.stem.split("_samples_")[1]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    results = json.loads(next(out.rglob("*_results.json")).read_text())["results"]
    return {"results": results, "samples": samples}, result.stdout + result.stderr


@pytest.mark.slow
def test_two_processes_evaluate_every_test_id_exactly_once(tiny_models, prepared, tmp_path):
    """torchrun starts 2 CPU processes (gloo); each loads the model, lmms-eval shards the documents and gathers
    them on rank 0. (`accelerate launch --cpu` starts ONE process whatever --num_processes says.)"""
    checkpoint = tiny_models["llava_next_video"]
    one, _ = _evaluate([str(BIN / "python")], checkpoint, tmp_path / "one", prepared, batch_size=1)
    two, log = _evaluate([str(BIN / "torchrun"), "--nproc_per_node", "2"], checkpoint, tmp_path / "two", prepared,
                            batch_size=4)  # fmt: skip
    assert "Running on rank 1" in log, "torchrun did not start a second process"
    for task, dataset in (("m2v_mhc", "mhc"), ("m2v_fhm_score", "fhm")):
        test_ids = [json.loads(line)["id"] for line in (prepared / dataset / "test.jsonl").read_text().splitlines()]
        ids = [sample["accuracy"]["id"] for sample in two["samples"][task]]
        assert sorted(ids) == sorted(test_ids) and len(set(ids)) == len(ids)
        by_id = {s["accuracy"]["id"]: s["accuracy"] for s in one["samples"][task]}
        for sample in two["samples"][task]:
            record = sample["accuracy"]
            assert record["pred"] == by_id[record["id"]]["pred"], record["id"]
            assert record.get("response") == by_id[record["id"]].get("response"), record["id"]
            assert record.get("score", 0.0) == pytest.approx(by_id[record["id"]].get("score", 0.0), abs=1e-4)
    for task in ("m2v_mhc", "m2v_fhm_score"):
        metrics = {k: v for k, v in one["results"][task].items() if "stderr" not in k}
        assert {k: two["results"][task][k] for k in metrics} == pytest.approx(metrics)


def test_frames_cache_command_fills_the_cache_the_model_reads_and_resumes(prepared, tmp_path, capsys):
    from m2v_bench.cli import main
    from m2v_bench.frames import FrameView
    from m2v_bench.manifest import SPLITS, read_manifest

    cache = tmp_path / "cache"
    manifests = [
        prepared / "mhc" / f"{split}.jsonl" for split in SPLITS if (prepared / "mhc" / f"{split}.jsonl").exists()
    ]
    clips = sorted({str(r.media_path(prepared / "mhc")) for m in manifests for r in read_manifest(m) if r.media})
    command = ["frames", "cache", str(prepared / "mhc"), "--view", "uniform:4", "--view", "keyframe"]
    assert main([*command, "--cache", str(cache), "--jobs", "2", "--quiet"]) == 0
    assert f"{2 * len(clips)} decoded, 0 already cached, 0 failed" in capsys.readouterr().out
    sampler = FrameSampler(cache_dir=cache)
    for view in (FrameView.uniform(4), FrameView.keyframe()):  # what the m2v model and the keyframe tasks ask for
        assert all(sampler.sample(clip, view).meta.get("cached") for clip in clips)
    # a run stopped half-way: what is missing is decoded again, nothing else
    for path in list(cache.rglob("*.npy"))[:3]:
        path.unlink()
    assert main([*command, "--cache", str(cache), "--quiet"]) == 0
    assert f"3 decoded, {2 * len(clips) - 3} already cached, 0 failed" in capsys.readouterr().out
    assert main(["frames", "cache", str(prepared / "mhc"), "--view", "sideways", "--cache", str(cache)]) == 2
    assert "expected keyframe, keyframe:THRESHOLD, uniform or uniform:K" in capsys.readouterr().err
