"""The main pages on a tablet (768 x 1024) and a small laptop (1280 x 720): nothing wider than
the screen, so nothing needs sideways scrolling (wide tables scroll inside their own box)."""

import pytest
from playwright.sync_api import Page

from tests.browser.test_pages import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _overflow(page: Page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize(("width", "height"), [(768, 1024), (1280, 720)])
def test_the_main_pages_fit_the_screen(page: Page, tenant_a, width, height, screenshot):
    page.set_viewport_size({"width": width, "height": height})
    pages = {
        tenant_a.learner.user.email: [
            "/t/alpha/",
            f"/t/alpha/assignments/{tenant_a.assignment.id}/",
        ],
        tenant_a.teacher.user.email: [
            f"/t/alpha/teach/courses/{tenant_a.course.id}/",
            f"/t/alpha/teach/courses/{tenant_a.course.id}/exercises/{tenant_a.exercise.id}/",
            f"/t/alpha/teach/courses/{tenant_a.course.id}/gradebook/",
        ],
    }
    too_wide = {}
    for email, paths in pages.items():
        page.context.clear_cookies()
        _log_in(page, email)
        for path in paths:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if _overflow(page) > 0:
                too_wide[path] = _overflow(page)
    screenshot(page, f"{width}x{height}")
    assert too_wide == {}
