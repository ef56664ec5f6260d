"""Uploading a dataset version through the API (apps/datasets/apis.py): resumable chunks, the
ingestion the last chunk starts (run here in this process, as the worker would), the storage
quota, and who may do what. Every refusal is checked for its status and for changing nothing."""

import base64
import json

import pytest
import redis
from django.conf import settings
from django_scopes import scope, scopes_disabled

from apps.datasets.models import DatasetVersion, UploadChunk
from apps.datasets.services import datasets_storage, storage_prefix_for, version_ingest
from apps.quotas.services import storage_used
from tests.conftest import api_client_for
from tests.datasets.support import base, clusters_csv, teacher_client, upload

pytestmark = pytest.mark.django_db


def _published() -> list[tuple]:
    """The tasks waiting in the default queue, as (name, args), taken off it."""
    queue, messages = redis.Redis.from_url(settings.CELERY_BROKER_URL), []
    while (raw := queue.rpop("default")) is not None:
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], args))
    return messages


def _files(world) -> list[str]:
    """Every file of the tenant in the datasets storage."""
    storage, found = datasets_storage(), []

    def walk(folder):
        if not storage.exists(folder):
            return
        folders, files = storage.listdir(folder)
        found.extend(f"{folder}/{name}" for name in files)
        for name in folders:
            walk(f"{folder}/{name}")

    walk(storage_prefix_for(world.tenant.id))
    return sorted(found)


def _version(world, number=1) -> DatasetVersion:
    """The version of the dataset the test uploaded (not the world's own)."""
    with scopes_disabled():
        return (
            DatasetVersion.objects.filter(tenant=world.tenant, number=number)
            .exclude(dataset=world.dataset)
            .get()
        )


def _ingest(world, version) -> DatasetVersion:
    with scope(tenant=world.tenant.id):
        return version_ingest(version_id=version.id)


def test_a_csv_sent_in_chunks_is_ingested_into_one_stored_file(
    tenant_a, django_capture_on_commit_callbacks
):
    _published()
    data = clusters_csv(rows_per_class=50)
    client = teacher_client(tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        sent = upload(client, tenant_a, data, chunk=1024)
    assert sent["upload"] == {"state": "ingesting", "received": len(data), "upload_size": len(data)}
    version = _version(tenant_a)
    assert _published() == [("datasets.ingest_version", [str(tenant_a.tenant.id), str(version.id)])]
    assert storage_used(tenant_a.tenant.id) == len(data)  # the upload's size, while it waits

    ready = _ingest(tenant_a, version)
    assert ready.state == "ready" and ready.progress == 1.0
    assert ready.summary["rows"] == 150
    assert ready.summary["classes"] == {"east": 50, "north": 50, "南": 50}
    assert ready.summary["info"]["kind"] == "vector"
    assert ready.summary["info"]["input_shape"] == [2]
    assert ready.summary["info"]["class_names"] == ["east", "north", "南"]
    name = f"{storage_prefix_for(tenant_a.tenant.id)}/{version.key.hex}.arrow"
    assert _files(tenant_a) == [name]  # the chunks are gone, the one Arrow file stays
    assert ready.data_size == datasets_storage().size(name)
    assert storage_used(tenant_a.tenant.id) == ready.data_size
    with scopes_disabled():
        assert UploadChunk.objects.count() == 0

    detail = client.get(f"{base(tenant_a)}clusters/versions/1/").json()
    assert (detail["state"], detail["name"]) == ("ready", f"upload:{version.key.hex}")
    assert _ingest(tenant_a, ready).state == "ready"  # a second delivery changes nothing


def test_an_interrupted_upload_resumes_from_the_offset_the_platform_has(tenant_a):
    data = clusters_csv(rows_per_class=10)
    client = teacher_client(tenant_a)
    client.post(base(tenant_a), {"slug": "clusters", "title": "Clusters"}, format="json")
    client.post(
        f"{base(tenant_a)}clusters/versions/",
        {
            "file_name": "c.csv",
            "size": len(data),
            "format": "csv",
            "kind": "tabular",
            "label_column": "label",
        },
        format="json",
    )
    target = f"{base(tenant_a)}clusters/versions/1/upload"

    def send(offset, chunk):
        return client.patch(
            target,
            chunk,
            content_type="application/octet-stream",
            HTTP_UPLOAD_OFFSET=str(offset),
        )

    assert send(0, data[:100]).json() == {
        "state": "uploading",
        "received": 100,
        "upload_size": len(data),
    }
    # The client lost the answer to its next chunk and sends it again from 100, then jumps.
    assert send(100, data[100:200]).status_code == 200
    again = send(100, data[100:200])
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "offset_mismatch",
        "message": "This upload has 200 bytes; send the chunk that starts there.",
        "fields": {},
    }
    assert send(500, data[500:600]).status_code == 409
    assert client.get(target).json()["received"] == 200
    with scopes_disabled():
        assert list(UploadChunk.objects.values_list("offset", "size")) == [(0, 100), (100, 100)]
    assert send(200, data[200:]).json()["state"] == "ingesting"


@pytest.mark.parametrize(
    "offset, chunk, field, message",
    [
        ("", b"abc", "Upload-Offset", "Send the chunk's offset in the file as a whole number."),
        ("-1", b"abc", "Upload-Offset", "Send the chunk's offset in the file as a whole number."),
        ("0", b"", "body", "The chunk is empty."),
        (
            "0",
            b"x" * 11,
            "body",
            "The chunk goes past the upload's declared size (10 bytes): 10 bytes are left.",
        ),
    ],
    ids=["no offset", "negative", "empty", "past the end"],
)
def test_a_bad_chunk_is_refused_and_stores_nothing(tenant_a, offset, chunk, field, message):
    client = teacher_client(tenant_a)
    client.post(base(tenant_a), {"slug": "d", "title": "D"}, format="json")
    client.post(
        f"{base(tenant_a)}d/versions/",
        {"file_name": "d.npz", "size": 10, "format": "arrays"},
        format="json",
    )
    extra = {"HTTP_UPLOAD_OFFSET": offset} if offset else {}
    answer = client.patch(
        f"{base(tenant_a)}d/versions/1/upload",
        chunk,
        content_type="application/octet-stream",
        **extra,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"] == {field: [message]}
    assert _version(tenant_a).received == 0
    assert _files(tenant_a) == []


def test_a_chunk_over_the_limit_is_refused_before_it_is_read(tenant_a, settings):
    client = teacher_client(tenant_a)
    client.post(base(tenant_a), {"slug": "d", "title": "D"}, format="json")
    client.post(
        f"{base(tenant_a)}d/versions/",
        {"file_name": "d.npz", "size": 20 * 1024 * 1024, "format": "arrays"},
        format="json",
    )
    answer = client.patch(
        f"{base(tenant_a)}d/versions/1/upload",
        b"x" * (settings.DATASET_UPLOAD_CHUNK_MAX_BYTES + 1),
        content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET="0",
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    assert _version(tenant_a).received == 0 and _files(tenant_a) == []


def test_options_that_do_not_fit_the_format_are_named(tenant_a):
    client = teacher_client(tenant_a)
    client.post(base(tenant_a), {"slug": "d", "title": "D"}, format="json")
    answer = client.post(
        f"{base(tenant_a)}d/versions/",
        {"file_name": "d.csv", "size": 10, "format": "csv", "resize_to": [32, 32]},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"] == {
        "kind": ["Say what the table holds: 'tabular' or 'text'."],
        "label_column": ["Name the column that holds the labels."],
        "resize_to": ["Only an image archive is resized."],
    }
    with scopes_disabled():
        assert DatasetVersion.objects.exclude(dataset=tenant_a.dataset).count() == 0
    assert storage_used(tenant_a.tenant.id) == 0


def test_a_text_table_chooses_its_tokeniser_and_others_cannot(tenant_a):
    client = teacher_client(tenant_a)
    client.post(base(tenant_a), {"slug": "d", "title": "D"}, format="json")
    text = {"file_name": "d.csv", "size": 10, "format": "csv", "label_column": "label"}
    made = client.post(
        f"{base(tenant_a)}d/versions/",
        {**text, "kind": "text", "text_column": "sentence", "tokenizer": "char"},
        format="json",
    )
    assert made.status_code == 201, made.content
    with scopes_disabled():
        version = DatasetVersion.objects.get(dataset__slug="d", number=1)
    assert version.options["tokenizer"] == "char"
    for body, message in (
        ({**text, "kind": "tabular", "tokenizer": "bpe"}, "Only a text table is tokenised."),
        (
            {**text, "kind": "text", "text_column": "s", "tokenizer": "sentencepiece"},
            '"sentencepiece" is not a valid choice.',
        ),
    ):
        answer = client.post(f"{base(tenant_a)}d/versions/", body, format="json")
        assert answer.status_code == 400
        assert answer.json()["error"]["fields"] == {"tokenizer": [message]}
    with scopes_disabled():
        assert DatasetVersion.objects.filter(dataset__slug="d").count() == 1


def test_a_refused_file_names_its_problems_and_keeps_nothing(
    tenant_a, django_capture_on_commit_callbacks
):
    data = b"x1,x2,label\n1,2,a\n3,4,a\n5,oops,a\n"
    with django_capture_on_commit_callbacks(execute=True):
        upload(teacher_client(tenant_a), tenant_a, data)
    refused = _ingest(tenant_a, _version(tenant_a))
    assert refused.state == "refused"
    assert refused.problems == [
        {"where": "row 4, column 'x2'", "problem": "'oops' is not a number"}
    ]
    assert _files(tenant_a) == []
    assert storage_used(tenant_a.tenant.id) == 0
    assert refused.data_name == "" and refused.reserved == 0


def test_an_upload_that_does_not_fit_the_quota_is_refused_before_a_byte(tenant_a):
    client = teacher_client(tenant_a)
    client.post(base(tenant_a), {"slug": "d", "title": "D"}, format="json")
    with scopes_disabled():
        quota = tenant_a.tenant.quota
        quota.storage_bytes = 1000
        quota.save()
    answer = client.post(
        f"{base(tenant_a)}d/versions/",
        {"file_name": "d.npz", "size": 1001, "format": "arrays"},
        format="json",
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "storage_full"
    assert answer.json()["error"]["message"].startswith("Not enough storage for this dataset")
    with scopes_disabled():
        assert DatasetVersion.objects.exclude(dataset=tenant_a.dataset).count() == 0
    assert storage_used(tenant_a.tenant.id) == 0


def test_learners_are_refused_and_other_tenants_find_nothing(tenant_a, tenant_b):
    data = clusters_csv(rows_per_class=5)
    upload(teacher_client(tenant_a), tenant_a, data, chunk=len(data) // 2)
    version = _version(tenant_a)
    learner = api_client_for(tenant_a.learner.user)
    outsider = api_client_for(tenant_b.teacher.user)
    target = f"{base(tenant_a)}clusters/versions/1/"
    for client, status in ((learner, 403), (outsider, 404)):
        assert client.get(base(tenant_a)).status_code == status
        assert client.get(target).status_code == status
        assert client.delete(target).status_code == status
        assert (
            client.post(base(tenant_a), {"slug": "x", "title": "X"}, format="json").status_code
            == status
        )
    # Another tenant's teacher asking their own tenant for this version finds nothing either.
    other = f"{base(tenant_b)}clusters/versions/1/"
    assert outsider.get(other).status_code == 404
    with scopes_disabled():
        assert DatasetVersion.objects.filter(pk=version.pk).exists()
        assert DatasetVersion.objects.filter(tenant=tenant_a.tenant).count() == 2  # and the world's


def test_a_chunk_sent_as_json_is_refused_as_the_wrong_media_type(tenant_a):
    client = teacher_client(tenant_a)
    target = f"{base(tenant_a)}{tenant_a.dataset.slug}/versions/1/upload"
    answer = client.patch(target, {"bytes": "abc"}, format="json", HTTP_UPLOAD_OFFSET="0")
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"
    assert client.get(target).json() == {"state": "uploading", "received": 0, "upload_size": 10}
