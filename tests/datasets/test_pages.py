"""The teachers' dataset pages through Django's test client (apps/datasets/views.py): the list
and its form, a new version's form (the same checks as the API, in the same words), a version's
page in each state, its progress, its preview (rows, texts, a grid of image thumbnails, the
class balance, the parts) and its deletion. Learners and other tenants get 404 and nothing
changes; bad input shows its error and changes nothing."""

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache
from django.utils.html import escape
from django_scopes import scope, scopes_disabled
from PIL import Image

from apps.courses.models import Exercise
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import datasets_storage, progress_key, version_ingest
from apps.datasets.views import upload_words
from apps.quotas.services import storage_used
from tests.conftest import ROOT, page_client_for
from tests.datasets.support import base, clusters_csv, teacher_client
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db

PAGES = "/t/alpha/teach/datasets/"
CSV_FORM = {
    "file_name": "clusters.csv",
    "size": "3000",
    "format": "csv",
    "kind": "tabular",
    "label_column": "label",
    "text_column": "",
    "delimiter": "",
    "resize_height": "",
    "resize_width": "",
}


def _ready(world, data: bytes, *, slug: str, **options) -> DatasetVersion:
    """A version of dataset `slug` uploaded through the API (a table of number columns
    labelled "label" unless `options` say otherwise) and ingested here, as the worker would."""
    client = teacher_client(world)
    if client.get(f"{base(world)}{slug}/").status_code == 404:
        created = client.post(base(world), {"slug": slug, "title": slug.title()}, format="json")
        assert created.status_code == 201, created.content
    options = options or {"format": "csv", "kind": "tabular", "label_column": "label"}
    declared = client.post(
        f"{base(world)}{slug}/versions/",
        {"file_name": f"{slug}.data", "size": len(data), **options},
        format="json",
    )
    assert declared.status_code == 201, declared.content
    number = declared.json()["number"]
    sent = client.patch(
        f"{base(world)}{slug}/versions/{number}/upload",
        data,
        content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET="0",
    )
    assert sent.status_code == 200, sent.content
    with scopes_disabled():
        version = DatasetVersion.objects.get(tenant=world.tenant, dataset__slug=slug, number=number)
    with scope(tenant=world.tenant.id):
        return version_ingest(version_id=version.id)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _images_zip() -> tuple[bytes, dict[str, np.ndarray]]:
    """Two classes of three 8 x 8 colour images each, every image its own pixels."""
    rng = np.random.default_rng(0)
    pixels = {
        f"{label}/{i}.png": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        for label in ("cat", "dog")
        for i in range(3)
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, image in pixels.items():
            archive.writestr(name, _png(image))
    return out.getvalue(), pixels


def _version_url(version, rest="") -> str:
    return f"{PAGES}{version.dataset.slug}/versions/{version.number}/{rest}"


def test_a_teacher_sees_the_datasets_and_creates_one(tenant_a):
    client = page_client_for(tenant_a.teacher.user)
    html = client.get(PAGES).content.decode()
    assert "Data at alpha" in html
    assert 'id="version-alpha-data-1"' in html
    assert '<td data-state="uploading">Uploading</td>' in html
    assert f'href="{PAGES}alpha-data/versions/1/"' in html
    home = client.get("/t/alpha/").content.decode()
    assert f'<a href="{PAGES}">Datasets</a>' in home

    response = client.post(PAGES, {"title": "Flowers", "slug": "flowers", "description": "Iris"})
    assert (response.status_code, response["Location"]) == (302, f"{PAGES}flowers/versions/new/")
    with scopes_disabled():
        dataset = Dataset.objects.get(slug="flowers")
    assert (dataset.tenant, dataset.title, dataset.description) == (
        tenant_a.tenant,
        "Flowers",
        "Iris",
    )
    assert dataset.created_by == tenant_a.teacher.user


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"title": "Again", "slug": "alpha-data"},
            "slug",
            "A dataset with the slug &#x27;alpha-data&#x27; exists already.",
        ),
        ({"title": "Bad", "slug": "Not a slug"}, "slug", "Enter a valid “slug”"),
        ({"title": "", "slug": "empty-title"}, "title", "This field is required."),
    ],
)
def test_a_bad_dataset_form_shows_its_error_and_changes_nothing(tenant_a, form, field, message):
    client = page_client_for(tenant_a.teacher.user)
    before = db_snapshot()
    response = client.post(PAGES, {"description": "", **form})
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert message in response.content.decode()
    assert db_snapshot() == before


def test_the_new_version_form_answers_the_script_with_the_versions_urls(tenant_a):
    client = page_client_for(tenant_a.teacher.user)
    page = client.get(f"{PAGES}alpha-data/versions/new/")
    assert page.status_code == 200
    config = page.context["upload_config"]
    assert config["chunk_bytes"] == 8 * 1024 * 1024
    response = client.post(
        f"{PAGES}alpha-data/versions/new/",
        {**CSV_FORM, "delimiter": ";"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201
    assert response.json() == {
        "number": 2,
        "received": 0,
        "version_url": f"{PAGES}alpha-data/versions/2/",
        "upload_url": "/api/v1/t/alpha/datasets/alpha-data/versions/2/upload",
        "progress_url": f"{PAGES}alpha-data/versions/2/progress/",
    }
    with scopes_disabled():
        version = DatasetVersion.objects.get(dataset=tenant_a.dataset, number=2)
    assert (version.format, version.file_name, version.upload_size, version.state) == (
        "csv",
        "clusters.csv",
        3000,
        "uploading",
    )
    assert version.options == {"kind": "tabular", "label_column": "label", "delimiter": ";"}
    assert version.created_by == tenant_a.teacher.user
    assert storage_used(tenant_a.tenant.id) == 3000


def test_the_new_version_form_posted_without_the_script_leads_to_the_versions_page(tenant_a):
    response = page_client_for(tenant_a.teacher.user).post(
        f"{PAGES}alpha-data/versions/new/",
        {
            **CSV_FORM,
            "format": "images",
            "kind": "",
            "label_column": "",
            "resize_height": "32",
            "resize_width": "24",
        },
    )
    assert (response.status_code, response["Location"]) == (302, f"{PAGES}alpha-data/versions/2/")
    with scopes_disabled():
        version = DatasetVersion.objects.get(dataset=tenant_a.dataset, number=2)
    assert (version.format, version.options) == ("images", {"resize_to": [32, 24]})


BAD_VERSIONS = [
    # The service's checks, in its words.
    (
        {"kind": "", "label_column": ""},
        {
            "kind": ["Say what the table holds: 'tabular' or 'text'."],
            "label_column": ["Name the column that holds the labels."],
        },
    ),
    ({"kind": "text"}, {"text_column": ["Name the column that holds the texts."]}),
    (
        {"format": "images"},
        {
            "kind": ["Only a CSV or TSV table takes this."],
            "label_column": ["Only a CSV or TSV table takes this."],
        },
    ),
    (
        {"resize_height": "32", "resize_width": "32"},
        {"resize_height": ["Only an image archive is resized."]},
    ),
    (
        {"size": str(600 * 1024 * 1024)},
        {"": ["The file is 600.0\xa0MB; an upload is at most 512.0\xa0MB."]},
    ),
    # The API serializer's.
    ({"file_name": "x" * 256}, {"": ["Ensure this field has no more than 255 characters."]}),
    # The page's own: the file and both sides of the size.
    ({"file_name": "", "size": ""}, {"": ["Choose the file to upload."]}),
    (
        {"format": "images", "kind": "", "label_column": "", "resize_height": "32"},
        {"resize_width": ["Give both the height and the width, or neither."]},
    ),
    (
        {
            "format": "images",
            "kind": "",
            "label_column": "",
            "resize_height": "2",
            "resize_width": "32",
        },
        {"resize_height": ["Ensure this value is greater than or equal to 4."]},
    ),
    (
        {"delimiter": "|"},
        {"delimiter": ["Select a valid choice. | is not one of the available choices."]},
    ),
]


@pytest.mark.parametrize(("change", "errors"), BAD_VERSIONS)
def test_bad_version_input_shows_every_error_and_changes_nothing(tenant_a, change, errors):
    client = page_client_for(tenant_a.teacher.user)
    url = f"{PAGES}alpha-data/versions/new/"
    before = db_snapshot()
    answer = client.post(url, {**CSV_FORM, **change}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400
    assert {e["field"]: e["messages"] for e in answer.json()["errors"]} == errors
    page = client.post(url, {**CSV_FORM, **change})
    assert page.status_code == 200
    html = page.content.decode()
    for messages in errors.values():
        for message in messages:
            assert message.replace("'", "&#x27;") in html
    assert db_snapshot() == before
    assert storage_used(tenant_a.tenant.id) == 0


def test_an_upload_over_the_storage_quota_is_refused_on_the_form(tenant_a):
    with scopes_disabled():
        quota = tenant_a.tenant.quota
        quota.storage_bytes = 1000
        quota.save()
    client = page_client_for(tenant_a.teacher.user)
    before = db_snapshot()
    answer = client.post(
        f"{PAGES}alpha-data/versions/new/", CSV_FORM, HTTP_ACCEPT="application/json"
    )
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == ""
    assert error["messages"][0].startswith(
        "Not enough storage for this dataset: it needs 2.9\xa0KB, and 0\xa0bytes of your "
        "school's 1000\xa0bytes are used."
    )
    assert db_snapshot() == before


def test_the_version_page_and_its_progress_while_uploading_and_ingesting(tenant_a):
    client = page_client_for(tenant_a.teacher.user)
    version = tenant_a.dataset_version
    html = client.get(_version_url(version)).content.decode()
    assert 'id="resume-form"' in html
    assert "The server has 0\xa0bytes of 10\xa0bytes. Choose a.npz again" in html
    assert client.get(_version_url(version, "progress/")).json() == {
        "state": "uploading",
        "state_label": "Uploading",
        "progress": 0.0,
        "received": 0,
        "upload_size": 10,
        "ended": False,
    }
    with scopes_disabled():
        DatasetVersion.objects.filter(pk=version.pk).update(state="ingesting", received=10)
    cache.set(progress_key(version.id), 0.25)
    progress = client.get(_version_url(version, "progress/"))
    assert progress["Cache-Control"] == "no-store"
    assert progress.json()["state"] == "ingesting"
    assert progress.json()["progress"] == 0.25
    html = client.get(_version_url(version)).content.decode()
    assert "Checking and converting: 25% of the file read." in html
    assert 'id="delete-form"' not in html  # not while a worker reads it


def test_a_refused_versions_page_lists_every_problem_with_where_it_is(tenant_a):
    data = b"x1,x2,label\n1,2,a\n3,,a\n5,oops,b\n7,8,b\n"
    version = _ready(tenant_a, data, slug="broken")
    assert version.state == "refused"
    html = page_client_for(tenant_a.teacher.user).get(_version_url(version)).content.decode()
    assert "The file cannot be used as a dataset: see the problems listed." in html
    rows = [
        f'<tr><th scope="row">{escape(p["where"])}</th><td>{escape(p["problem"])}</td></tr>'
        for p in version.problems
    ]
    assert len(rows) == 2
    for row in rows:
        assert row in html
    assert "row 3, column &#x27;x2&#x27;" in html and "row 4, column &#x27;x2&#x27;" in html
    # A refused version has no preview: its page instead.
    preview = page_client_for(tenant_a.teacher.user).get(_version_url(version, "preview/"))
    assert (preview.status_code, preview["Location"]) == (302, _version_url(version))


def test_the_preview_of_a_table_shows_its_rows_classes_parts_and_exercises(tenant_a):
    version = _ready(tenant_a, clusters_csv(rows_per_class=50), slug="clusters")
    assert version.state == "ready"
    client = page_client_for(tenant_a.teacher.user)
    html = client.get(_version_url(version)).content.decode()
    assert "150 rows in 3 classes." in html
    assert f'href="{_version_url(version, "preview/")}"' in html

    page = client.get(_version_url(version, "preview/"))
    assert page.status_code == 200
    sample = page.context["sample"]
    assert sample.columns == ["x1", "x2", "label"] and sample.more_columns == 0
    first = clusters_csv(rows_per_class=50).decode().splitlines()[1].split(",")
    assert len(sample.rows) == 20
    assert sample.rows[0] == [f"{float(first[0]):.6g}", f"{float(first[1]):.6g}", first[2]]
    assert [(c.name, c.count, c.percent) for c in page.context["classes"]] == [
        ("east", 50, 33),
        ("north", 50, 33),
        ("南", 50, 33),
    ]
    # 10 % of each class to validation, public and private: 5 of each class's 50.
    assert page.context["parts"] == {"train": 105, "validation": 15, "public": 15, "private": 15}
    assert sum(page.context["parts"].values()) == 150
    assert version.summary["info"]["sizes"] == [105, 15, 30]  # the runtime's, test parts as one
    html = page.content.decode()
    assert '<dd id="figure-rows">150</dd>' in html
    assert '<dd id="figure-encoding">UTF-8</dd>' in html
    assert '<tr><th scope="row">南</th><td>50</td>' in html
    assert '<meter min="0" max="50" value="50" aria-label="南">33%</meter>' in html
    assert f"<code>{version.source_name}</code>" in html
    assert 'id="exercises-using-none"' in html
    assert page.context["grid"] == []

    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(dataset=version.source_name)
    html = client.get(_version_url(version, "preview/")).content.decode()
    exercise = f"/t/alpha/teach/courses/{tenant_a.course.id}/exercises/{tenant_a.exercise.id}/"
    assert f'<a href="{exercise}">XOR at alpha</a> (Neural networks at alpha)' in html


def test_the_preview_of_texts_shows_them_with_their_labels(tenant_a):
    lines = (
        ["text,topic"]
        + [f'"今天 {i} 下雨",weather' for i in range(4)]
        + [f"goal {i},sport" for i in range(4)]
    )
    data = ("\n".join(lines) + "\n").encode()
    version = _ready(
        tenant_a,
        data,
        slug="topics",
        format="csv",
        kind="text",
        label_column="topic",
        text_column="text",
    )
    assert version.state == "ready", version.problems
    page = page_client_for(tenant_a.teacher.user).get(_version_url(version, "preview/"))
    sample = page.context["sample"]
    assert sample.columns == ["text", "label"]
    assert sample.rows[:2] == [["今天 0 下雨", "weather"], ["今天 1 下雨", "weather"]]
    assert sample.rows[-1] == ["goal 3", "sport"]


def test_an_image_versions_preview_shows_a_grid_of_each_classes_images(tenant_a):
    data, pixels = _images_zip()
    version = _ready(tenant_a, data, slug="pets", format="images")
    assert version.state == "ready", version.problems
    client = page_client_for(tenant_a.teacher.user)
    page = client.get(_version_url(version, "preview/"))
    grid = page.context["grid"]
    assert [(c["index"], c["name"], len(c["images"])) for c in grid] == [
        (0, "cat", 3),
        (1, "dog", 3),
    ]
    assert grid[1]["images"][2] == _version_url(version, "images/1/2.png")
    html = page.content.decode()
    assert f'<img src="{_version_url(version, "images/0/0.png")}" alt="cat, image 1"' in html

    shown = {}
    for index, label in enumerate(("cat", "dog")):
        for position in range(3):
            answer = client.get(_version_url(version, f"images/{index}/{position}.png"))
            assert answer.status_code == 200
            assert answer["Content-Type"] == "image/png"
            image = np.asarray(Image.open(io.BytesIO(answer.content)))
            shown[(label, position)] = image
    # Each thumbnail is one of its class's images, pixel for pixel (8 x 8: kept at its size),
    # and the three of a class are its three.
    for label in ("cat", "dog"):
        theirs = sorted(pixels[f"{label}/{i}.png"].tobytes() for i in range(3))
        assert sorted(shown[(label, p)].tobytes() for p in range(3)) == theirs


def test_thumbnails_are_only_of_the_tenants_own_ready_image_versions(tenant_a, tenant_b):
    data, _ = _images_zip()
    mine = _ready(tenant_a, data, slug="pets", format="images")
    theirs = _ready(tenant_b, data, slug="pets", format="images")
    table = _ready(tenant_a, clusters_csv(rows_per_class=5), slug="clusters")
    teacher = page_client_for(tenant_a.teacher.user)
    learner, outsider = (
        page_client_for(tenant_a.learner.user),
        page_client_for(tenant_b.teacher.user),
    )
    assert teacher.get(_version_url(mine, "images/0/0.png")).status_code == 200
    before = db_snapshot()
    refused = [
        (teacher, _version_url(mine, "images/0/3.png")),  # past the class's images
        (teacher, _version_url(mine, "images/2/0.png")),  # past the classes
        (teacher, _version_url(table, "images/0/0.png")),  # not images
        (teacher, _version_url(tenant_a.dataset_version, "images/0/0.png")),  # not ready
        (teacher, f"{PAGES}pets/versions/9/images/0/0.png"),  # no such version
        (learner, _version_url(mine, "images/0/0.png")),
        (outsider, _version_url(mine, "images/0/0.png")),
    ]
    for client, url in refused:
        assert client.get(url).status_code == 404, url
    assert db_snapshot() == before
    # Tenant B's own, under its own URL (the same dataset slug and number as A's).
    assert theirs.number == mine.number
    other = f"/t/beta/teach/datasets/pets/versions/{theirs.number}/images/0/0.png"
    assert outsider.get(other).status_code == 200
    assert teacher.get(other).status_code == 404


def test_deleting_a_version_asks_first_and_is_refused_while_an_exercise_uses_it(tenant_a):
    version = _ready(tenant_a, clusters_csv(rows_per_class=5), slug="clusters")
    client = page_client_for(tenant_a.teacher.user)
    url = _version_url(version, "delete/")
    before = db_snapshot()
    asked = client.post(url)
    assert asked.status_code == 200
    html = asked.content.decode()
    assert "Delete version 1 of Clusters?" in html
    assert f'<form method="post" action="{url}" id="confirm-form">' in html
    assert db_snapshot() == before
    assert client.get(url).status_code == 405

    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(dataset=version.source_name)
    before = db_snapshot()
    refused = client.post(url, {"confirm": "yes"}, follow=True)
    assert refused.redirect_chain == [(_version_url(version), 302)]
    assert (
        "An exercise uses this version: it stays as it is while one does."
        in refused.content.decode()
    )
    assert db_snapshot() == before

    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(dataset="xor")
    used = storage_used(tenant_a.tenant.id)
    deleted = client.post(url, {"confirm": "yes"}, follow=True)
    assert deleted.redirect_chain == [(PAGES, 302)]
    assert "Version 1 of Clusters is deleted." in deleted.content.decode()
    with scopes_disabled():
        assert not DatasetVersion.objects.filter(pk=version.pk).exists()
    assert storage_used(tenant_a.tenant.id) == used - version.data_size


def _every_page(world, version) -> list[tuple[str, str, dict]]:
    new = f"/t/alpha/teach/datasets/{version.dataset.slug}/versions/new/"
    return [
        ("get", PAGES, {}),
        ("post", PAGES, {"title": "Mine", "slug": "mine"}),
        ("get", new, {}),
        ("post", new, CSV_FORM),
        ("get", _version_url(version), {}),
        ("get", _version_url(version, "progress/"), {}),
        ("get", _version_url(version, "preview/"), {}),
        ("get", _version_url(version, "images/0/0.png"), {}),
        ("post", _version_url(version, "delete/"), {"confirm": "yes"}),
    ]


def test_learners_and_other_tenants_teachers_get_404_and_change_nothing(tenant_a, tenant_b):
    data, _ = _images_zip()
    version = _ready(tenant_a, data, slug="pets", format="images")
    users = (tenant_a.learner.user, tenant_b.teacher.user, tenant_b.admin.user)
    clients = [(user.email, page_client_for(user)) for user in users]
    before = db_snapshot()
    for email, client in clients:
        for method, url, body in _every_page(tenant_a, version):
            response = getattr(client, method)(url, body)
            assert response.status_code == 404, (email, method, url)
    assert db_snapshot() == before
    # The tenant's administrators use them, as its teachers do.
    admin = page_client_for(tenant_a.admin.user)
    assert admin.get(_version_url(version, "preview/")).status_code == 200
    assert json.loads(admin.get(_version_url(version, "progress/")).content)["state"] == "ready"


def test_every_sentence_the_upload_script_says_is_in_its_words():
    """static/js/dataset-upload.js takes its sentences from the page (translated there): each
    key it uses has one, and each one is used."""
    script = (ROOT / "static/js/dataset-upload.js").read_text()
    used = set(re.findall(r'say\(\s*"(\w+)"', script)) | set(re.findall(r'\["(\w+)", 1 <<', script))
    assert len(used) >= 10
    assert sorted(used ^ set(upload_words())) == []


def test_a_ready_version_whose_file_is_lost_previews_without_its_sample(tenant_a, settings):
    data, _ = _images_zip()
    version = _ready(tenant_a, data, slug="pets", format="images")
    datasets_storage().delete(version.data_name)
    (Path(settings.DATASET_CACHE_DIR) / f"{version.data_sha256}.arrow").unlink(missing_ok=True)
    client = page_client_for(tenant_a.teacher.user)
    page = client.get(_version_url(version, "preview/"))
    assert page.status_code == 200
    assert page.context["grid"] == [] and page.context["sample"] is None
    assert "The stored file of this version cannot be read" in page.content.decode()
    assert '<tr><th scope="row">cat</th><td>3</td>' in page.content.decode()  # from its summary
    assert client.get(_version_url(version, "images/0/0.png")).status_code == 404
