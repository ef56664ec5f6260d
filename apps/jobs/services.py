"""What requests do to submissions and jobs: validate and submit (`submission_create`, the one
place a submission is checked and admitted), cancel. A teacher's grade override is
`apps.jobs.grading.grade_override`."""

from dataclasses import dataclass
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.exceptions import Conflict
from apps.courses.models import Assignment, Enrollment, LatePolicy
from apps.jobs.dispatch.publish import job_publish
from apps.jobs.dispatch.round import dispatch_round_on_commit, pool_for_new_job
from apps.jobs.events import event_append
from apps.jobs.models import Job, Submission, SubmissionKind
from apps.jobs.signals import submission_made
from apps.jobs.states import FINAL_STATES, JobState
from apps.jobs.transitions import job_cancel_now
from apps.quotas.services import PLATFORM_FAILURES, quota_admit
from runtime.datasets import dataset_info
from runtime.errors import SpecInvalid
from runtime.sandbox.checks import check_code, literal_tables
from runtime.spec import inspect_spec


def spec_report(*, dataset: str, spec) -> dict:
    """Per-layer shapes and parameter counts of `spec` on `dataset`, with every problem found
    (an empty list when it can train). Creates nothing."""
    try:
        report = inspect_spec(spec, dataset_info(dataset))
    except SpecInvalid as exc:  # the document itself does not parse
        return {
            "valid": False,
            "input_shape": None,
            "output_shape": None,
            "layers": [],
            "total_params": None,
            "total_flops": None,
            "memory_bytes": None,
            "problems": [problem.as_dict() for problem in exc.problems],
        }
    return {"valid": report.ok, **report.as_dict()}


def _problems_error(field: str, problems) -> ValidationError:
    return ValidationError({field: [problem.message for problem in problems]})


@dataclass(frozen=True)
class Window:
    is_late: bool


def attempts_counted(submissions):
    """The submissions that cost an attempt: all but those whose run the platform failed
    (quotas.services.PLATFORM_FAILURES, refunded too)."""
    return submissions.exclude(job__state=JobState.FAILED, job__failure_kind__in=PLATFORM_FAILURES)


def assignment_window_check(assignment: Assignment, now) -> Window:
    """Whether the assignment takes a submission at `now`; raises with the reason if not."""
    if not assignment.is_published or now < assignment.opens_at:
        raise ValidationError({"assignment": ["This assignment is not open yet."]})
    if now <= assignment.due_at:
        return Window(is_late=False)
    if assignment.late_policy == LatePolicy.REFUSE:
        raise ValidationError({"assignment": ["This assignment was due; it takes no more work."]})
    if assignment.closes_at is not None and now > assignment.closes_at:
        raise ValidationError({"assignment": ["This assignment is closed."]})
    return Window(is_late=True)


def submission_create(
    *, assignment: Assignment, learner, kind: str, spec=None, code: str = ""
) -> Submission:
    """Validate the learner's model, check the assignment's window and attempts, then create the
    Submission, its queued Job and the job's first event together; the job is dispatched after
    commit. Raises ValidationError naming the field at fault, having written nothing."""
    exercise = assignment.exercise
    if kind not in exercise.allowed_kinds:
        allowed = " or ".join(exercise.allowed_kinds)
        raise ValidationError({"kind": [f"This exercise takes {allowed} submissions."]})
    if kind == SubmissionKind.SPEC:
        if spec is None:
            raise ValidationError({"spec": ["A spec submission needs a spec."]})
        if code:
            raise ValidationError({"code": ["A spec submission takes no code."]})
        try:
            report = inspect_spec(spec, dataset_info(exercise.dataset))
        except SpecInvalid as exc:
            raise _problems_error("spec", exc.problems) from exc
        if report.problems:
            raise _problems_error("spec", report.problems)
    flags = []
    if kind != SubmissionKind.SPEC:
        if spec is not None:
            raise ValidationError({"spec": ["A code submission takes no spec."]})
        problems = check_code(code or "")
        if problems:
            raise _problems_error("code", problems)
        flags = [{"path": f.path, "message": f.message} for f in literal_tables(code)]
    with transaction.atomic():
        # The enrollment row serialises one learner's submissions to one course, so two at
        # once cannot both take the last attempt.
        # Only this row: Enrollment's default ordering joins the course and the user, and a bare
        # FOR UPDATE would lock those too, serialising every submission to the course.
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .filter(course_id=assignment.course_id, user=learner)
            .order_by("pk")
            .first()
        )
        if enrollment is None:
            raise ValidationError({"assignment": ["You are not enrolled in this course."]})
        window = assignment_window_check(assignment, timezone.now())
        mine = Submission.objects.filter(assignment=assignment, learner=learner)
        used = attempts_counted(mine).count()
        # Numbers go on past the free (platform-failed) attempts: they stay rows of their own.
        number = (mine.aggregate(n=Max("attempt"))["n"] or 0) + 1
        if used >= assignment.max_attempts:
            raise ValidationError(
                {"assignment": [f"All {assignment.max_attempts} attempts are used."]}
            )
        submission = Submission(
            tenant_id=assignment.tenant_id,
            assignment=assignment,
            learner=learner,
            kind=kind,
            spec=spec if kind == SubmissionKind.SPEC else None,
            code=code if kind == SubmissionKind.CODE else "",
            attempt=number,
            is_late=window.is_late,
            integrity_flags=flags,
        )
        # The field checks only: the related rows are in hand (re-reading each is a query) and
        # the database enforces the constraints; the attempt number was taken under the lock.
        # Six fewer round trips on the way from submit to the worker.
        submission.full_clean(
            exclude=["tenant", "assignment", "learner"],
            validate_unique=False,
            validate_constraints=False,
        )
        submission.save()
        admission = quota_admit(
            tenant_id=assignment.tenant_id,
            learner=learner,
            exercise_seconds=exercise.max_seconds,
            waiting=Job.objects.filter(tenant_id=assignment.tenant_id, state=JobState.QUEUED).count,
        )
        # Nothing else waiting and a slot free (an idle pool): released now, published after
        # the commit, with no dispatch round on the way to the worker.
        pool = pool_for_new_job(
            tenant_id=assignment.tenant_id,
            pools=admission.pools,
            limit=admission.max_running_jobs,
        )
        job = Job.objects.create(
            tenant_id=assignment.tenant_id,
            submission=submission,
            budget_seconds=admission.seconds,
            queue=pool or admission.pools[0],  # a waiting job may go to another of its pools
            dispatched_at=timezone.now() if pool else None,
        )
        admission.reserve(job)
        event_append(
            job,
            type=JobState.QUEUED,
            payload={"submission": str(submission.id), "attempt": submission.attempt},
        )
        submission_made.send(sender=Submission, submission=submission)
        if pool:
            transaction.on_commit(
                partial(
                    job_publish,
                    tenant_id=job.tenant_id,
                    job_id=job.id,
                    queue=pool,
                    released_at=job.dispatched_at,
                )
            )
        else:
            dispatch_round_on_commit()
    return submission


def job_cancel(*, job: Job, by) -> Job:
    """A queued job ends cancelled at once; a running one is flagged, and its worker stops it
    within a second. Raises Conflict for a finished job."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(id=job.id)
        if job.state in FINAL_STATES:
            raise Conflict(f"This job has already ended ({job.state}).")
        if job.cancel_requested_at is not None:
            return job
        before = {"state": job.state}
        job.cancel_requested_at = timezone.now()
        job.cancel_requested_by = by
        if job.state == JobState.QUEUED:
            job_cancel_now(job)
        else:
            job.save(update_fields=["cancel_requested_at", "cancel_requested_by", "updated_at"])
            event_append(job, type="cancel_requested", payload={})
        after = {"state": job.state, "cancel_requested": True}
        audit_record(
            actor=by, action="job.cancel", target=job, before=before, after=after, tenant=job.tenant
        )
    return job
