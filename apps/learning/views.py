"""Learning pages: the learner's dashboard (the tenant's home), a lesson (a learner's visit is
recorded), the teachers' mastery heat map and its refit, and the administrators' tutor page
(which backend answers the tenant's learners, and its usage).

The dashboard and the lesson page are here, not in the tenants and courses apps, because they
read and record learning data and those apps sit below this one."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.forms import service_errors_to_form
from apps.courses.access import course_sees, course_takes
from apps.courses.models import Lesson
from apps.courses.selectors import AssignmentStatus
from apps.courses.teacher_views import course_taught_or_404
from apps.jobs.selectors import assignment_list_for_learner, submission_list_recent
from apps.learning import selectors as learning_selectors
from apps.learning import services
from apps.learning.bkt import mastery_percent
from apps.learning.forms import TutorSettingsForm
from apps.learning.links import recommendation_url
from apps.learning.models import SkillParams
from apps.learning.tutoring import tokens_used_this_month
from apps.tenants.models import Role
from apps.tenants.views import role_required

PAGE_SIZE = 50  # learners per page of the mastery heat map


def tenant_home(request, tenant_slug):
    """The tenant's home; for a learner, their dashboard: the recommended next step, assignments
    with due dates and status, recent runs, and mastery per skill."""
    context = {
        "tenant": request.tenant,
        "grade_notices": list(
            learning_selectors.grade_notice_list_open(tenant=request.tenant, user=request.user)
        ),
    }
    if request.tenant_access.role == Role.LEARNER:
        assignments = list(
            assignment_list_for_learner(user=request.user, tenant=request.tenant).select_related(
                "exercise", "course"
            )
        )
        for assignment in assignments:
            assignment.status_label = AssignmentStatus(assignment.status).label
        context["assignments"] = assignments
        context["runs"] = submission_list_recent(learner=request.user)
        context["has_courses"] = learning_selectors.course_list_taken(
            tenant=request.tenant, user=request.user
        ).exists()
        mastery = learning_selectors.mastery_list(tenant=request.tenant, user=request.user)
        context["mastery"] = mastery
        context["mastery_threshold"] = round(settings.MASTERY_THRESHOLD * 100)
        step = learning_selectors.recommendation_get(
            tenant=request.tenant, user=request.user, mastery=mastery
        )
        context["next_step"] = step
        context["next_step_url"] = recommendation_url(step, tenant_slug=request.tenant.slug)
    return render(request, "tenants/home.html", context)


@require_POST
def grade_notice_dismiss(request, tenant_slug, notice_id):
    """Dismiss one of the user's own grade notices; anyone else's id is 404, nothing changed."""
    if not services.grade_notice_dismiss(user=request.user, notice_id=notice_id):
        raise Http404
    return redirect("tenant-home", tenant_slug=request.tenant.slug)


def lesson_page(request, tenant_slug, lesson_id):
    """A lesson of a course the user takes (or teaches); a learner's visit is recorded."""
    lesson = (
        Lesson.objects.filter(tenant=request.tenant, pk=lesson_id)
        .select_related("course")
        .prefetch_related("skills")
        .first()
    )
    if lesson is None or not course_sees(
        access=request.tenant_access, user=request.user, course=lesson.course
    ):
        raise Http404
    if course_takes(user=request.user, course=lesson.course):
        services.lesson_viewed(user=request.user, lesson=lesson)
    lessons = list(Lesson.objects.filter(course=lesson.course).order_by("position"))
    context = {
        "tenant": request.tenant,
        "lesson": lesson,
        "course": lesson.course,
        "lessons": lessons,
    }
    return render(request, "courses/lesson.html", context)


def mastery_page(request, tenant_slug, course_id):
    """The course's learners by its skills as a heat map of mastery, paginated by learner."""
    course = course_taught_or_404(request, course_id)
    grid = learning_selectors.mastery_grid_get(course=course)
    rows = [
        {
            "learner": learner,
            "cells": [
                {"value": v, "percent": None if v is None else mastery_percent(v)} for v in cells
            ],
        }
        for learner, cells in zip(grid.learners, grid.cells, strict=True)
    ]
    fitted = SkillParams.objects.filter(skill__in=grid.skills).order_by("-fitted_at").first()
    context = {
        "tenant": request.tenant,
        "course": course,
        "skills": grid.skills,
        "rows": Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")),
        "fitted_at": fitted.fitted_at if fitted else None,
    }
    return render(request, "courses/teach/mastery.html", context)


@require_POST
def mastery_refit(request, tenant_slug, course_id):
    """Queue a refit of the tenant's knowledge-tracing parameters (a Celery task)."""
    course = course_taught_or_404(request, course_id)
    services.bkt_fit_on_commit(request.tenant.pk)
    messages.success(
        request, "The refit is queued: mastery is recomputed with the new parameters shortly."
    )
    return redirect("teach-mastery", tenant_slug=tenant_slug, course_id=course.id)


@role_required(Role.ADMIN)
def tutor_settings_page(request, tenant_slug):
    row = services.tutor_settings_of(request.tenant)
    if request.method == "POST":
        form = TutorSettingsForm(request.POST)
        if form.is_valid():
            values = {
                k: form.cleaned_data[k] for k in ("endpoint_url", "model", "tokens_per_month")
            }
            try:
                services.tutor_settings_set(
                    tenant=request.tenant,
                    actor=request.user,
                    api_key=form.api_key_change(),
                    **values,
                )
            except ValidationError as exc:
                service_errors_to_form(form, exc)
            else:
                messages.success(request, "The tutor's settings are saved.")
                return redirect("tutor-settings", tenant_slug=tenant_slug)
    else:
        form = TutorSettingsForm(
            initial={
                "endpoint_url": row.endpoint_url,
                "model": row.model,
                "tokens_per_month": row.tokens_per_month,
            }
        )
    context = {
        "tenant": request.tenant,
        "form": form,
        "settings_row": row,
        "tokens_used": tokens_used_this_month(request.tenant.pk),
    }
    return render(request, "learning/tutor_settings.html", context)
