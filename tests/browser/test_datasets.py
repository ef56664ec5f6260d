"""A teacher's dataset pages in a real browser, with a real Celery worker ingesting the uploads:
a dataset created, a CSV the test writes uploaded by the page's script in several chunks (one
cut off on the way, and resumed from the server's offset), the ingestion followed to "Ready",
the preview's class counts; an upload stopped half-way resumed from the version's page; a
refused upload's every problem with where it is."""

import re

import pytest
from django_scopes import scope
from playwright.sync_api import Page, Request, Route, expect

from apps.datasets import services
from apps.datasets.models import DatasetVersion
from tests.browser.test_pages import _log_in
from tests.datasets.support import clusters_csv

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHUNK = 512  # bytes: the files below go up in several chunks
INGESTED_MS = 90_000  # the worker's first task imports what ingestion needs


@pytest.fixture
def small_chunks(settings):
    """The API takes chunks of at most CHUNK bytes, and the page sends chunks of that size (the
    live server runs in this process, so it sees the setting)."""
    settings.DATASET_UPLOAD_CHUNK_MAX_BYTES = CHUNK


# What Chromium logs of the requests two tests make fail on purpose: the chunk cut off, and
# the form's errors (answered 400).
EXPECTED_CONSOLE_ERRORS = {
    "test_a_teacher_uploads_a_csv_in_chunks_sees_it_ready_and_previews_its_classes": [
        re.compile(r"net::ERR_FAILED")
    ],
    "test_the_form_shows_the_services_errors_without_creating_a_version": [
        re.compile(r"versions/new/: Failed to load resource: .* status of 400")
    ],
}


@pytest.fixture
def expected_console_errors(request) -> list[re.Pattern]:
    return EXPECTED_CONSOLE_ERRORS.get(request.node.name, [])


def _uploads(page: Page) -> list[tuple[str, str]]:
    """Every request the page makes to the upload API, as (method, Upload-Offset), in order."""
    seen: list[tuple[str, str]] = []

    def note(request: Request) -> None:
        if request.url.endswith("/upload"):
            seen.append((request.method, request.headers.get("upload-offset", "")))

    page.on("request", note)
    return seen


def test_a_teacher_uploads_a_csv_in_chunks_sees_it_ready_and_previews_its_classes(
    page: Page, tenant_a, celery_worker_process, small_chunks, tmp_path
):
    data = clusters_csv(rows_per_class=30)
    assert len(data) > 3 * CHUNK
    path = tmp_path / "clusters.csv"
    path.write_bytes(data)

    _log_in(page, tenant_a.teacher.user.email)
    page.get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Datasets")
    page.get_by_label("Title").fill("Clusters")
    page.get_by_label("Slug").fill("clusters")
    page.get_by_role("button", name="Create the dataset").click()
    expect(page).to_have_url(re.compile(r"/t/alpha/teach/datasets/clusters/versions/new/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("A new version of Clusters")

    # The images' options are not sent for a table: their fieldset is off.
    expect(page.locator("#images-options")).to_be_hidden()
    page.get_by_label("The table holds").select_option(label="Number columns")
    page.get_by_label("Label column").fill("label")
    page.get_by_label("File", exact=True).set_input_files(path)

    # The second chunk is cut off once: the script asks where the upload stands and goes on.
    cut = {"done": False}

    def cut_once(route: Route) -> None:
        request = route.request
        second = request.method == "PATCH" and request.headers.get("upload-offset") == str(CHUNK)
        if second and not cut["done"]:
            cut["done"] = True
            route.abort()
            return
        route.continue_()

    page.route("**/upload", cut_once)
    seen = _uploads(page)
    page.get_by_role("button", name="Upload").click()

    expect(page).to_have_url(re.compile(r"/t/alpha/teach/datasets/clusters/versions/1/$"))
    expect(page.locator("#version-state")).to_have_text("Ready", timeout=INGESTED_MS)
    chunks = -(-len(data) // CHUNK)
    offsets = [str(n * CHUNK) for n in range(chunks)]
    assert (
        seen
        == [
            ("PATCH", "0"),
            ("PATCH", str(CHUNK)),  # cut off
            ("GET", ""),  # where the upload stands
            *(("PATCH", offset) for offset in offsets[1:]),
        ]
    )
    expect(page.locator("#ready-summary")).to_contain_text("90 rows in 3 classes.")

    page.get_by_role("link", name="Preview the data, its classes and its parts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clusters, version 1")
    counts = page.locator("#class-counts tbody tr")
    expect(counts).to_have_count(3)
    expect(counts.nth(0)).to_contain_text("east")
    for row, name in enumerate(("east", "north", "南")):
        expect(counts.nth(row).locator("th")).to_have_text(name)
        expect(counts.nth(row).locator("td").first).to_have_text("30")
    expect(page.locator("#part-sizes")).to_contain_text("Private test")
    expect(page.locator("#sample-rows thead")).to_have_text("x1x2label")


def test_an_upload_stopped_half_way_resumes_from_the_versions_page(
    page: Page, tenant_a, celery_worker_process, small_chunks, tmp_path
):
    """A page reloaded mid-upload: the version's page asks for the file again, and sends only
    what the server does not have."""
    data = clusters_csv(rows_per_class=20, seed=1)
    path = tmp_path / "clusters.csv"
    path.write_bytes(data)
    with scope(tenant=tenant_a.tenant.id):
        version = services.version_create(
            dataset=tenant_a.dataset,
            created_by=tenant_a.teacher.user,
            file_name="clusters.csv",
            size=len(data),
            format="csv",
            options={"kind": "tabular", "label_column": "label"},
        )
        services.chunk_append(version=version, offset=0, data=data[: 2 * CHUNK])

    _log_in(page, tenant_a.teacher.user.email)
    page.goto(f"/t/alpha/teach/datasets/alpha-data/versions/{version.number}/")
    expect(page.locator("#upload-stands")).to_contain_text("The server has 1.0")
    seen = _uploads(page)
    page.get_by_label("File", exact=True).set_input_files(path)
    page.get_by_role("button", name="Continue the upload").click()
    expect(page.locator("#version-state")).to_have_text("Ready", timeout=INGESTED_MS)
    chunks = -(-len(data) // CHUNK)
    assert seen == [("GET", ""), *(("PATCH", str(n * CHUNK)) for n in range(2, chunks))]
    with scope(tenant=tenant_a.tenant.id):
        assert DatasetVersion.objects.get(pk=version.pk).summary["rows"] == 60


def test_another_file_is_not_taken_to_resume_an_upload(page: Page, tenant_a, tmp_path):
    other = tmp_path / "other.npz"
    other.write_bytes(b"0123456789")  # the world's version: a.npz, 10 bytes
    _log_in(page, tenant_a.teacher.user.email)
    page.goto("/t/alpha/teach/datasets/alpha-data/versions/1/")
    seen = _uploads(page)
    page.get_by_label("File", exact=True).set_input_files(other)
    page.get_by_role("button", name="Continue the upload").click()
    expect(page.locator("#upload-status")).to_have_text(
        "This is not the file this version was begun with (a.npz, 10 bytes): choose that file "
        "to continue its upload."
    )
    assert seen == []


def test_a_refused_upload_shows_every_problem_with_where_it_is(
    page: Page, tenant_a, celery_worker_process, tmp_path
):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"x1,x2,label\n1,2,a\n3,,a\n5,oops,b\n7,8,b\n")
    _log_in(page, tenant_a.teacher.user.email)
    page.goto("/t/alpha/teach/datasets/alpha-data/versions/new/")
    page.get_by_label("The table holds").select_option(label="Number columns")
    page.get_by_label("Label column").fill("label")
    page.get_by_label("File", exact=True).set_input_files(path)
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#version-state")).to_have_text("Refused", timeout=INGESTED_MS)
    problems = page.locator("#problems tbody tr")
    expect(problems).to_have_count(2)
    expect(problems.nth(0).locator("th")).to_have_text("row 3, column 'x2'")
    expect(problems.nth(0).locator("td")).to_have_text("empty: a number is needed")
    expect(problems.nth(1).locator("th")).to_have_text("row 4, column 'x2'")
    expect(problems.nth(1).locator("td")).to_have_text("'oops' is not a number")


def test_the_form_shows_the_services_errors_without_creating_a_version(
    page: Page, tenant_a, tmp_path
):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n1,x\n")
    _log_in(page, tenant_a.teacher.user.email)
    page.goto("/t/alpha/teach/datasets/alpha-data/versions/new/")
    page.get_by_label("File", exact=True).set_input_files(path)
    page.get_by_role("button", name="Upload").click()
    errors = page.locator("#version-errors li")
    expect(errors).to_have_text(
        [
            "The table holds: Say what the table holds: 'tabular' or 'text'.",
            "Label column: Name the column that holds the labels.",
        ]
    )
    expect(page.get_by_label("Label column")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/versions/new/$"))
    with scope(tenant=tenant_a.tenant.id):
        assert DatasetVersion.objects.filter(dataset=tenant_a.dataset).count() == 1
