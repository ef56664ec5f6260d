"""axe-core (installed from npm for the tests: package.json) on the main pages of each role:
no critical violation, nor a serious one. The same pages are the ones the flows drive; here
each is loaded as its user sees it and checked whole."""

import pytest
from django_scopes import scope
from playwright.sync_api import Page

from apps.datasets import services
from tests.browser.test_pages import _log_in
from tests.conftest import ROOT
from tests.console.support import job_in
from tests.datasets.support import clusters_csv
from tests.datasets.test_pages import _images_zip

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


def _ready_version(world, data: bytes, format: str, **options):
    """A ready version of the world's dataset: `data` uploaded and ingested here (the server
    reads the same datasets storage)."""
    with scope(tenant=world.tenant.id):
        version = services.version_create(
            dataset=world.dataset,
            created_by=world.teacher.user,
            file_name="upload",
            size=len(data),
            format=format,
            options=options,
        )
        services.chunk_append(version=version, offset=0, data=data)
        return services.version_ingest(version_id=version.id)


def test_the_teachers_pages_have_no_critical_or_serious_violation(page: Page, tenant_a):
    table = _ready_version(
        tenant_a, clusters_csv(rows_per_class=10), "csv", kind="tabular", label_column="label"
    )
    images = _ready_version(tenant_a, _images_zip()[0], "images")
    assert (table.state, images.state) == ("ready", "ready")
    _log_in(page, tenant_a.teacher.user.email)
    course = f"/t/alpha/teach/courses/{tenant_a.course.id}/"
    datasets = "/t/alpha/teach/datasets/"
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
        datasets,
        f"{datasets}alpha-data/versions/new/",
        f"{datasets}alpha-data/versions/1/",
        f"{datasets}alpha-data/versions/{table.number}/",
        f"{datasets}alpha-data/versions/{table.number}/preview/",
        f"{datasets}alpha-data/versions/{images.number}/preview/",  # its thumbnails load too
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
