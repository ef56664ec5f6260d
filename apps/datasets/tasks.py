"""Worker glue of datasets: the ingestion of an uploaded version (published by name)."""

from celery import shared_task
from django_scopes import scope

from apps.datasets.services import version_ingest


@shared_task(name="datasets.ingest_version", acks_late=True, ignore_result=True)
def ingest_version(tenant_id: str, version_id: str) -> str:
    """Read, check and store an uploaded version; a version no longer ingesting is left as it
    is, so a second delivery is harmless."""
    with scope(tenant=tenant_id):
        version = version_ingest(version_id=version_id)
        return version.state if version is not None else "missing"
