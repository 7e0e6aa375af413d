"""Label spaces, the paper's prompt, few-shot demonstrations and the answer parser.

This module is the one place where the hate-label vocabulary lives: the lmms-eval tasks, the trainers, the
re-annotation pipeline and the leaderboard all import it.

Label spaces (binary; 1 = the positive class):

=============  ===============  ==================
label space    positive word    negative word
=============  ===============  ==================
offensive      offensive        non-offensive       (MultiHateClip: Hateful or Offensive of its 3-way label)
hateful        hateful          non-hateful         (HateMM, FHM)
misogynous     misogynous       non-misogynous      (MAMI)
=============  ===============  ==================

Answer parsing rules (:func:`parse_answer`), applied to a model's free-text response:

1. Normalise: lower-case; apostrophes are deleted ("isn't" -> "isnt"); every other character that is not a
   letter or digit becomes a space ("Non-Hateful." -> "non hateful").
2. A *negative assertion* is the negative word or a negator directly before the positive word (or one of its
   accepted forms): ``non``, ``not``, ``isnt``, ``arent``, ``wasnt``, ``never``, with or without a space
   ("nonhateful", "non hateful", "not hateful").
3. A *positive assertion* is the positive word (or an accepted form) that is not part of a negative assertion.
4. Exactly one kind asserted -> that label; both kinds -> INVALID (the answer contradicts itself); neither
   (empty, "yes", unrelated text) -> INVALID. Repetitions of one kind are fine ("Hateful. Hateful.").

INVALID answers count as wrong in every metric, as in the paper.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

Modality = Literal["image", "video"]

PROMPT_VERSION = 1
"""Bump when the text of :data:`PROMPT_TEMPLATE` or :data:`DEMONSTRATION_TEMPLATE` changes (tasks and
checkpoints record it, so results made with another prompt are never mixed up)."""

PROMPT_TEMPLATE = (
    "Text: '{text}' \n Analyze the {modality} and text to determine if the content is {positive}. "
    "Respond with '{positive}' or '{negative}'\u2014just one word, no sentences."
)
"""The paper's zero-shot prompt (Wang, Tan, Lee; WWW 2025)."""

DEMONSTRATION_TEMPLATE = (
    "Video with vision content: '{description}' and Text: '{text}'. \n "
    "Analyze the {modality} and text to determine if the content is {positive}. "
    "Respond with '{positive}' or '{negative}'\u2014just one word, no sentences. \n "
    "{answer} \n "
)
"""One few-shot demonstration as the paper's script writes it: a demonstration video's visual content is given as
the text description released with the paper (reference/*_demo_description.csv), followed by its answer."""

DEMONSTRATIONS_END = " Video with vision content as shown and "
"""Joins the demonstrations to the query prompt (the paper's wording)."""

_NEGATORS = ("non", "not", "isnt", "arent", "wasnt", "never")


class Answer(enum.IntEnum):
    """A parsed response. ``INVALID`` is neither label and counts as wrong."""

    INVALID = -1
    NEGATIVE = 0
    POSITIVE = 1


@dataclass(frozen=True)
class LabelSpace:
    """A binary label definition: the words a model must answer with."""

    name: str
    positive: str
    negative: str
    positive_forms: tuple[str, ...] = ()
    """Other spellings accepted as the positive word by the parser (e.g. "misogynistic")."""

    def word(self, label: int) -> str:
        """The answer word for a 0/1 label (the training target)."""
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        return self.positive if label == 1 else self.negative

    def prompt(self, text: str, modality: Modality) -> str:
        """The paper's prompt for one sample."""
        return PROMPT_TEMPLATE.format(text=text, modality=modality, positive=self.positive, negative=self.negative)

    def parse(self, response: str) -> Answer:
        return parse_answer(response, self)

    @property
    def _pattern(self) -> re.Pattern[str]:
        forms = "|".join(re.escape(f) for f in sorted({self.positive, *self.positive_forms}, key=len, reverse=True))
        negators = "|".join(_NEGATORS)
        # group "neg": a negator glued to or directly before a positive form; group "pos": a bare positive form.
        return re.compile(rf"\b(?P<neg>(?:{negators}) ?(?:{forms}))\b|\b(?P<pos>{forms})\b")


LABEL_SPACES: dict[str, LabelSpace] = {
    space.name: space
    for space in (
        LabelSpace("offensive", "offensive", "non-offensive"),
        LabelSpace("hateful", "hateful", "non-hateful"),
        LabelSpace("misogynous", "misogynous", "non-misogynous", positive_forms=("misogynistic",)),
    )
}


def get_label_space(name: str) -> LabelSpace:
    try:
        return LABEL_SPACES[name]
    except KeyError:
        raise KeyError(f"unknown label space {name!r}; known: {', '.join(sorted(LABEL_SPACES))}") from None


def _normalise(response: str) -> str:
    text = response.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def parse_answer(response: str | None, space: LabelSpace) -> Answer:
    """Map a free-text response to POSITIVE / NEGATIVE / INVALID (rules in the module docstring)."""
    if not response:
        return Answer.INVALID
    found = {m.lastgroup for m in space._pattern.finditer(_normalise(response))}
    if found == {"pos"}:
        return Answer.POSITIVE
    if found == {"neg"}:
        return Answer.NEGATIVE
    return Answer.INVALID


@dataclass(frozen=True)
class Demonstration:
    """A few-shot demonstration sample of a target dataset (the paper's 8 per video dataset)."""

    id: str
    label: int
    description: str
    text: str


def few_shot_prompt(text: str, space: LabelSpace, modality: Modality, demonstrations: list[Demonstration] = ()) -> str:
    """The user prompt with ``demonstrations`` before the query, in the paper's format; with none, the zero-shot
    prompt (the paper's main results use k = 0)."""
    prompt = space.prompt(text, modality)
    if not demonstrations:
        return prompt
    demos = "".join(
        DEMONSTRATION_TEMPLATE.format(
            description=demo.description,
            text=demo.text,
            modality=modality,
            positive=space.positive,
            negative=space.negative,
            answer=space.word(demo.label),
        )
        for demo in demonstrations
    )
    return demos + DEMONSTRATIONS_END + prompt
