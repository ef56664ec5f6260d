"""Writing learning records: one function per event, called by the service where it happens,
inside that service's transaction.

- lesson_viewed: a learner opened a lesson (page or API)       -> "experienced"
- submission_made: a learner submitted an attempt              -> "attempted"
- run_finished: a job ended (any final state), with its metrics -> "completed", the run's
  diagnosis and one "received-hint" per hint
- grade_given: a grade was written or overridden              -> "scored"; an automatic grade
  is also an observation of each skill the exercise practises, and updates the learner's
  mastery of it in constant time
- tutor_asked: the tutor answered or refused a question        -> "asked"
- grade_notice_create: a regrade changed a learner's grade      -> a notice on their dashboard

The functions act on the objects they are given, of one tenant: those that query open that
tenant's scope themselves, so they work the same inside the caller's scope (requests, workers)
and outside one (the reaper).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.audit.services import audit_record
from apps.courses.models import ScoresShown
from apps.jobs import selectors as job_selectors
from apps.jobs.grading import grade_compute, run_diagnosis
from apps.jobs.models import Grade
from apps.learning import bkt
from apps.learning.crypto import encrypt
from apps.learning.models import (
    GradeNotice,
    Mastery,
    ObjectType,
    Observation,
    RunDiagnosis,
    SkillParams,
    Statement,
    TutorExchange,
    TutorSettings,
    Verb,
)
from apps.learning.tutor.egress import EndpointRefused, endpoint_check
from apps.learning.xapi import aula_iri, duration

logger = logging.getLogger(__name__)

WITHHELD_OBSERVED_PER_RUN = 500  # grades a run of withheld_grades_observe takes; the next, more


def statement_record(
    *,
    tenant_id,
    actor_id,
    verb: str,
    object_type: str,
    object_id,
    object_name: str,
    result: dict | None = None,
    course_id=None,
    assignment_id=None,
    timestamp=None,
) -> Statement:
    with scope(tenant=tenant_id):
        statement = Statement.objects.create(
            tenant_id=tenant_id,
            actor_id=actor_id,
            verb=verb,
            object_type=object_type,
            object_id=str(object_id),
            object_name=object_name[:300],
            result=result,
            course_id=course_id,
            assignment_id=assignment_id,
            timestamp=timestamp or timezone.now(),
        )
        if settings.LRS_ENDPOINT and not _forward_queued():
            transaction.on_commit(_forward_soon)
        return statement


# The tasks (apps/learning/tasks.py) are published by name: nothing imports the Celery glue.
FORWARD_TASK = "apps.learning.tasks.statements_forward"
BKT_FIT_TASK = "apps.learning.tasks.bkt_fit"


def bkt_fit_on_commit(tenant_id) -> None:
    """Queue a fit of the tenant's knowledge tracing once the current transaction commits
    (a teacher's refit, on the page or through the API)."""
    tenant_id = str(tenant_id)
    transaction.on_commit(lambda: current_app.send_task(BKT_FIT_TASK, args=(tenant_id,)))


def _forward_queued() -> bool:
    """Whether this transaction already asks for forwarding at its commit (a grade writes
    several statements; one request to the worker forwards them all)."""
    return any(hook[1] is _forward_soon for hook in transaction.get_connection().run_on_commit)


def _forward_soon() -> None:
    """Ask a worker to forward now; if the broker is away, the periodic task will (a request
    never waits for, nor fails because of, the learning record store)."""
    try:
        current_app.send_task(FORWARD_TASK, retry=False)
    except Exception:  # the beat schedule forwards what this could not
        logger.warning("Could not queue statement forwarding; the periodic task will.")


def lesson_viewed(*, user, lesson) -> Statement:
    return statement_record(
        tenant_id=lesson.tenant_id,
        actor_id=user.pk,
        verb=Verb.EXPERIENCED,
        object_type=ObjectType.LESSON,
        object_id=lesson.pk,
        object_name=lesson.title,
        course_id=lesson.course_id,
    )


def submission_made(*, submission) -> Statement:
    assignment = submission.assignment
    return statement_record(
        tenant_id=submission.tenant_id,
        actor_id=submission.learner_id,
        verb=Verb.ATTEMPTED,
        object_type=ObjectType.ASSIGNMENT,
        object_id=assignment.pk,
        object_name=assignment.exercise.title,
        result={
            "response": f"attempt {submission.attempt} ({submission.kind})",
            "extensions": {_ext("submission"): str(submission.pk)},
        },
        course_id=assignment.course_id,
        assignment_id=assignment.pk,
        timestamp=submission.created_at,
    )


def _ext(name: str) -> str:
    return aula_iri(f"xapi/extensions/{name}")


def _scalar_metrics(metrics: dict) -> dict:
    return {
        k: v for k, v in (metrics or {}).items() if isinstance(v, int | float | str | type(None))
    }


def run_finished(*, job) -> Statement:
    """A job reached a final state: its diagnosis (once) and the "completed" statement."""
    from apps.jobs.states import JobState

    submission = job.submission
    assignment = submission.assignment
    run_diagnose(job=job)
    seconds = (job.outcome or {}).get("seconds")
    if seconds is None and job.started_at and job.finished_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
    result: dict = {
        "completion": job.state == JobState.SUCCEEDED,
        "response": job.state,
        "extensions": {_ext("run"): str(job.pk)},
    }
    grade = getattr(submission, "grade", None) if job.state == JobState.SUCCEEDED else None
    if grade is not None:
        result["extensions"][_ext("metrics")] = _scalar_metrics(grade.metrics)
    if seconds is not None:
        result["duration"] = duration(seconds)
    return statement_record(
        tenant_id=job.tenant_id,
        actor_id=submission.learner_id,
        verb=Verb.COMPLETED,
        object_type=ObjectType.RUN,
        object_id=job.pk,
        object_name=f"Run of attempt {submission.attempt} on {assignment.exercise.title}",
        result=result,
        course_id=assignment.course_id,
        assignment_id=assignment.pk,
    )


def run_diagnose(*, job, metrics: dict | None = None, hints=None) -> RunDiagnosis:
    """The run's diagnosis (`apps.jobs.grading.run_diagnosis`, unless the grader already made it:
    `hints`), stored once; each hint is also a "received-hint" statement (it is shown with the
    run and in the feedback)."""
    with scope(tenant=job.tenant_id):
        existing = RunDiagnosis.objects.filter(job=job).first()
        if existing is not None:
            return existing
        if hints is None:
            hints = run_diagnosis(job=job, metrics=metrics)
        diagnosis = RunDiagnosis.objects.create(
            job=job, tenant_id=job.tenant_id, hints=[h.as_dict() for h in hints]
        )
        submission, assignment = job.submission, job.submission.assignment
        for hint in hints:
            statement_record(
                tenant_id=job.tenant_id,
                actor_id=submission.learner_id,
                verb=Verb.RECEIVED_HINT,
                object_type=ObjectType.RUN,
                object_id=job.pk,
                object_name=hint.title,
                result={"response": hint.message, "extensions": {_ext("hint"): hint.code}},
                course_id=assignment.course_id,
                assignment_id=assignment.pk,
            )
        return diagnosis


def grade_given(*, grade, automatic: bool) -> Statement:
    """A grade was written (automatic) or overridden: the "scored" statement; an automatic
    grade is also the observation of the exercise's skills, and moves the learner's mastery."""
    with scope(tenant=grade.tenant_id):
        submission = grade.submission
        assignment = submission.assignment
        score, top = Decimal(grade.score), Decimal(grade.max_score)
        success = _passes(score, top)
        statement = statement_record(
            tenant_id=grade.tenant_id,
            actor_id=submission.learner_id,
            verb=Verb.SCORED,
            object_type=ObjectType.ASSIGNMENT,
            object_id=assignment.pk,
            object_name=assignment.exercise.title,
            result={
                "score": {
                    "raw": float(score),
                    "min": 0.0,
                    "max": float(top),
                    "scaled": float(score / top) if top else 0.0,
                },
                "success": bool(success),
                "completion": True,
                **({"response": grade.override_reason} if not automatic else {}),
                "extensions": {_ext("submission"): str(submission.pk)},
            },
            course_id=assignment.course_id,
            assignment_id=assignment.pk,
        )
        observed = _observed(grade, success=success) if automatic else None
        if observed is not None:
            _observe_skills(grade, correct=observed)
        return statement


def _passes(score, top) -> bool:
    score, top = Decimal(score), Decimal(top)
    return bool(top > 0 and score >= top * Decimal(str(settings.LEARNING_PASS_FRACTION)))


def _observed(grade, *, success: bool) -> bool | None:
    """What an automatic grade tells its learner's mastery now, from what they see of it (their
    mastery is on their pages: it must not show a score they may not see yet). A grade they see:
    its pass or fail. A grade withheld until the due date (a dataset's private part): the
    public part's, when it is shown at once; None when nothing of it is shown before the due
    date, the observation then made after it (`withheld_grades_observe`)."""
    now = timezone.now()
    if job_selectors.grade_withheld_until(grade=grade, teaches=False, now=now) is None:
        return success
    public = job_selectors.grade_public_shown(grade=grade, now=now)
    if public is None:
        return None
    assignment = grade.submission.assignment
    result = grade_compute(
        exercise=assignment.exercise, assignment=assignment, metrics=public, is_late=False
    )
    return _passes(result.score, result.max_score)


def _observe_skills(grade, *, correct: bool) -> None:
    submission = grade.submission
    skill_ids = submission.assignment.exercise.skills.values_list("pk", flat=True)
    for skill_id in list(skill_ids):
        mastery_observe(
            tenant_id=grade.tenant_id,
            user_id=submission.learner_id,
            skill_id=skill_id,
            submission_id=submission.pk,
            correct=correct,
        )


def withheld_grades_observe(*, now=None) -> int:
    """The observations of the automatic grades given while nothing of them was shown (scores
    shown both at the end), made once their assignment's due date has passed: each from its
    grade's automatic score, in the order they were given. Periodic (beat); a grade already
    observed is left alone, so a run that stops halfway loses nothing. Returns how many."""
    now = now or timezone.now()
    with scopes_disabled():
        observed = Observation.objects.filter(submission_id=OuterRef("submission_id"))
        due = (
            Grade.objects.filter(
                metrics__has_key="public",
                submission__assignment__scores_shown=ScoresShown.AT_END,
                submission__assignment__due_at__lte=now,
                submission__assignment__exercise__skills__isnull=False,
            )
            .exclude(Exists(observed))
            .select_related("submission__assignment__exercise")
            .distinct()
            .order_by("created_at", "pk")
        )
        grades = list(due[:WITHHELD_OBSERVED_PER_RUN])
    done = 0
    for grade in grades:
        try:
            with scope(tenant=grade.tenant_id), transaction.atomic():
                _observe_skills(grade, correct=_passes(grade.automatic_score, grade.max_score))
        except IntegrityError:  # another run observed it first (one observation per skill)
            continue
        done += 1
    return done


def skill_params(skill_id) -> dict:
    row = SkillParams.objects.filter(skill_id=skill_id).values(*SkillParams.DEFAULTS).first()
    return row or dict(SkillParams.DEFAULTS)


def mastery_observe(*, tenant_id, user_id, skill_id, submission_id, correct: bool) -> Mastery:
    """One observation of one skill: stored, and the learner's mastery updated by one BKT step.
    Constant work whatever the learner's history: the skill's parameters (one row), the
    learner's mastery (one row, locked), one update, one write."""
    with scope(tenant=tenant_id):
        Observation.objects.create(
            tenant_id=tenant_id,
            user_id=user_id,
            skill_id=skill_id,
            submission_id=submission_id,
            correct=correct,
        )
        params = skill_params(skill_id)
        locked = Mastery.objects.select_for_update().filter(user_id=user_id, skill_id=skill_id)
        mastery = locked.first()
        if mastery is None:  # the first observation: start from the prior (two at once: one row)
            Mastery.objects.bulk_create(
                [
                    Mastery(
                        tenant_id=tenant_id,
                        user_id=user_id,
                        skill_id=skill_id,
                        probability=params["prior"],
                        observations=0,
                    )
                ],
                ignore_conflicts=True,
            )
            mastery = locked.get()
        mastery.probability = bkt.update(
            mastery.probability,
            correct,
            learn=params["learn"],
            slip=params["slip"],
            guess=params["guess"],
        )
        mastery.observations += 1
        mastery.save(update_fields=["probability", "observations", "updated_at"])
        return mastery


def tutor_asked(*, exchange: TutorExchange) -> Statement:
    assignment = exchange.assignment
    result: dict = {
        "response": exchange.answer[:2000],
        "extensions": {_ext("question"): exchange.question[:2000]},
    }
    if exchange.refused:
        result["extensions"][_ext("refused")] = exchange.refused
    return statement_record(
        tenant_id=exchange.tenant_id,
        actor_id=exchange.user_id,
        verb=Verb.ASKED,
        object_type=ObjectType.TUTOR,
        object_id=exchange.pk,
        object_name="The tutor",
        result=result,
        course_id=assignment.course_id if assignment else None,
        assignment_id=assignment.pk if assignment else None,
    )


def tutor_settings_of(tenant) -> TutorSettings:
    return TutorSettings.objects.filter(tenant=tenant).first() or TutorSettings(tenant=tenant)


def _tutor_settings_view(row: TutorSettings) -> dict:
    """What the audit log keeps of the settings: never the key itself."""
    return {
        "endpoint_url": row.endpoint_url,
        "model": row.model,
        "has_api_key": bool(row.api_key_encrypted),
        "tokens_per_month": row.tokens_per_month,
    }


def tutor_settings_set(
    *,
    tenant,
    actor,
    endpoint_url: str,
    model: str,
    tokens_per_month: int,
    api_key: str | None = None,
) -> TutorSettings:
    """Set the tenant's tutor (administrators). `api_key`: None keeps the stored key, "" removes
    it, anything else replaces it (stored encrypted). An endpoint needs a model name."""
    if endpoint_url and urlsplit(endpoint_url).scheme not in ("http", "https"):
        raise ValidationError(
            {"endpoint_url": ["The endpoint must be an http:// or https:// URL."]}
        )
    if endpoint_url and not model:
        raise ValidationError({"model": ["Name the model the endpoint serves."]})
    if endpoint_url:
        try:  # last: it asks DNS
            endpoint_check(endpoint_url, allowed_hosts=settings.TUTOR_ENDPOINT_ALLOWED_HOSTS)
        except EndpointRefused as exc:
            raise ValidationError({"endpoint_url": [str(exc)]}) from None
    with scope(tenant=tenant.pk), transaction.atomic():
        row = tutor_settings_of(tenant)
        before = None if row._state.adding else _tutor_settings_view(row)
        row.endpoint_url, row.model, row.tokens_per_month = endpoint_url, model, tokens_per_month
        if api_key is not None:
            row.api_key_encrypted = encrypt(api_key) if api_key else ""
        row.full_clean()
        row.save()
        audit_record(
            actor=actor,
            action="tutor.settings",
            target=row,
            before=before,
            after=_tutor_settings_view(row),
            tenant=tenant,
        )
    return row


def grade_notice_create(*, grade, revision, score_before, score_after):
    """The learner's dashboard notice of a regrade that changed their current score (none when a
    teacher's override kept it); one per revision, whatever the number of calls."""
    if score_before == score_after:
        return None
    submission = grade.submission
    notice, _ = GradeNotice.objects.get_or_create(
        revision=revision,
        defaults={
            "tenant_id": grade.tenant_id,
            "learner_id": submission.learner_id,
            "submission": submission,
            "exercise_title": submission.assignment.exercise.title,
            "score_before": score_before,
            "score_after": score_after,
        },
    )
    return notice


def grade_notice_dismiss(*, user, notice_id) -> bool:
    """Dismiss one of `user`'s own notices (of the current scope's tenant); False, with nothing
    changed, for any other id."""
    with transaction.atomic():
        return bool(
            GradeNotice.objects.filter(
                id=notice_id, learner_id=user.pk, dismissed_at__isnull=True
            ).update(dismissed_at=timezone.now())
        )
