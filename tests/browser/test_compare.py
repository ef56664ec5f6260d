"""The comparison page in a real browser: from the registry, a learner chooses two of their runs
as A and B, compares them, and sees both runs' curves overlaid in each chart (one legend entry
per run) and the spec diff's changed line."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_pages import _log_in
from tests.factories import AssignmentFactory, ExerciseFactory, JobEventFactory
from tests.models_support import SPECS, stored_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NARROW = {
    **SPECS["digits"],
    "layers": [
        {"type": "linear", "out_features": 16},
        {"type": "relu"},
        {"type": "linear", "out_features": 10},
    ],
}


def test_a_learner_compares_two_runs_and_sees_both_curves(page: Page, tenant_a, screenshot):
    world = tenant_a
    assignment = AssignmentFactory(
        exercise=ExerciseFactory(
            course=world.course, dataset="digits", title="Digits", starter_spec=SPECS["digits"]
        )
    )
    models = [
        stored_model(world, dataset="digits", trained=False, assignment=assignment, attempt=1),
        stored_model(
            world, dataset="digits", trained=False, assignment=assignment, attempt=2, spec=NARROW
        ),
    ]
    for model, losses in zip(models, ((2.0, 1.0, 0.6), (1.8, 0.7, 0.4)), strict=True):
        for index, loss in enumerate(losses):
            JobEventFactory(
                job=model.submission.job,
                seq=4 + index,
                attempt=1,
                type="progress",
                payload={
                    "epoch": index + 1,
                    "epochs": 3,
                    "step": index + 1,
                    "steps": 3,
                    "loss": loss,
                    "val_accuracy": 1 - loss / 2,
                },
            )
    _log_in(page, world.learner.user.email)
    page.goto(f"/t/{world.tenant.slug}/courses/{world.course.id}/")
    page.get_by_role("link", name="Your models in this course").click()
    page.get_by_label("Compare as A: Digits, attempt 1").check()
    page.get_by_label("Compare as B: Digits, attempt 2").check()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare two runs")
    for chart in ("#compare-loss", "#compare-accuracy"):
        expect(page.locator(chart)).to_have_attribute("data-series", "2")
        expect(page.locator(f"{chart} canvas")).to_have_count(1)
        legend = page.locator(f"{chart} .u-legend .u-series th")
        expect(legend).to_have_text(["Epochs", "A: Digits, attempt 1", "B: Digits, attempt 2"])
    expect(page.locator("#spec-diff tr.changed")).to_have_count(1)
    screenshot(page, "compare")
