"""Reads of courses and what hangs off them; run inside the tenant's scope (a request's, or
one the caller opens)."""

from django.db import models
from django.db.models import (
    Case,
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from apps.courses.models import (
    Assignment,
    Course,
    Enrollment,
    Exercise,
    LatePolicy,
    Lesson,
    Skill,
)
from apps.jobs.models import Grade, Submission
from apps.tenants.access import TenantAccess
from apps.tenants.models import Role, Tenant


class AssignmentStatus(models.TextChoices):
    UPCOMING = "upcoming", "Not open yet"
    OPEN = "open", "Open"
    LATE = "late", "Past due; late work is still taken"
    CLOSED = "closed", "Closed"


def course_queryset(*, tenant: Tenant) -> QuerySet[Course]:
    return Course.objects.filter(tenant=tenant).prefetch_related("teachers")


def course_list_for(*, user, access: TenantAccess) -> QuerySet[Course]:
    """Admins: every course of the tenant. Anyone else: the courses they teach (teachers) and
    the published courses they are enrolled in."""
    courses = course_queryset(tenant=access.tenant)
    if access.allows(Role.ADMIN):
        return courses
    takes = Q(published_at__isnull=False, enrollments__user=user)
    if access.allows(Role.TEACHER):
        takes |= Q(teachers=user)
    # The id subquery keeps the joins from repeating a course taught by and taken by the user.
    return courses.filter(pk__in=Course.objects.filter(takes).values("pk"))


def course_list_for_learner(*, tenant: Tenant, user) -> QuerySet[Course]:
    """The published courses of the tenant the user is enrolled in, by title."""
    return Course.objects.filter(
        tenant=tenant,
        published_at__isnull=False,
        pk__in=Enrollment.objects.filter(user=user).values("course"),
    ).order_by("title")


def course_get(*, tenant: Tenant, course_id) -> Course | None:
    return course_queryset(tenant=tenant).filter(pk=course_id).first()


def skill_list(*, tenant: Tenant) -> QuerySet[Skill]:
    return (
        Skill.objects.filter(tenant=tenant)
        .prefetch_related("prerequisites")
        .order_by("name", "slug")
    )


def _with_skills(queryset: QuerySet) -> QuerySet:
    return queryset.prefetch_related("skills")


def lesson_list(*, course: Course) -> QuerySet[Lesson]:
    return _with_skills(Lesson.objects.filter(course=course).order_by("position"))


def exercise_queryset(*, tenant: Tenant) -> QuerySet[Exercise]:
    return _with_skills(Exercise.objects.filter(tenant=tenant).select_related("course"))


def exercise_list(*, course: Course) -> QuerySet[Exercise]:
    rows = Exercise.objects.filter(course=course).select_related("course")
    return _with_skills(rows).order_by("title")


def assignment_queryset(*, tenant: Tenant) -> QuerySet[Assignment]:
    return Assignment.objects.filter(tenant=tenant).select_related("course", "exercise")


def assignment_list(*, course: Course, published_only: bool = False) -> QuerySet[Assignment]:
    assignments = Assignment.objects.filter(course=course).select_related("course", "exercise")
    if published_only:
        assignments = assignments.filter(published_at__isnull=False)
    return assignments.order_by("due_at", "pk")


def enrollment_list(*, course: Course) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(course=course).select_related("user").order_by("user__email")


def assignment_list_for_learner(*, user, tenant: Tenant, now=None) -> QuerySet[Assignment]:
    """The published assignments of the published courses the user is enrolled in, each with
    `attempts_used` (their submissions, whatever became of them, but for runs the platform
    failed: jobs.services.attempts_counted), `attempts_left`,
    `best_score` (their best grade so far, or None) and `status` (an AssignmentStatus at `now`:
    open until due_at inclusive, then late while the late policy takes work, until closes_at
    inclusive; the same window the submission service enforces)."""
    from apps.jobs.services import attempts_counted  # jobs' services import this module

    now = now or timezone.now()
    mine = attempts_counted(Submission.objects.filter(assignment=OuterRef("pk"), learner=user))
    used = mine.order_by().values("assignment").annotate(n=Count("pk")).values("n")
    best = Grade.objects.filter(
        submission__assignment=OuterRef("pk"), submission__learner=user
    ).order_by("-score")
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
