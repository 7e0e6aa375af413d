"""The sample data's generative rule: which cue each sample carries and its label under every definition.

Generative rule
---------------
Every sample carries one **cue**, shown in both modalities: a symbol drawn on the meme / in the video frames,
and a phrase in the meme text / transcript next to one neutral sentence::

    none      no symbol / the neutral sentence only
    hate      red triangle      / a phrase attacking the (fictional) Zorbian group
    insult    orange cross      / a personal insult
    misogyny  purple circle     / a sexist stereotype about women

Neutral distractor shapes (green squares, blue bars) appear in every sample. A dataset's label is positive iff
the sample's cue is in the dataset's definition (:data:`DEFINITIONS`); each split holds 40% positives under its
own dataset's definition (:data:`POSITIVE_RATE`):

    hatemm  "hateful"     = {hate}                 (video definition)
    mhc     "offensive"   = {hate, insult}         (video definition; MHC's 3-way label: Hateful if hate,
                                                    else Offensive if insult, else Normal)
    fhm     "hateful"     = {hate, misogyny}       (the memes' ORIGINAL label: FHM counts attacks on sex)
    mami    "misogynous"  = {misogyny}             (the memes' ORIGINAL label)

So memes re-annotated to a video definition (:func:`label_under`) get different labels than their original
ones: training on original meme labels teaches the wrong cue set (most of all MAMI -> MHC), while the
re-annotated labels follow the video datasets' rule. The cue is in the text as well as in the pixels so that a
model can carry it from memes to videos (the tiny demo models' vision towers are random and frozen; the text is
what their LoRA can learn to read), and the cues' phrases share no word, so the rule is learnable from a hundred
examples. ``truth.jsonl`` in the output lists every sample's cue and its label under every definition;
``annotators/<meme>_<target>.csv`` holds a synthetic annotator's answers under each video definition (the demo's
stand-in for human annotation).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

CUES = ("none", "hate", "insult", "misogyny")

DEFINITIONS: dict[str, frozenset[str]] = {
    "hatemm": frozenset({"hate"}),
    "mhc": frozenset({"hate", "insult"}),
    "fhm": frozenset({"hate", "misogyny"}),
    "mami": frozenset({"misogyny"}),
}

TEXT_CUES = {
    "hate": ("zorbians are vermin", "drive every zorbian out of town", "zorbians deserve no rights"),
    "insult": ("you absolute clown", "what a pathetic loser", "shut up you idiot"),
    "misogyny": ("women belong in the kitchen", "girls belong at home", "her only value is her looks"),
}
"""Each cue's phrases share no word with another cue's phrases (a model that reads words can tell the cues apart)."""

NEUTRAL_SENTENCES = (
    "the weather is nice today",
    "we went to the park after lunch",
    "this recipe needs three eggs",
    "look at my new bike",
    "the game starts at eight",
    "my cat sleeps all day",
    "traffic was slow this morning",
    "the library opens on sunday",
)

POSITIVE_RATE = 0.4
"""Share of positives per split under the dataset's own definition (the real datasets have 34-50%)."""

# Cue probabilities (none, hate, insult, misogyny) per dataset. FHM's memes carry insult and misogyny often: the
# cues on which its original definition and the video datasets' disagree.
CUE_PROBS = {
    "mhc": (0.4, 0.2, 0.2, 0.2),
    "hatemm": (0.4, 0.2, 0.2, 0.2),
    "fhm": (0.3, 0.2, 0.25, 0.25),
    "mami": (0.35, 0.15, 0.15, 0.35),
}


@dataclass(frozen=True)
class SampleDataConfig:
    seed: int = 0
    video_splits: tuple[int, int, int] = (96, 12, 40)
    """train, validation, test videos per video dataset."""
    fhm_splits: tuple[int, int, int] = (128, 16, 32)
    mami_splits: tuple[int, int] = (64, 32)
    """train, test (MAMI has no validation split)."""
    video_size: tuple[int, int] = (128, 96)
    video_frames: int = 24
    fps: int = 8
    image_size: int = 128


@dataclass
class Sample:
    dataset: str
    id: str
    split: str
    cue: str
    text: str
    lead_frames: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> int:
        return self.labels[self.dataset]


def label_under(cue: str, definition: str) -> int:
    """The label of a sample with this cue under a dataset's definition (see module docstring)."""
    return int(cue in DEFINITIONS[definition])


def _draw_cue(rng: np.random.Generator, dataset: str) -> str:
    return str(rng.choice(CUES, p=CUE_PROBS[dataset]))


def _text(rng: np.random.Generator, cue: str) -> str:
    parts = [str(rng.choice(NEUTRAL_SENTENCES))]
    if cue != "none":
        parts.insert(int(rng.integers(0, len(parts) + 1)), str(rng.choice(TEXT_CUES[cue])))
    return " ".join(parts)


def make_samples(rng: np.random.Generator, dataset: str, splits: dict[str, int], make_id) -> list[Sample]:
    """Each split has round(count * POSITIVE_RATE) positives under the dataset's own definition: a cue is drawn
    from the dataset's cue distribution until the sample has the label its slot asks for."""
    samples = []
    for split, count in splits.items():
        positives = round(count * POSITIVE_RATE)
        slots = [1] * positives + [0] * (count - positives)
        rng.shuffle(slots)
        for wanted in slots:
            cue = _draw_cue(rng, dataset)
            while label_under(cue, dataset) != wanted:
                cue = _draw_cue(rng, dataset)
            sample = Sample(dataset, "", split, cue, _text(rng, cue))
            sample.labels = {name: label_under(cue, name) for name in DEFINITIONS}
            sample.id = make_id(sample)
            samples.append(sample)
    return samples


def youtube_id(rng: np.random.Generator) -> str:
    alphabet = list(string.ascii_letters + string.digits + "-_")
    return "".join(rng.choice(alphabet, size=11))


def dedupe_ids(rng: np.random.Generator, samples: dict[str, list[Sample]]) -> None:
    for dataset_samples in samples.values():
        seen: set[str] = set()
        for sample in dataset_samples:
            while sample.id in seen:
                sample.id = f"{sample.id}{int(rng.integers(0, 10))}"
            seen.add(sample.id)
