"""STORAGES["artifacts"] from the environment: the filesystem under VAR_DIR by default,
django-storages' S3Storage with the bucket, endpoint, region and prefix given (built in a fresh
process, as a deployment reads its settings; nothing is sent over the network)."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, django
django.setup()
from django.core.files.storage import storages
storage = storages["artifacts"]
print(json.dumps({
    "class": f"{type(storage).__module__}.{type(storage).__name__}",
    "bucket": getattr(storage, "bucket_name", None),
    "endpoint": getattr(storage, "endpoint_url", None),
    "region": getattr(storage, "region_name", None),
    "location": str(storage.location),
    "overwrite": getattr(storage, "file_overwrite", None),
}))
"""


def _artifacts_storage(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTS_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "probe-only",
            "AWS_ACCESS_KEY_ID": "probe",
            "AWS_SECRET_ACCESS_KEY": "probe",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_default_is_the_filesystem_under_var(tmp_path):
    storage = _artifacts_storage(VAR_DIR=str(tmp_path))
    assert storage["class"] == "django.core.files.storage.filesystem.FileSystemStorage"
    assert storage["location"] == str(tmp_path / "artifacts")


def test_a_bucket_makes_it_s3_with_its_options():
    storage = _artifacts_storage(
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
