"""The learner's tutor: backends that answer a question about the course as a stream of text
chunks (base.TutorBackend), the retrieval they share, and the teacher's policy.

- GroundedTutor (grounded.py): built in, quotes the lessons; used when no endpoint is set.
- OpenAICompatibleTutor (openai_compatible.py): a model behind an OpenAI-compatible endpoint.
- policy.py: refusals (check_question) and the answer guard (guard_stream).
"""

from .base import (
    Citation,
    DiagnosisNote,
    Lesson,
    Passage,
    SkillMastery,
    Turn,
    TutorBackend,
    TutorChunk,
    TutorDone,
    TutorEvent,
    TutorRequest,
    TutorUnavailable,
)
from .grounded import GroundedTutor
from .openai_compatible import OpenAICompatibleTutor
from .policy import (
    AnswerGuard,
    Refusal,
    RefusalKind,
    TutorPolicy,
    check_question,
    distinctive_lines,
    guard_answer,
    guard_stream,
)

__all__ = [
    "AnswerGuard",
    "Citation",
    "DiagnosisNote",
    "GroundedTutor",
    "Lesson",
    "OpenAICompatibleTutor",
    "Passage",
    "Refusal",
    "RefusalKind",
    "SkillMastery",
    "Turn",
    "TutorBackend",
    "TutorChunk",
    "TutorDone",
    "TutorEvent",
    "TutorPolicy",
    "TutorRequest",
    "TutorUnavailable",
    "check_question",
    "distinctive_lines",
    "guard_answer",
    "guard_stream",
]
