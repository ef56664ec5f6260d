"""Learner pages: my courses and joining one by its code. The pages that read other apps' data
live there: the assignment page and the learner's course page in apps/jobs/learner_views.py
(attempts, grades, curves), the lesson page in apps/learning/views.py (it records the visit).

TenantMiddleware has already checked membership."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from apps.core.forms import service_errors_to_form
from apps.courses import services
from apps.courses.forms import JoinCourseForm
from apps.courses.selectors import course_list_for_learner


def my_courses_page(request, tenant_slug, form=None):
    """The courses the learner is enrolled in, and the "Join a course" form."""
    context = {
        "tenant": request.tenant,
        "courses": course_list_for_learner(tenant=request.tenant, user=request.user),
        "form": form or JoinCourseForm(),
    }
    return render(request, "courses/my_courses.html", context, status=400 if form else 200)


@require_POST
def course_join(request, tenant_slug):
    form = JoinCourseForm(request.POST)
    if form.is_valid():
        try:
            enrollment = services.course_join(
                tenant=request.tenant, user=request.user, code=form.cleaned_data["code"]
            )
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(
                request, gettext("You joined %(course)s.") % {"course": enrollment.course.title}
            )
            return redirect("my-course", tenant_slug=tenant_slug, course_id=enrollment.course_id)
    return my_courses_page(request, tenant_slug, form=form)
