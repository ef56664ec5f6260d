"""Try your model, in a real Chromium: a digit drawn on the canvas, an image uploaded, points
clicked on the XOR plane with the decision boundary drawn; the model runs in the browser with
onnxruntime-web, and its probabilities equal the prediction API's (the inference pool's
onnxruntime) for the same inputs within 1e-5; a model too large for the browser runs on the
pool through the same page."""

import numpy as np
import pytest
from django_scopes import scopes_disabled
from PIL import Image
from playwright.sync_api import Page, expect

from apps.trained_models.services import artifact_open
from runtime.artifacts.predict import OnnxModel
from tests.browser.test_pages import _log_in
from tests.conftest import api_client_for
from tests.models_support import stored_model

pytestmark = pytest.mark.browser


def _server_probabilities(model, inputs: list[list[float]]) -> np.ndarray:
    with scopes_disabled():
        onnx = artifact_open(model.onnx)
    runner = OnnxModel(onnx)
    shape = (len(inputs), *runner.sample_shape)
    return runner.probabilities(np.asarray(inputs, dtype=runner.dtype).reshape(shape))


def _api_probabilities(world, model, inputs: list[list[float]]) -> np.ndarray:
    """The same inputs through the prediction API, run by the inference pool."""
    response = api_client_for(world.learner.user).post(
        f"/api/v1/t/{world.tenant.slug}/models/{model.id}/predict",
        {"inputs": inputs},
        format="json",
    )
    assert response.status_code == 200, response.content
    return np.array([row["probabilities"] for row in response.json()["predictions"]])


def _open(page: Page, world, model) -> None:
    _log_in(page, world.learner.user.email)
    page.goto(f"/t/{world.tenant.slug}/models/{model.id}/try/")
    expect(page.locator("#try-model")).to_have_attribute("data-ready", "true")


def _tried(page: Page, times: int = 1, where: str = "browser") -> tuple[list, list]:
    expect(page.locator("#try-model")).to_have_attribute("data-predictions", str(times))
    tried = page.evaluate("() => [window.aulaTry.lastInput, window.aulaTry.lastProbabilities]")
    assert page.evaluate("() => window.aulaTry.where") == where
    return tried


def _draw_a_one(page: Page) -> None:
    box = page.locator("#try-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 30)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 30 + step * 22)
    page.mouse.up()


def test_a_digit_drawn_on_the_canvas_gets_the_servers_probabilities(page, tenant_a, pool):
    model = stored_model(tenant_a, dataset="digits")
    _open(page, tenant_a, model)
    _draw_a_one(page)  # one stroke down the middle

    values, probabilities = _tried(page)
    assert len(values) == 64 and max(values) > 0.5 and min(values) == 0
    assert len(probabilities) == 10
    expected = _api_probabilities(tenant_a, model, [values])[0]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    items = page.locator("#try-probabilities li")
    expect(items).to_have_count(10)
    best = int(np.argmax(expected))
    expect(items.first.locator(".label")).to_have_text(str(best))
    expect(page.locator("#try-status")).to_contain_text(f"The model says {best}")


def test_a_model_too_large_for_the_browser_runs_on_the_pool(page, tenant_a, pool, settings):
    settings.TRY_IN_BROWSER_MAX_BYTES = 0
    model = stored_model(tenant_a, dataset="digits")
    _open(page, tenant_a, model)
    expect(page.locator("#try-model")).to_have_attribute("data-where", "server")
    _draw_a_one(page)

    values, probabilities = _tried(page, where="server")
    np.testing.assert_allclose(probabilities, _server_probabilities(model, [values])[0], atol=1e-5)
    expect(page.locator("#try-probabilities li")).to_have_count(10)


def test_an_uploaded_image_gets_the_servers_probabilities(page, tenant_a, tmp_path):
    model = stored_model(tenant_a, dataset="shapes", trained=False)  # any weights will do
    picture = Image.new("RGB", (64, 64), (20, 30, 40))
    for x in range(16, 48):
        for y in range(16, 48):
            picture.putpixel((x, y), (230, 220, 200))
    path = tmp_path / "square.png"
    picture.save(path)
    _open(page, tenant_a, model)

    page.get_by_label("Choose an image, or drop one here").set_input_files(path)

    values, probabilities = _tried(page)
    assert len(values) == 3 * 32 * 32
    assert set(np.round(values)) <= set(range(256))
    np.testing.assert_allclose(probabilities, _server_probabilities(model, [values])[0], atol=1e-5)
    expect(page.locator("#try-probabilities li")).to_have_count(10)


def test_points_clicked_on_the_xor_plane_show_the_boundary_and_probabilities(page, tenant_a):
    model = stored_model(tenant_a, dataset="xor")
    _open(page, tenant_a, model)
    expect(page.locator("#try-model")).to_have_attribute("data-boundary", "drawn")
    plane = page.locator("#try-plane")
    box = plane.bounding_box()
    # The decision regions are painted: the canvas is not one colour.
    colours = page.evaluate(
        """() => {
            const canvas = document.getElementById("try-plane");
            const size = [0, 0, canvas.width, canvas.height];
            const data = canvas.getContext("2d").getImageData(...size).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4 * 97) seen.add(data.slice(i, i + 3).join());
            return seen.size;
        }"""
    )
    assert colours > 1

    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    first_point, first = _tried(page, 1)
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
    second_point, second = _tried(page, 2)
    expected = _server_probabilities(model, [first_point, second_point])
    np.testing.assert_allclose([first, second], expected, atol=1e-5)
    # XOR: the top-left and top-right quadrants are different classes for a trained model.
    assert int(np.argmax(first)) != int(np.argmax(second))
