"""The built-in tutor, used when no model endpoint is configured: it answers only with what the
course's lessons say, never with words of its own about the subject.

How an answer is made:
1. Retrieval (retrieval.PassageIndex) ranks the lessons' passages for the question, the
   conversation's previous question re-ranking them (and standing in for a question that is
   only "why?"). Passages scoring below RELATIVE_CUTOFF of the best are left out, so a passing
   mention in another lesson does not get cited.
2. From the prose of those passages (code and tables left out), the MAX_SENTENCES sentences
   that hold the most of the question's words, each word weighed by its idf, are quoted,
   grouped by lesson, in the lesson's order.
3. The diagnosis of the run asked about (the learner's latest on the assignment asked about,
   else their latest) comes first when the question is about their own work ("my", "run",
   "score", ...) or shares a word with it, with the exercise's goal; then the quotes; then
   their weakest skill, when it is below WEAK_MASTERY and the question or the quoted sentences
   name it.
4. It ends with "(see lesson: <title>)" for each lesson quoted; TutorDone cites the run and the
   exercise (when the diagnosis was used) and those lessons.
   When no passage shares a word with the question, it says so, suggests asking the teacher,
   and cites nothing.

The answer streams word by word (each chunk a word with the whitespace after it). Token counts
are words (base.count_words): the prompt is the question and the previous question, the
completion the answer; no model runs, the counts only feed the same quotas as a model's.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

from django.utils.translation import gettext, ngettext

from apps.learning.bkt import mastery_percent

from .base import (
    Citation,
    DiagnosisNote,
    SkillMastery,
    TutorChunk,
    TutorDone,
    TutorEvent,
    TutorRequest,
    count_words,
)
from .retrieval import _WORD, PassageIndex, ScoredPassage, _markdown, tokenize

TOP_K = 3
MAX_SENTENCES = 3
RELATIVE_CUTOFF = 0.5  # of the best passage's (or sentence's) score
WEAK_MASTERY = 0.6
# Words that make a question about the learner's own work, so their latest run's diagnosis
# applies.
OWN_WORK_WORDS = frozenset(
    [
        "my",
        "mine",
        "run",
        "runs",
        "training",
        "trained",
        "submission",
        "submitted",
        "grade",
        "score",
        "scored",
        "scores",
        "accuracy",
        "result",
        "results",
        "attempt",
    ]
)

NO_ANSWER = (
    "I couldn't find anything about this in your course's lessons, so I won't guess. "
    "Try asking with the words the lessons use, or ask your teacher."
)
NO_LESSON_BUT_RUN = "Your course's lessons don't cover this directly, but your latest run does."
ASK_TEACHER = "If that doesn't answer your question, ask your teacher."

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(`\"'])")
_CHUNK = re.compile(r"\s*\S+\s*")


def prose_sentences(markdown: str) -> list[str]:
    """The sentences of a passage's paragraphs and list items; code blocks and tables left out,
    inline code kept in backticks, other inline markup dropped."""
    sentences: list[str] = []
    in_table = False
    for token in _markdown.parse(markdown):
        if token.type in ("table_open", "table_close"):
            in_table = token.type == "table_open"
        if token.type != "inline" or in_table:
            continue
        parts = []
        for child in token.children or []:
            if child.type == "text":
                parts.append(child.content)
            elif child.type == "code_inline":
                parts.append(f"`{child.content}`")
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
        text = " ".join("".join(parts).split())
        sentences.extend(s for s in _SENTENCE_END.split(text) if s)
    return sentences


class GroundedTutor:
    """Extractive answers from the lessons (see the module docstring)."""

    def __init__(self, *, top_k: int = TOP_K, max_sentences: int = MAX_SENTENCES):
        self.top_k = top_k
        self.max_sentences = max_sentences

    async def answer(self, request: TutorRequest) -> AsyncIterator[TutorEvent]:
        text, citations = self.compose(request)
        for match in _CHUNK.finditer(text):
            yield TutorChunk(match.group())
            await asyncio.sleep(0)  # let the consumer send each chunk as it comes
        prompt = count_words(request.question) + count_words(request.last_user_turn())
        yield TutorDone(citations, prompt_tokens=prompt, completion_tokens=count_words(text))

    def compose(self, request: TutorRequest) -> tuple[str, list[Citation]]:
        """The whole answer and the lessons it cites."""
        index = PassageIndex.from_lessons(request.lessons)
        found = index.search(request.question, self.top_k, context=request.last_user_turn())
        if found:
            found = [s for s in found if s.score >= RELATIVE_CUTOFF * found[0].score]
        question_words = set(tokenize(request.question)) or set(tokenize(request.last_user_turn()))
        quoted = self._quotes(found, question_words, index)
        notes = _relevant_notes(request.question, request.diagnosis)
        # The run's own diagnosis comes first, cited with its run (and the exercise whose goal
        # it is measured against): it is what a question about the learner's work is about.
        run_blocks, run_citations = _run_blocks(request, notes)
        if not quoted:
            if not notes:
                return NO_ANSWER, []
            lines = [NO_LESSON_BUT_RUN, *run_blocks, ASK_TEACHER]
            return "\n\n".join(lines), run_citations

        citations = list(dict.fromkeys(Citation.of(s.passage) for s, _ in quoted))
        blocks = list(run_blocks)
        for citation in citations:
            lines = [s for scored, s in quoted if scored.passage.lesson_id == citation.lesson_id]
            blocks.append(f"From “{citation.lesson_title}”:\n" + "\n".join(f"> {s}" for s in lines))
        used_words = question_words | {w for _, sentence in quoted for w in tokenize(sentence)}
        if weak := _weakest_relevant(request.mastery, used_words):
            blocks.append(
                ngettext(
                    "Your mastery of %(skill)s is still low (about %(percent)s%%): "
                    "the lesson above may be a good place to review it.",
                    "Your mastery of %(skill)s is still low (about %(percent)s%%): "
                    "the lessons above may be a good place to review it.",
                    len(citations),
                )
                % {"skill": weak.skill, "percent": mastery_percent(weak.probability)}
            )
        blocks.append(" ".join(f"(see lesson: {c.lesson_title})" for c in citations))
        return "\n\n".join(blocks), run_citations + citations

    def _quotes(
        self, found: Sequence[ScoredPassage], words: set[str], index: PassageIndex
    ) -> list[tuple[ScoredPassage, str]]:
        """The best sentences as (their passage, sentence), grouped by lesson, each lesson's in
        the order the lesson has them."""
        candidates = []  # (score, passage rank, position, sentence)
        for rank, scored in enumerate(found):
            sentences = prose_sentences(scored.passage.text)
            for position, sentence in enumerate(sentences):
                shared = words & set(tokenize(sentence))
                candidates.append((sum(index.idf(w) for w in shared), rank, position, sentence))
        best = max((c[0] for c in candidates), default=0.0)
        if best <= 0:
            # The passages matched on their lesson title or heading only: quote how they begin.
            candidates = [c for c in candidates if c[2] == 0][:1]
        else:
            candidates = [c for c in candidates if c[0] >= RELATIVE_CUTOFF * best]
            candidates = sorted(candidates, key=lambda c: (-c[0], c[1], c[2]))
        chosen = candidates[: self.max_sentences]
        # Lessons in the order of their best passage; within one, the lesson's own order.
        lesson_rank = {}
        for _, rank, _, _ in sorted(chosen, key=lambda c: c[1]):
            lesson_rank.setdefault(found[rank].passage.lesson_id, len(lesson_rank))
        order = {id(p): i for i, p in enumerate(index.passages)}
        chosen.sort(
            key=lambda c: (
                lesson_rank[found[c[1]].passage.lesson_id],
                order[id(found[c[1]].passage)],
                c[2],
            )
        )
        return [(found[rank], sentence) for _, rank, _, sentence in chosen]


def _relevant_notes(question: str, diagnosis: Sequence[DiagnosisNote]) -> list[DiagnosisNote]:
    raw = set(_WORD.findall(question.lower()))
    words = set(tokenize(question))
    about_own_work = bool(raw & OWN_WORK_WORDS)
    return [
        note
        for note in diagnosis
        if about_own_work or words & set(tokenize(f"{note.title} {note.message}"))
    ]


def _run_blocks(
    request: TutorRequest, notes: Sequence[DiagnosisNote]
) -> tuple[list[str], list[Citation]]:
    """The diagnosis notes in words, and what they cite: the run, and the exercise whose goal
    the run is measured against."""
    if not notes:
        return [], []
    which = (
        gettext("Your run (%(run)s)") % {"run": request.run.lesson_title}
        if request.run
        else gettext("Your latest run")
    )
    blocks = [
        gettext("%(run)s: %(title)s: %(message)s")
        % {"run": which, "title": note.title, "message": note.message}
        for note in notes
    ]
    citations = [request.run] if request.run else []
    if request.exercise is not None:
        if request.exercise_goal:
            blocks.append(
                gettext("The goal of “%(exercise)s”: %(goal)s")
                % {"exercise": request.exercise.lesson_title, "goal": request.exercise_goal}
            )
        citations.append(request.exercise)
    return blocks, citations


def _weakest_relevant(mastery: Sequence[SkillMastery], words: set[str]) -> SkillMastery | None:
    weak = [m for m in mastery if m.probability < WEAK_MASTERY and set(tokenize(m.skill)) & words]
    return min(weak, key=lambda m: m.probability, default=None)
