"""The model-family registry: everything that differs between VLM families lives in one :class:`Family` entry.

Adding a family = one entry in :data:`FAMILIES`, its tiny builder for the tests (``m2v_bench/testing/<family>.py``,
registered in :data:`m2v_bench.testing.tiny.TINY_BUILDERS` with its real geometry) and its recipes (README, "Adding a
model family"). Families are detected from a checkpoint's ``config.json`` (``model_type``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler, FrameView
from m2v_bench.media import IMAGE_EXTENSIONS, load_image

Kind = Literal["image", "video", "text"]
VideoInput = Literal["keyframe", "video", "images"]
"""The three ways a video reaches a model: ``keyframe``, the paper's one frame as an image (Mllama); ``video``, k
uniform frames as the processor's native video input with their sampling metadata; ``images``, k uniform frames
given as k images (image-only families)."""


LANGUAGE_MODEL_QV = r".*language_model.*\.(q_proj|v_proj)$"
"""The q and v projections of the language model only: every family here names its text tower ``language_model``
(the vision towers' ``q_proj``/``v_proj`` or fused ``qkv`` never match)."""


@dataclass(frozen=True)
class Family:
    """One VLM family. The visual token counts in each entry's comment are the real checkpoint's at the defaults
    (``frames`` uniform frames of a 320x240 clip), as ``tests/test_real_shapes.py`` measures them on
    :func:`m2v_bench.testing.tiny.build_real_shape`."""

    name: str
    model_types: tuple[str, ...]
    """``config.model_type`` values of this family's checkpoints."""
    hub_id: str
    """The reference checkpoint: the paper's for its two families, the instruct model the field uses otherwise."""
    video_input: VideoInput
    nested_images: bool
    """The processor takes images per sample (``[[img], [img]]``) rather than one flat list."""
    lora_target_modules: str = LANGUAGE_MODEL_QV
    """Regex of the language model's q_proj/v_proj (not the vision tower's), for PEFT ``target_modules``."""
    paper_name: str | None = None
    """As the paper's tables name it (the paper's own two families only)."""
    frames: int = 16
    """Frames of a video by default (the paper's 16); ``frames=`` in model args and recipes overrides it."""
    video_metadata: bool = False
    """The processor takes the sampling metadata of frames sampled here (fps, frame indices) and must not sample
    again (``do_sample_frames=False``): Qwen-VL turns it into temporal positions and timestamps."""
    video_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra processor arguments for videos (e.g. never to sample frames again: they were sampled here)."""

    def video_view(self, frames: int | None = None, keyframe_threshold: float = 100.0) -> FrameView:
        if self.video_input == "keyframe":
            return FrameView.keyframe(threshold=keyframe_threshold)
        return FrameView.uniform(self.frames if frames is None else frames)

    def prepare_visuals(self, visuals: Sequence[Any], sampler: FrameSampler, view: FrameView) -> tuple[Kind, list]:
        """Turn what a task's doc_to_visual returns (PIL images, image paths, video paths, frame folders) into
        this family's inputs: ``("image", [PIL, ...])`` or ``("video", [Frames, ...])``; a video of an ``images``
        family becomes its k frames as k images."""
        images, videos = [], []
        for visual in visuals:
            if isinstance(visual, Image.Image):
                images.append(visual.convert("RGB"))
            elif isinstance(visual, (str, Path)) and Path(visual).suffix.lower() in IMAGE_EXTENSIONS:
                images.append(load_image(visual))
            elif isinstance(visual, (str, Path)):
                frames = sampler.sample(visual, view)
                if view.kind == "keyframe" or self.video_input == "images":
                    images.extend(frames.images())
                else:
                    videos.append(frames)
            else:
                raise M2VError(f"{self.name}: cannot use a visual of type {type(visual).__name__}")
        if images and videos:
            raise M2VError(f"{self.name}: a sample mixes images and videos; give one kind per sample")
        if videos:
            return "video", videos
        return ("image", images) if images else ("text", [])

    def messages(self, kind: Kind, count: int, prompt: str, answer: str | None = None) -> list[dict]:
        """Chat messages in the processors' content-list format: the visuals first, then the prompt."""
        content = [{"type": kind} for _ in range(count if kind != "text" else 0)]
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "user", "content": content}]
        if answer is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return messages

    def processor_inputs(self, processor, texts: list[str], prepared: list[tuple[Kind, list]]) -> Any:
        """Batch-encode chat-templated texts with their visuals; ``prepared`` = (kind, payload) per text, as
        :meth:`prepare_visuals` returns them. A batch may mix images and videos (LLaVA-NeXT-Video)."""
        # padding_side given explicitly: some processors (InternVL) override the tokenizer's own setting
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True,
                                  "padding_side": processor.tokenizer.padding_side}  # fmt: skip
        images = [payload for kind, payload in prepared if kind == "image"]
        videos = [frames for kind, payload in prepared if kind == "video" for frames in payload]
        if images:
            kwargs["images"] = images if self.nested_images else [img for imgs in images for img in imgs]
        if videos:
            kwargs["videos"] = [np.asarray(frames.array) for frames in videos]
            kwargs.update(self.video_kwargs)
            if self.video_metadata:
                kwargs["video_metadata"] = [sampling_metadata(frames) for frames in videos]
                kwargs["do_sample_frames"] = False
        return processor(**kwargs)


DEFAULT_FPS = 25.0
"""The frame rate assumed for a folder of extracted frames, which records none."""


def sampling_metadata(frames) -> dict:
    """What a native-video processor needs to know about frames sampled here: the clip's frame rate, its length
    and which of its frames these are (transformers' ``VideoMetadata`` fields)."""
    fps = frames.fps or DEFAULT_FPS
    return {"fps": fps, "frames_indices": list(frames.indices), "total_num_frames": int(frames.total_frames),
            "duration": frames.total_frames / fps}  # fmt: skip


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="mllama",
            model_types=("mllama",),
            hub_id="meta-llama/Llama-3.2-11B-Vision-Instruct",
            video_input="keyframe",
            nested_images=True,
            paper_name="LLaMA-3.2-11B",
        ),
        Family(
            name="llava_next_video",
            model_types=("llava_next_video",),
            hub_id="llava-hf/LLaVA-NeXT-Video-7B-hf",
            video_input="video",
            nested_images=False,
            paper_name="LLaVA-NeXT-Video-7B",
        ),
        # 16 frames of 320x240 -> 8 temporal x 9x11 merged patches = 792 video tokens (2,392 at 640x360); a
        # 560x560 meme 400. Patch 14, 2x2 merge, 2-frame temporal patches; the pixel budget is the processor's.
        Family(
            name="qwen2_5_vl",
            model_types=("qwen2_5_vl",),
            hub_id="Qwen/Qwen2.5-VL-7B-Instruct",
            video_input="video",
            nested_images=False,
            video_metadata=True,
            video_kwargs={"cap_pixels_per_frame": True},  # qwen-vl-utils' per-frame pixel cap, the reference
        ),
        # 16 frames of 320x240 -> 8 x 8x10 = 640 video tokens plus a timestamp per temporal patch (1,760 at
        # 640x360); a 560x560 meme 324. Patch 16, 2x2 merge, 2-frame temporal patches.
        Family(
            name="qwen3_vl",
            model_types=("qwen3_vl",),
            hub_id="Qwen/Qwen3-VL-8B-Instruct",
            video_input="video",
            nested_images=False,
            video_metadata=True,
            video_kwargs={"cap_pixels_per_frame": True},
        ),
        # 16 frames -> 16 x 196 pooled tokens + 1 newline = 3,137 video tokens; a 560x560 meme 3,699 (anyres_max_9:
        # 729 base + a 2x2 grid of 384-px tiles). SigLIP 384 px, patch 14.
        Family(
            name="llava_onevision",
            model_types=("llava_onevision",),
            hub_id="llava-hf/llava-onevision-qwen2-7b-ov-hf",
            video_input="video",
            nested_images=True,
            video_kwargs={"do_sample_frames": False},
        ),
        # 16 frames -> one 448-px tile each, 256 tokens a tile after pixel shuffle = 4,096 video tokens (plus
        # "FrameN: <img>...</img>" text); a 560x560 meme 256 (one tile). InternViT, patch 14.
        Family(
            name="internvl",
            model_types=("internvl",),
            hub_id="OpenGVLab/InternVL3-8B-hf",
            video_input="video",
            nested_images=False,
            video_kwargs={"do_sample_frames": False},
        ),
        # Image-only: a video is 16 frames as 16 images of 256 soft tokens = 4,096 visual tokens; a meme 256.
        # SigLIP 896 px, patch 14, pooled to 16x16.
        Family(
            name="gemma3",
            model_types=("gemma3",),
            hub_id="google/gemma-3-4b-it",
            video_input="images",
            nested_images=True,
        ),
    )
}


ADDING_A_FAMILY = "README.md, section 'Adding a model family'"


def family_for_model_type(model_type: str, where: str) -> Family:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise M2VError(
        f"{where} is a '{model_type}' checkpoint, not a supported vision-language model; "
        f"supported families: {', '.join(f'{f.name} ({f.hub_id})' for f in FAMILIES.values())}; "
        f"to add one, see {ADDING_A_FAMILY}"
    )


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise M2VError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None
