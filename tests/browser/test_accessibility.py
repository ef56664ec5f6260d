"""axe-core (installed from npm for the tests: package.json) on the main pages of each role:
no critical violation, nor a serious one. The same pages are the ones the flows drive; here
each is loaded as its user sees it and checked whole."""

import pytest
from playwright.sync_api import Page

from tests.browser.test_pages import _log_in
from tests.conftest import ROOT
from tests.console.support import job_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server


def _violations(page: Page, path: str) -> list[str]:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/ensure-test-deps (npm ci).")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{path}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("critical", "serious")
    ]


def test_the_learners_pages_have_no_critical_or_serious_violation(page: Page, tenant_a):
    _log_in(page, tenant_a.learner.user.email)
    paths = [
        "/t/alpha/",
        "/t/alpha/courses/",
        f"/t/alpha/courses/{tenant_a.course.id}/",
        f"/t/alpha/assignments/{tenant_a.assignment.id}/",
        f"/t/alpha/runs/{tenant_a.submission.id}/",
        f"/t/alpha/lessons/{tenant_a.lesson.id}/",
    ]
    assert [v for path in paths for v in _violations(page, path)] == []


def test_the_teachers_pages_have_no_critical_or_serious_violation(page: Page, tenant_a):
    _log_in(page, tenant_a.teacher.user.email)
    course = f"/t/alpha/teach/courses/{tenant_a.course.id}/"
    paths = [
        "/t/alpha/teach/",
        "/t/alpha/teach/skills/",
        course,
        f"{course}exercises/{tenant_a.exercise.id}/",
        f"{course}assignments/{tenant_a.assignment.id}/",
        f"{course}lessons/{tenant_a.lesson.id}/",
        f"{course}gradebook/",
        f"{course}mastery/",
        f"{course}assignments/{tenant_a.assignment.id}/leaderboard/",
        f"/t/alpha/runs/{tenant_a.submission.id}/",
    ]
    assert [v for path in paths for v in _violations(page, path)] == []


def test_the_administrators_pages_have_no_critical_or_serious_violation(
    page: Page, new_page, tenant_a, platform_admin
):
    job_in(tenant_a, state="queued")
    _log_in(page, tenant_a.admin.user.email)
    paths = ["/t/alpha/usage/", "/t/alpha/members/", "/t/alpha/tutor/"]
    violations = [v for path in paths for v in _violations(page, path)]
    platform = new_page()
    _log_in(platform, platform_admin.email)
    for path in ["/console/", "/console/tenants/new/", "/console/tenants/alpha/quota/"]:
        violations += _violations(platform, path)
    login = new_page()
    violations += _violations(login, "/accounts/login/")
    assert violations == []
