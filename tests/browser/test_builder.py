"""The layer builder in Chromium: switching optimizers keeps the CNN starter valid and
submittable, Submit waits for a valid model and says why, and the builder's help texts and
the run's diagnosis cards each get their own style."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from apps.courses.models import Exercise
from apps.jobs.models import Submission
from runtime.templates import TEMPLATES
from tests.browser.test_pages import _log_in
from tests.factories import AssignmentFactory, ExerciseFactory
from tests.learning.test_records import OVERFITTING, _run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server  # the run page listens on a websocket


@pytest.fixture
def cnn_assignment(tenant_a):
    exercise = ExerciseFactory(
        course=tenant_a.course,
        title="Shapes CNN",
        dataset="shapes",
        starter_spec=TEMPLATES["cifar-cnn"].spec,
    )
    return AssignmentFactory(exercise=exercise)


def test_switching_optimizers_keeps_the_cnn_starter_valid_and_submittable(
    page: Page, tenant_a, cnn_assignment, screenshot
):
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{cnn_assignment.id}/")
    summary = page.locator(".builder-summary")
    submit = page.get_by_role("button", name="Submit and train")
    optimizer = page.get_by_label("Optimizer", exact=True)
    momentum = page.get_by_label("Momentum", exact=True)
    expect(summary).to_have_text(re.compile(r"^The model is valid"))
    expect(submit).to_be_enabled()
    expect(momentum).to_have_value("0.9")
    expect(page.get_by_label("Learning rate", exact=True)).to_have_value("0.001")

    optimizer.select_option("adam")
    expect(momentum).to_have_count(0)  # Adam takes no momentum: set aside, not left behind
    expect(optimizer).to_be_focused()
    expect(summary).to_have_text(re.compile(r"^The model is valid"))
    expect(submit).to_be_enabled()
    screenshot(page, "adam")

    optimizer.select_option("sgd")
    expect(momentum).to_have_value("0.9")  # given back
    expect(summary).to_have_text(re.compile(r"^The model is valid"))

    submit.click()
    expect(page).to_have_url(re.compile(r"/t/alpha/runs/[0-9a-f-]{36}/$"), timeout=30_000)
    with scopes_disabled():
        submission = Submission.objects.get(assignment=cnn_assignment)
    assert submission.spec["training"]["optimizer"] == {"type": "sgd", "lr": 0.001, "momentum": 0.9}


def test_submit_is_disabled_with_the_reason_while_the_model_is_invalid(
    page: Page, tenant_a, cnn_assignment
):
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{cnn_assignment.id}/")
    submit = page.get_by_role("button", name="Submit and train")
    why = page.locator("#submit-why")
    expect(submit).to_be_enabled()
    expect(why).to_be_hidden()

    first = page.locator('li.layer[data-position="8"]')  # linear 400 -> 120
    first.get_by_label("In features").fill("401")
    expect(page.locator(".builder-summary")).to_have_text("1 problem to fix before submitting.")
    # The layer is named by its title, not by the runtime's type name.
    error = page.locator('[id="layer-8-error"]')
    expect(error).to_contain_text("layer 8 (Fully connected layer)")
    expect(error).not_to_contain_text("(linear)")
    expect(submit).to_be_disabled()
    expect(why).to_have_text("Fix the problems the builder lists before submitting.")
    expect(submit).to_have_attribute("aria-describedby", "submit-why")

    first.get_by_label("In features").fill("400")
    expect(submit).to_be_enabled()
    expect(why).to_be_hidden()
    with scopes_disabled():
        assert not Submission.objects.filter(assignment=cnn_assignment).exists()


def test_builder_help_has_no_error_bar_and_diagnosis_cards_are_full_width(page: Page, tenant_a):
    submission = _run(tenant_a, OVERFITTING)
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
    help_text = page.locator('[id="layer-1-out_features-hint"]')
    expect(help_text).to_have_text("number of outputs")
    assert help_text.evaluate("e => getComputedStyle(e).borderLeftStyle") == "none"
    assert help_text.evaluate("e => getComputedStyle(e).borderLeftWidth") == "0px"

    page.goto(f"/t/alpha/runs/{submission.id}/")
    card = page.locator("#hint-overfitting")
    expect(card).to_be_visible()
    widths = card.evaluate(
        "e => [e.getBoundingClientRect().width, e.closest('main').clientWidth"
        " - parseFloat(getComputedStyle(e.closest('main')).paddingLeft)"
        " - parseFloat(getComputedStyle(e.closest('main')).paddingRight)]"
    )
    assert widths[0] == pytest.approx(widths[1], abs=1), widths
    assert card.evaluate("e => getComputedStyle(e).borderLeftWidth") == "4px"


def test_a_refused_submission_reads_as_a_sentence_not_the_apis_pointer(
    page: Page, tenant_a, expected_console_errors
):
    # The browser logs the refusal's 400 itself.
    expected_console_errors.append(re.compile(r"submissions/: Failed to load resource: .* 400"))
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(allow_code=True)
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
    page.get_by_role("tab", name="PyTorch code").click()
    page.get_by_label(re.compile("PyTorch code: define")).fill("def build_model(:\n")
    page.get_by_role("button", name="Submit and train").click()
    message = page.locator("#submit-message")
    expect(message).to_contain_text(re.compile(r"^The submission was refused\. \S"))
    expect(message).not_to_contain_text("error.fields")
    expect(message).not_to_contain_text("code:")
    with scopes_disabled():
        assert Submission.objects.filter(learner=tenant_a.learner.user).count() == 1
