"""What every tutor backend takes and gives: a request (the question, the lessons it may draw on,
what is known about the learner), answered as an async stream of text chunks that ends with one
`TutorDone` (the lessons cited and the token counts, for quotas).

Plain values only: no Django here. The caller (the websocket consumer) reads the course's
lessons, the learner's latest diagnosis and mastery from the database, checks the question
against the teacher's policy (`policy.check_question`), picks a backend and relays the stream.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class Lesson:
    """A lesson of the learner's course(s) the tutor may draw on."""

    lesson_id: str  # the lesson's primary key, as text
    title: str
    url: str
    body_markdown: str


@dataclass(frozen=True)
class Passage:
    """A piece of a lesson: what retrieval returns and what answers cite. `heading` is the
    section's heading ("" before the first one); `text` is the passage's Markdown source."""

    lesson_id: str  # the lesson's primary key, as text
    lesson_title: str
    url: str
    text: str
    heading: str = ""


@dataclass(frozen=True)
class Citation:
    """What an answer drew on: a lesson, or the learner's run (its diagnosis) or exercise."""

    lesson_id: str  # the lesson's primary key, as text ("" for a run or an exercise)
    lesson_title: str  # the lesson's (or run's, or exercise's) title
    url: str
    kind: Literal["lesson", "run", "exercise"] = "lesson"

    @classmethod
    def of(cls, passage: Passage) -> "Citation":
        return cls(passage.lesson_id, passage.lesson_title, passage.url)


@dataclass(frozen=True)
class DiagnosisNote:
    """A hint about the learner's latest run (e.g. "Loss diverged", "Lower the learning rate")."""

    title: str
    message: str


@dataclass(frozen=True)
class SkillMastery:
    skill: str
    probability: float  # P(knows the skill), 0..1 (apps.learning.bkt)


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class TutorRequest:
    question: str
    lessons: Sequence[Lesson]
    diagnosis: Sequence[DiagnosisNote] = ()
    mastery: Sequence[SkillMastery] = ()
    history: Sequence[Turn] = ()  # earlier turns, most recent last; the caller bounds it
    assignment_title: str | None = None
    run: Citation | None = None  # the run `diagnosis` is of
    exercise: Citation | None = None  # the exercise of the assignment asked about
    exercise_goal: str = ""  # what the exercise asks for, in words

    def last_user_turn(self) -> str:
        return next((t.content for t in reversed(self.history) if t.role == "user"), "")


@dataclass
class TutorChunk:
    text: str  # a piece of the answer; the pieces joined are the whole answer


@dataclass
class TutorDone:
    """The last item of every stream."""

    citations: list[Citation] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


TutorEvent = TutorChunk | TutorDone


class TutorUnavailable(Exception):
    """The backend could not answer (endpoint unreachable, refused, failing or too slow). The
    message says what failed, for the learner's "tutor unavailable" notice and the logs; it never
    holds the API key. `kind` is one of "connection", "timeout", "auth", "rate_limit", "server",
    "request", "protocol"; `status` the HTTP status where there was one. Chunks already streamed
    before the failure stay sent: the caller decides what to show."""

    def __init__(self, message: str, *, kind: str = "connection", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status


class TutorBackend(Protocol):
    def answer(self, request: TutorRequest) -> AsyncIterator[TutorEvent]:
        """Chunks of the answer, then exactly one TutorDone. An async generator."""
        ...


def count_words(text: str) -> int:
    """The token count used where no model tokenizer is at hand: whitespace-separated words."""
    return len(text.split())
