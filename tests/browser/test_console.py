"""The quota and console pages in a real browser: a tenant administrator reads the usage page
(its chart drawn by the vendored uPlot) and cancels a waiting job; a platform administrator
creates a tenant and sets its quota by keyboard, and sees a field error for a bad value."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from apps.jobs.models import Job
from apps.quotas.models import TenantQuota
from apps.tenants.models import Invitation, Tenant
from tests.browser.test_pages import _log_in, _url
from tests.console.support import job_in

pytestmark = pytest.mark.browser


def test_a_tenant_admin_reads_the_usage_chart_and_cancels_a_waiting_job(
    page: Page, live_server, tenant_a
):
    waiting = job_in(tenant_a, state="queued")
    _log_in(page, tenant_a.admin.user.email)
    expect(page).to_have_url(_url(live_server, "/t/alpha/"))
    page.get_by_role("link", name="GPU usage and jobs").click()
    expect(page).to_have_url(_url(live_server, "/t/alpha/usage/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("GPU usage of School ALPHA")
    expect(page.locator("#quota-left")).to_have_text("59 min 57 s")
    # uPlot drew the chart: a canvas inside the figure, as wide as the figure allows.
    canvas = page.locator("#usage-chart canvas")
    expect(canvas).to_have_count(1)
    assert canvas.bounding_box()["width"] >= 280
    expect(page.get_by_role("img", name=re.compile("GPU time used per day"))).to_be_visible()
    page.get_by_text("Per day as a table").click()
    expect(page.locator("#usage-by-day tbody tr").last).to_contain_text("2.5 s")

    page.get_by_role(
        "button", name=re.compile(f"Cancel the job of {tenant_a.learner.user.email}")
    ).click()
    # One click only asks; the job waits until the confirmation.
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel this run?")
    with scopes_disabled():
        assert Job.objects.get(pk=waiting.pk).state == "queued"
    page.get_by_role("button", name="Yes, cancel the run").click()
    expect(page).to_have_url(_url(live_server, "/t/alpha/usage/"))
    expect(page.get_by_role("status")).to_have_text("Cancel requested.")
    expect(page.get_by_text("No job is waiting or running.")).to_be_visible()
    with scopes_disabled():
        assert Job.objects.get(pk=waiting.pk).state == "cancelled"


def test_a_platform_admin_creates_a_tenant_and_sets_its_quota_by_keyboard(
    page: Page, live_server, platform_admin
):
    _log_in(page, platform_admin.email)
    page.goto("/console/")
    page.get_by_role("link", name="New tenant").click()
    page.get_by_label("Name").fill("Harbour College")
    page.keyboard.press("Tab")
    page.keyboard.type("harbour")
    page.keyboard.press("Tab")
    page.keyboard.type("head@harbour.example")
    page.keyboard.press("Enter")
    expect(page).to_have_url(_url(live_server, "/console/"))
    expect(page.get_by_role("status")).to_have_text(
        "Harbour College is created; invitation sent to head@harbour.example."
    )

    page.get_by_role("link", name="Quota of Harbour College").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("GPU quota of Harbour College")
    gpu_seconds = page.get_by_label("GPU hours per period")
    gpu_seconds.fill("0")
    gpu_seconds.press("Enter")
    expect(gpu_seconds).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Ensure this value is greater than or equal to 0.001.")).to_be_visible()
    with scopes_disabled():
        assert not TenantQuota.objects.filter(tenant__slug="harbour").exists()

    gpu_seconds.fill("2")
    page.get_by_label("Period:", exact=True).select_option("week")
    gpu_seconds.press("Enter")
    expect(page).to_have_url(_url(live_server, "/console/"))
    expect(page.get_by_role("status")).to_have_text("The quota of Harbour College is saved.")
    expect(page.locator("#tenants")).to_contain_text("0 s of 2 h a week (0%)")
    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant__slug="harbour")
        assert (quota.gpu_seconds, quota.period) == (7200, "week")
        assert Invitation.objects.get(tenant__slug="harbour").role == "admin"
        assert Tenant.objects.get(slug="harbour").name == "Harbour College"
