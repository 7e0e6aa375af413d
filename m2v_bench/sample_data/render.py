"""Rendering a sample's cue: a PNG meme with its text, or video frames with the cue symbol drifting across."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from m2v_bench.sample_data.rule import Sample, SampleDataConfig

COLOURS = {"hate": (220, 30, 30), "insult": (255, 140, 0), "misogyny": (150, 40, 200)}


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth two-colour gradient (grey-level variance well above the keyframe threshold of 100)."""
    a, b = rng.integers(30, 225, size=(2, 3))
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    row = (a[None, None, :] * (1 - t) + b[None, None, :] * t).astype(np.float32)
    return np.repeat(row, height, axis=0)


def _draw_symbol(draw: ImageDraw.ImageDraw, cue: str, cx: float, cy: float, r: float) -> None:
    if cue == "hate":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLOURS[cue])
    elif cue == "insult":
        w = max(2, int(r / 2))
        draw.line([(cx - r, cy - r), (cx + r, cy + r)], fill=COLOURS[cue], width=w)
        draw.line([(cx - r, cy + r), (cx + r, cy - r)], fill=COLOURS[cue], width=w)
    elif cue == "misogyny":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLOURS[cue])


def _draw_distractors(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    for _ in range(2):
        x, y = rng.integers(0, width - 12), rng.integers(0, height - 12)
        draw.rectangle([x, y, x + 10, y + 10], fill=(40, 170, 70))
    x = rng.integers(0, width - 24)
    draw.rectangle([x, height - 8, x + 24, height - 4], fill=(40, 90, 220))


def render_meme(rng: np.random.Generator, sample: Sample, size: int) -> Image.Image:
    image = Image.fromarray(_background(rng, size, size).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    _draw_distractors(draw, rng, size, size)
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    _draw_symbol(draw, sample.cue, cx, cy * 0.8, size * 0.15)
    font = ImageFont.load_default()
    words, lines, line = sample.text.split(), [], ""
    for word in words:  # wrap to the image width
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) > size - 8 and line:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    y = size - 4 - 11 * len(lines[-4:])
    for text_line in lines[-4:]:
        draw.text((4, y), text_line, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        y += 11
    return image


def render_video_frames(rng: np.random.Generator, sample: Sample, config: SampleDataConfig) -> list[np.ndarray]:
    """Black lead-in frames (a keyframe sampler must skip them), then the scene: background, distractors and
    the cue symbol drifting across the frame."""
    width, height = config.video_size
    background = Image.fromarray(_background(rng, width, height).astype(np.uint8))
    _draw_distractors(ImageDraw.Draw(background), rng, width, height)
    start = rng.uniform(0.25, 0.75, size=2) * (width, height)
    velocity = rng.uniform(-1.5, 1.5, size=2)
    frames = []
    for index in range(config.video_frames):
        if index < sample.lead_frames:
            frames.append(np.zeros((height, width, 3), dtype=np.uint8))
            continue
        frame = background.copy()
        radius = height * 0.15
        cx, cy = np.clip(start + velocity * index, radius, (width - radius, height - radius))
        _draw_symbol(ImageDraw.Draw(frame), sample.cue, cx, cy, radius)
        frames.append(np.asarray(frame))
    return frames
