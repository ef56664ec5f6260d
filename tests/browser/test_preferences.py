"""The preferences page proposes the browser's time zone until one is chosen; saved, it is the
zone the pages show dates in."""

import pytest
from playwright.sync_api import expect

from apps.accounts.models import User
from tests.browser.test_pages import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_browsers_time_zone_is_proposed_and_saved(browser, live_server, tenant_a):
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Shanghai")
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        _log_in(page, tenant_a.learner.user.email)
        page.get_by_role("link", name="Preferences").click()
        zone = page.get_by_label("Time zone")
        expect(zone).to_have_value("Asia/Shanghai")
        expect(page.locator("#browser-zone")).to_have_text(
            "Your browser's time zone, Asia/Shanghai, is selected: save to keep it."
        )
        assert User.objects.get(pk=tenant_a.learner.user.pk).time_zone == ""
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_have_text(
            "Your preferences are saved: times are in Asia/Shanghai."
        )
        expect(page.locator("#browser-zone")).to_be_hidden()  # chosen now: nothing to propose
        assert User.objects.get(pk=tenant_a.learner.user.pk).time_zone == "Asia/Shanghai"
        assert errors == []
    finally:
        context.close()
