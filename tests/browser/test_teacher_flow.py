"""A teacher in a real browser: creates an exercise (its starter model made with the builder)
and an assignment, finds the learner's run in the gradebook, overrides the grade with a reason,
exports the gradebook as CSV, and the file holds the override."""

import csv
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from apps.courses.models import Assignment, Exercise
from tests.browser.test_pages import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.calendar, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server  # the run page follows its job over a websocket


def test_a_teacher_sets_work_overrides_a_grade_and_exports_it(
    page: Page, server_url, tenant_a, screenshot
):
    _log_in(page, tenant_a.teacher.user.email)
    page.get_by_role("link", name="Your courses").click()
    screenshot(page, "courses")
    page.get_by_role("link", name="Neural networks at alpha", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Neural networks at alpha")
    screenshot(page, "course")

    # An exercise on the moons dataset; the builder checks the starter model against it.
    page.get_by_role("link", name="New exercise").click()
    page.get_by_label("Title:").fill("Two moons")
    page.get_by_label("Dataset:").select_option("moons")
    page.get_by_label("Min metric:").fill("0.5")
    page.get_by_label("Target metric:").fill("0.9")
    expect(page.locator(".builder-summary")).to_have_text(re.compile(r"^The model is valid"))
    screenshot(page, "exercise")
    page.get_by_role("button", name="Save the exercise").click()
    expect(page.get_by_role("status")).to_have_text("The exercise Two moons is saved.")
    with scopes_disabled():
        exercise = Exercise.objects.get(title="Two moons")
        assert exercise.dataset == "moons"
        assert [layer["type"] for layer in exercise.starter_spec["layers"]] == [
            "linear",
            "relu",
            "linear",
            "sigmoid",
        ]

    # Its assignment, published.
    page.get_by_role("link", name="New assignment").click()
    page.get_by_label("Exercise:").select_option(label="Two moons")
    # Relative to today: open since yesterday, due after the fixture's assignment (now + 7
    # days), so the gradebook, which orders its columns by due date, puts it second.
    now = timezone.localtime().replace(second=0, microsecond=0)
    opens_at, due_at = now - timedelta(days=1), now + timedelta(days=14)
    page.get_by_label("Opens at:").fill(opens_at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Due at:").fill(due_at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Publish:").check()
    page.get_by_role("button", name="Save the assignment").click()
    expect(page.get_by_role("status")).to_have_text("The assignment of Two moons is saved.")
    with scopes_disabled():
        assignment = Assignment.objects.get(exercise=exercise)
        assert assignment.published_at is not None
        assert (assignment.opens_at, assignment.due_at) == (opens_at, due_at)

    # The learner's run in the gradebook, then the override.
    page.get_by_role("link", name="Gradebook").first.click()
    row = page.locator("#gradebook tbody tr", has_text=tenant_a.learner.user.email)
    expect(row).to_contain_text("80.00")
    screenshot(page, "gradebook")
    row.get_by_role("link", name="80.00").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Attempt 1: XOR at alpha")
    page.get_by_label("Score:").fill("91.5")
    page.get_by_label("Reason:").fill("Model is simpler than required")
    page.get_by_role("button", name="Set the grade").click()
    expect(page.locator(".messages")).to_have_text("The grade is now 91.5.")
    expect(page.locator("#grade")).to_contain_text("91.50 / 100.00")
    expect(page.locator("#grade-history")).to_contain_text("Model is simpler than required")

    page.goto(f"/t/alpha/teach/courses/{tenant_a.course.id}/gradebook/")
    expect(row).to_contain_text("91.50")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    with open(download.value.path(), newline="", encoding="utf-8") as exported:
        rows = list(csv.reader(exported))
    assert rows[0] == ["email", "name", "XOR at alpha", "Two moons", "total", "overrides"]
    learner = tenant_a.learner.user
    assert [
        learner.email,
        learner.full_name,
        "91.50",
        "",
        "91.50",
        "XOR at alpha: Model is simpler than required",
    ] in rows
