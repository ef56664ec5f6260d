"""Reads of courses and what hangs off them; run inside the tenant's scope (a request's, or
one the caller opens)."""

from django.db import models
from django.db.models import (
    Q,
    QuerySet,
)

from apps.courses.models import (
    Assignment,
    Course,
    Enrollment,
    Exercise,
    Lesson,
    Skill,
)
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
