"""An uploaded image zip from upload to grade through the real stack: the archive (one folder per
class, PNG and JPEG, made here) sent through the API in chunks, ingested by a real Celery
worker, previewed by the teacher (class counts, a grid of images per class), assigned, and a
spec (with augmentation in the batch: the device-resident path CIFAR-10 takes) and PyTorch code
trained and graded by the worker on the private part, the public part's score kept."""

import io
import re
import zipfile

import numpy as np
import pytest
from django_scopes import scope, scopes_disabled
from PIL import Image

from apps.courses.models import Exercise
from runtime.datasets import PRIVATE_PART, load_dataset
from tests.conftest import page_client_for
from tests.datasets.support import (
    first_upload_ingested,
    graded_runs,
    teacher_client,
    upload,
)
from tests.factories import AssignmentFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLASSES = ("dots", "stripes", "blank")
PER_CLASS = 60
SIDE = 16

SPEC = {
    "version": 1,
    "layers": [
        {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "out_features": 3},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 12,
        "batch_size": 16,
        "seed": 0,
        "augment": {"horizontal_flip": True, "random_crop_padding": 1},
    },
}

CODE = """
import torch.nn as nn


def build_model(input_shape, num_classes):
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * height * width, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )
"""


def _image(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 16 x 16 RGB image: light dots on a grid, light vertical stripes, or nothing, on a
    dark background with a little noise."""
    pixels = rng.integers(0, 40, size=(SIDE, SIDE, 3))
    if kind == "dots":
        pixels[1::4, 1::4] = 220
    elif kind == "stripes":
        pixels[:, int(rng.integers(0, 2)) :: 3] = 220
    return pixels.astype(np.uint8)


def image_zip() -> bytes:
    """One folder per class; every third image a JPEG (of quality 95), the others PNG."""
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for kind in CLASSES:
            for index in range(PER_CLASS):
                image = Image.fromarray(_image(kind, rng))
                encoded = io.BytesIO()
                jpeg = index % 3 == 0
                image.save(encoded, format="JPEG" if jpeg else "PNG", quality=95)
                name = f"shapes/{kind}/{index:03d}.{'jpg' if jpeg else 'png'}"
                archive.writestr(name, encoded.getvalue())
    return out.getvalue()


def test_an_uploaded_image_zip_is_ingested_previewed_assigned_trained_and_graded(
    celery_worker_process, tenant_a
):
    teacher = teacher_client(tenant_a)
    data = image_zip()
    upload(teacher, tenant_a, data, slug="patterns", chunk=64 * 1024, format="images")
    version = first_upload_ingested(tenant_a)
    assert version.state == "ready", (version.problems, version.message)
    assert version.summary["info"]["input_shape"] == [3, SIDE, SIDE]

    # The teacher's preview: the class counts and a grid of each class's images.
    preview = page_client_for(tenant_a.teacher.user)
    url = f"/t/{tenant_a.tenant.slug}/teach/datasets/patterns/versions/1/preview/"
    page = preview.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    counts = re.findall(r'<th scope="row">(\w+)</th><td>(\d+)</td>', text)
    assert counts[:3] == [(kind, str(PER_CLASS)) for kind in sorted(CLASSES)]
    thumbnails = re.findall(r'src="([^"]+/images/\d+/\d+\.png)"', text)
    assert len(thumbnails) == 8 * len(CLASSES)
    image = preview.get(thumbnails[0])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (SIDE, SIDE)

    created = teacher.post(
        f"/api/v1/t/{tenant_a.tenant.slug}/courses/{tenant_a.course.id}/exercises/",
        {
            "title": "Patterns",
            "dataset": version.source_name,
            "min_metric": 0.4,
            "target_metric": 0.9,
            "allow_spec": True,
            "allow_code": True,
            "starter_spec": SPEC,
            "max_seconds": 300,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    with scopes_disabled():
        exercise = Exercise.objects.get(id=created.json()["id"])
    assignment = AssignmentFactory(exercise=exercise, scores_shown="public_live")
    with scope(tenant=tenant_a.tenant.id):
        hidden = load_dataset(version.source_name, secret=bytes(assignment.split_secret))
    private = int((hidden.test_part == PRIVATE_PART).sum())
    assert (private, len(hidden.test_part) - private) == (18, 18)  # 10 % of each class, each
    assert hidden.train.x.dtype.is_floating_point is False  # uint8, as CIFAR-10's

    learner = page_client_for(tenant_a.learner.user)
    for grade in graded_runs(tenant_a, assignment, spec=SPEC, code=CODE):
        metrics = grade.metrics
        assert metrics["test_samples"] == private
        assert metrics["public"]["test_samples"] == 18
        assert metrics["class_names"] == sorted(CLASSES)
        assert metrics["accuracy"] >= 0.9, metrics
        assert str(grade.score) == "100.00"
        # Before the due date the learner's run page keeps the grade for later.
        run = learner.get(f"/t/{tenant_a.tenant.slug}/runs/{grade.submission_id}/")
        assert "shown after the due date" in run.content.decode()
