"""Uploads for the datasets tests: files the tests make, sent through the API in chunks."""

import numpy as np
from django_scopes import scopes_disabled

from apps.datasets.models import DatasetVersion
from apps.jobs.models import Grade, Job
from tests.conftest import api_client_for, wait_for


def clusters_csv(rows_per_class: int = 200, seed: int = 0) -> bytes:
    """Three well-separated clusters of two number columns, labelled in words (English and
    Chinese), one row per line, in the order drawn."""
    rng = np.random.default_rng(seed)
    centres = {"north": (0.0, 3.0), "南": (-3.0, -2.0), "east": (3.0, -2.0)}
    lines = ["x1,x2,label"]
    rows = []
    for label, (cx, cy) in centres.items():
        for x, y in rng.normal(0, 0.5, (rows_per_class, 2)) + np.array([cx, cy]):
            rows.append(f"{x:.4f},{y:.4f},{label}")
    order = rng.permutation(len(rows))
    lines += [rows[i] for i in order]
    return ("\n".join(lines) + "\n").encode()


def base(world) -> str:
    return f"/api/v1/t/{world.tenant.slug}/datasets/"


def upload(client, world, data: bytes, *, slug="clusters", chunk=1000, **options) -> dict:
    """Create the dataset (when new) and a version, and send `data` in chunks; the version's
    upload state after the last chunk."""
    if client.get(f"{base(world)}{slug}/").status_code == 404:
        created = client.post(base(world), {"slug": slug, "title": "Clusters"}, format="json")
        assert created.status_code == 201, created.content
    if options.get("format", "csv") == "csv":
        options = {"format": "csv", "kind": "tabular", "label_column": "label", **options}
    names = {"csv": "clusters.csv", "images": "images.zip", "arrays": "arrays.npz"}
    version = client.post(
        f"{base(world)}{slug}/versions/",
        {"file_name": names[options["format"]], "size": len(data), **options},
        format="json",
    )
    assert version.status_code == 201, version.content
    number = version.json()["number"]
    target = f"{base(world)}{slug}/versions/{number}/upload"
    answer = None
    for offset in range(0, len(data), chunk):
        answer = client.patch(
            target,
            data[offset : offset + chunk],
            content_type="application/octet-stream",
            HTTP_UPLOAD_OFFSET=str(offset),
        )
        assert answer.status_code == 200, answer.content
    return {"number": number, "upload": answer.json(), "url": target}


def teacher_client(world):
    return api_client_for(world.teacher.user)


def first_upload_ingested(world) -> DatasetVersion:
    """Version 1 of the dataset a test uploaded (not the world's own), once the worker has
    ingested it (ready, refused or failed)."""

    def ready():
        with scopes_disabled():
            version = DatasetVersion.objects.exclude(dataset=world.dataset).get(
                tenant=world.tenant, number=1
            )
        return version if version.state != "ingesting" else None

    return wait_for(ready, timeout=60, message="the worker did not ingest the upload")


def job_ended(job_id) -> Job:
    """The job once it has ended, whichever way."""

    def ended():
        with scopes_disabled():
            job = Job.objects.get(id=job_id)
        return job if job.state in ("succeeded", "failed", "timed_out", "cancelled") else None

    return wait_for(ended, timeout=240, message="the job did not end")


def graded_runs(world, assignment, *, spec: dict, code: str) -> list[Grade]:
    """The learner submits `spec` and then `code` to `assignment` through the API; the grade of
    each once the worker has run it (each run must succeed)."""
    client = api_client_for(world.learner.user)
    jobs = []
    for body in ({"kind": "spec", "spec": spec}, {"kind": "code", "code": code}):
        response = client.post(
            f"/api/v1/t/{world.tenant.slug}/assignments/{assignment.id}/submissions/",
            body,
            format="json",
        )
        assert response.status_code == 201, response.content
        jobs.append(response.json()["job"]["id"])
    grades = []
    for job_id in jobs:
        job = job_ended(job_id)
        assert job.state == "succeeded", (job.failure_kind, job.message)
        with scopes_disabled():
            grades.append(Grade.objects.select_related("submission__job").get(submission__job=job))
    return grades
