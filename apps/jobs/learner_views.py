"""Learner pages over their attempts: the assignment page (instructions, the model builder or
the code editor, submit, and the attempts so far with their curves overlaid) and a course they
take (its lessons, and its assignments with their status and attempts). Here rather than with
the other learner pages (apps/courses/views.py) because attempts and grades are the jobs app's,
and the courses app sits below it.

TenantMiddleware has already checked membership; an assignment the learner does not have
(unpublished, another course, another tenant) is 404, as for any page they may not use."""

from django.http import Http404
from django.shortcuts import render

from apps.courses.access import course_takes
from apps.courses.builder import builder_words
from apps.courses.models import Lesson
from apps.courses.selectors import AssignmentStatus, course_get
from apps.jobs.models import Submission, SubmissionKind
from apps.jobs.selectors import (
    assignment_get_for_learner,
    assignment_list_for_learner,
    curves_get,
    grades_shown_to_learner,
)
from runtime.spec.schema import SPEC_JSON_SCHEMA
from runtime.templates import TEMPLATES


def _starting_points(exercise, attempts: list[Submission]) -> tuple[dict, str]:
    """The spec and the code the editors open with: the learner's latest of each kind, else the
    exercise's starters, else the built-in XOR template (a model to change, not a blank page)."""
    spec = next((s.spec for s in attempts if s.kind == SubmissionKind.SPEC), None)
    code = next((s.code for s in attempts if s.kind == SubmissionKind.CODE), None)
    return (
        spec or exercise.starter_spec or TEMPLATES["xor"].spec,
        code if code is not None else (exercise.starter_code or TEMPLATES["xor"].code),
    )


def assignment_page(request, tenant_slug, assignment_id):
    assignment = assignment_get_for_learner(
        user=request.user, tenant=request.tenant, assignment_id=assignment_id
    )
    if assignment is None:
        raise Http404
    exercise = assignment.exercise
    attempts = grades_shown_to_learner(
        Submission.objects.filter(assignment=assignment, learner=request.user)
        .select_related("job", "grade", "assignment")
        .order_by("-attempt")
    )
    spec, code = _starting_points(exercise, attempts)
    curves = curves_get(submissions=attempts)
    can_submit = (
        assignment.status in (AssignmentStatus.OPEN, AssignmentStatus.LATE)
        and assignment.attempts_left > 0
    )
    api = f"/api/v1/t/{request.tenant.slug}/assignments/{assignment.id}"
    context = {
        "tenant": request.tenant,
        "assignment": assignment,
        "exercise": exercise,
        "attempts": attempts,
        "can_submit": can_submit,
        "status_label": AssignmentStatus(assignment.status).label,
        "builder": {
            "schema": SPEC_JSON_SCHEMA,
            "words": builder_words(),
            "spec": spec,
            "code": code,
            "kinds": exercise.allowed_kinds,
            "validateUrl": f"{api}/validate/",
            "submitUrl": f"{api}/submissions/",
            "runBase": f"/t/{request.tenant.slug}/runs/",
        },
        "history": [
            {"label": f"Attempt {s.attempt}", **curves[s.id]}
            for s in reversed(attempts)
            if s.id in curves
        ],
    }
    return render(request, "courses/assignment.html", context)


def my_course_page(request, tenant_slug, course_id):
    """A course the learner takes: its lessons and their assignments in it."""
    course = course_get(tenant=request.tenant, course_id=course_id)
    if course is None or not course_takes(user=request.user, course=course):
        raise Http404
    assignments = list(
        assignment_list_for_learner(user=request.user, tenant=request.tenant)
        .filter(course=course)
        .select_related("exercise")
    )
    for assignment in assignments:
        assignment.status_label = AssignmentStatus(assignment.status).label
    context = {
        "tenant": request.tenant,
        "course": course,
        "lessons": Lesson.objects.filter(course=course).order_by("position"),
        "assignments": assignments,
    }
    return render(request, "courses/my_course.html", context)
