"""The real checkpoints' visual geometry on tiny language models (``m2v_bench.testing.tiny.build_real_shape``):

- LLaVA-NeXT-Video-7B: 336-px frames, patch 14 -> 24x24 patches, average-pooled with stride 2 -> 144 tokens a frame,
  2,304 visual tokens for the recipes' 16 frames; a meme (anyres, up to 672x672) takes up to 2,928.
- Llama-3.2-11B-Vision: 560-px tiles, patch 14 -> 1,601 patches a tile (40x40 + CLS), up to 4 tiles = 6,404 visual
  states reached through cross-attention; in the text, the image is one ``<|image|>`` token.

These shapes go through the collator with the real recipes' ``frames`` and ``max_length``, two training steps of
the real recipe YAMLs (4-bit and bf16 switched off: CPU) and one lmms-eval evaluation, all on CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from m2v_bench.media import write_video
from m2v_bench.models.families import FAMILIES
from m2v_bench.testing.tiny import REAL_SHAPES

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STRATEGIES = ("vid_ft", "om_ft", "rm_ft", "vid_rm_ft")

LLAVA_TOKENS_PER_FRAME = 144
"""(336 / 14 / 2) ** 2: 24x24 patches, pooled with stride 2."""
LLAVA_VIDEO_TOKENS = 2304
"""16 frames x 144."""
LLAVA_MAX_MEME_TOKENS = 2928
"""A meme at the largest square anyres grid (672x672): 576 base + 48x48 high-res features + 48 row newlines."""
MLLAMA_PATCHES_PER_TILE = 1601
"""(560 / 14) ** 2 + the class token."""
MLLAMA_TILES = 4


CLIP_SIZE = (320, 240)
"""Width, height of the clip the modern families' counts are stated for (10 s at 25 fps): their processors keep a
video's aspect ratio and resolution within a pixel budget, so the count depends on the clip's size."""
VISUAL_TOKENS = {
    "qwen2_5_vl": ("<|video_pad|>", 792),
    "qwen3_vl": ("<|video_pad|>", 640),
    "llava_onevision": ("<video>", 3137),
    "internvl": ("<IMG_CONTEXT>", 4096),
    "gemma3": ("<image_soft_token>", 4096),
}
"""16 frames of a CLIP_SIZE clip at each family's real geometry, as its FAMILIES entry states: Qwen2.5-VL 8 temporal
patches x 9x11 merged patches; Qwen3-VL 8 x 8x10; LLaVA-OneVision 16 x 196 pooled + 1 newline; InternVL 16 tiles x
256; Gemma 3 16 images x 256."""
LARGE_MEME = (1024, 1024)
"""A large meme (FHM's and MAMI's images are smaller): it must fit every recipe's max_length too."""


def recipe(family: str, strategy: str) -> dict:
    return yaml.safe_load((REPO / "recipes" / family / f"{strategy}.yaml").read_text())


@pytest.fixture(scope="module")
def real(real_shapes):
    return real_shapes


def _examples(prepared: Path, strategy: str, count: int) -> list[dict]:
    """The first ``count`` training examples of ``strategy`` (vid_ft: MHC videos; om_ft: FHM memes)."""
    from m2v_bench.trainers.data import M2VDataArguments, to_example, training_records

    args = M2VDataArguments(target="mhc", meme_source="fhm", data_dir=str(prepared))
    return [to_example(r, "mhc") for r in training_records(strategy, args)[0][:count]]


def _collator(real, name: str, strategy: str = "vid_rm_ft"):
    from transformers import AutoProcessor

    from m2v_bench.trainers.collator import AnswerOnlyCollator

    config = recipe(name, strategy)
    processor = AutoProcessor.from_pretrained(real[name])
    return processor, AnswerOnlyCollator(processor, FAMILIES[name], config["frames"], None, config["max_length"])


def test_real_shape_checkpoints_have_the_real_geometry(real):
    from transformers import AutoConfig

    llava = AutoConfig.from_pretrained(real["llava_next_video"])
    assert (llava.vision_config.image_size, llava.vision_config.patch_size) == (336, 14)
    assert (llava.spatial_pool_stride, llava.spatial_pool_mode) == (2, "average")
    assert llava.image_grid_pinpoints == [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    mllama = AutoConfig.from_pretrained(real["mllama"])
    assert (mllama.vision_config.image_size, mllama.vision_config.patch_size) == (560, 14)
    assert mllama.vision_config.max_num_tiles == MLLAMA_TILES
    assert REAL_SHAPES["mllama"]["image_size"] == 560
    assert llava.text_config.hidden_size <= 64 and mllama.text_config.hidden_size <= 64  # tiny language models


@pytest.mark.slow
def test_llava_next_video_16_frames_are_2304_tokens_within_every_recipe(real, prepared):
    processor, collator = _collator(real, "llava_next_video")
    assert collator.view.k == 16
    video_token = processor.tokenizer.convert_tokens_to_ids("<video>")
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    batch = collator(_examples(prepared, "vid_ft", 2) + _examples(prepared, "om_ft", 1))
    assert tuple(batch["pixel_values_videos"].shape) == (2, 16, 3, 336, 336)
    per_row = (batch["input_ids"] == video_token).sum(dim=1).tolist()
    assert per_row[:2] == [LLAVA_VIDEO_TOKENS] * 2 == [16 * LLAVA_TOKENS_PER_FRAME] * 2
    assert (batch["input_ids"][2] == image_token).sum() > 0  # the meme, in the same batch
    # the worst meme: the largest square anyres grid
    big = processor(text=["USER: <image>\nx ASSISTANT:"], images=[Image.new("RGB", (1344, 1344))], return_tensors="pt")
    assert (big["input_ids"] == image_token).sum() == LLAVA_MAX_MEME_TOKENS
    prompt_tokens = int(batch["attention_mask"].sum(dim=1).max()) - LLAVA_VIDEO_TOKENS
    for strategy in STRATEGIES:
        config = recipe("llava_next_video", strategy)
        assert config["frames"] == 16
        assert LLAVA_MAX_MEME_TOKENS + prompt_tokens <= config["max_length"], strategy
        assert LLAVA_VIDEO_TOKENS + prompt_tokens <= config["max_length"], strategy


@pytest.mark.slow
def test_evaluation_inputs_of_llava_next_video_are_2304_visual_tokens(real, prepared):
    """What the lmms-eval model ``m2v`` feeds the model for a video at 16 frames (Generator.encode)."""
    from m2v_bench.models.generation import Generator
    from m2v_bench.models.loading import load

    generator = Generator(load(str(real["llava_next_video"]), dtype="float32"), frames=16)
    video = _examples(prepared, "vid_ft", 1)[0]["media"]
    kind, payload = generator.prepare([video])
    assert kind == "video" and payload[0].array.shape[0] == 16
    inputs = generator.encode([generator.chat(kind, 1, "Is it offensive?")], kind, [payload])
    video_token = generator.processor.tokenizer.convert_tokens_to_ids("<video>")
    assert int((inputs["input_ids"] == video_token).sum()) == LLAVA_VIDEO_TOKENS
    assert generator.generate([("Is it offensive?", [video])])[0] is not None


@pytest.mark.slow
def test_mllama_560px_tiles_up_to_4_within_every_recipe(real, prepared):
    import torch
    from transformers import AutoModelForImageTextToText

    processor, collator = _collator(real, "mllama")
    batch = collator(_examples(prepared, "vid_ft", 1) + _examples(prepared, "om_ft", 1))
    assert tuple(batch["pixel_values"].shape[-3:]) == (3, 560, 560)
    assert batch["pixel_values"].shape[2] == MLLAMA_TILES
    big = processor(text=["<|image|>x"], images=[[Image.new("RGB", (1120, 1120))]], return_tensors="pt")
    assert int(big["aspect_ratio_mask"].sum()) == MLLAMA_TILES  # a large image fills all 4 tiles
    model = AutoModelForImageTextToText.from_pretrained(real["mllama"])
    with torch.inference_mode():
        states = model.model.vision_model(big["pixel_values"], big["aspect_ratio_ids"], big["aspect_ratio_mask"])
    assert states.last_hidden_state.shape[2:4] == (MLLAMA_TILES, MLLAMA_PATCHES_PER_TILE)  # 6,404 visual states
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image|>")
    assert ((batch["input_ids"] == image_token).sum(dim=1) == 1).all()  # one text token per image
    longest = int(batch["attention_mask"].sum(dim=1).max())
    for strategy in STRATEGIES:
        assert longest <= recipe("mllama", strategy)["max_length"], strategy


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mllama", "llava_next_video"])  # the others: the collator test below
def test_two_training_steps_of_the_real_recipe_then_an_evaluation(real, prepared, tmp_path, name):
    """The real recipe YAML (frames 16, its max_length, gradient checkpointing, LoRA r=8) at the real shapes; only
    4-bit and bf16 are switched off for the CPU (tests/test_gpu.py runs them on a GPU)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    adapter = tmp_path / "adapter"
    cmd = [str(BIN / "python"), str(REPO / "recipes" / "vid_ft.py"), "--config",
           str(REPO / "recipes" / name / "vid_ft.yaml"), "--model_name_or_path", str(real[name]), "--data_dir",
           str(prepared), "--output_dir", str(adapter), "--load_in_4bit", "false", "--bf16", "false", "--dtype",
           "float32", "--use_cpu", "true", "--max_steps", "2", "--per_device_train_batch_size", "2",
           "--gradient_accumulation_steps", "1", "--save_strategy", "no", "--logging_steps", "1"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((adapter / "m2v_provenance.json").read_text())
    assert provenance["steps"] == 2 and provenance["frames"] == 16
    assert provenance["training"]["max_length"] == recipe(name, "vid_ft")["max_length"]
    out = tmp_path / "eval"
    cmd = [str(BIN / "lmms-eval"), "--model", "m2v", "--model_args", f"pretrained={adapter},frames=16", "--tasks",
           "m2v_mhc", "--limit", "4", "--device", "cpu", "--batch_size", "2", "--output_path", str(out),
           "--log_samples"]  # fmt: skip
    result = subprocess.run(cmd, env={**env, "M2V_DATA_DIR": str(prepared)}, capture_output=True, text=True,
                            timeout=900)  # fmt: skip
    results = list(out.rglob("*_results.json"))
    assert results, result.stderr[-3000:]
    samples = list(out.rglob("*_samples_m2v_mhc.jsonl"))
    assert samples and len(samples[0].read_text().splitlines()) == 4
    assert "m2v_mhc" in json.loads(results[0].read_text())["results"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VISUAL_TOKENS))
def test_16_frames_are_the_stated_visual_tokens_within_every_recipe(real, prepared, tmp_path, name):
    rng = np.random.default_rng(0)
    width, height = CLIP_SIZE
    clip = write_video(tmp_path / "clip.mp4", (rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
                                               for _ in range(250)), fps=25)  # fmt: skip
    meme = tmp_path / "meme.png"
    Image.fromarray(rng.integers(0, 255, (*LARGE_MEME[::-1], 3), dtype=np.uint8)).save(meme)
    processor, collator = _collator(real, name)
    assert collator.view.k == 16 == FAMILIES[name].frames
    video, image = _examples(prepared, "vid_ft", 1)[0], _examples(prepared, "om_ft", 1)[0]
    batch = collator([{**video, "media": str(clip)}, {**image, "media": str(meme)}])
    token, expected = VISUAL_TOKENS[name]
    assert int((batch["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids(token)).sum()) == expected
    if name == "qwen3_vl":  # the sampling metadata reached the processor: timestamps of frames 0 .. 234 at 25 fps
        text = processor.tokenizer.decode(batch["input_ids"][0])
        assert "<0.3 seconds>" in text and "<9.0 seconds>" in text
    longest = int(batch["attention_mask"].sum(dim=1).max())
    for strategy in STRATEGIES:
        config = recipe(name, strategy)
        assert config["frames"] == 16 and longest <= config["max_length"], (strategy, longest)
