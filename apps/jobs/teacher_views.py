"""Teachers' pages over a course's grades: the gradebook (sortable, CSV) and an assignment's
leaderboard. Here rather than with the other teachers' pages (apps/courses/teacher_views.py)
because grades are the jobs app's, and the courses app sits below it; the access rule is the
same (`course_taught_or_404`: 404 to anyone who does not teach the course)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from apps.core.csv_export import csv_response
from apps.courses.models import Assignment
from apps.courses.teacher_views import course_taught_or_404
from apps.jobs.models import ACTIVE_REGRADE_STATES
from apps.jobs.regrade import assignment_regrade_start
from apps.jobs.selectors import gradebook_get, regrade_latest, standings_get

PAGE_SIZE = 50  # learners per page of the gradebook and the leaderboard


def _sorted_rows(book: dict, sort: str, descending: bool) -> list[dict]:
    """Rows by learner name (default), by total, or by one assignment's score ("a:<id>";
    learners without a grade there come last in either direction)."""
    rows = book["rows"]
    if sort == "total":
        return sorted(rows, key=lambda row: row["total"], reverse=descending)
    ids = [str(a.pk) for a in book["assignments"]]
    if sort.startswith("a:") and sort[2:] in ids:
        column = ids.index(sort[2:])
        graded = [row for row in rows if row["grades"][column] is not None]
        ungraded = [row for row in rows if row["grades"][column] is None]
        graded.sort(key=lambda row: row["grades"][column].score, reverse=descending)
        return graded + ungraded
    return sorted(
        rows,
        key=lambda row: (
            (row["learner"].full_name or row["learner"].email).lower(),
            row["learner"].email,
        ),
        reverse=descending,
    )


def gradebook_page(request, tenant_slug, course_id):
    course = course_taught_or_404(request, course_id)
    book = gradebook_get(course=course)
    sort = request.GET.get("sort", "learner")
    descending = request.GET.get("dir") == "desc"
    rows = Paginator(_sorted_rows(book, sort, descending), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    keep = f"&sort={sort}" + ("&dir=desc" if descending else "")
    context = {
        "tenant": request.tenant,
        "course": course,
        "book": book,
        "rows": rows,
        "sort": sort,
        "descending": descending,
        "keep": keep,
    }
    return render(request, "courses/teach/gradebook.html", context)


def gradebook_csv(request, tenant_slug, course_id):
    course = course_taught_or_404(request, course_id)
    book = gradebook_get(course=course)
    header = [
        "email",
        "name",
        *(a.exercise.title for a in book["assignments"]),
        "total",
        "overrides",
    ]
    rows = []
    for row in book["rows"]:
        grades = row["grades"]
        overrides = "; ".join(
            f"{a.exercise.title}: {g.override_reason}"
            for a, g in zip(book["assignments"], grades, strict=True)
            if g is not None and g.source == "teacher"
        )
        rows.append(
            [
                row["learner"].email,
                row["learner"].full_name,
                *(None if g is None else g.score for g in grades),
                row["total"],
                overrides,
            ]
        )
    return csv_response(filename=f"gradebook-{course.slug}.csv", header=header, rows=rows)


def _taught_assignment(request, course_id, assignment_id):
    course = course_taught_or_404(request, course_id)
    assignment = (
        Assignment.objects.filter(course=course, pk=assignment_id)
        .select_related("exercise")
        .first()
    )
    if assignment is None:
        raise Http404
    return course, assignment


def leaderboard_page(request, tenant_slug, course_id, assignment_id):
    """An assignment's leaderboard, with its regrade from the stored models: the button, and
    what the latest regrade did (or is doing)."""
    course, assignment = _taught_assignment(request, course_id, assignment_id)
    standings = standings_get(assignment=assignment, teacher=True, now=timezone.now())
    grades = Paginator(standings, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "tenant": request.tenant,
        "course": course,
        "assignment": assignment,
        "grades": grades,
        "parts": any(standing.public is not None for standing in standings),
        "regrade": (regrade := regrade_latest(assignment=assignment)),
        "regrade_active": regrade is not None and regrade.state in ACTIVE_REGRADE_STATES,
    }
    return render(request, "courses/teach/leaderboard.html", context)


@require_POST
def regrade_start(request, tenant_slug, course_id, assignment_id):
    """Regrade every submission of the assignment from its stored models (a teacher of the
    course; 404 to anyone else, nothing queued)."""
    course, assignment = _taught_assignment(request, course_id, assignment_id)
    assignment_regrade_start(assignment=assignment, by=request.user, access=request.tenant_access)
    messages.success(
        request,
        gettext(
            "The regrade has started: every submission is graded again from its stored model "
            "with the current thresholds. Reload this page to follow it."
        ),
    )
    return redirect(
        "teach-leaderboard",
        tenant_slug=request.tenant.slug,
        course_id=course.id,
        assignment_id=assignment.id,
    )
