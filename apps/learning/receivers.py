"""Learning's records of what happens to lessons, submissions, jobs and grades: the receivers
of the courses and jobs apps' signals (apps/courses/signals.py, apps/jobs/signals.py), connected
in LearningConfig.ready. Each runs inside the transaction of the change it records."""

from apps.courses.signals import lesson_viewed
from apps.jobs.signals import grade_given, grade_regraded, job_ended, submission_made
from apps.learning import services


def on_lesson_viewed(*, user, lesson, **_) -> None:
    services.lesson_viewed(user=user, lesson=lesson)


def on_submission_made(*, submission, **_) -> None:
    services.submission_made(submission=submission)


def on_grade_given(*, grade, automatic: bool, job=None, metrics=None, hints=None, **_) -> None:
    """An automatic grade comes with its run's diagnosis: stored (with its "received-hint"
    statements) before the "scored" statement, as the grade's feedback quotes it."""
    if automatic and job is not None:
        services.run_diagnose(job=job, metrics=metrics, hints=hints)
    services.grade_given(grade=grade, automatic=automatic)


def on_grade_regraded(*, grade, revision, score_before, score_after, **_) -> None:
    services.grade_notice_create(
        grade=grade, revision=revision, score_before=score_before, score_after=score_after
    )


def on_job_ended(*, job, **_) -> None:
    services.run_finished(job=job)


def connect() -> None:
    lesson_viewed.connect(on_lesson_viewed, dispatch_uid="learning.lesson_viewed")
    submission_made.connect(on_submission_made, dispatch_uid="learning.submission_made")
    grade_given.connect(on_grade_given, dispatch_uid="learning.grade_given")
    job_ended.connect(on_job_ended, dispatch_uid="learning.job_ended")
    grade_regraded.connect(on_grade_regraded, dispatch_uid="learning.grade_regraded")
