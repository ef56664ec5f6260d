"""The tutor, wired to the platform: what a question is answered from (the learner's lessons,
latest run diagnosis, mastery, the conversation so far), which backend answers (the tenant's
endpoint, else the built-in grounded tutor), the teacher's policy, the tenant's monthly token
quota, the learner's rate limit, and the record of each exchange.

The websocket consumer (consumers.TutorConsumer) calls these; the database work here is sync,
`answer_stream` (the backend's answer, and the fallback to the grounded tutor) is async.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django_scopes import scope

from apps.courses.models import Lesson
from apps.courses.selectors import AssignmentStatus
from apps.jobs.selectors import assignment_get_for_learner
from apps.learning import selectors
from apps.learning import services as learning
from apps.learning.crypto import SecretUnreadable, decrypt
from apps.learning.models import RunDiagnosis, TutorExchange, TutorSettings
from apps.learning.tutor import (
    Citation,
    DiagnosisNote,
    GroundedTutor,
    OpenAICompatibleTutor,
    SkillMastery,
    Turn,
    TutorBackend,
    TutorChunk,
    TutorDone,
    TutorPolicy,
    TutorRequest,
    TutorUnavailable,
    distinctive_lines,
    guard_stream,
)
from apps.learning.tutor import Lesson as TutorLesson

logger = logging.getLogger(__name__)

HISTORY_TURNS = 6  # earlier exchanges given to the tutor (questions and answers)
MAX_QUESTION_CHARS = 2000


class TutorRefused(Exception):
    """Not answered: `code` says why (rate_limited, quota, invalid), `message` in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def rate_limit_take(*, user_id) -> None:
    """A fixed one-minute window per learner in Redis (shared by every server process)."""
    window = int(time.time() // 60)
    key = f"tutor-rate:{user_id}:{window}"
    cache.add(key, 0, timeout=120)
    count = cache.incr(key)
    if count > settings.TUTOR_QUESTIONS_PER_MINUTE:
        wait = 60 - int(time.time() % 60)
        raise TutorRefused(
            "rate_limited",
            f"You have asked {settings.TUTOR_QUESTIONS_PER_MINUTE} questions this minute; "
            f"ask again in {wait} s.",
        )


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def tokens_used_this_month(tenant_id) -> int:
    now = timezone.now()
    used = TutorExchange.objects.filter(
        tenant_id=tenant_id, backend="endpoint", created_at__gte=_month_start(now)
    ).aggregate(total=Sum("prompt_tokens") + Sum("completion_tokens"))["total"]
    return used or 0


@dataclass
class Prepared:
    """Everything the consumer needs to answer one question."""

    request: TutorRequest
    backend: TutorBackend
    backend_name: str  # "endpoint" | "grounded"
    policy: TutorPolicy
    forbidden: list[str]
    assignment_id: object | None


def _lessons(tenant, user, assignment=None) -> list[TutorLesson]:
    """The lessons of the learner's courses; asked about an assignment, those of its course
    that teach the exercise's own skills (when there are any), so that a CNN exercise's
    question is not answered from the XOR lesson."""
    courses = selectors.course_list_taken(tenant=tenant, user=user)
    lessons = Lesson.objects.filter(course__in=courses)
    if assignment is not None:
        own = lessons.filter(
            course=assignment.course_id, skills__in=assignment.exercise.skills.all()
        ).distinct()
        if own.exists():
            lessons = own
    return [
        TutorLesson(
            lesson_id=str(lesson.pk),
            title=lesson.title,
            url=reverse("lesson", args=[tenant.slug, lesson.pk]),
            body_markdown=lesson.body,
        )
        for lesson in lessons.order_by("course", "position")
    ]


def _latest_diagnosis(tenant, user, assignment=None) -> tuple[list[DiagnosisNote], Citation | None]:
    """The diagnosis of the learner's latest finished run (on the assignment, when one is asked
    about), and that run as a citation (a link to its page)."""
    rows = RunDiagnosis.objects.filter(tenant=tenant, job__submission__learner=user)
    if assignment is not None:
        rows = rows.filter(job__submission__assignment=assignment)
    diagnosis = (
        rows.select_related("job__submission__assignment__exercise")
        .order_by("-job__finished_at")
        .first()
    )
    if diagnosis is None:
        return [], None
    submission = diagnosis.job.submission
    run = Citation(
        "",
        gettext("attempt %(number)s of “%(exercise)s”")
        % {"number": submission.attempt, "exercise": submission.assignment.exercise.title},
        reverse("run", args=[tenant.slug, submission.pk]),
        "run",
    )
    notes = [DiagnosisNote(title=h["title"], message=h["message"]) for h in diagnosis.hints]
    return notes, run


def _goal(exercise) -> str:
    metric = exercise.get_metric_display().lower()
    return gettext(
        "a test %(metric)s of %(target)s%% for full marks (no points below %(minimum)s%%)."
    ) % {
        "metric": metric,
        "target": f"{exercise.target_metric * 100:.3g}",
        "minimum": f"{exercise.min_metric * 100:.3g}",
    }


def _history(tenant, user) -> list[Turn]:
    rows = list(
        TutorExchange.objects.filter(tenant=tenant, user=user, refused="").order_by("-id")[
            :HISTORY_TURNS
        ]
    )
    turns: list[Turn] = []
    for row in reversed(rows):
        turns += [Turn("user", row.question), Turn("assistant", row.answer)]
    return turns


def _backend(tenant) -> tuple[TutorBackend, str]:
    row = TutorSettings.objects.filter(tenant=tenant).first()
    if row is None or not row.uses_endpoint:
        return GroundedTutor(), "grounded"
    try:
        key = decrypt(row.api_key_encrypted) if row.api_key_encrypted else None
    except SecretUnreadable as exc:
        raise TutorRefused("unavailable", str(exc)) from exc
    used = tokens_used_this_month(tenant.pk)
    if used >= row.tokens_per_month:
        raise TutorRefused(
            "quota",
            f"The tutor's allowance of {row.tokens_per_month:,} tokens this month is used up; "
            "it renews on the 1st.",
        )
    backend = OpenAICompatibleTutor(
        row.endpoint_url,
        row.model,
        key,
        timeout=settings.TUTOR_ENDPOINT_TIMEOUT,
        allowed_hosts=settings.TUTOR_ENDPOINT_ALLOWED_HOSTS,
    )
    return backend, "endpoint"


def prepare(*, tenant, user, question: str, assignment_id=None) -> Prepared:
    """Check the question, the rate limit and the quota; gather what the tutor answers from.
    Raises TutorRefused."""
    question = (question or "").strip()
    if not question:
        raise TutorRefused("invalid", "Ask a question: the message was empty.")
    if len(question) > MAX_QUESTION_CHARS:
        raise TutorRefused(
            "invalid", f"Questions are at most {MAX_QUESTION_CHARS} characters long."
        )
    with scope(tenant=tenant.pk):
        assignment = None
        if assignment_id is not None:
            assignment = assignment_get_for_learner(
                user=user, tenant=tenant, assignment_id=assignment_id
            )
            if assignment is None:
                raise TutorRefused("invalid", "No assignment of yours has this id.")
        rate_limit_take(user_id=user.pk)
        backend, name = _backend(tenant)
        mastery = selectors.mastery_list(tenant=tenant, user=user)
        policy = TutorPolicy()
        forbidden: list[str] = []
        if assignment is not None:
            policy = TutorPolicy(
                allow_solutions=assignment.tutor_solutions_allowed,
                assignment_open=assignment.status
                in (AssignmentStatus.OPEN, AssignmentStatus.LATE, AssignmentStatus.UPCOMING),
            )
            forbidden = distinctive_lines(assignment.exercise.solution_code)
        notes, run = _latest_diagnosis(tenant, user, assignment)
        exercise = None
        if assignment is not None:
            exercise = Citation(
                "",
                assignment.exercise.title,
                reverse("assignment", args=[tenant.slug, assignment.pk]),
                "exercise",
            )
        request = TutorRequest(
            question=question,
            lessons=_lessons(tenant, user, assignment),
            diagnosis=notes,
            run=run,
            exercise=exercise,
            exercise_goal=_goal(assignment.exercise) if assignment else "",
            mastery=[SkillMastery(m.skill.name, m.probability) for m in mastery],
            history=_history(tenant, user),
            assignment_title=assignment.exercise.title if assignment else None,
        )
    return Prepared(request, backend, name, policy, forbidden, assignment and assignment.pk)


def exchange_record(
    *,
    tenant,
    user,
    question: str,
    answer: str,
    citations: list[dict],
    refused: str = "",
    backend: str = "grounded",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    assignment_id=None,
) -> TutorExchange:
    """The exchange and its "asked" statement, in one transaction."""
    with scope(tenant=tenant.pk), transaction.atomic():
        exchange = TutorExchange.objects.create(
            tenant=tenant,
            user=user,
            assignment_id=assignment_id,
            question=question[:MAX_QUESTION_CHARS],
            answer=answer,
            citations=citations,
            backend=backend,
            refused=refused,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        learning.tutor_asked(exchange=exchange)
    return exchange


@dataclass(frozen=True)
class FellBack:
    """The tenant's endpoint failed: tell the learner; the grounded tutor answers instead."""

    message: str


@dataclass(frozen=True)
class Answered:
    """The answer is complete: what to record and what the learner's citations are."""

    text: str
    citations: list[dict]
    usage: tuple[int, int]  # prompt and completion tokens
    backend: str  # "endpoint" | "grounded": the one that answered


async def answer_stream(
    prepared: Prepared, *, tenant_slug: str
) -> AsyncIterator[TutorChunk | FellBack | Answered]:
    """The backend's answer through the teacher's policy guard: its chunks, then Answered. On
    an endpoint failure, FellBack and then the grounded tutor's answer from the start."""
    parts: list[str] = []
    backend, name = prepared.backend, prepared.backend_name
    while True:
        try:
            stream = guard_stream(
                backend.answer(prepared.request), prepared.policy, prepared.forbidden
            )
            async for event in stream:
                if isinstance(event, TutorChunk):
                    parts.append(event.text)
                    yield event
                elif isinstance(event, TutorDone):
                    citations = [
                        {
                            "kind": c.kind,
                            "lesson_id": c.lesson_id or None,
                            "title": c.lesson_title,
                            "url": c.url,
                        }
                        for c in event.citations
                    ]
                    usage = (event.prompt_tokens, event.completion_tokens)
                    yield Answered("".join(parts), citations, usage, name)
                    return
            yield Answered("".join(parts), [], (0, 0), name)  # ended without TutorDone
            return
        except TutorUnavailable as exc:
            if name == "grounded":
                raise
            logger.warning("Tutor endpoint of %s failed: %s", tenant_slug, exc)
            yield FellBack(f"{exc} The answer below comes from your lessons instead.")
            parts, backend, name = [], GroundedTutor(), "grounded"
