"""The comparison of two runs (`?a=<submission id>&b=<submission id>`), side by side: what
differs in their models (apps/learning/compare.py), their training curves overlaid (the run
page's curves.js, with one series per run), their metrics and both confusion matrices. Here with
the run page (apps/learning/run_pages.py): a run's page and its comparison read the same data.
Both runs must be ones the viewer may see (as the run page's rule); else 404, nothing logged."""

import uuid

from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_safe

from apps.jobs import selectors
from apps.jobs.models import SubmissionKind
from apps.learning.compare import per_class_rows, side_by_side, spec_lines, unified
from apps.learning.run_pages import confusion_rows


def _visible(request, raw) -> object:
    try:
        submission_id = uuid.UUID(str(raw))
    except ValueError as exc:
        raise Http404 from exc
    submission = selectors.submission_get(submission_id=submission_id)
    if submission is None or not selectors.submission_visible(
        access=request.tenant_access, user=request.user, submission=submission
    ):
        raise Http404
    return submission


def _label(letter: str, submission) -> str:
    return gettext("%(letter)s: %(exercise)s, attempt %(attempt)s") % {
        "letter": letter,
        "exercise": submission.assignment.exercise.title,
        "attempt": submission.attempt,
    }


def _side(letter: str, submission) -> dict:
    """One run's column: its label, its model (when kept), its metrics (the grade's, else the
    kept model's), parameter count, ONNX size and confusion matrix."""
    model = getattr(submission, "trained_model", None)
    grade = getattr(submission, "grade", None)
    metrics = (grade.metrics if grade is not None else None) or (model.metrics if model else {})
    parameters = metrics.get("parameter_count")
    if parameters is None and model is not None:
        parameters = model.parameter_count
    return {
        "letter": letter,
        "label": _label(letter, submission),
        "submission": submission,
        "model": model,
        "grade": grade,
        "metrics": metrics,
        "parameters": parameters,
        "onnx_size": model.onnx.size if model is not None else None,
        "confusion": confusion_rows(metrics),
    }


def _text(submission) -> list[str]:
    if submission.kind == SubmissionKind.CODE:
        return submission.code.splitlines()
    return spec_lines(submission.spec)


@require_safe
def compare_page(request, tenant_slug):
    a = _visible(request, request.GET.get("a", ""))
    b = _visible(request, request.GET.get("b", ""))
    sides = [_side("A", a), _side("B", b)]
    both_specs = a.kind == b.kind == SubmissionKind.SPEC
    curves = selectors.curves_get(submissions=[a, b])
    context = {
        "tenant": request.tenant,
        "a": sides[0],
        "b": sides[1],
        "sides": sides,
        "spec_rows": side_by_side(spec_lines(a.spec), spec_lines(b.spec)) if both_specs else None,
        "code_diff": None
        if both_specs
        else unified(_text(a), _text(b), a_name=sides[0]["label"], b_name=sides[1]["label"]),
        "per_class": per_class_rows(sides[0]["metrics"], sides[1]["metrics"]),
        "curves": {
            "runs": [
                {"label": side["label"], **curves.get(side["submission"].id, _NO_CURVE)}
                for side in sides
            ],
            "text": {
                "epochs": gettext("Epochs"),
                "loss": gettext("Loss"),
                "accuracy": gettext("Accuracy"),
            },
        },
    }
    return render(request, "trained_models/compare.html", context)


_NO_CURVE = {"x": [], "loss": [], "accuracy": []}
