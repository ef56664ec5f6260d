"""The learner's pages, through Django's test client: the dashboard, the assignment page (the
builder's configuration, instructions as sanitised Markdown, attempts with their curves) and the
run page (grade, metrics, confusion matrix). Others get 404 and nothing changes."""

import json
import re

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.courses.models import Exercise
from runtime.spec.schema import SPEC_JSON_SCHEMA
from tests.conftest import page_client_for
from tests.factories import AssignmentFactory, JobEventFactory, MembershipFactory
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


def _embedded(html: str, element_id: str):
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert found, element_id
    return json.loads(found.group(1))


def test_the_dashboard_lists_the_learners_assignments_and_recent_runs(tenant_a):
    response = page_client_for(tenant_a.learner.user).get("/t/alpha/")
    assert response.status_code == 200
    html = response.content.decode()
    url = f"/t/alpha/assignments/{tenant_a.assignment.id}/"
    assert f'<a href="{url}">XOR at alpha</a>' in html
    row = re.search(r'<tr id="assignment-[^"]+">(.*?)</tr>', html, re.S).group(1)
    assert [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)
    ] == [
        "Neural networks at alpha",
        tenant_a.assignment.due_at.strftime("%Y-%m-%d %H:%M") + " UTC",
        "Open",
        "1 of 5",
        "80.00",
    ]
    runs = re.search(r'<table id="recent-runs">(.*?)</table>', html, re.S).group(1)
    assert f'href="/t/alpha/runs/{tenant_a.submission.id}/"' in runs
    assert "Succeeded" in runs


def test_the_assignment_page_configures_the_builder_from_the_runtime_schema(tenant_a):
    response = page_client_for(tenant_a.learner.user).get(
        f"/t/alpha/assignments/{tenant_a.assignment.id}/"
    )
    assert response.status_code == 200
    html = response.content.decode()
    config = _embedded(html, "builder-config")
    base = f"/api/v1/t/alpha/assignments/{tenant_a.assignment.id}"
    assert config["schema"] == SPEC_JSON_SCHEMA
    assert (config["validateUrl"], config["submitUrl"]) == (
        f"{base}/validate/",
        f"{base}/submissions/",
    )
    assert config["kinds"] == ["spec"]
    # The learner's latest spec is where the builder starts.
    assert config["spec"] == tenant_a.submission.spec
    assert "Attempts: 1 used, 4 left" in html
    assert 'id="submit" ' in html and 'id="submit" disabled' not in html


def test_instructions_are_markdown_with_anything_unsafe_removed(tenant_a):
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(
            instructions="## Goal\n\nReach **95%**. <script>alert(1)</script> "
            "[bad](javascript:alert(1)) [docs](https://pytorch.org)"
        )
    html = (
        page_client_for(tenant_a.learner.user)
        .get(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
        .content.decode()
    )
    section = re.search(
        r'<section aria-labelledby="instructions-heading".*?</section>', html, re.S
    ).group(0)
    assert "<h4>Goal</h4>" in section  # two levels down: under the page's h1 and its h2
    assert "<strong>95%</strong>" in section
    assert "<script>" not in section and "&lt;script&gt;" in section
    assert 'href="javascript' not in section
    assert '<a href="https://pytorch.org" rel="noopener noreferrer nofollow">docs</a>' in section


def test_attempts_carry_their_curves_for_the_overlay_chart(tenant_a):
    with scopes_disabled():
        for seq, (step, loss) in enumerate([(5, 0.6), (10, 0.3)], start=4):
            JobEventFactory(
                job=tenant_a.job,
                seq=seq,
                type="progress",
                attempt=1,
                payload={
                    "epoch": 1,
                    "epochs": 2,
                    "step": step,
                    "steps": 10,
                    "loss": loss,
                    "train_accuracy": 0.5,
                    "val_accuracy": None,
                },
            )
    html = (
        page_client_for(tenant_a.learner.user)
        .get(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
        .content.decode()
    )
    assert _embedded(html, "history-data") == [
        {"label": "Attempt 1", "x": [1.0, 2.0], "loss": [0.6, 0.3], "accuracy": [0.5, 0.5]}
    ]


def test_submitting_is_off_when_the_attempts_are_used_or_the_assignment_is_not_open(tenant_a):
    upcoming = AssignmentFactory(
        exercise=tenant_a.exercise, opens_at=timezone.now() + timezone.timedelta(days=1)
    )
    html = page_client_for(tenant_a.learner.user).get(f"/t/alpha/assignments/{upcoming.id}/")
    assert 'id="submit" disabled aria-describedby="submit-why"' in html.content.decode()
    assert "This assignment is not open yet." in html.content.decode()


def test_the_run_page_shows_the_grade_metrics_and_confusion_matrix(tenant_a):
    with scopes_disabled():
        grade = tenant_a.submission.grade
        grade.metrics = {
            "accuracy": 0.75,
            "confusion_matrix": [[3, 1], [0, 4]],
            "class_names": ["0", "1"],
            "test_samples": 8,
        }
        grade.save()
    response = page_client_for(tenant_a.learner.user).get(
        f"/t/alpha/runs/{tenant_a.submission.id}/"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert '<p id="grade" class="grade"><strong>80.00 / 100.00</strong></p>' in html
    assert "<dt>Accuracy</dt><dd>0.7500</dd>" in html
    cells = re.findall(r'<td class="([^"]*)" style="--share: ([0-9.]+)"[^>]*>(\d+)</td>', html)
    assert cells == [
        ("diagonal dark", "0.75", "3"),
        ("", "0.25", "1"),
        ("", "0.0", "0"),
        ("diagonal dark", "1.0", "4"),
    ]
    config = _embedded(html, "run-config")
    assert config == {
        "socket": f"/ws/jobs/{tenant_a.job.id}/",
        "jobState": "succeeded",
        "resultUrl": f"/t/alpha/runs/{tenant_a.submission.id}/result/",
        "text": config["text"],
    }
    # The words run.js shows come with the page, "{name}" where it puts a value.
    assert config["text"]["training"] == "Training: epoch {epoch} of {epochs}, loss {loss}"
    assert config["text"]["eta"] == "about {time} left"
    assert 'id="cancel-form"' not in html  # the run has ended
    result = page_client_for(tenant_a.learner.user).get(config["resultUrl"])
    assert result.status_code == 200
    assert (
        '<p id="grade" class="grade"><strong>80.00 / 100.00</strong></p>' in result.content.decode()
    )


def test_a_teacher_of_the_course_sees_the_run_and_a_classmate_does_not(tenant_a, tenant_b):
    url = f"/t/alpha/runs/{tenant_a.submission.id}/"
    assert page_client_for(tenant_a.teacher.user).get(url).status_code == 200
    classmate = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    clients = [
        page_client_for(user) for user in (classmate, tenant_b.learner.user, tenant_b.admin.user)
    ]
    before = db_snapshot()
    for client in clients:
        assert client.get(url).status_code == 404
        assert client.get(url + "result/").status_code == 404
        assert client.get(f"/t/alpha/assignments/{tenant_a.assignment.id}/").status_code == 404
    assert db_snapshot() == before


def test_an_unpublished_assignment_is_404_for_learners(tenant_a):
    hidden = AssignmentFactory(exercise=tenant_a.exercise, published_at=None)
    assert (
        page_client_for(tenant_a.learner.user).get(f"/t/alpha/assignments/{hidden.id}/").status_code
        == 404
    )


def test_an_exercise_that_allows_code_has_a_code_tab_with_the_starter_code(tenant_a):
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(
            allow_code=True, starter_code="def build_model():\n    return None\n"
        )
    html = (
        page_client_for(tenant_a.learner.user)
        .get(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
        .content.decode()
    )
    assert _embedded(html, "builder-config")["kinds"] == ["spec", "code"]
    assert 'role="tab" id="tab-code" aria-controls="panel-code" aria-selected="false"' in html
    editor = re.search(r'<textarea id="code-editor"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert editor == "def build_model():\n    return None\n"
