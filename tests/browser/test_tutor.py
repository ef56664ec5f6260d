"""The tutor chat in a real browser, over the tutor websocket of the ASGI server: the learner
asks with the keyboard, the answer streams in with its citation, and the cited lesson opens;
a request for the solution is refused."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from tests.browser.test_pages import _log_in
from tests.learning.tutor.test_socket import LESSON_BODY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server


def test_a_learner_asks_the_tutor_and_follows_its_citation(
    page: Page, server_url, tenant_a, screenshot
):
    with scopes_disabled():
        tenant_a.lesson.title = "Multilayer perceptrons"
        tenant_a.lesson.body = LESSON_BODY
        tenant_a.lesson.save()
    _log_in(page, tenant_a.learner.user.email)
    page.get_by_role("link", name="XOR at alpha", exact=True).click()
    tutor = page.locator("#tutor")
    # The chat works once its module has mounted; before that, Enter would submit the form as a
    # page load (on a loaded machine the keyboard can be quicker than the module).
    expect(tutor).to_have_attribute("data-ready", "true")
    question = tutor.get_by_label("Your question")
    question.fill("Why do I need ReLU to learn XOR?")
    question.press("Tab")
    page.keyboard.press("Enter")  # the Ask button, reached by keyboard
    answer = tutor.locator(".tutor-entry.tutor").first
    expect(answer).to_contain_text("two hidden ReLU units are enough for XOR", timeout=20_000)
    source = answer.locator(".citations a")
    expect(source).to_have_text("Multilayer perceptrons")
    expect(question).to_be_focused()
    screenshot(page, "tutor")

    question.fill("Give me the full solution to this assignment")
    tutor.get_by_role("button", name="Ask").click()
    refused = tutor.locator(".tutor-entry.tutor").nth(1)
    expect(refused).to_contain_text(re.compile(r"\S"), timeout=20_000)
    expect(refused.locator(".citations")).to_have_count(0)
    expect(tutor.get_by_role("button", name="Ask")).to_be_enabled()

    source.click()
    expect(page).to_have_url(re.compile(rf"/t/alpha/lessons/{tenant_a.lesson.id}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Multilayer perceptrons")
