"""The built-in tutor: answers quote the right lesson and cite exactly it, add the learner's run
diagnosis and weak skill when they bear on the question, say honestly when the lessons do not
cover it, and stream word by word."""

import pytest

from apps.learning.tutor.base import (
    Citation,
    DiagnosisNote,
    Lesson,
    SkillMastery,
    Turn,
    TutorRequest,
)
from apps.learning.tutor.grounded import NO_ANSWER, GroundedTutor, prose_sentences
from tests.learning.tutor.samples import (
    CONVOLUTIONS,
    LESSONS,
    MLP_XOR,
    RECURRENT,
    collect,
    split_events,
)

DIAGNOSIS = DiagnosisNote(
    "Loss is flat", "The loss stayed at 0.69 for 500 epochs: try a larger hidden layer."
)


def ask(question: str, **kwargs) -> tuple[str, list, object]:
    request = TutorRequest(question, LESSONS, **kwargs)
    chunks, done = split_events(collect(GroundedTutor().answer(request)))
    return "".join(c.text for c in chunks), chunks, done


def citation(lesson: Lesson) -> Citation:
    return Citation(lesson.lesson_id, lesson.title, lesson.url)


@pytest.mark.parametrize(
    ("question", "lesson", "quoted"),
    [
        (
            "Why can't a single linear layer learn XOR?",
            MLP_XOR,
            "so a single linear layer cannot learn XOR, however long it trains.",
        ),
        (
            "What do padding and stride do?",
            CONVOLUTIONS,
            "Padding adds a border of zeros around the image so the output keeps its size",
        ),
        (
            "How do LSTM and GRU cells help with vanishing gradients?",
            RECURRENT,
            "the vanishing gradient problem.",
        ),
    ],
)
def test_answers_with_the_lessons_words_and_cites_exactly_that_lesson(question, lesson, quoted):
    text, _, done = ask(question)
    assert quoted in text
    assert done.citations == [citation(lesson)]
    assert text.endswith(f"(see lesson: {lesson.title})")
    for other in LESSONS:
        if other is not lesson:
            assert other.title not in text


def test_the_stream_is_word_sized_chunks_that_join_to_the_whole_answer():
    tutor = GroundedTutor()
    request = TutorRequest("What does max pooling do?", LESSONS)
    text, citations = tutor.compose(request)
    chunks, done = split_events(collect(tutor.answer(request)))
    assert len(chunks) > 10
    assert "".join(c.text for c in chunks) == text
    assert all(len(c.text.split()) == 1 for c in chunks)
    assert done.citations == citations == [citation(CONVOLUTIONS)]
    # Tokens are words: the question's, and the answer's.
    assert done.prompt_tokens == 5
    assert done.completion_tokens == len(text.split())


def test_the_latest_run_diagnosis_is_included_when_the_question_is_about_the_learners_work():
    text, _, done = ask("Why does my XOR network not learn?", diagnosis=[DIAGNOSIS])
    assert f"Your latest run: {DIAGNOSIS.title}: {DIAGNOSIS.message}" in text
    assert "cannot learn XOR" in text
    assert done.citations == [citation(MLP_XOR)]


def test_a_diagnosis_unrelated_to_the_question_is_left_out():
    text, _, _ = ask("What does max pooling do?", diagnosis=[DIAGNOSIS])
    assert "Your latest run" not in text


def test_the_weakest_relevant_skill_is_noted():
    mastery = [
        SkillMastery("backpropagation", 0.3),
        SkillMastery("pooling", 0.9),
        SkillMastery("recurrent networks", 0.1),
    ]
    text, _, _ = ask("How are the weights learned by backpropagation?", mastery=mastery)
    assert "Your mastery of backpropagation is still low (about 30%)" in text
    # The recurrent skill is weaker, but the question is not about it.
    assert "recurrent" not in text.lower()
    text, _, _ = ask("What does max pooling do?", mastery=mastery)
    assert "mastery" not in text  # pooling is mastered


def test_a_question_spanning_two_lessons_quotes_and_cites_both():
    mastery = [SkillMastery("gradient descent", 0.2)]
    text, _, done = ask(
        "How does the gradient flow backwards in backpropagation, and why does it vanish in a "
        "recurrent network?",
        mastery=mastery,
    )
    assert done.citations == [citation(RECURRENT), citation(MLP_XOR)]
    assert text.index("From “Recurrent networks”") < text.index("From “Multilayer perceptrons")
    assert "the vanishing gradient problem." in text
    assert "the gradient of the loss flows backwards" in text
    assert "Your mastery of gradient descent" in text  # a quoted sentence names it
    assert text.endswith(f"(see lesson: {RECURRENT.title}) (see lesson: {MLP_XOR.title})")

    text, _, _ = ask("Compare max pooling and a hidden layer with ReLU", mastery=mastery)
    assert "mastery" not in text  # nothing quoted names it


def test_an_unrelated_question_gets_an_honest_no_answer_and_no_citation():
    text, chunks, done = ask("What's the capital of France?")
    assert text == NO_ANSWER
    assert "teacher" in text
    assert done.citations == []
    assert len(chunks) > 1


def test_an_unrelated_question_about_a_run_still_gets_the_diagnosis_but_no_citation():
    note = DiagnosisNote("Loss became NaN", "Lower the learning rate.")
    text, _, done = ask("Why does my run print NaN?", diagnosis=[note])
    assert "Your latest run: Loss became NaN: Lower the learning rate." in text
    assert "teacher" in text
    assert done.citations == []


def test_a_follow_up_is_answered_from_the_previous_question():
    history = [Turn("user", "How does max pooling work?"), Turn("assistant", "It keeps...")]
    text, _, done = ask("Why?", history=history)
    assert "Max pooling keeps the largest value" in text
    assert done.citations == [citation(CONVOLUTIONS)]
    assert done.prompt_tokens == 1 + 5


def test_no_lessons_means_no_answer():
    chunks, done = split_events(collect(GroundedTutor().answer(TutorRequest("XOR?", []))))
    assert "".join(c.text for c in chunks) == NO_ANSWER
    assert done.citations == []


def test_prose_sentences_leave_out_code_and_tables_and_markup():
    sentences = prose_sentences(
        "Use **two** layers. Then `nn.ReLU()` bends\nthe space.\n\n"
        "```python\nx = 1. Not prose.\n```\n\n| a | b |\n|---|---|\n| 1. | 2 |\n\n- a list item\n"
    )
    assert sentences == ["Use two layers.", "Then `nn.ReLU()` bends the space.", "a list item"]
