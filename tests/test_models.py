"""Model families on tiny offline checkpoints: reload, generate, adapters, errors, and lmms-eval's `m2v` model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler
from m2v_bench.models.families import FAMILIES
from m2v_bench.models.loading import load
from m2v_bench.testing.tiny import TINY_BUILDERS, build_tiny

FAMILY_NAMES = list(FAMILIES)


@pytest.fixture(scope="session")
def adapters(tiny_models, tmp_path_factory):
    """A LoRA per family with random (non-zero) B matrices, so it really changes the model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    root = tmp_path_factory.mktemp("adapters")
    made = {}
    for name, path in tiny_models.items():
        torch.manual_seed(1)
        base = AutoModelForImageTextToText.from_pretrained(path)
        config = LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.05, target_modules=FAMILIES[name].lora_target_modules,
            init_lora_weights=False,
        )  # fmt: skip
        peft_model = get_peft_model(base, config)
        peft_model.save_pretrained(root / name)
        made[name] = root / name
    return made


def _sample_inputs(loaded, kind: str, video_path: Path | None = None):
    family = loaded.family
    if kind == "image":
        visuals = [Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))]
    else:
        visuals = [str(video_path)]
    kind_used, payload = family.prepare_visuals(visuals, FrameSampler(), family.video_view(frames=4))
    prompt = "Text: 'the zorbians are vermin' \n Analyze the video and text."
    text = loaded.processor.apply_chat_template(
        family.messages(kind_used, len(payload), prompt), add_generation_prompt=True
    )
    return kind_used, family.processor_inputs(loaded.processor, [text], [(kind_used, payload)])


def test_every_family_has_a_tiny_builder_outside_the_runtime(tmp_path):
    """The tiny builders live in m2v_bench.testing, one per registered family; Family describes a family only."""
    assert set(TINY_BUILDERS) == set(FAMILIES)
    assert not any("tiny" in field for field in FAMILIES["mllama"].__dataclass_fields__)
    with pytest.raises(M2VError, match="no tiny builder for model family 'qwen9'; known: mllama"):
        build_tiny("qwen9", tmp_path)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_tiny_model_reloads_offline_and_generates(tiny_models, sample_raw, name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load(str(tiny_models[name]))
    assert loaded.family.name == name and loaded.adapter is None
    assert sum(p.numel() for p in loaded.model.parameters()) < 200_000
    video = next((sample_raw[0] / "HateMM" / "hate_videos").glob("*.mp4"))
    for kind in ("image", "video"):
        kind_used, inputs = _sample_inputs(loaded, kind, video)
        expected = "image" if kind == "image" or loaded.family.video_input != "video" else "video"
        assert kind_used == expected
        out = loaded.model.generate(**inputs, max_new_tokens=4, do_sample=False)
        assert out.shape[1] > inputs["input_ids"].shape[1]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_lora_targets_only_the_language_models_q_and_v(tiny_models, name):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_models[name])
    pattern = re.compile(FAMILIES[name].lora_target_modules)
    hits = [n for n, _ in model.named_modules() if pattern.fullmatch(n)]
    assert hits and all("language_model" in n and n.endswith(("q_proj", "v_proj")) for n in hits)
    assert not any("vision" in n for n in hits)
    assert len(hits) == 2 * model.config.text_config.num_hidden_layers  # q and v of every decoder layer


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_adapter_changes_logits_and_merging_keeps_them(tiny_models, adapters, name):
    base = load(str(tiny_models[name]), dtype="float32")
    with_adapter = load(str(tiny_models[name]), adapter=str(adapters[name]), dtype="float32")
    merged = load(str(adapters[name]), merge=True, dtype="float32")  # the adapter folder names its base
    assert merged.base == str(tiny_models[name]) and merged.adapter == str(adapters[name])
    _, inputs = _sample_inputs(base, "image")
    with torch.no_grad():
        logits = [m.model(**inputs).logits for m in (base, with_adapter, merged)]
    assert (logits[0] - logits[1]).abs().max() > 1e-3
    assert torch.allclose(logits[1], logits[2], atol=1e-5)
    greedy = [m.model.generate(**inputs, max_new_tokens=6, do_sample=False) for m in (with_adapter, merged)]
    assert torch.equal(greedy[0], greedy[1])


def test_errors_are_clear(tiny_models, adapters, tmp_path):
    with pytest.raises(M2VError, match="no such folder"):
        load(str(tmp_path / "nope"))
    with pytest.raises(M2VError, match="no config.json"):
        load(str(tmp_path))
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2)).save_pretrained(tmp_path / "text_only")  # fmt: skip
    with pytest.raises(M2VError, match="'llama' checkpoint, not a supported vision-language model"):
        load(str(tmp_path / "text_only"))
    with pytest.raises(M2VError, match="does not fit base"):
        load(str(tiny_models["llava_next_video"]), adapter=str(adapters["mllama"]))
    with pytest.raises(M2VError, match="not a PEFT adapter folder"):
        load(str(tiny_models["mllama"]), adapter=str(tmp_path))
    with pytest.raises(M2VError, match="expected one of"):
        load(str(tiny_models["mllama"]), dtype="fp8")


def test_four_bit_without_bitsandbytes_is_a_clear_error(tiny_models):
    pytest.importorskip("transformers")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(M2VError, match="needs bitsandbytes"):
            load(str(tiny_models["mllama"]), quantization="4bit")
    else:
        pytest.skip("bitsandbytes is installed here: the 4-bit path is exercised on GPU machines")


def test_loglikelihood_scores_the_answer(tiny_models):
    from lmms_eval.api.instance import Instance

    from m2v_bench.models.lmms_model import M2V

    lm = M2V(pretrained=str(tiny_models["llava_next_video"]), dtype="float32")
    image = Image.new("RGB", (40, 30), "red")
    lm.task_dict = {"t": {"test": [{"image": image}]}}
    requests = [
        Instance(
            "loglikelihood",
            ("Is it offensive?", answer, lambda doc: [doc["image"]], 0, "t", "test"),
            idx=i,
            metadata={"task": "t", "doc_id": 0, "repeats": 1},
        )
        for i, answer in enumerate(["offensive", "non-offensive"])
    ]
    scores = lm.loglikelihood(requests)
    assert all(np.isfinite(s) and s < 0 for s, _ in scores)
    # the same number from the model's own loss on the answer tokens
    gen = lm.generator
    kind, payload = gen.prepare([image])
    prompt = gen.chat(kind, 1, "Is it offensive?")
    full = gen.encode([prompt + "offensive"], kind, [payload])
    n_prompt = gen.encode([prompt], kind, [payload])["input_ids"].shape[1]
    labels = full["input_ids"].clone()
    labels[:, :n_prompt] = -100
    with torch.no_grad():
        loss = lm.model(**full, labels=labels).loss
    assert scores[0][0] == pytest.approx(-loss.item() * (labels != -100).sum().item(), rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.paper_name])  # all: tests/test_families.py
def test_lmms_eval_cli_with_m2v_model(tiny_models, prepared, tmp_path, name):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "M2V_DATA_DIR": str(prepared)}
    out = tmp_path / "out"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lmms-eval"), "--model", "m2v",
         "--model_args", f"pretrained={tiny_models[name]},frames=4",
         "--tasks", "m2v,m2v_hatemm_keyframe,m2v_fhm_score",
         "--device", "cpu", "--batch_size", "4", "--output_path", str(out), "--log_samples"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    files = list(out.rglob("*_results.json"))
    assert len(files) == 1, result.stdout[-2000:] + result.stderr[-3000:]
    results = json.loads(files[0].read_text())["results"]
    for task in ("m2v_mhc", "m2v_hatemm", "m2v_fhm", "m2v_mami", "m2v_hatemm_keyframe"):  # `m2v` = the 4 tasks
        assert 0.0 <= results[task]["macro_f1,none"] <= 1.0
    assert "macro_f1,none" in json.loads(files[0].read_text())["groups"]["m2v"]
    assert 0.0 <= results["m2v_fhm_score"]["auroc,none"] <= 1.0


@pytest.mark.slow
def test_readme_built_in_wrapper_command_runs(tiny_models, prepared, tmp_path):
    """README's `llama_vision` line, on the tiny Mllama: it needs device_map in model_args under transformers 5, and
    lmms-eval writes `<output_path>/<sanitised pretrained>/<date>_results.json`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "M2V_DATA_DIR": str(prepared)}
    pretrained = tiny_models["mllama"]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lmms-eval"), "--model", "llama_vision",
         "--model_args", f"pretrained={pretrained},device_map=cpu", "--tasks", "m2v_mhc_keyframe",
         "--device", "cpu", "--limit", "4", "--output_path", str(tmp_path / "out"), "--log_samples"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    sanitised = f"{pretrained.parent.name}__{pretrained.name}"  # the last two parts of `pretrained`
    files = list((tmp_path / "out").glob("*/*_results.json"))
    assert [f.parent.name for f in files] == [sanitised], result.stderr[-3000:]
    assert 0.0 <= json.loads(files[0].read_text())["results"]["m2v_mhc_keyframe"]["macro_f1,none"] <= 1.0


def test_hub_adapters_are_downloaded_at_the_pinned_revision(tmp_path, monkeypatch):
    """adapter=org/name goes through the hub (snapshot_download, at adapter_revision); a revision of a local folder
    or of no adapter is refused; offline without a cached copy is one error naming the adapter."""
    import huggingface_hub

    from m2v_bench.errors import M2VError
    from m2v_bench.models.loading import resolve

    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: calls.append(kw) or str(folder))
    assert resolve("org/base", "org/lora", "v2") == ("org/base", str(folder))
    assert calls == [{"repo_id": "org/lora", "revision": "v2"}]
    with pytest.raises(M2VError, match="is a local folder"):
        resolve("org/base", str(folder), "v2")
    with pytest.raises(M2VError, match="no adapter is given"):
        resolve("org/base", None, "v2")
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(M2VError, match=r"adapter=m2v-bench-test/no-such-lora@v2: cannot get it from the hub"):
        resolve("org/base", "m2v-bench-test/no-such-lora", "v2")
