"""The builder and the teachers' forms with the keyboard alone: no mouse event is sent, every
control is reached with Tab and worked with Enter, Space and the arrow keys."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from apps.courses.models import Lesson
from tests.browser.test_pages import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _tab_to(page: Page, locator, *, limit: int = 200) -> None:
    """Press Tab until `locator` has the focus (failing after `limit` presses)."""
    for _ in range(limit):
        if locator.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {locator}")


def test_a_learner_changes_the_model_with_the_keyboard_alone(page: Page, tenant_a):
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
    summary = page.locator(".builder-summary")
    expect(summary).to_have_text(re.compile(r"^The model is valid"))
    layers = page.locator("li.layer")
    expect(layers).to_have_count(4)

    # Remove the last layer (the sigmoid): Tab to its button, Enter.
    _tab_to(page, page.get_by_role("button", name="Remove layer 4"))
    page.keyboard.press("Enter")
    expect(layers).to_have_count(3)
    # Add a Tanh from the palette: Tab to the select, type to choose, Tab to Add, Space.
    _tab_to(page, page.get_by_label("Layer type", exact=True))
    page.keyboard.type("Tanh")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(layers).to_have_count(4)
    expect(page.locator('li.layer[data-position="4"] .layer-title')).to_contain_text("Tanh")
    # Move it up one place, with the focus following the layer.
    _tab_to(page, page.get_by_role("button", name="Move layer 4 up"))
    page.keyboard.press("Enter")
    expect(page.locator('li.layer[data-position="3"] .layer-title')).to_contain_text("Tanh")
    expect(page.locator('[id="layer-3-title"]')).to_be_focused()
    # Change a number: Tab into layer 1's out features and type.
    field = page.locator('li.layer[data-position="1"]').get_by_label("out features")
    _tab_to(page, field)
    page.keyboard.press("Control+A")
    page.keyboard.type("6")
    expect(page.locator('[id="layer-1-report"]')).to_have_text("→ [6] · 18 parameters")
    # The last linear layer still says in_features 2: the error shows on it; clear the field.
    expect(page.locator('[id="layer-4-error"]')).to_be_visible()
    inputs = page.locator('li.layer[data-position="4"]').get_by_label("in features")
    _tab_to(page, inputs)
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    expect(page.locator('[id="layer-4-error"]')).to_be_hidden()
    expect(summary).to_have_text(re.compile(r"^The model is valid"))


def test_a_teacher_writes_a_lesson_with_the_keyboard_alone(page: Page, tenant_a):
    _log_in(page, tenant_a.teacher.user.email)
    page.goto(f"/t/alpha/teach/courses/{tenant_a.course.id}/lessons/new/")
    _tab_to(page, page.get_by_label("Title:"))
    page.keyboard.type("Dropout")
    page.keyboard.press("Tab")  # position: left empty (after the last lesson)
    page.keyboard.press("Tab")
    page.keyboard.type("# Dropout\n\nTurn off units at random while training.")
    _tab_to(page, page.get_by_label(tenant_a.skill.name))
    page.keyboard.press("Space")
    _tab_to(page, page.get_by_role("button", name="Save the lesson"))
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_have_text("The lesson Dropout is saved.")
    with scopes_disabled():
        lesson = Lesson.objects.get(title="Dropout")
        assert (lesson.position, lesson.body.splitlines()[0]) == (2, "# Dropout")
        assert [s.pk for s in lesson.skills.all()] == [tenant_a.skill.pk]
