"""The model-family registry: everything that differs between VLM families lives in one :class:`Family` entry.

Adding a family = one entry in :data:`FAMILIES` (its tiny builder for the tests is
:data:`m2v_bench.testing.tiny.TINY_BUILDERS`). Families are detected from a
checkpoint's ``config.json`` (``model_type``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from m2v_bench.errors import M2VError
from m2v_bench.frames import FrameSampler, FrameView
from m2v_bench.media import IMAGE_EXTENSIONS, load_image

Kind = Literal["image", "video", "text"]


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    """``config.model_type`` values of this family's checkpoints."""
    hub_id: str
    """The checkpoint the paper fine-tunes."""
    display_name: str
    """As the paper's tables name it."""
    video_input: Literal["keyframe", "frames"]
    """How a video reaches the model: the paper's keyframe as one image, or ``frames`` uniformly sampled frames."""
    nested_images: bool
    """The processor takes images per sample (``[[img], [img]]``) rather than one flat list."""
    lora_target_modules: str
    """Regex of the language model's q_proj/v_proj (not the vision tower's), for PEFT ``target_modules``."""

    def video_view(self, frames: int = 16, keyframe_threshold: float = 100.0) -> FrameView:
        if self.video_input == "keyframe":
            return FrameView.keyframe(threshold=keyframe_threshold)
        return FrameView.uniform(frames)

    def prepare_visuals(self, visuals: Sequence[Any], sampler: FrameSampler, view: FrameView) -> tuple[Kind, list]:
        """Turn what a task's doc_to_visual returns (PIL images, image paths, video paths, frame folders) into
        this family's inputs: ``("image", [PIL, ...])`` or ``("video", [uint8 array (k, H, W, 3), ...])``."""
        images, videos = [], []
        for visual in visuals:
            if isinstance(visual, Image.Image):
                images.append(visual.convert("RGB"))
            elif isinstance(visual, (str, Path)) and Path(visual).suffix.lower() in IMAGE_EXTENSIONS:
                images.append(load_image(visual))
            elif isinstance(visual, (str, Path)):
                frames = sampler.sample(visual, view)
                if view.kind == "keyframe":
                    images.extend(frames.images())
                else:
                    videos.append(frames.array)
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
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        images = [payload for kind, payload in prepared if kind == "image"]
        videos = [np.asarray(v) for kind, payload in prepared if kind == "video" for v in payload]
        if images:
            kwargs["images"] = images if self.nested_images else [img for imgs in images for img in imgs]
        if videos:
            kwargs["videos"] = videos
        return processor(**kwargs)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="mllama",
            model_types=("mllama",),
            hub_id="meta-llama/Llama-3.2-11B-Vision-Instruct",
            display_name="LLaMA-3.2-11B",
            video_input="keyframe",
            nested_images=True,
            lora_target_modules=r".*language_model.*\.(q_proj|v_proj)$",
        ),
        Family(
            name="llava_next_video",
            model_types=("llava_next_video",),
            hub_id="llava-hf/LLaVA-NeXT-Video-7B-hf",
            display_name="LLaVA-NeXT-Video-7B",
            video_input="frames",
            nested_images=False,
            lora_target_modules=r".*language_model.*\.(q_proj|v_proj)$",
        ),
    )
}


def family_for_model_type(model_type: str, where: str) -> Family:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise M2VError(
        f"{where} is a '{model_type}' checkpoint, not a supported vision-language model; "
        f"supported families: {', '.join(f'{f.name} ({f.hub_id})' for f in FAMILIES.values())}"
    )


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise M2VError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None
