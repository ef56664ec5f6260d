"""Writes to courses, skills, lessons, exercises, assignments and enrollments.

Each call validates everything it can at once and raises django's ValidationError with a
message_dict keyed by the field at fault, having written nothing. Each opens the scope of the
row's tenant itself, so callers outside a request (the demo seed, the shell) need none.
"""

import secrets
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext
from django_scopes import scope

from apps.courses.models import (
    Assignment,
    Course,
    Enrollment,
    Exercise,
    Lesson,
    Skill,
    scores_shown_default,
)
from apps.courses.signals import course_retention_changed
from apps.tenants.models import Membership, Role, Tenant
from runtime.datasets import UnknownDataset, dataset_info, dataset_names
from runtime.errors import SpecInvalid
from runtime.sandbox.checks import check_code
from runtime.spec import inspect_spec

Errors = dict[str, list[str]]


def _save_validated(instance: models.Model, errors: Errors) -> None:
    """full_clean() and the caller's cross-field errors, reported together; then save."""
    try:
        # The model's check constraints restate the cross-field rules in worse words, so they
        # run only once those rules pass (then they also catch what raced in meanwhile).
        instance.full_clean(validate_constraints=not errors)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:  # a concurrent write took the slug or position
        raise ValidationError(
            {"__all__": ["This conflicts with a change made at the same time; try again."]}
        ) from exc


def _skills_check(tenant_id, skills: Sequence[Skill], errors: Errors) -> None:
    if any(skill.tenant_id != tenant_id for skill in skills):
        errors["skills"] = ["Every skill must belong to this tenant."]


def _set_given(instance: models.Model, **values) -> None:
    """Set the fields given a value; None leaves a field as it is."""
    for name, value in values.items():
        if value is not None:
            setattr(instance, name, value)


def _slugged_save(instance: Course | Skill) -> None:
    """Save a course or skill, its slug unique in the tenant (said under "slug")."""
    errors: Errors = {}
    model = type(instance)
    taken = model.objects.filter(tenant_id=instance.tenant_id, slug=instance.slug)
    if taken.exclude(pk=instance.pk).exists():
        noun = model._meta.verbose_name
        errors["slug"] = [f"A {noun} with the slug '{instance.slug}' already exists here."]
    _save_validated(instance, errors)


# --- Courses ----------------------------------------------------------------------------------

# Leaves artifact_retention_days as it is (None there means "keep trained models for good").
UNCHANGED: Any = object()


@transaction.atomic
def course_create(
    *,
    tenant: Tenant,
    created_by,
    slug: str,
    title: str,
    summary: str = "",
    artifact_retention_days: int | None = UNCHANGED,
) -> Course:
    """A draft course; its creator becomes its first teacher. Trained models are kept for
    artifact_retention_days (the model's default when left out; None: for good)."""
    with scope(tenant=tenant):
        course = Course(
            tenant=tenant, slug=slug, title=title, summary=summary, created_by=created_by
        )
        if artifact_retention_days is not UNCHANGED:
            course.artifact_retention_days = artifact_retention_days
        _slugged_save(course)
        course.teachers.add(created_by)
    return course


@transaction.atomic
def course_update(
    *,
    course: Course,
    slug: str | None = None,
    title: str | None = None,
    summary: str | None = None,
    artifact_retention_days: int | None = UNCHANGED,
) -> Course:
    """Change what is given; None leaves a field as it is, except artifact_retention_days, where
    None keeps trained models for good (leave it out to keep it). A new retention moves the
    expiry of the course's trained models (course_retention_changed)."""
    _set_given(course, slug=slug, title=title, summary=summary)
    retention_before = course.artifact_retention_days
    if artifact_retention_days is not UNCHANGED:
        course.artifact_retention_days = artifact_retention_days
    with scope(tenant=course.tenant_id):
        _slugged_save(course)
        if course.artifact_retention_days != retention_before:
            course_retention_changed.send(sender=Course, course=course)
    return course


def course_publish(*, course: Course) -> Course:
    """Show the course to its enrolled learners. Publishing twice keeps the first date."""
    if course.published_at is None:
        course.published_at = timezone.now()
        course.save(update_fields=["published_at", "updated_at"])
    return course


# --- Skills -----------------------------------------------------------------------------------


def _prerequisites_set(skill: Skill, prerequisites: Sequence[Skill] | None) -> None:
    """Set a saved skill's prerequisites: skills of its tenant, never itself, and no cycle (a
    skill cannot, through its prerequisites, require itself)."""
    if prerequisites is None:
        return
    errors: Errors = {}
    if any(p.tenant_id != skill.tenant_id for p in prerequisites):
        errors["prerequisites"] = ["Every prerequisite must be a skill of this tenant."]
    elif any(p.pk == skill.pk for p in prerequisites):
        errors["prerequisites"] = ["A skill cannot be its own prerequisite."]
    else:
        # Everything that (transitively) requires `skill` may not become its prerequisite.
        edges = Skill.prerequisites.through.objects.filter(from_skill__tenant_id=skill.tenant_id)
        requires: dict = {}
        for from_id, to_id in edges.values_list("from_skill_id", "to_skill_id"):
            requires.setdefault(to_id, []).append(from_id)
        above, stack = set(), [skill.pk]
        while stack:
            for dependant in requires.get(stack.pop(), ()):
                if dependant not in above:
                    above.add(dependant)
                    stack.append(dependant)
        cyclic = [p.name for p in prerequisites if p.pk in above]
        if cyclic:
            errors["prerequisites"] = [
                f"'{name}' already requires '{skill.name}': that would be a cycle."
                for name in cyclic
            ]
    if errors:
        raise ValidationError(errors)
    skill.prerequisites.set(prerequisites)


@transaction.atomic
def skill_create(
    *,
    tenant: Tenant,
    slug: str,
    name: str,
    description: str = "",
    prerequisites: Sequence[Skill] | None = None,
) -> Skill:
    with scope(tenant=tenant):
        skill = Skill(tenant=tenant, slug=slug, name=name, description=description)
        _slugged_save(skill)
        _prerequisites_set(skill, prerequisites)
    return skill


@transaction.atomic
def skill_update(
    *,
    skill: Skill,
    slug: str | None = None,
    name: str | None = None,
    description: str | None = None,
    prerequisites: Sequence[Skill] | None = None,
) -> Skill:
    """Change what is given; None leaves a field as it is."""
    _set_given(skill, slug=slug, name=name, description=description)
    with scope(tenant=skill.tenant_id):
        _slugged_save(skill)
        _prerequisites_set(skill, prerequisites)
    return skill


# --- Lessons ----------------------------------------------------------------------------------


def _lesson_position_check(lesson: Lesson, errors: Errors) -> None:
    holder = (
        Lesson.objects.filter(course_id=lesson.course_id, position=lesson.position)
        .exclude(pk=lesson.pk)
        .first()
    )
    if holder is not None:
        errors["position"] = [f"Position {lesson.position} is taken by '{holder.title}'."]


def _lesson_save(lesson: Lesson, skills: Sequence[Skill] | None) -> None:
    errors: Errors = {}
    _lesson_position_check(lesson, errors)
    if skills is not None:
        _skills_check(lesson.tenant_id, skills, errors)
    _save_validated(lesson, errors)
    if skills is not None:
        lesson.skills.set(skills)


@transaction.atomic
def lesson_create(
    *,
    course: Course,
    title: str,
    body: str = "",
    position: int | None = None,
    skills: Sequence[Skill] = (),
) -> Lesson:
    """A lesson at `position` (default: after the last one)."""
    with scope(tenant=course.tenant_id):
        if position is None:
            # Lock the course so two lessons added at once do not take the same position.
            Course.objects.select_for_update().filter(pk=course.pk).first()
            last = Lesson.objects.filter(course=course).aggregate(last=Max("position"))["last"]
            position = (last or 0) + 1
        lesson = Lesson(
            tenant_id=course.tenant_id, course=course, title=title, body=body, position=position
        )
        _lesson_save(lesson, skills)
    return lesson


@transaction.atomic
def lesson_update(
    *,
    lesson: Lesson,
    title: str | None = None,
    body: str | None = None,
    position: int | None = None,
    skills: Sequence[Skill] | None = None,
) -> Lesson:
    """Change what is given; None leaves a field as it is (skills=[] removes every skill)."""
    _set_given(lesson, title=title, body=body, position=position)
    with scope(tenant=lesson.tenant_id):
        _lesson_save(lesson, skills)
    return lesson


def lesson_delete(*, lesson: Lesson) -> None:
    """Positions only order lessons, so the others keep theirs: a gap is left, not renumbered
    (a client holding positions sees no other lesson move)."""
    lesson.delete()


# --- Exercises --------------------------------------------------------------------------------


class ExerciseOptions(TypedDict, total=False):
    """An exercise's optional fields, for exercise_create and (all fields) exercise_update."""

    instructions: str
    metric: str
    max_score: Decimal
    param_budget: int | None
    param_penalty: float
    max_seconds: int
    max_epochs: int | None
    allow_spec: bool
    allow_code: bool
    starter_spec: dict | None
    starter_code: str
    solution_code: str
    skills: Sequence[Skill]


class ExerciseChanges(ExerciseOptions, total=False):
    title: str
    dataset: str
    min_metric: float
    target_metric: float


def _spec_problems(spec: Any, dataset: str) -> list[str]:
    try:
        report = inspect_spec(spec, dataset_info(dataset))
    except SpecInvalid as exc:  # the document does not even parse
        return [problem.message for problem in exc.problems]
    return [problem.message for problem in report.problems]


def _exercise_errors(exercise: Exercise) -> Errors:
    errors: Errors = {}
    try:  # a built-in name, or a ready version of the tenant's own datasets ("upload:...")
        dataset_info(exercise.dataset)
    except UnknownDataset:
        errors["dataset"] = [
            f"Unknown dataset '{exercise.dataset}'; use one of {dataset_names()} or the name of "
            "a ready version of your own datasets."
        ]
    if exercise.target_metric <= exercise.min_metric:
        errors["target_metric"] = [
            f"The target ({exercise.target_metric}) must be above the minimum "
            f"({exercise.min_metric}): the score rises from one to the other."
        ]
    if exercise.max_score is not None and exercise.max_score <= 0:
        errors["max_score"] = ["The maximum score must be above 0."]
    if not (exercise.allow_spec or exercise.allow_code):
        errors["allow_spec"] = ["Allow spec submissions, code submissions or both."]
    if exercise.starter_spec is not None and "dataset" not in errors:
        problems = _spec_problems(exercise.starter_spec, exercise.dataset)
        if problems:
            errors["starter_spec"] = problems
    if exercise.starter_code:
        problems = check_code(exercise.starter_code)
        if problems:
            errors["starter_code"] = [problem.message for problem in problems]
    return errors


def _exercise_save(exercise: Exercise, skills: Sequence[Skill] | None) -> None:
    errors = _exercise_errors(exercise)
    if skills is not None:
        _skills_check(exercise.tenant_id, skills, errors)
    _save_validated(exercise, errors)
    if skills is not None:
        exercise.skills.set(skills)


def _set_fields(instance: models.Model, allowed: frozenset[str], values: dict) -> None:
    unknown = set(values) - allowed
    if unknown:
        raise TypeError(f"unexpected fields {sorted(unknown)}")
    for name, value in values.items():
        setattr(instance, name, value)


@transaction.atomic
def exercise_create(
    *,
    course: Course,
    title: str,
    dataset: str,
    min_metric: float,
    target_metric: float,
    **options: Unpack[ExerciseOptions],
) -> Exercise:
    """An exercise of the course. The starter spec is checked against the dataset and the
    starter code statically, as learners' submissions are."""
    skills = options.pop("skills", ())
    exercise = Exercise(
        tenant_id=course.tenant_id,
        course=course,
        title=title,
        dataset=dataset,
        min_metric=min_metric,
        target_metric=target_metric,
    )
    _set_fields(exercise, ExerciseOptions.__optional_keys__, options)
    with scope(tenant=course.tenant_id):
        _exercise_save(exercise, skills)
    return exercise


@transaction.atomic
def exercise_update(*, exercise: Exercise, **changes: Unpack[ExerciseChanges]) -> Exercise:
    """Change the given fields (None is a value here: it clears a nullable field), then
    validate the whole exercise again: a new dataset re-checks the starter spec."""
    skills = changes.pop("skills", None)
    _set_fields(exercise, ExerciseChanges.__optional_keys__, changes)
    with scope(tenant=exercise.tenant_id):
        _exercise_save(exercise, skills)
    return exercise


# --- Assignments ------------------------------------------------------------------------------


class AssignmentOptions(TypedDict, total=False):
    closes_at: datetime | None
    max_attempts: int
    late_policy: str
    late_penalty: float
    tutor_solutions_allowed: bool
    scores_shown: str


class AssignmentChanges(AssignmentOptions, total=False):
    opens_at: datetime
    due_at: datetime


def _assignment_errors(assignment: Assignment) -> Errors:
    errors: Errors = {}
    exercise = assignment.exercise
    if exercise.course_id != assignment.course_id or exercise.tenant_id != assignment.tenant_id:
        errors["exercise"] = ["This exercise belongs to another course."]
    if assignment.due_at <= assignment.opens_at:
        errors["due_at"] = ["The due date must be after the opening date."]
    if assignment.closes_at is not None and assignment.closes_at < assignment.due_at:
        errors["closes_at"] = ["The closing date must be at or after the due date."]
    return errors


def assignment_create(
    *,
    course: Course,
    exercise: Exercise,
    opens_at: datetime,
    due_at: datetime,
    **options: Unpack[AssignmentOptions],
) -> Assignment:
    """A draft assignment of one of the course's exercises; learners see it once published.
    Without `scores_shown`, the default for its dataset (models.scores_shown_default)."""
    assignment = Assignment(
        tenant_id=course.tenant_id,
        course=course,
        exercise=exercise,
        opens_at=opens_at,
        due_at=due_at,
    )
    options.setdefault("scores_shown", scores_shown_default(exercise))
    _set_fields(assignment, AssignmentOptions.__optional_keys__, options)
    with scope(tenant=course.tenant_id):
        _save_validated(assignment, _assignment_errors(assignment))
    return assignment


def assignment_update(
    *, assignment: Assignment, **changes: Unpack[AssignmentChanges]
) -> Assignment:
    """Change the given fields (None clears closes_at); the exercise stays."""
    _set_fields(assignment, AssignmentChanges.__optional_keys__, changes)
    with scope(tenant=assignment.tenant_id):
        _save_validated(assignment, _assignment_errors(assignment))
    return assignment


def assignment_publish(*, assignment: Assignment) -> Assignment:
    """Show the assignment to the course's learners (once the course is published too).
    Publishing twice keeps the first date."""
    if assignment.published_at is None:
        assignment.published_at = timezone.now()
        assignment.save(update_fields=["published_at", "updated_at"])
    return assignment


# --- Enrollments ------------------------------------------------------------------------------


def enrollment_create(*, course: Course, email: str) -> Enrollment:
    """Enroll the tenant member with this email (case does not matter) in the course."""
    with scope(tenant=course.tenant_id):
        membership = (
            Membership.objects.filter(tenant_id=course.tenant_id, user__email__iexact=email)
            .select_related("user")
            .first()
        )
        if membership is None:
            raise ValidationError({"email": [f"No member of this tenant has the email {email}."]})
        user = membership.user
        if Enrollment.objects.filter(course=course, user=user).exists():
            raise ValidationError({"email": [f"{user.email} is already enrolled in this course."]})
        enrollment = Enrollment(tenant_id=course.tenant_id, course=course, user=user)
        _save_validated(enrollment, {})
    return enrollment


def enrollment_delete(*, enrollment: Enrollment) -> None:
    """The learner leaves the course; their submissions and grades stay."""
    enrollment.delete()


# --- Join codes ------------------------------------------------------------------------------

# Letters and digits that cannot be misread for each other (no 0/O, 1/I/L).
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8


def _join_code_normal(code: str) -> str:
    """What the learner typed, as codes are stored: no spaces or dashes, upper case."""
    return "".join(c for c in (code or "") if c not in " -\t").upper()


def course_join_code_regenerate(*, course: Course) -> Course:
    """A new join code for the course (the old one stops working); turns joining on."""
    with scope(tenant=course.tenant_id):
        for _ in range(5):  # a clash with another course's code is rare: draw again
            course.join_code = "".join(
                secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH)
            )
            try:
                with transaction.atomic():
                    course.save(update_fields=["join_code", "updated_at"])
                return course
            except IntegrityError:
                continue
    raise RuntimeError("Could not draw a join code that no other course has.")


def course_join_code_disable(*, course: Course) -> Course:
    """Turn joining by code off: the code stops working."""
    course.join_code = ""
    course.save(update_fields=["join_code", "updated_at"])
    return course


def course_join(*, tenant: Tenant, user, code: str) -> Enrollment:
    """Enroll a learner of the tenant in the published course whose join code this is. A wrong
    or turned-off code, an unpublished course, a user who is not a learner of this tenant, or
    one already enrolled is a ValidationError on "code", and nothing is written."""
    normal = _join_code_normal(code)
    with scope(tenant=tenant.pk), transaction.atomic():
        is_learner = Membership.objects.filter(tenant=tenant, user=user, role=Role.LEARNER).exists()
        if not is_learner:
            raise ValidationError(
                {"code": [gettext("Only learners of this tenant join courses by code.")]}
            )
        course = (
            Course.objects.filter(
                tenant=tenant, join_code=normal, published_at__isnull=False
            ).first()
            if normal
            else None
        )
        if course is None:
            raise ValidationError(
                {
                    "code": [
                        gettext(
                            "No course here has the join code “%(code)s”: check it with your "
                            "teacher (codes are 8 letters and digits)."
                        )
                        % {"code": code.strip()[:20]}
                    ]
                }
            )
        if Enrollment.objects.filter(course=course, user=user).exists():
            already = gettext("You are already enrolled in %(course)s.") % {"course": course.title}
            raise ValidationError({"code": [already]})
        enrollment = Enrollment(tenant=tenant, course=course, user=user)
        _save_validated(enrollment, {})
    return enrollment
