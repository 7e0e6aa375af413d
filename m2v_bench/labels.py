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

Answer parsing (:func:`parse_answer`, versioned by :data:`PARSER_VERSION`): instruction-tuned models often ignore
"just one word", so the parser reads a response as a careful reader would. In order:

1. **Empty** -> INVALID.
2. **An explicit choice decides**: ``<pos> or <neg>: <label>`` and ``answer: <label>`` (also ``label``,
   ``classification``, ``verdict``) pick that label.
3. **A leading answer decides**: when the first sentence is a label and nothing else ("Non-hateful. The video
   shows..."; fillers such as "the answer is" are allowed), the rest is explanation.
4. **Refusals and hedges are INVALID**: "I cannot determine...", "As an AI...", "without more context", "it is
   difficult to say", "I'm not sure"; and a label in a clause with "may", "might", "could", "possibly",
   "potentially", "perhaps", "maybe", "arguably" ("could be seen as offensive").
5. **Every label mention is read in its clause** (clauses end at . ! ? ; : , newlines, "but", "however",
   "although", "though", "whereas"; questions are skipped, so an echoed "Is it hateful?" asserts nothing). A
   mention is the positive word or a form of it ("misogynistic"), or the negative word ("non-hateful",
   "nonhateful", "non hateful", "inoffensive"). A negator anywhere before it in the clause flips it once: "not",
   "no", "nothing", "none", "neither", "nor", "never", "hardly", "barely", "scarcely", "without", "lacks",
   "cannot", and the n't forms ("does not appear to be hateful", "no hateful content", "neither hateful nor
   offensive", "I don't think it's hateful", "not non-hateful" = hateful).
6. **All mentions agree** -> that label; they disagree -> INVALID (a contradiction).
7. **No mention**: a bare "Yes" / "No" (or a response that starts with one) answers the prompt's question
   "determine if the content is <positive>": yes -> POSITIVE, no -> NEGATIVE. Anything else -> INVALID.

INVALID answers count as wrong in every metric, as in the paper (see :mod:`m2v_bench.metrics` for both scoring
conventions). A label word of another label space ("offensive" when asked "hateful") is no mention.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

Modality = Literal["image", "video"]

PARSER_VERSION = 2
"""Bump when the answer-parsing rules change (results and per-sample logs record it next to PROMPT_VERSION)."""

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

_NEGATORS = frozenset(
    [
        "not",
        "no",
        "nothing",
        "none",
        "neither",
        "nor",
        "never",
        "hardly",
        "barely",
        "scarcely",
        "without",
        "lacks",
        "lack",
        "cannot",
        "cant",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "doesnt",
        "dont",
        "didnt",
        "wont",
        "wouldnt",
        "shouldnt",
        "couldnt",
        "aint",
        "nobody",
        "nowhere",
    ]
)
_HEDGES = frozenset(["may", "might", "could", "possibly", "potentially", "perhaps", "maybe", "arguably"])
_REFUSAL = re.compile(
    r"\b(?:i (?:cannot|cant|can not|am unable to|im unable to|am not able to|im not able to|wont|will not|"
    r"must decline to|refuse to|dont|do not)(?: \w+)? (?:determine|judge|make|decide|classify|assess|provide|help|"
    r"answer|tell|say|evaluate|comply|label|categorize|know)|as an ai|(?:cannot|cant|unable to|not able to|"
    r"impossible to|difficult to|hard to|not possible to) (?:determine|say|tell|judge|assess|classify)|"
    r"cannot be determined|(?:without|need|needs|requires) (?:more|additional|further) (?:context|information)|"
    r"not enough (?:context|information)|insufficient (?:context|information)|it depends|not sure|im sorry|"
    r"i am sorry)\b"
)
"""Refusals and "cannot tell" answers (on the response's lower-cased words, apostrophes removed)."""
_IDIOMS = re.compile(r"\b(?:no doubt|without a doubt|without doubt|no question|not only|not just|not merely)\b")
"""Negator words that negate nothing ("there is no doubt it is hateful", "not only offensive but also ...")."""
_CLAUSE_BREAK = re.compile(r"[.!?;:,\n]|\b(?:but|however|although|though|whereas)\b")
_FILLERS = frozenset(
    [
        "the",
        "a",
        "my",
        "final",
        "answer",
        "response",
        "label",
        "classification",
        "verdict",
        "is",
        "it",
        "its",
        "this",
        "content",
        "video",
        "image",
        "meme",
        "i",
        "would",
        "say",
        "think",
    ]
)


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
    negative_forms: tuple[str, ...] = ()
    """Single words that mean the negative label (e.g. "inoffensive")."""

    def word(self, label: int) -> str:
        """The answer word for a 0/1 label (the training target)."""
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        return self.positive if label == 1 else self.negative

    def prompt(self, text: str, modality: Modality) -> str:
        """The paper's prompt for one sample."""
        return PROMPT_TEMPLATE.format(text=text, modality=modality, positive=self.positive, negative=self.negative)

    def parse(self, response: str | None) -> Answer:
        """A model's free-text answer (the rules of the module docstring)."""
        return parse_answer(response, self)

    def parse_word(self, text: str) -> Answer:
        """Strict: exactly the positive or the negative word (any case, '-', '_' or ' ' in "non-X"), else INVALID.
        For labels people type (annotation files), where "yes" or a sentence is a mistake, not an answer."""
        tokens = _tokens(text)
        if tokens in ([p] for p in self._positive_tokens):
            return Answer.POSITIVE
        return Answer.NEGATIVE if self._negative_at(tokens, 0) == len(tokens) and tokens else Answer.INVALID

    @property
    def _positive_tokens(self) -> frozenset[str]:
        return frozenset({self.positive, *self.positive_forms})

    def _negative_at(self, tokens: list[str], i: int) -> int:
        """The end of a negative-word mention starting at token i ("non X", "nonX", "inoffensive"), or 0."""
        if i < len(tokens) and tokens[i] in self.negative_forms:
            return i + 1
        if i < len(tokens) and tokens[i].startswith("non") and tokens[i][3:] in self._positive_tokens:
            return i + 1
        if i + 1 < len(tokens) and tokens[i] == "non" and tokens[i + 1] in self._positive_tokens:
            return i + 2
        return 0

    def _mentions(self, tokens: list[str]) -> list[tuple[int, int]]:
        """(start, polarity) of every label mention in a clause: +1 positive word, -1 negative word."""
        found, i = [], 0
        while i < len(tokens):
            end = self._negative_at(tokens, i)
            if end:
                found.append((i, -1))
                i = end
                continue
            if tokens[i] in self._positive_tokens:
                found.append((i, +1))
            i += 1
        return found

    def _label_expression(self, tokens: list[str]) -> Answer:
        """The answer when the tokens, fillers removed, are one label and nothing else ("not X" included)."""
        core = [t for t in tokens if t not in _FILLERS]
        flip = False
        while core and core[0] in ("not", "isnt"):
            core, flip = core[1:], not flip
        if not core:
            return Answer.INVALID
        if core == [core[0]] and core[0] in self._positive_tokens:
            polarity = 1
        elif self._negative_at(core, 0) == len(core):
            polarity = -1
        else:
            return Answer.INVALID
        return Answer.POSITIVE if (polarity > 0) != flip else Answer.NEGATIVE


LABEL_SPACES: dict[str, LabelSpace] = {
    space.name: space
    for space in (
        LabelSpace("offensive", "offensive", "non-offensive", negative_forms=("inoffensive",)),
        LabelSpace("hateful", "hateful", "non-hateful"),
        LabelSpace("misogynous", "misogynous", "non-misogynous", positive_forms=("misogynistic",)),
    )
}


def get_label_space(name: str) -> LabelSpace:
    try:
        return LABEL_SPACES[name]
    except KeyError:
        raise KeyError(f"unknown label space {name!r}; known: {', '.join(sorted(LABEL_SPACES))}") from None


def _tokens(text: str) -> list[str]:
    """Lower-case words; apostrophes vanish ("isn't" -> "isnt"), every other non-alphanumeric is a separator."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return re.findall(r"[a-z0-9]+", text)


def _clauses(response: str) -> list[list[str]]:
    """The response's clauses as token lists, without the clauses of questions."""
    clauses = []
    for sentence in re.split(r"(?<=[.!?\n])", response):
        if sentence.rstrip().endswith("?"):
            continue
        clauses.extend(_tokens(_IDIOMS.sub(" ", " ".join(_tokens(part)))) for part in _CLAUSE_BREAK.split(sentence))
    return [c for c in clauses if c]


_EXPLICIT = re.compile(
    r"(?:\b(?:answer|label|classification|verdict)\b|\bor\s+[^\s:]+)\s*(?:is\s*)?[:=]\s*([^.\n,;]+)", re.IGNORECASE
)


def parse_answer(response: str | None, space: LabelSpace) -> Answer:
    """Map a free-text response to POSITIVE / NEGATIVE / INVALID (rules in the module docstring)."""
    if not response or not response.strip():
        return Answer.INVALID
    for match in reversed(list(_EXPLICIT.finditer(response))):  # 2. an explicit choice; the last one counts
        explicit = space._label_expression(_tokens(match.group(1)))
        if explicit is not Answer.INVALID:
            return explicit
    sentences = [t for t in re.split(r"(?<=[.!?\n])\s*", response.strip()) if t.strip()]
    bare = [space._label_expression(_tokens(t)) for t in sentences if not t.rstrip().endswith("?")]
    leading = Answer.INVALID if sentences[0].rstrip().endswith("?") else bare[0]
    if leading is not Answer.INVALID:  # 3. a leading answer, unless another bare-label sentence says the opposite
        return Answer.INVALID if any(b not in (leading, Answer.INVALID) for b in bare) else leading
    if _REFUSAL.search(" ".join(_tokens(response))):  # 4. refusals
        return Answer.INVALID
    polarities = set()
    for clause in _clauses(response):  # 5. every mention in its clause
        for start, polarity in space._mentions(clause):
            before = set(clause[:start])
            if before & _HEDGES:
                return Answer.INVALID
            polarities.add(-polarity if before & _NEGATORS else polarity)
    if polarities == {1}:
        return Answer.POSITIVE
    if polarities == {-1}:
        return Answer.NEGATIVE
    if polarities:
        return Answer.INVALID  # 6. a contradiction
    answers = [_tokens(t) for t in sentences if not t.rstrip().endswith("?")]
    first_word = next((words[0] for words in answers if words), "")  # 7. yes / no
    if first_word in ("yes", "yeah", "yep"):
        return Answer.POSITIVE
    if first_word in ("no", "nope"):
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
