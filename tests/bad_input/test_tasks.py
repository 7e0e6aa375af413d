"""Bad input to the lmms-eval task functions (meme images) and the m2v model's --model_args."""

from __future__ import annotations

import re

import pytest

from m2v_bench.errors import M2VError

from .harness import bomb_png, truncated_png, write

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
