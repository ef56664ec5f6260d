"""Reads on submissions, jobs, events and grades, with the access rule for a job."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import models
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, Greatest, RowNumber
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.courses.access import course_teaches
from apps.courses.models import Assignment, Enrollment, LatePolicy, ScoresShown
from apps.courses.selectors import AssignmentStatus, assignment_queryset
from apps.jobs.grading import metric_value
from apps.jobs.models import Grade, Job, JobEvent, Regrade, Submission
from apps.tenants.access import TenantAccess
from apps.tenants.models import Tenant


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


def leaderboard_get(*, assignment) -> list[Grade]:
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


@dataclass(frozen=True)
class Standing:
    """A learner's row of an assignment's leaderboard. `public` and `private` are the metric on
    each hidden test part (None: the part is hidden from the caller, or the dataset has one
    part, whose score is the grade's); `score` is the grade (None while hidden)."""

    rank: int
    grade: Grade
    public: float | None
    private: float | None
    score: Decimal | None


def part_shown(*, assignment, part: str, now) -> bool:
    """Whether learners see `part` ("public" or "private") of the assignment's scores now."""
    if now >= assignment.due_at or assignment.scores_shown == ScoresShown.GRADE_LIVE:
        return True
    return part == "public" and assignment.scores_shown == ScoresShown.PUBLIC_LIVE


def private_part_hidden_q(*, now, assignment: str = "assignment__") -> Q:
    """part_shown(part="private") negated, as a query on the assignment reached by the lookup
    `assignment` (its private part, and so a grade with hidden parts, is not shown at `now`)."""
    return Q(**{f"{assignment}due_at__gt": now}) & ~Q(
        **{f"{assignment}scores_shown": ScoresShown.GRADE_LIVE}
    )


def grade_withheld_until(*, grade, teaches: bool, now):
    """The due date until which this viewer may not see `grade` (its score, its private part's
    metrics, its feedback and its history), or None when they may. Withheld: from a learner (not
    a teacher of the course), the grade of an assignment whose dataset has hidden parts (the
    grade's metrics keep the public part's), until the due date reveals the private part."""
    if teaches or grade is None or "public" not in (grade.metrics or {}):
        return None
    assignment = grade.submission.assignment
    if part_shown(assignment=assignment, part="private", now=now):
        return None
    return assignment.due_at


def grades_shown_to_learner(submissions, *, now=None) -> list:
    """The learner's own `submissions`, each with `grade_shown` (its grade, or None: none yet,
    or withheld until the due date) and `grade_withheld_until`, for their pages."""
    now = now or timezone.now()
    submissions = list(submissions)
    for submission in submissions:
        try:
            grade = submission.grade
        except Grade.DoesNotExist:
            grade = None
        until = grade_withheld_until(grade=grade, teaches=False, now=now)
        submission.grade_withheld_until = until
        submission.grade_shown = grade if until is None else None
    return submissions


def grade_public_shown(*, grade, now) -> dict | None:
    """The public part's figures of `grade` that its learner sees while the grade is withheld:
    when the teacher shows the public part live (else None)."""
    assignment = grade.submission.assignment
    if not part_shown(assignment=assignment, part="public", now=now):
        return None
    return (grade.metrics or {}).get("public")


def standings_get(*, assignment, teacher: bool, now) -> list[Standing]:
    """The leaderboard as the caller may see it. Teachers see every part and the grades, ranked
    by grade. Learners of an assignment whose dataset has hidden parts see the public part when
    it is shown (ranked by each learner's best public score) and the private part and grades
    after the due date (ranked by grade); of one part, they see the grades, as teachers do."""
    metric = assignment.exercise.metric
    grades = list(
        Grade.objects.filter(submission__assignment=assignment).select_related(
            "submission__learner"
        )
    )
    parts = any("public" in (grade.metrics or {}) for grade in grades)

    def public_of(grade):
        figures = (grade.metrics or {}).get("public")
        return metric_value(metric, figures) if figures else None

    def private_of(grade):
        return metric_value(metric, grade.metrics) if parts and grade.metrics else None

    private_shown = (
        teacher or not parts or part_shown(assignment=assignment, part="private", now=now)
    )
    public_shown = teacher or part_shown(assignment=assignment, part="public", now=now)
    if private_shown:
        ranked = leaderboard_get(assignment=assignment)
    elif public_shown:
        best: dict = {}
        for grade in grades:
            key = (-(public_of(grade) or 0.0), grade.submission.created_at)
            learner = grade.submission.learner_id
            if learner not in best or key < best[learner][0]:
                best[learner] = (key, grade)
        ranked = [grade for _key, grade in sorted(best.values(), key=lambda item: item[0])]
    else:
        return []
    return [
        Standing(
            rank=rank,
            grade=grade,
            public=public_of(grade) if public_shown else None,
            private=private_of(grade) if private_shown else None,
            score=grade.score if private_shown else None,
        )
        for rank, grade in enumerate(ranked, start=1)
    ]


def job_list_in_flight(*, tenant) -> QuerySet[Job]:
    """The tenant's queued and running jobs, oldest first, with their learner and course."""
    return (
        Job.objects.filter(tenant=tenant, state__in=["queued", "running"])
        .select_related("submission__learner", "submission__assignment__course")
        .order_by("created_at", "id")
    )


def submission_list_recent(*, learner, limit: int = 10) -> list[Submission]:
    """The learner's latest submissions in this tenant, newest first, with job, grade and
    assignment, and the grade as they may see it (`grades_shown_to_learner`)."""
    return grades_shown_to_learner(
        Submission.objects.filter(learner=learner)
        .select_related("job", "grade", "assignment__exercise", "assignment__course")
        .order_by("-created_at", "-id")[:limit]
    )


CURVE_POINTS = 200


def curves_get(*, submissions) -> dict:
    """{submission id: {"x": epochs done, "loss": [...], "accuracy": [...]}} from the progress
    events of each submission's job, at most CURVE_POINTS points each (evenly thinned, the last
    point kept), for charts of several attempts at once."""
    points: dict = {}
    events = (
        JobEvent.objects.filter(job__submission__in=submissions, type="progress")
        .order_by("job_id", "seq")
        .values_list("job__submission_id", "payload")
    )
    for submission_id, payload in events:
        points.setdefault(submission_id, []).append(payload)
    curves = {}
    for submission_id, rows in points.items():
        if len(rows) > CURVE_POINTS:
            stride = len(rows) / CURVE_POINTS
            rows = [rows[int(i * stride)] for i in range(CURVE_POINTS - 1)] + [rows[-1]]
        curves[submission_id] = {
            "x": [_epochs_done(row) for row in rows],
            "loss": [row.get("loss") for row in rows],
            "accuracy": [row.get("val_accuracy") or row.get("train_accuracy") for row in rows],
        }
    return curves


def _epochs_done(point: dict) -> float | None:
    steps, step, epochs = point.get("steps"), point.get("step"), point.get("epochs")
    if not steps or step is None or not epochs:
        return point.get("epoch")
    return round(step / steps * epochs, 4)


def gradebook_get(*, course) -> dict:
    """The course's learners (enrolled) by its assignments: in each cell the learner's best
    grade on that assignment (as the leaderboard ranks: highest score, then earliest), or None.
    Two queries over grades and enrollments, whatever the size of the class."""
    assignments = list(
        Assignment.objects.filter(course=course).select_related("exercise").order_by("due_at", "pk")
    )
    learners = [
        enrollment.user
        for enrollment in Enrollment.objects.filter(course=course)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    ]
    best = Grade.objects.filter(submission__assignment__course=course).annotate(
        rank_in_cell=Window(
            RowNumber(),
            partition_by=[F("submission__learner_id"), F("submission__assignment_id")],
            order_by=[F("score").desc(), F("submission__created_at").asc()],
        )
    )
    cells = {
        (grade.submission.learner_id, grade.submission.assignment_id): grade
        for grade in best.filter(rank_in_cell=1).select_related("submission")
    }
    rows = []
    for learner in learners:
        grades = [cells.get((learner.pk, assignment.pk)) for assignment in assignments]
        rows.append(
            {
                "learner": learner,
                "grades": grades,
                "total": sum((g.score for g in grades if g is not None), start=0),
            }
        )
    return {"assignments": assignments, "rows": rows}


def assignment_list_for_learner(*, user, tenant: Tenant, now=None) -> QuerySet[Assignment]:
    """The published assignments of the published courses the user is enrolled in, each with
    `attempts_used` (their submissions, whatever became of them, but for runs the platform
    failed: jobs.services.attempts_counted), `attempts_left`,
    `best_score` (their best grade so far, or None; a grade withheld until the due date is not
    counted before it: grade_withheld_until) and `status` (an AssignmentStatus at `now`:
    open until due_at inclusive, then late while the late policy takes work, until closes_at
    inclusive; the same window the submission service enforces)."""
    # Imported here: jobs' services import this module (through learning's services).
    from apps.jobs.services import attempts_counted

    now = now or timezone.now()
    mine = attempts_counted(Submission.objects.filter(assignment=OuterRef("pk"), learner=user))
    used = mine.order_by().values("assignment").annotate(n=Count("pk")).values("n")
    # A grade withheld until the due date (hidden test parts) is no best score before it.
    withheld = (
        Q(metrics__has_key="public")
        & Q(submission__assignment__due_at__gt=now)
        & ~Q(submission__assignment__scores_shown=ScoresShown.GRADE_LIVE)
    )
    best = (
        Grade.objects.filter(submission__assignment=OuterRef("pk"), submission__learner=user)
        .exclude(withheld)
        .order_by("-score")
    )
    takes_late = ~Q(late_policy=LatePolicy.REFUSE) & (
        Q(closes_at__isnull=True) | Q(closes_at__gte=now)
    )
    status = Case(
        When(opens_at__gt=now, then=Value(AssignmentStatus.UPCOMING)),
        When(due_at__gte=now, then=Value(AssignmentStatus.OPEN)),
        When(takes_late, then=Value(AssignmentStatus.LATE)),
        default=Value(AssignmentStatus.CLOSED),
        output_field=models.CharField(),
    )
    return (
        assignment_queryset(tenant=tenant)
        .filter(
            published_at__isnull=False,
            course__published_at__isnull=False,
            course__enrollments__user=user,
        )
        .annotate(
            attempts_used=Coalesce(Subquery(used), 0),
            best_score=Subquery(best.values("score")[:1]),
            status=status,
        )
        .annotate(attempts_left=Greatest(F("max_attempts") - F("attempts_used"), 0))
        .order_by("due_at", "pk")
    )


def assignment_get_for_learner(*, user, tenant: Tenant, assignment_id) -> Assignment | None:
    """One row of assignment_list_for_learner, with the exercise's skills; None when the
    learner does not have this assignment."""
    rows = assignment_list_for_learner(user=user, tenant=tenant)
    return rows.filter(pk=assignment_id).prefetch_related("exercise__skills").first()


def regrade_latest(*, assignment) -> Regrade | None:
    """The assignment's most recent regrade (queued, running or finished), for its page."""
    return Regrade.objects.filter(assignment=assignment).order_by("-created_at").first()
