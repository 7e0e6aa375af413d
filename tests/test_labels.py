import pytest

from m2v_bench.labels import (
    LABEL_SPACES,
    PROMPT_TEMPLATE,
    Answer,
    Demonstration,
    few_shot_prompt,
    get_label_space,
    parse_answer,
)

HATEFUL = LABEL_SPACES["hateful"]
OFFENSIVE = LABEL_SPACES["offensive"]
MISOGYNOUS = LABEL_SPACES["misogynous"]
P, N, X = Answer.POSITIVE, Answer.NEGATIVE, Answer.INVALID

PARSER_CASES = [
    # the forms named in the foundation issue
    (HATEFUL, "non-hateful", N),
    (HATEFUL, "Non-Hateful.", N),
    (HATEFUL, "not hateful", N),
    (OFFENSIVE, "'non-offensive'", N),
    (OFFENSIVE, "NON OFFENSIVE", N),
    (HATEFUL, "hateful", P),
    (HATEFUL, "Hateful!", P),
    (HATEFUL, "", X),
    (HATEFUL, "hateful, non-hateful", X),
    (HATEFUL, "The weather is nice.", X),
    # more spellings of the negative
    (HATEFUL, "nonhateful", N),
    (HATEFUL, "non_hateful", N),
    (HATEFUL, "Non hateful", N),
    (HATEFUL, "  non-hateful\n", N),
    (HATEFUL, "The content is not hateful.", N),
    (HATEFUL, "It isn't hateful", N),
    (HATEFUL, "\u201cNon-hateful\u201d", N),
    (OFFENSIVE, "Non-offensive.", N),
    (OFFENSIVE, "**non-offensive**", N),
    (MISOGYNOUS, "non-misogynous", N),
    (MISOGYNOUS, "Not misogynistic.", N),
    (HATEFUL, "Non-Hateful. Non-Hateful.", N),
    # more spellings of the positive
    (OFFENSIVE, "Offensive", P),
    (OFFENSIVE, "OFFENSIVE.", P),
    (OFFENSIVE, "'offensive'", P),
    (HATEFUL, "Answer: hateful", P),
    (HATEFUL, "The video is hateful because it attacks a group.", P),
    (MISOGYNOUS, "Misogynous", P),
    (MISOGYNOUS, "misogynistic", P),
    (HATEFUL, "hateful hateful", P),
    # invalid: empty, contradictory, unrelated, other label space
    (HATEFUL, None, X),
    (HATEFUL, "   ", X),
    (HATEFUL, "Hateful or non-hateful", X),
    (OFFENSIVE, "offensive / non-offensive", X),
    (HATEFUL, "yes", P),  # the prompt asks "determine if the content is hateful"
    (HATEFUL, "no", N),
    (HATEFUL, "?!", X),
    (HATEFUL, "I cannot determine that.", X),
    (HATEFUL, "offensive", X),
    (OFFENSIVE, "hateful", X),
    (HATEFUL, "hatefulness", X),
]


@pytest.mark.parametrize(("space", "response", "expected"), PARSER_CASES)
def test_parse_answer(space, response, expected):
    assert parse_answer(response, space) is expected


def test_parser_table_is_large_enough():
    assert len(PARSER_CASES) >= 30
    assert {expected for _, _, expected in PARSER_CASES} == {P, N, X}


def test_prompt_is_the_papers():
    prompt = OFFENSIVE.prompt("some transcript", "video")
    assert prompt == (
        "Text: 'some transcript' \n Analyze the video and text to determine if the content is offensive. "
        "Respond with 'offensive' or 'non-offensive'\u2014just one word, no sentences."
    )
    assert HATEFUL.prompt("t", "image").startswith("Text: 't' \n Analyze the image and text")
    assert PROMPT_TEMPLATE.count("{positive}") == 2


@pytest.mark.parametrize(("space", "label", "word"), [(HATEFUL, 1, "hateful"), (MISOGYNOUS, 0, "non-misogynous")])
def test_word_round_trips_through_parser(space, label, word):
    assert space.word(label) == word
    assert parse_answer(space.word(label), space) == label


def test_word_rejects_non_binary_label():
    with pytest.raises(ValueError, match="0 or 1"):
        HATEFUL.word(2)


def test_unknown_label_space_names_the_known_ones():
    with pytest.raises(KeyError, match="hateful"):
        get_label_space("toxic")


def test_few_shot_prompt_is_the_papers_format():
    demos = [Demonstration("a", 1, "a man shouting", "go away"), Demonstration("b", 0, "a cat", "meow")]
    prompt = few_shot_prompt("query text", OFFENSIVE, "video", demos)
    respond = "Respond with 'offensive' or 'non-offensive'\u2014just one word, no sentences."
    analyze = "Analyze the video and text to determine if the content is offensive. "
    assert prompt == (
        f"Video with vision content: 'a man shouting' and Text: 'go away'. \n {analyze}{respond} \n offensive \n "
        f"Video with vision content: 'a cat' and Text: 'meow'. \n {analyze}{respond} \n non-offensive \n "
        f" Video with vision content as shown and Text: 'query text' \n {analyze}{respond}"
    )
    assert few_shot_prompt("q", HATEFUL, "image") == HATEFUL.prompt("q", "image")


# --- the corpus of realistic answers (tests/parser_corpus.py) -------------------------------------------------

from parser_corpus import CORPUS  # noqa: E402

EXPECTED = {"P": Answer.POSITIVE, "N": Answer.NEGATIVE, "X": Answer.INVALID}


def test_corpus_is_large_and_covers_every_label_space():
    assert len(CORPUS) >= 150
    for space in LABEL_SPACES:
        labels = {expected for name, _, expected in CORPUS if name == space}
        assert labels == {"P", "N", "X"}, space


@pytest.mark.parametrize(("space", "response", "expected"), CORPUS, ids=lambda v: str(v)[:40])
def test_corpus_answer_gets_the_readers_label(space, response, expected):
    assert parse_answer(response, LABEL_SPACES[space]) is EXPECTED[expected]


def test_no_negated_or_refusing_corpus_answer_parses_positive():
    wrong = [(s, r) for s, r, e in CORPUS if e != "P" and parse_answer(r, LABEL_SPACES[s]) is Answer.POSITIVE]
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("hateful", P), ("Hateful", P), ("non-hateful", N), ("Non_Hateful", N), ("non hateful", N), ("nonhateful", N),
     ("yes", X), ("no", X), ("2", X), ("not hateful", X), ("The content is hateful.", X), ("", X)],
)  # fmt: skip
def test_parse_word_takes_only_the_label_words(text, expected):
    assert HATEFUL.parse_word(text) is expected
