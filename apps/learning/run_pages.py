"""Run pages (the learning app's: a run's page is its feedback, with the diagnosis and the
lessons that help, which learning owns), for whoever may follow the job (its learner, a teacher
of the course, a tenant administrator), as the API; anyone else gets 404. The run page draws the
curves live from the job's websocket and shows the grade, the metrics and the confusion matrix
when it has ended; cancel is a form post."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from apps.core.confirm import confirm_page, confirmed
from apps.core.forms import service_errors_to_form
from apps.courses.access import course_teaches
from apps.courses.forms import GradeOverrideForm
from apps.jobs import selectors, services
from apps.jobs.grading import grade_override as grade_override_write
from apps.jobs.states import FINAL_STATES
from apps.learning.selectors import run_hint_list
from apps.trained_models.models import TrainedModel
from apps.trained_models.pages import try_config


def _visible_submission(request, submission_id):
    submission = selectors.submission_get(submission_id=submission_id)
    if submission is None or not selectors.submission_visible(
        access=request.tenant_access, user=request.user, submission=submission
    ):
        raise Http404
    return submission


def _teaches(request, submission) -> bool:
    return course_teaches(
        access=request.tenant_access, user=request.user, course=submission.assignment.course
    )


def _result_context(submission, *, teaches: bool) -> dict:
    """What the result section shows: the grade, its metrics, the confusion matrix and the
    run's diagnosis (hints with their evidence and the lesson that helps). A grade withheld
    from its learner until the due date (hidden test parts: selectors.grade_withheld_until)
    shows only when it comes, and the public part's figures when the teacher shows them."""
    job = submission.job
    grade = getattr(submission, "grade", None)
    trained_model = (
        TrainedModel.objects.filter(submission=submission).select_related("onnx", "weights").first()
    )
    now = timezone.now()
    withheld_until = selectors.grade_withheld_until(grade=grade, teaches=teaches, now=now)
    public = None
    if withheld_until is not None:
        public = selectors.grade_public_shown(grade=grade, now=now)
        grade = None
    metrics = grade.metrics if grade else {}
    assignment = submission.assignment
    return {
        "submission": submission,
        "job": job,
        "ended": job.state in FINAL_STATES,
        "grade": grade,
        "withheld_until": withheld_until,
        "public": public,
        "metrics": metrics,
        "confusion": confusion_rows(metrics),
        "hints": run_hint_list(job=job, course=assignment.course),
        "trained_model": trained_model,
    }


def run_page(request, tenant_slug, submission_id, override_form=None):
    submission = _visible_submission(request, submission_id)
    teaches = _teaches(request, submission)
    context = _result_context(submission, teaches=teaches)
    grade, job = context["grade"], context["job"]
    context |= {
        "tenant": request.tenant,
        "assignment": submission.assignment,
        "teaches": teaches,
        "override_form": override_form
        or GradeOverrideForm(initial={"score": grade.score if grade else None}),
        "revisions": grade.revisions.select_related("author").order_by("-created_at")
        if grade and teaches
        else [],
        "live": {
            "socket": f"/ws/jobs/{job.id}/",
            "jobState": job.state,
            "resultUrl": reverse(
                "run-result", kwargs={"tenant_slug": tenant_slug, "submission_id": submission.id}
            ),
            "text": _run_page_text(),
        },
        "try_config": try_config(request, context["trained_model"])
        if context["trained_model"]
        else None,
    }
    return render(request, "jobs/run.html", context)


def _run_page_text() -> dict:
    """The words static/js/run.js shows, translated; "{name}" marks where it puts a value."""
    return {
        "run": gettext("This run"),
        "epochs": gettext("Epochs"),
        "loss": gettext("Loss"),
        "accuracy": gettext("Accuracy"),
        "training": gettext("Training: epoch {epoch} of {epochs}, loss {loss}"),
        "eta": gettext("about {time} left"),
        "minutes": gettext("{minutes} min {seconds} s"),
        "seconds": gettext("{seconds} s"),
        "started": gettext("Training has started."),
        "queued": gettext("Waiting for a GPU."),
        "requeued": gettext("The worker was lost; the run starts again."),
        "cancelling": gettext("Cancelling…"),
    }


def run_result(request, tenant_slug, submission_id):
    """The result section alone: the run page fetches it when the run's final event arrives."""
    submission = _visible_submission(request, submission_id)
    context = _result_context(submission, teaches=_teaches(request, submission))
    return render(request, "jobs/_result.html", context)


@require_POST
def grade_override(request, tenant_slug, submission_id):
    """A teacher of the course sets the grade, with a reason (audited; the automatic score and
    every earlier revision stay). Others get 404; a bad form comes back with its errors."""
    submission = _visible_submission(request, submission_id)
    grade = getattr(submission, "grade", None)
    if grade is None or not course_teaches(
        access=request.tenant_access, user=request.user, course=submission.assignment.course
    ):
        raise Http404
    form = GradeOverrideForm(request.POST)
    if form.is_valid():
        try:
            grade_override_write(grade=grade, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, f"The grade is now {form.cleaned_data['score']}.")
            return redirect("run", tenant_slug=tenant_slug, submission_id=submission.id)
    return run_page(request, tenant_slug, submission_id, override_form=form)


def confusion_rows(metrics: dict) -> list[dict]:
    """The confusion matrix as rows for a heat map: each cell with its count and its share of
    the row (the true class), so the colour reads as "how often this class went there"."""
    matrix, names = metrics.get("confusion_matrix"), metrics.get("class_names") or []
    if not matrix:
        return []
    rows = []
    for index, counts in enumerate(matrix):
        total = sum(counts) or 1
        rows.append(
            {
                "name": names[index] if index < len(names) else str(index),
                "cells": [
                    {
                        "count": n,
                        "share": round(n / total, 3),
                        "percent": round(100 * n / total),
                        "correct": column == index,
                    }
                    for column, n in enumerate(counts)
                ],
            }
        )
    return rows


@require_POST
def job_cancel(request, tenant_slug, job_id):
    job = selectors.job_get(job_id=job_id)
    if job is None or not selectors.job_visible(
        access=request.tenant_access, user=request.user, job=job
    ):
        raise Http404
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = f"/t/{tenant_slug}/"
    if not confirmed(request):
        return confirm_page(
            request,
            title=gettext("Cancel the run"),
            question=gettext("Cancel this run?"),
            consequence=gettext("Training stops and cannot be resumed."),
            submit=gettext("Yes, cancel the run"),
            back=back,
            keep={"next": back},
        )
    try:
        services.job_cancel(job=job, by=request.user)
    except services.Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Cancel requested."))
    return redirect(back)
