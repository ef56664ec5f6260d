"""Retrieval: the words compared, how a lesson is cut into passages, and BM25 ranking the
passage that uses the question's words first."""

import pytest

from apps.learning.tutor.base import Lesson
from apps.learning.tutor.retrieval import (
    MIN_PASSAGE_CHARS,
    PassageIndex,
    split_passages,
    stem,
    tokenize,
)
from tests.learning.tutor.samples import CONVOLUTIONS, LESSONS, MLP_XOR, RECURRENT


def test_tokenize_lowercases_keeps_letters_and_digits_and_drops_stop_words():
    assert tokenize("What is the Conv2d layer's 3x3 kernel?") == [
        "conv2d",
        "layer",
        "3x3",
        "kernel",
    ]
    assert tokenize("snake_case, hyphen-ated; (parens)") == [
        "snake",
        "case",
        "hyphen",
        "ated",
        "paren",
    ]
    assert tokenize("") == []
    assert tokenize("Why is it so?") == []


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("layers", "layer"),
        ("batches", "batch"),
        ("boxes", "box"),
        ("classes", "class"),
        ("losses", "loss"),
        ("probabilities", "probability"),
        ("loss", "loss"),
        ("weights", "weight"),
        ("sequences", "sequence"),
        ("bias", "bias"),
        ("focus", "focus"),
        ("axis", "axis"),
        ("gas", "gas"),
        ("convolution", "convolution"),
    ],
)
def test_stem_makes_plurals_singular(word, stemmed):
    assert stem(word) == stemmed


def test_passages_follow_sections_and_keep_code_and_tables_with_their_paragraph():
    passages = split_passages(MLP_XOR)
    assert [p.heading for p in passages] == ["", "Why one layer is not enough", "A hidden layer"]
    assert all(p.lesson_id == 11 and p.url == MLP_XOR.url for p in passages)
    assert passages[0].text.startswith("A perceptron computes")
    # The table stays with the paragraph that introduces it...
    assert passages[1].text.startswith("XOR outputs 1")
    assert "| 1  | 1  | 0   |" in passages[1].text
    # ...and the code block with its paragraph, the paragraph after it merged in (the section's
    # last block is short); Markdown source kept as written.
    assert "```python\nmodel = nn.Sequential(" in passages[2].text
    assert passages[2].text.endswith("a small step against it.")
    # Headings are not repeated in the text.
    assert not any(p.text.startswith("#") for p in passages)


def test_short_paragraphs_are_merged_and_lists_stay_with_their_paragraph():
    lesson = Lesson(1, "Short", "/l/1/", "# Title\n\nOne.\n\nTwo.\n\n- three\n- four\n\nFive.\n")
    [passage] = split_passages(lesson)
    assert passage.heading == "Title"
    assert passage.text == "One.\n\nTwo.\n\n- three\n- four\n\nFive."

    long = "word " * (MIN_PASSAGE_CHARS // 5 + 1)
    lesson = Lesson(2, "Long", "/l/2/", f"{long}\n\n{long}\n\nshort tail\n")
    texts = [p.text for p in split_passages(lesson)]
    assert len(texts) == 2
    assert texts[1].endswith("short tail")  # a short last block joins the one before


def test_empty_lesson_has_no_passages_and_an_empty_index_finds_nothing():
    assert split_passages(Lesson(1, "Empty", "/l/1/", "")) == []
    assert PassageIndex([]).search("anything") == []


@pytest.mark.parametrize(
    ("question", "lesson", "heading"),
    [
        ("Why can't a single linear layer learn XOR?", MLP_XOR, "Why one layer is not enough"),
        ("What do padding and stride do?", CONVOLUTIONS, "Padding and stride"),
        ("How does max pooling change the feature map?", CONVOLUTIONS, "Pooling"),
        ("Why do gradients vanish in a recurrent network?", RECURRENT, "Vanishing gradients"),
        ("what is a convolution", CONVOLUTIONS, "Convolutions"),
    ],
)
def test_the_passage_using_the_questions_words_ranks_first(question, lesson, heading):
    results = PassageIndex.from_lessons(LESSONS).search(question, k=3)
    assert results[0].passage.lesson_id == lesson.lesson_id
    assert results[0].passage.heading == heading
    assert all(r.score > 0 for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_a_question_sharing_no_word_with_the_lessons_finds_nothing():
    index = PassageIndex.from_lessons(LESSONS)
    assert index.search("What's the capital of France?") == []
    assert not index.scores("capital France").any()


def test_context_reranks_but_does_not_make_an_unrelated_question_relevant():
    index = PassageIndex.from_lessons(LESSONS)
    context = "How does max pooling work?"
    assert index.search("capital of France", context=context) == []
    # A follow-up with no words of its own is searched as its context.
    [first, *_] = index.search("Why?", context=context)
    assert first.passage.heading == "Pooling"
