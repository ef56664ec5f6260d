"""STORAGES["artifacts"] from the environment: the filesystem under VAR_DIR by default,
django-storages' S3Storage with the bucket, endpoint, region and prefix given. The settings
module is read again with that environment, as a deployment reads it, and the storage is made
from what it says (nothing is sent over the network)."""

import os
import runpy

from django.core.files.storage.handler import StorageHandler

from tests.conftest import ROOT


def _artifacts_storage(monkeypatch, **env) -> dict:
    for name in [name for name in os.environ if name.startswith("ARTIFACTS_")]:
        monkeypatch.delenv(name)
    for name, value in {"SECRET_KEY": "probe-only", **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "probe")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "probe")
    read = runpy.run_path(str(ROOT / "config" / "settings.py"))
    storage = StorageHandler(read["STORAGES"])["artifacts"]
    return {
        "class": f"{type(storage).__module__}.{type(storage).__name__}",
        "bucket": getattr(storage, "bucket_name", None),
        "endpoint": getattr(storage, "endpoint_url", None),
        "region": getattr(storage, "region_name", None),
        "location": str(storage.location),
        "overwrite": getattr(storage, "file_overwrite", None),
    }


def test_the_default_is_the_filesystem_under_var(tmp_path, monkeypatch):
    storage = _artifacts_storage(monkeypatch, VAR_DIR=str(tmp_path))
    assert storage["class"] == "django.core.files.storage.filesystem.FileSystemStorage"
    assert storage["location"] == str(tmp_path / "artifacts")


def test_a_bucket_makes_it_s3_with_its_options(monkeypatch):
    storage = _artifacts_storage(
        monkeypatch,
        ARTIFACTS_S3_BUCKET="aula-models",
        ARTIFACTS_S3_ENDPOINT_URL="https://minio.school.internal:9000",
        ARTIFACTS_S3_REGION="eu-central-1",
        ARTIFACTS_S3_PREFIX="aula",
    )
    assert storage == {
        "class": "storages.backends.s3.S3Storage",
        "bucket": "aula-models",
        "endpoint": "https://minio.school.internal:9000",
        "region": "eu-central-1",
        "location": "aula",
        "overwrite": False,
    }
