"""Teachers' pages through Django's test client: courses, exercises (with the starter model),
assignments, the gradebook (sorting, CSV), grade overrides and leaderboards. Learners, teachers
of other courses and other tenants get 404, and nothing changes."""

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.courses.models import Assignment, Course, Exercise
from apps.jobs.models import Grade
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, page_client_for
from tests.factories import CourseFactory, MembershipFactory, graded_submission
from tests.snapshots import db_snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]


def _course_url(world, rest: str = "") -> str:
    return f"/t/{world.tenant.slug}/teach/courses/{world.course.id}/{rest}"


EXERCISE_FORM = {
    "title": "Moons",
    "dataset": "moons",
    "metric": "accuracy",
    "min_metric": "0.5",
    "target_metric": "0.9",
    "max_score": "10",
    "param_budget": "",
    "param_penalty": "0",
    "max_seconds": "120",
    "max_epochs": "",
    "allow_spec": "on",
    "instructions": "Separate the **moons**.",
    "starter_code": "",
}


def test_a_teacher_creates_a_course_and_becomes_its_teacher(tenant_a):
    client = page_client_for(tenant_a.teacher.user)
    page = client.get("/t/alpha/teach/")
    assert page.status_code == 200
    assert "Neural networks at alpha" in page.content.decode()
    response = client.post("/t/alpha/teach/", {"title": "Vision", "slug": "vision", "summary": ""})
    with scopes_disabled():
        course = Course.objects.get(slug="vision")
        assert list(course.teachers.all()) == [tenant_a.teacher.user]
    assert (response.status_code, response["Location"]) == (302, _course_url_of(course))
    assert course.published_at is None


def _course_url_of(course) -> str:
    return f"/t/alpha/teach/courses/{course.id}/"


def test_a_course_page_lists_lessons_exercises_assignments_and_learners(tenant_a):
    html = page_client_for(tenant_a.teacher.user).get(_course_url(tenant_a)).content.decode()
    assert f'href="{_course_url(tenant_a)}lessons/{tenant_a.lesson.id}/"' in html
    assert f'href="{_course_url(tenant_a)}exercises/{tenant_a.exercise.id}/"' in html
    assert f'href="{_course_url(tenant_a)}assignments/{tenant_a.assignment.id}/"' in html
    assert tenant_a.learner.user.email in html


def test_a_teacher_creates_an_exercise_with_a_starter_model(tenant_a):
    spec = TEMPLATES["xor"].spec
    response = page_client_for(tenant_a.teacher.user).post(
        _course_url(tenant_a, "exercises/new/"), {**EXERCISE_FORM, "starter_spec": json.dumps(spec)}
    )
    assert (response.status_code, response["Location"]) == (302, _course_url(tenant_a))
    with scopes_disabled():
        exercise = Exercise.objects.get(title="Moons")
    assert (exercise.dataset, exercise.min_metric, exercise.target_metric) == ("moons", 0.5, 0.9)
    assert (exercise.max_score, exercise.max_seconds, exercise.allow_spec) == (10, 120, True)
    assert exercise.starter_spec == spec


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"target_metric": "0.4"}, "target_metric", "The target (0.4) must be above the minimum"),
        ({"starter_spec": "{not json"}, "starter_spec", "The starter model is not valid JSON"),
        (
            {"starter_spec": json.dumps({"version": 1, "layers": [], "training": {}})},
            "starter_spec",
            "",
        ),
        ({"allow_spec": ""}, "allow_spec", "Allow spec submissions, code submissions or both."),
        ({"dataset": "imagenet"}, "dataset", "Select a valid choice."),
    ],
)
def test_a_bad_exercise_form_names_the_field_and_saves_nothing(tenant_a, change, field, message):
    client = page_client_for(tenant_a.teacher.user)
    before = db_snapshot()
    response = client.post(_course_url(tenant_a, "exercises/new/"), {**EXERCISE_FORM, **change})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert errors[field][0].startswith(message)
    assert db_snapshot() == before


def test_a_teacher_schedules_and_publishes_an_assignment(tenant_a):
    opens = timezone.now().replace(second=0, microsecond=0) + timedelta(days=1)
    due = opens + timedelta(days=7)
    response = page_client_for(tenant_a.teacher.user).post(
        _course_url(tenant_a, "assignments/new/"),
        {
            "exercise": tenant_a.exercise.id,
            "opens_at": opens.strftime("%Y-%m-%dT%H:%M"),
            "due_at": due.strftime("%Y-%m-%dT%H:%M"),
            "closes_at": "",
            "max_attempts": "3",
            "late_policy": "refuse",
            "late_penalty": "0",
            "publish": "on",
            "tutor_solutions_allowed": "on",
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        assignment = Assignment.objects.exclude(pk=tenant_a.assignment.pk).get()
    assert (assignment.opens_at, assignment.due_at, assignment.max_attempts) == (opens, due, 3)
    assert assignment.published_at is not None
    assert assignment.tutor_solutions_allowed is True


def test_an_assignment_due_before_it_opens_is_refused_on_its_field(tenant_a):
    now = timezone.now()
    client = page_client_for(tenant_a.teacher.user)
    before = db_snapshot()
    response = client.post(
        _course_url(tenant_a, "assignments/new/"),
        {
            "exercise": tenant_a.exercise.id,
            "opens_at": now.strftime("%Y-%m-%dT%H:%M"),
            "due_at": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "max_attempts": "3",
            "late_policy": "refuse",
            "late_penalty": "0",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "due_at": ["The due date must be after the opening date."]
    }
    assert db_snapshot() == before


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_gradebook_sorts_and_exports_with_overrides(tenant_a):
    other = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    with scopes_disabled():
        tenant_a.course.enrollments.create(tenant=tenant_a.tenant, user=other)
    graded_submission(assignment=tenant_a.assignment, learner=other, attempt=1, score=95)
    client = page_client_for(tenant_a.teacher.user)
    book = client.get(_course_url(tenant_a, "gradebook/"))
    assert book.status_code == 200
    by_score = client.get(
        _course_url(tenant_a, f"gradebook/?sort=a:{tenant_a.assignment.id}&dir=desc")
    )
    assert [row["learner"] for row in by_score.context["rows"]] == [
        other,
        tenant_a.learner.user,
    ]

    # An override, then the export holds it.
    grade = tenant_a.submission.grade
    response = client.post(
        f"/t/alpha/runs/{tenant_a.submission.id}/grade/", {"score": "97", "reason": "Clean model"}
    )
    assert (response.status_code, response["Location"]) == (
        302,
        f"/t/alpha/runs/{tenant_a.submission.id}/",
    )
    exported = client.get(_course_url(tenant_a, "gradebook.csv"))
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    rows = _rows(exported.content.decode())
    assert rows[0] == ["email", "name", "XOR at alpha", "total", "overrides"]
    by_email = {row[0]: row for row in rows[1:]}
    learner = tenant_a.learner.user
    assert by_email[learner.email] == [
        learner.email,
        learner.full_name,
        "97.00",
        "97.00",
        "XOR at alpha: Clean model",
    ]
    assert by_email[other.email][2:4] == ["95.00", "95.00"]
    with scopes_disabled():
        grade.refresh_from_db()
    assert (grade.score, grade.automatic_score, grade.source) == (
        Decimal("97.00"),
        Decimal("80.00"),
        "teacher",
    )


FORMULA_NAMES = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_the_gradebook_csv_neutralises_formulas_in_every_text_cell(tenant_a):
    """A learner's own full name, an exercise's title and an override's reason are text typed by
    users: none may reach a spreadsheet as a formula. The scores stay numbers."""
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(title="=1+1")
    learners = []
    for i, name in enumerate(FORMULA_NAMES):
        user = MembershipFactory(
            tenant=tenant_a.tenant,
            role="learner",
            user__full_name=name,
            user__email=f"f{i}@example.org",
        ).user
        with scopes_disabled():
            tenant_a.course.enrollments.create(tenant=tenant_a.tenant, user=user)
        graded_submission(assignment=tenant_a.assignment, learner=user, attempt=1, score=40 + i)
        learners.append(user)
    exported = page_client_for(tenant_a.teacher.user).get(_course_url(tenant_a, "gradebook.csv"))
    assert exported.status_code == 200
    rows = _rows(exported.content.decode())
    assert rows[0] == ["email", "name", "'=1+1", "total", "overrides"]
    by_email = {row[0]: row for row in rows[1:]}
    assert [by_email[u.email] for u in learners] == [
        [f"f{i}@example.org", "'" + name, f"{40 + i}.00", f"{40 + i}.00", ""]
        for i, name in enumerate(FORMULA_NAMES)
    ]


def test_an_override_without_a_reason_is_refused_and_changes_nothing(tenant_a):
    client = page_client_for(tenant_a.teacher.user)
    before = db_snapshot()
    response = client.post(
        f"/t/alpha/runs/{tenant_a.submission.id}/grade/", {"score": "50", "reason": ""}
    )
    assert response.status_code == 200
    assert response.context["override_form"].errors == {"reason": ["This field is required."]}
    response = client.post(
        f"/t/alpha/runs/{tenant_a.submission.id}/grade/", {"score": "500", "reason": "x"}
    )
    assert response.context["override_form"].errors == {
        "score": ["The score must be between 0 and 100.00."]
    }
    assert db_snapshot() == before


def test_the_leaderboard_ranks_best_scores(tenant_a):
    html = (
        page_client_for(tenant_a.teacher.user)
        .get(_course_url(tenant_a, f"assignments/{tenant_a.assignment.id}/leaderboard/"))
        .content.decode()
    )
    assert f'<a href="/t/alpha/runs/{tenant_a.submission.id}/">80.00</a>' in html


def test_the_teachers_validate_api_checks_a_spec_on_a_dataset(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    ok = client.post(
        "/api/v1/t/alpha/specs/validate/",
        {"dataset": "xor", "spec": TEMPLATES["xor"].spec},
        format="json",
    )
    assert (ok.status_code, ok.json()["valid"], ok.json()["total_params"]) == (200, True, 9)
    refused = api_client_for(tenant_a.learner.user).post(
        "/api/v1/t/alpha/specs/validate/",
        {"dataset": "xor", "spec": TEMPLATES["xor"].spec},
        format="json",
    )
    assert refused.status_code == 403


def test_learners_and_teachers_of_other_courses_get_404_and_nothing_changes(tenant_a, tenant_b):
    other_teacher = MembershipFactory(tenant=tenant_a.tenant, role="teacher").user
    CourseFactory(tenant=tenant_a.tenant)  # taught by nobody here
    clients = [
        page_client_for(u) for u in (tenant_a.learner.user, other_teacher, tenant_b.teacher.user)
    ]
    urls = [
        _course_url(tenant_a, rest)
        for rest in (
            "",
            "gradebook/",
            "gradebook.csv",
            "exercises/new/",
            f"exercises/{tenant_a.exercise.id}/",
            "assignments/new/",
            f"lessons/{tenant_a.lesson.id}/",
            f"assignments/{tenant_a.assignment.id}/leaderboard/",
        )
    ]
    before = db_snapshot()
    for client in clients:
        for url in urls:
            assert client.get(url).status_code == 404, url
            assert client.post(url, {**EXERCISE_FORM}).status_code == 404, url
        assert client.post(_course_url(tenant_a, "publish/")).status_code == 404
    learner = clients[0]
    assert learner.get("/t/alpha/teach/").status_code == 404
    assert (
        learner.post(
            f"/t/alpha/runs/{tenant_a.submission.id}/grade/", {"score": "100", "reason": "me"}
        ).status_code
        == 404
    )
    assert db_snapshot() == before
    with scopes_disabled():
        assert Grade.objects.get(pk=tenant_a.submission.grade.pk).score == Decimal("80.00")


def test_the_gradebook_and_the_leaderboard_paginate_keeping_the_sort(tenant_a, monkeypatch):
    from apps.jobs import teacher_views

    monkeypatch.setattr(teacher_views, "PAGE_SIZE", 1)
    other = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    with scopes_disabled():
        tenant_a.course.enrollments.create(tenant=tenant_a.tenant, user=other)
    graded_submission(assignment=tenant_a.assignment, learner=other, attempt=1, score=95)
    client = page_client_for(tenant_a.teacher.user)
    first = client.get(_course_url(tenant_a, "gradebook/?sort=total&dir=desc"))
    assert [row["learner"] for row in first.context["rows"]] == [other]
    assert 'href="?page=2&amp;sort=total&amp;dir=desc" rel="next"' in first.content.decode()
    second = client.get(_course_url(tenant_a, "gradebook/?page=2&sort=total&dir=desc"))
    assert [row["learner"] for row in second.context["rows"]] == [tenant_a.learner.user]
    board = client.get(
        _course_url(tenant_a, f"assignments/{tenant_a.assignment.id}/leaderboard/?page=2")
    ).content.decode()
    assert f"<tr><td>2</td><td>{tenant_a.learner.user.full_name}</td>" in board


def test_a_teacher_adds_skills_with_prerequisites_and_a_cycle_is_refused(tenant_a):
    from apps.courses.models import Skill

    teacher = page_client_for(tenant_a.teacher.user)
    listing = teacher.get("/t/alpha/teach/skills/")
    assert listing.status_code == 200
    assert "MLPs at alpha" in listing.content.decode()
    response = teacher.post(
        "/t/alpha/teach/skills/",
        {
            "name": "Convolutions",
            "slug": "cnn",
            "description": "",
            "prerequisites": [str(tenant_a.skill.id)],
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        cnn = Skill.objects.get(tenant=tenant_a.tenant, slug="cnn")
        assert list(cnn.prerequisites.all()) == [tenant_a.skill]
    before = db_snapshot()
    cycle = teacher.post(
        f"/t/alpha/teach/skills/{tenant_a.skill.id}/",
        {
            "name": "MLPs at alpha",
            "slug": tenant_a.skill.slug,
            "description": "",
            "prerequisites": [str(cnn.id)],
        },
    )
    assert cycle.status_code == 200
    assert cycle.context["form"].errors == {
        "prerequisites": ["'Convolutions' already requires 'MLPs at alpha': that would be a cycle."]
    }
    assert db_snapshot() == before
    # A skill is not offered as its own prerequisite.
    choices = cycle.context["form"].fields["prerequisites"].queryset
    with scopes_disabled():
        assert tenant_a.skill not in list(choices)


@pytest.mark.parametrize("who", ["learner", "other-tenant"])
def test_the_skills_pages_are_404_to_learners_and_other_tenants(tenant_a, tenant_b, who):
    user = tenant_a.learner.user if who == "learner" else tenant_b.teacher.user
    client = page_client_for(user)
    before = db_snapshot()
    assert client.get("/t/alpha/teach/skills/").status_code == 404
    assert client.get(f"/t/alpha/teach/skills/{tenant_a.skill.id}/").status_code == 404
    body = {"name": "X", "slug": "x", "description": ""}
    assert client.post("/t/alpha/teach/skills/", body).status_code == 404
    assert db_snapshot() == before
