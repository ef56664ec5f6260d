"""Reads on submissions, jobs, events and grades, with the access rule for a job."""

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django_scopes import scopes_disabled

from apps.courses.access import course_teaches
from apps.jobs.models import Grade, Job, JobEvent, Submission
from apps.tenants.access import TenantAccess


def submission_visible(*, access: TenantAccess, user, submission: Submission) -> bool:
    """The submitting learner, a teacher of the course, or an admin of the tenant."""
    if submission.learner_id == user.pk:
        return True
    return course_teaches(access=access, user=user, course=submission.assignment.course)


def job_visible(*, access: TenantAccess, user, job: Job) -> bool:
    return submission_visible(access=access, user=user, submission=job.submission)


def job_get(*, job_id) -> Job | None:
    return (
        Job.objects.select_related(
            "submission__assignment__course", "submission__assignment__exercise"
        )
        .filter(id=job_id)
        .first()
    )


def job_get_any_tenant(*, job_id) -> Job | None:
    """A job of any tenant, with its tenant: for platform administrators, whose requests open
    no tenant scope (open the job's own before acting on it)."""
    with scopes_disabled():
        return Job.objects.select_related("tenant").filter(pk=job_id).first()


def submission_get(*, submission_id) -> Submission | None:
    return (
        Submission.objects.select_related(
            "assignment__course", "assignment__exercise", "job", "grade", "learner"
        )
        .filter(id=submission_id)
        .first()
    )


def submission_list(*, assignment=None, learner=None, courses=None) -> QuerySet[Submission]:
    rows = Submission.objects.select_related(
        "assignment__exercise", "assignment__course", "job", "grade", "learner"
    )
    if assignment is not None:
        rows = rows.filter(assignment=assignment)
    if learner is not None:
        rows = rows.filter(learner=learner)
    if courses is not None:
        rows = rows.filter(assignment__course__in=courses)
    return rows.order_by("-created_at")


def events_after(*, job_id, after: int, limit: int | None = None) -> list[JobEvent]:
    rows = JobEvent.objects.filter(job_id=job_id, seq__gt=after).order_by("seq")
    return list(rows[:limit] if limit else rows)


def leaderboard(*, assignment) -> list[Grade]:
    """Each learner's best grade on the assignment, best first; of equal scores the earlier
    submission ranks first (for a learner's own ties and between learners)."""
    ranked = Grade.objects.filter(submission__assignment=assignment).annotate(
        rank_in_learner=Window(
            RowNumber(),
            partition_by=[F("submission__learner_id")],
            order_by=[F("score").desc(), F("submission__created_at").asc()],
        )
    )
    best = ranked.filter(rank_in_learner=1).select_related("submission__learner")
    return sorted(best, key=lambda g: (-g.score, g.submission.created_at))
