"""A learner in a real browser against the platform as production runs it (uvicorn on the ASGI
application, websockets included, and a real Celery worker): builds the XOR model by clicking,
sees the shape error on the wrong layer, fixes it, submits, watches the curve grow as the
run's events arrive, and sees the grade."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from apps.courses.models import Exercise
from apps.jobs.models import Submission
from runtime.templates import TEMPLATES
from tests.browser.test_pages import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server


def _layer(page: Page, position: str):
    return page.locator(f'li.layer[data-position="{position}"]')


def _add(page: Page, layer_type: str) -> None:
    page.get_by_label("Layer type", exact=True).select_option(layer_type)
    page.get_by_role("button", name="Add layer", exact=True).click()


def test_a_learner_builds_xor_by_clicking_submits_and_watches_it_train(
    page: Page, server_url, tenant_a, celery_worker_process, screenshot
):
    _log_in(page, tenant_a.learner.user.email)
    expect(page.locator("#assignments")).to_be_visible()
    screenshot(page, "dashboard")
    page.get_by_role("link", name="XOR at alpha", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("XOR at alpha")
    summary = page.locator(".builder-summary")
    expect(summary).to_have_text(re.compile(r"^The model is valid"))

    # From an empty stack: the builder starts from the last attempt, so remove its layers.
    while _layer(page, "1").count():
        page.get_by_role("button", name="Remove layer 1").click()
    expect(page.locator("li.layer")).to_have_count(0)

    _add(page, "linear")
    _layer(page, "1").get_by_label("out features").fill("8")
    _add(page, "relu")
    _add(page, "linear")
    third = _layer(page, "3")
    third.get_by_label("out features").fill("1")
    third.get_by_label("in features").fill("3")  # wrong: layer 2 gives 8
    _add(page, "sigmoid")

    error = page.locator('[id="layer-3-error"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("8")
    screenshot(page, "builder-error")
    expect(third).to_have_class(re.compile(r"\bhas-error\b"))
    expect(summary).to_have_text("1 problem to fix before submitting.")
    expect(_layer(page, "1").locator(".layer-report")).to_have_text("→ [8] · 24 parameters")

    third.get_by_label("in features").fill("")  # inferred from layer 2
    expect(error).to_be_hidden()
    expect(summary).to_have_text("The model is valid: 33 parameters, output [1].")

    screenshot(page, "builder-valid")
    page.get_by_role("button", name="Submit and train").click()
    expect(page.locator("#submit-message")).to_have_text("")
    expect(page).to_have_url(re.compile(r"/t/alpha/runs/[0-9a-f-]{36}/$"), timeout=30_000)
    with scopes_disabled():
        submission = Submission.objects.get(learner=tenant_a.learner.user, attempt=2)
    assert [layer["type"] for layer in submission.spec["layers"]] == [
        "linear",
        "relu",
        "linear",
        "sigmoid",
    ]
    assert submission.spec["layers"][2] == {"type": "linear", "out_features": 1}

    # The curve grows as progress events arrive, then the grade appears.
    chart = page.locator("#loss-chart")
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"), timeout=120_000)
    first = int(chart.get_attribute("data-points"))
    expect(page.locator("#grade")).to_contain_text("/ 100.00", timeout=120_000)
    assert int(chart.get_attribute("data-points")) > first
    expect(page.locator("#run-progress")).to_have_js_property("value", 1)
    expect(page.locator("#cancel-form")).to_have_count(0)
    expect(page.locator("#confusion")).to_be_visible()


def test_a_learner_submits_pytorch_code_from_the_code_tab(
    page: Page, server_url, tenant_a, celery_worker_process
):
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(
            allow_code=True, starter_code=TEMPLATES["xor"].code
        )
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
    builder_tab = page.get_by_role("tab", name="Layer builder")
    builder_tab.focus()
    page.keyboard.press("ArrowRight")  # the tabs pattern: arrows move between tabs
    expect(page.get_by_role("tab", name="PyTorch code")).to_have_attribute("aria-selected", "true")
    editor = page.get_by_label(re.compile("PyTorch code: define"))
    expect(editor).to_be_visible()
    expect(editor).to_have_value(TEMPLATES["xor"].code)
    page.get_by_role("button", name="Submit and train").click()
    expect(page).to_have_url(re.compile(r"/t/alpha/runs/[0-9a-f-]{36}/$"), timeout=30_000)
    expect(page.locator("#grade")).to_contain_text("/ 100.00", timeout=180_000)
    expect(page.locator("pre.code")).to_contain_text("def build_model")
    with scopes_disabled():
        submission = Submission.objects.get(learner=tenant_a.learner.user, attempt=2)
    assert (submission.kind, submission.code) == ("code", TEMPLATES["xor"].code)
