"""The teacher's policy for the tutor: which questions it refuses, and a guard that keeps an
answer from showing the reference solution.

Questions (`check_question`) are matched against named pattern lists, lowercased, with curly
apostrophes straightened and whitespace collapsed:
- HIDDEN_DATA_PATTERNS, always refused: asking for the hidden test data, i.e. a request verb
  ("give", "show", "what are", "download", ...) right before the test set, its labels, the
  hidden split, or the grader's answers; or naming the grader's answers / answer key at all.
  Asking *about* them is allowed: "what is a test split?", "why is the test set hidden?",
  "my accuracy on the test set dropped", "how do I make a validation split?".
- SOLUTION_PATTERNS, refused while the assignment is open and solutions are not allowed: a full
  or complete solution or code, "solve it for me", "the solution to the assignment", "the model
  that passes". Asking how to do a part is allowed: "how do I write a linear layer?".
The refusal says what the tutor can do instead. Patterns are heuristics aimed at clear asks;
the model's system prompt (openai_compatible.SYSTEM_PROMPT) states the same rules, and the
guard below catches the reference solution whatever the question.

Answers (`AnswerGuard`, `guard_stream`, `guard_answer`): the caller passes strings the answer
must not contain (e.g. `distinctive_lines` of the reference solution). Matching ignores
whitespace altogether, so a copy re-indented or re-wrapped ("f(a,\n    b)" for "f(a, b)") is
still caught. On a stream, the guard holds back the last (longest forbidden string - 1)
characters, whitespace not counted, so a forbidden string split across chunks is seen whole
before any of it is sent; when one appears, the text before it is sent, then POLICY_NOTE, and
the rest is dropped.
"""

import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .base import TutorChunk, TutorDone, TutorEvent


@dataclass(frozen=True)
class TutorPolicy:
    allow_solutions: bool = False
    assignment_open: bool = True

    @property
    def solutions_allowed(self) -> bool:
        return self.allow_solutions or not self.assignment_open


class RefusalKind(StrEnum):
    HIDDEN_TEST_DATA = "hidden_test_data"
    FULL_SOLUTION = "full_solution"


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    message: str  # what the learner is told


HIDDEN_DATA_MESSAGE = (
    "I can't share the hidden test data, its labels or the grader's expected answers: they "
    "stay hidden so that your grade measures how well your model does on data it has never "
    "seen. I can help you set aside a validation split from the training data, read your "
    "metrics, or find out why your model overfits."
)
SOLUTION_MESSAGE = (
    "I can't give you a full solution while this assignment is open. I can explain the "
    "concepts it needs, give you a hint for the next step, help you read an error or a "
    "diagnosis of your run, or look at one part of your code with you."
)
POLICY_NOTE = (
    "\n\n[The rest of this answer was withheld: it would have shown the assignment's reference "
    "solution. Ask me for a hint or an explanation instead.]"
)

# Building blocks of the patterns (on normalize_question's text).
# Verbs that ask for the thing itself ("what is the test split?" asks what it is, so it is not
# here; "what are the test labels?" asks for them, see _ASK_CONTENT).
_ASK = (
    r"(?:give|show|send|share|tell|reveal|leak|dump|print|list|download|export|access|"
    r"provide|paste|post|expose|see|view)"
)
_ASK_CONTENT = r"(?:what\s+(?:are|were)|what'?s\s+in|what\s+is\s+in|which\s+are)"
_OBJ_PREFIX = r"\s+(?:(?:me|us)\s+)?(?:(?:all|some|any)\s+)?(?:of\s+)?(?:(?:the|your|its)\s+)?"
_HIDDEN_ADJ = r"(?:(?:hidden|held[- ]out|private|secret|real|actual|grader'?s?)\s+)*"
_TEST_DATA = r"(?:test(?:ing)?|hidden|held[- ]out)\s+(?:set|split|data(?:set)?)"
_TEST_CONTENT = (
    r"(?:test(?:ing)?|hidden|held[- ]out)\s+(?:(?:set|split|data)\s+)?(?:examples?|images?|"
    r"samples?|inputs?|cases?|labels?|targets?|answers?|ground[- ]truth)"
)
_NOT_ABOUT_IT = (
    r"(?!\s+(?:accuracy|loss|score|error|performance|results?|metrics?|size|shape|format))"
)

HIDDEN_DATA_PATTERNS: tuple[str, ...] = (
    # "give me the test set", "show me the hidden test labels", "can I download the held-out
    # data", "leak the hidden split"
    rf"\b{_ASK}{_OBJ_PREFIX}{_HIDDEN_ADJ}(?:{_TEST_CONTENT}|{_TEST_DATA})\b{_NOT_ABOUT_IT}",
    # "what are the test labels", "what's in the hidden split" (but "what are test labels?",
    # "what are the test labels used for?" ask about them)
    rf"\b{_ASK_CONTENT}\s+(?:all\s+)?(?:of\s+)?(?:the|your|its)\s+{_HIDDEN_ADJ}{_TEST_CONTENT}\b"
    rf"{_NOT_ABOUT_IT}(?!\s+(?:(?:used|needed|hidden|kept|important|like)\b|for\s*(?:[?.!]|$)))",
    rf"\b(?:what'?s|what\s+is)\s+in{_OBJ_PREFIX}{_HIDDEN_ADJ}{_TEST_DATA}\b",
    # "show me the labels of the test set", "what are the answers for the hidden split"
    rf"\b(?:{_ASK}|{_ASK_CONTENT}){_OBJ_PREFIX}(?:labels?|targets?|answers?|ground[- ]truth)\s+"
    rf"(?:of|for|in|from)\s+(?:the\s+)?{_HIDDEN_ADJ}{_TEST_DATA}\b",
    # The grader's answers, named at all: "the answers of the autograder", "the grader's
    # expected outputs", "what labels does the grader expect", "the answer key".
    r"\b(?:answers?|labels?)\s+(?:of|from|in|used\s+by)\s+the\s+(?:auto)?grader\b",
    r"\b(?:auto)?grader'?s\s+(?:expected\s+)?(?:answers?|labels?|outputs?|test\s+(?:set|data))\b",
    r"\b(?:answers?|labels?)\s+(?:does|do|will|would)\s+the\s+(?:auto)?grader\s+"
    r"(?:expect|want|use|check)\b",
    r"\banswer\s+key\b",
)

_SOLUTION_THING = r"(?:solution|code|implementation|program|notebook|script|submission)s?"
_ASSIGNMENT = r"(?:assignment|exercise|task|homework|lab|project|challenge|graded\s+\S+)s?"
SOLUTION_PATTERNS: tuple[str, ...] = (
    # "give me the full solution", "write the complete code", "I want the entire notebook"
    rf"\b(?:give|write|show|send|share|paste|post|provide|need|want|get|generate)\b"
    rf"(?:\s+\S+){{0,3}}?\s+(?:full|complete|entire|whole|finished)\s+{_SOLUTION_THING}\b",
    # "the complete code for the assignment", however it is asked
    rf"\b(?:full|complete|entire|whole)\s+(?:solution|code)s?\s+(?:for|to|of)\s+"
    rf"(?:the|this|my|that)\s+{_ASSIGNMENT}\b",
    # "give me the solution", "show me the solution"
    r"\b(?:give|show|send|tell|post|paste|provide)(?:\s+(?:me|us))?\s+the\s+solutions?\b",
    # "what's the answer to this exercise", "give me the code for the assignment"
    rf"\b(?:give|show|send|tell|post|paste|provide|write|need|want|what\s+is|what'?s)"
    rf"(?:\s+(?:me|us))?\s+(?:the|a)\s+(?:solution|answer|code)s?\s+(?:for|to|of)\s+"
    rf"(?:the|this|my|that)\s+{_ASSIGNMENT}\b",
    # "solve it for me", "do my homework for me", "write the last exercise for me" (but "write
    # it for me", after "how do I write a linear layer?", asks for a piece: allowed)
    r"\b(?:solve|do|finish|complete)\s+(?:it|this|that)\s+for\s+me\b",
    rf"\b(?:solve|do|finish|complete|write)\s+(?:the|my|this)\s+(?:\S+\s+){{0,2}}?"
    rf"{_ASSIGNMENT}\s+for\s+me\b",
    # "give me the model that passes", "code that will pass the grader"
    r"\b(?:solution|code|model|network|net|notebook|script|submission)s?\s+that\s+"
    r"(?:passes|will\s+pass|would\s+pass|can\s+pass|gets?\s+full\s+marks)\b",
)

_hidden_data = [re.compile(p) for p in HIDDEN_DATA_PATTERNS]
_solution = [re.compile(p) for p in SOLUTION_PATTERNS]


def normalize_question(question: str) -> str:
    text = question.lower().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


def check_question(question: str, policy: TutorPolicy) -> Refusal | None:
    """The refusal for the question under the policy, or None when the tutor may answer it."""
    text = normalize_question(question)
    if any(p.search(text) for p in _hidden_data):
        return Refusal(RefusalKind.HIDDEN_TEST_DATA, HIDDEN_DATA_MESSAGE)
    if not policy.solutions_allowed and any(p.search(text) for p in _solution):
        return Refusal(RefusalKind.FULL_SOLUTION, SOLUTION_MESSAGE)
    return None


# The answer guard.

MIN_FORBIDDEN_CHARS = 20  # shorter lines ("import torch", "return x") are not the solution


def distinctive_lines(solution: str, min_chars: int = MIN_FORBIDDEN_CHARS) -> list[str]:
    """The lines of a reference solution worth forbidding: stripped, at least `min_chars` long,
    not comments, not imports (every answer may share those)."""
    lines = []
    for line in solution.splitlines():
        line = line.strip()
        if len(line) < min_chars or line.startswith(("#", "import ", "from ", '"""', "'''")):
            continue
        lines.append(line)
    return list(dict.fromkeys(lines))


def _squeeze(text: str) -> tuple[str, list[int]]:
    """The text without whitespace, and each of its characters' index in `text`."""
    where = [i for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(text[i] for i in where), where


class AnswerGuard:
    """Feed it an answer chunk by chunk; it gives back what may be sent (see the module
    docstring). After a forbidden string, `tripped` is set and everything else is dropped."""

    def __init__(self, forbidden: Sequence[str]):
        self.forbidden = [f for f in ("".join(s.split()) for s in forbidden) if f]
        self._hold = max((len(f) for f in self.forbidden), default=1) - 1
        self._pending = ""
        self.tripped = False

    def feed(self, text: str) -> str:
        if self.tripped:
            return ""
        if not self.forbidden:
            return text
        self._pending += text
        squeezed, where = _squeeze(self._pending)
        hits = [i for i in (squeezed.find(f) for f in self.forbidden) if i >= 0]
        if hits:
            self.tripped = True
            safe = self._pending[: where[min(hits)]]
            self._pending = ""
            return safe + POLICY_NOTE
        # Everything before the last `_hold` characters (whitespace aside) can no longer start a
        # match; the whitespace just before them goes with them.
        cut = len(squeezed) - self._hold
        if cut <= 0:
            return ""
        end = where[cut] if cut < len(where) else len(self._pending)
        safe, self._pending = self._pending[:end], self._pending[end:]
        return safe

    def close(self) -> str:
        """The text held back, at the end of the answer."""
        rest, self._pending = ("" if self.tripped else self._pending), ""
        return rest


async def guard_stream(
    events: AsyncIterable[TutorEvent], policy: TutorPolicy, forbidden: Sequence[str]
) -> AsyncIterator[TutorEvent]:
    """A backend's stream with the guard applied (unchanged when the policy allows solutions).
    Chunks held back are sent with the next chunk; TutorDone passes through, last."""
    guard = AnswerGuard(() if policy.solutions_allowed else forbidden)
    async for event in events:
        if isinstance(event, TutorDone):
            if rest := guard.close():
                yield TutorChunk(rest)
            yield event
        elif text := guard.feed(event.text):
            yield TutorChunk(text)
    if rest := guard.close():  # a stream that ended without its TutorDone
        yield TutorChunk(rest)


def guard_answer(text: str, policy: TutorPolicy, forbidden: Sequence[str]) -> str:
    """The whole-text form of the guard."""
    guard = AnswerGuard(() if policy.solutions_allowed else forbidden)
    return guard.feed(text) + guard.close()
