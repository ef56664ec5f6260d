"""The model registry of a course: for a learner, their models in it (metrics, size, the run,
downloads) with a "Use this one" choice per exercise for the course showcase; for a teacher of
the course (or a tenant admin), every learner's models, filterable by exercise, and the
showcase sorted by accuracy. Two runs chosen here open the comparison page. Anyone else: 404."""

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from apps.courses.access import course_takes, course_teaches
from apps.courses.models import Exercise
from apps.courses.selectors import course_get
from apps.trained_models.selectors import (
    showcase_list,
    showcase_model_ids,
    trained_model_get,
    trained_model_list,
)
from apps.trained_models.services import showcase_choose

PAGE_SIZE = 50  # models per page of a teacher's registry


def _course_or_404(request, course_id):
    course = course_get(tenant=request.tenant, course_id=course_id)
    if course is None:
        raise Http404
    teaches = course_teaches(access=request.tenant_access, user=request.user, course=course)
    if not teaches and not course_takes(user=request.user, course=course):
        raise Http404
    return course, teaches


def _exercise_filter(request, course):
    """The exercise of `?exercise=` when it is one of the course's; None for all (or nonsense)."""
    raw = request.GET.get("exercise", "")
    try:
        exercise_id = uuid.UUID(raw)
    except ValueError:
        return None
    return Exercise.objects.filter(course=course, pk=exercise_id).first()


def registry_page(request, tenant_slug, course_id):
    course, teaches = _course_or_404(request, course_id)
    models = trained_model_list(user=request.user, tenant=request.tenant, course=course)
    context = {"tenant": request.tenant, "course": course, "teaches": teaches}
    if teaches:
        exercise = _exercise_filter(request, course)
        if exercise is not None:
            models = models.filter(exercise=exercise)
        context |= {
            "exercises": Exercise.objects.filter(course=course).order_by("title", "pk"),
            "exercise": exercise,
            "models": Paginator(models, PAGE_SIZE).get_page(request.GET.get("page")),
            "showcase": showcase_list(course=course, exercise=exercise),
            "keep": f"&exercise={exercise.id}" if exercise is not None else "",
        }
    else:
        context |= {
            "models": list(models.filter(learner_id=request.user.pk)),
            "chosen": showcase_model_ids(user=request.user, course=course),
        }
    return render(request, "trained_models/registry.html", context)


@require_POST
def showcase_choose_view(request, tenant_slug, course_id, model_id):
    """A learner's "Use this one": their own model of this course becomes their showcase model
    for its exercise. A model they may not see, or of another course: 404; one they may see but
    did not train (a teacher's view): 403; either way nothing changes."""
    course, _ = _course_or_404(request, course_id)
    model = trained_model_get(user=request.user, tenant=request.tenant, model_id=model_id)
    if model.course_id != course.id:
        raise Http404
    showcase_choose(model=model, by=request.user)
    messages.success(
        request,
        gettext("Your showcase model for %(exercise)s is now attempt %(attempt)s.")
        % {"exercise": model.exercise.title, "attempt": model.submission.attempt},
    )
    return redirect("course-models", tenant_slug=request.tenant.slug, course_id=course.id)
