"""Teachers' pages: their courses, a course's lessons, exercises (with the model builder for the
starter model), assignments and enrollments. The pages that read other apps' data live there:
the gradebook and leaderboards in apps/jobs/teacher_views.py, the mastery heat map in
apps/learning/views.py (both check access with `course_taught_or_404`).

Teachers of a course and the tenant's administrators use them; anyone else gets 404 (learners,
teachers of other courses, other tenants: TenantMiddleware already refused outsiders). Every
write goes through apps.courses.services, whose errors are shown on the form's fields."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from apps.core.forms import service_errors_to_form
from apps.courses import services
from apps.courses.access import course_teaches
from apps.courses.builder import builder_words
from apps.courses.forms import (
    AssignmentForm,
    CourseForm,
    EnrollForm,
    ExerciseForm,
    LessonForm,
    SkillForm,
)
from apps.courses.models import Assignment, Course, Exercise, Lesson, Skill
from apps.courses.selectors import course_list_for, enrollment_list
from apps.tenants.models import Role
from runtime.spec.schema import SPEC_JSON_SCHEMA
from runtime.templates import TEMPLATES


def teacher_or_404(request) -> None:
    """Teachers' pages are 404 to learners."""
    if request.tenant_access is None or not request.tenant_access.allows(Role.TEACHER):
        raise Http404


def course_taught_or_404(request, course_id) -> Course:
    """The course, for who teaches it (its teachers, the tenant's admins); else 404."""
    teacher_or_404(request)
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not course_teaches(
        access=request.tenant_access, user=request.user, course=course
    ):
        raise Http404
    return course


def courses_page(request, tenant_slug):
    teacher_or_404(request)
    form = CourseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            course = services.course_create(
                tenant=request.tenant, created_by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, f"{course.title} is created (a draft until you publish it).")
            return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)
    courses = [
        course
        for course in course_list_for(user=request.user, access=request.tenant_access)
        if course_teaches(access=request.tenant_access, user=request.user, course=course)
    ]
    return render(
        request,
        "courses/teach/courses.html",
        {"tenant": request.tenant, "courses": courses, "form": form},
    )


def course_page(request, tenant_slug, course_id):
    course = course_taught_or_404(request, course_id)
    form = CourseForm(request.POST or None, instance=course)
    if request.method == "POST" and form.is_valid():
        try:
            services.course_update(course=course, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, "The course is saved.")
            return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)
    context = {
        "tenant": request.tenant,
        "course": course,
        "form": form,
        "lessons": Lesson.objects.filter(course=course).order_by("position"),
        "exercises": Exercise.objects.filter(course=course).order_by("title"),
        "assignments": Assignment.objects.filter(course=course)
        .select_related("exercise")
        .order_by("due_at"),
        "enrollments": enrollment_list(course=course).select_related("user"),
        "enroll_form": EnrollForm(),
    }
    return render(request, "courses/teach/course.html", context)


@require_POST
def course_publish(request, tenant_slug, course_id):
    course = course_taught_or_404(request, course_id)
    services.course_publish(course=course)
    messages.success(request, f"{course.title} is published: enrolled learners see it.")
    return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)


@require_POST
def course_join_code(request, tenant_slug, course_id):
    """Regenerate the course's join code (turning joining on), or turn it off."""
    course = course_taught_or_404(request, course_id)
    if request.POST.get("action") == "disable":
        services.course_join_code_disable(course=course)
        messages.success(request, gettext("Joining by code is off: the old code no longer works."))
    else:
        services.course_join_code_regenerate(course=course)
        messages.success(
            request, gettext("The join code is now %(code)s.") % {"code": course.join_code}
        )
    return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)


@require_POST
def enrollment_add(request, tenant_slug, course_id):
    course = course_taught_or_404(request, course_id)
    form = EnrollForm(request.POST)
    if form.is_valid():
        try:
            enrollment = services.enrollment_create(course=course, email=form.cleaned_data["email"])
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, f"{enrollment.user.email} is enrolled.")
    else:
        messages.error(request, "Enter a valid email address.")
    return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)


def _child(model, course: Course, pk):
    """The course's lesson, exercise or assignment `pk` (None for a new one); 404 if not its."""
    if pk is None:
        return None
    found = model.objects.filter(course=course, pk=pk).first()
    if found is None:
        raise Http404
    return found


def _saved(request, form, save) -> bool:
    """For a valid POST, save(values) through a service; True when it saved, else its errors
    are on the form (and the page is shown again)."""
    if request.method != "POST" or not form.is_valid():
        return False
    try:
        save(dict(form.cleaned_data))
    except ValidationError as exc:
        service_errors_to_form(form, exc)
        return False
    return True


def lesson_page(request, tenant_slug, course_id, lesson_id=None):
    course = course_taught_or_404(request, course_id)
    lesson = _child(Lesson, course, lesson_id)
    form = LessonForm(request.POST or None, instance=lesson, tenant=request.tenant)

    def save(values):
        values["skills"] = list(values["skills"])
        if lesson is None:
            return services.lesson_create(course=course, **values)
        return services.lesson_update(lesson=lesson, **values)

    if _saved(request, form, save):
        messages.success(request, f"The lesson {form.cleaned_data['title']} is saved.")
        return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)
    context = {"tenant": request.tenant, "course": course, "lesson": lesson, "form": form}
    return render(request, "courses/teach/lesson.html", context)


def exercise_page(request, tenant_slug, course_id, exercise_id=None):
    course = course_taught_or_404(request, course_id)
    exercise = _child(Exercise, course, exercise_id)
    form = ExerciseForm(request.POST or None, instance=exercise, tenant=request.tenant)

    def save(values):
        values["skills"] = list(values["skills"])
        if exercise is None:
            return services.exercise_create(course=course, **values)
        return services.exercise_update(exercise=exercise, **values)

    if _saved(request, form, save):
        messages.success(request, f"The exercise {form.cleaned_data['title']} is saved.")
        return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)
    starter = form["starter_spec"].value()
    try:
        spec = json.loads(starter) if isinstance(starter, str) and starter.strip() else starter
    except json.JSONDecodeError:
        spec = None
    context = {
        "tenant": request.tenant,
        "course": course,
        "exercise": exercise,
        "form": form,
        "builder": {
            "schema": SPEC_JSON_SCHEMA,
            "words": builder_words(),
            "spec": spec or TEMPLATES["xor"].spec,
            "validateUrl": f"/api/v1/t/{request.tenant.slug}/specs/validate/",
        },
    }
    return render(request, "courses/teach/exercise.html", context)


def assignment_page(request, tenant_slug, course_id, assignment_id=None):
    course = course_taught_or_404(request, course_id)
    assignment = _child(Assignment, course, assignment_id)
    form = AssignmentForm(request.POST or None, instance=assignment, course=course)

    def save(values):
        publish = values.pop("publish")
        exercise = values.pop("exercise")
        if values.get("scores_shown") is None:
            values.pop("scores_shown", None)
        if assignment is None:
            saved = services.assignment_create(course=course, exercise=exercise, **values)
        else:
            saved = services.assignment_update(assignment=assignment, **values)
        if publish:
            services.assignment_publish(assignment=saved)

    if _saved(request, form, save):
        title = form.cleaned_data["exercise"].title
        messages.success(request, f"The assignment of {title} is saved.")
        return redirect("teach-course", tenant_slug=tenant_slug, course_id=course.id)
    context = {"tenant": request.tenant, "course": course, "assignment": assignment, "form": form}
    return render(request, "courses/teach/assignment.html", context)


def skills_page(request, tenant_slug, skill_id=None):
    """The tenant's skills (teachers and administrators): the list, a new one or one to change,
    with its prerequisites."""
    teacher_or_404(request)
    skill = None
    if skill_id is not None:
        skill = Skill.objects.filter(tenant=request.tenant, pk=skill_id).first()
        if skill is None:
            raise Http404
    form = SkillForm(request.POST or None, instance=skill, tenant=request.tenant)

    def save(values):
        values["prerequisites"] = list(values["prerequisites"])
        if skill is None:
            return services.skill_create(tenant=request.tenant, **values)
        return services.skill_update(skill=skill, **values)

    if _saved(request, form, save):
        messages.success(request, f"The skill {form.cleaned_data['name']} is saved.")
        return redirect("teach-skills", tenant_slug=tenant_slug)
    skills = Skill.objects.filter(tenant=request.tenant).prefetch_related("prerequisites")
    context = {
        "tenant": request.tenant,
        "skill": skill,
        "form": form,
        "skills": skills.order_by("name"),
    }
    return render(request, "courses/teach/skills.html", context)
