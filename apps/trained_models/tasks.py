"""Worker glue of trained models: the retention task (published by name, run by beat)."""

from dataclasses import asdict

from celery import shared_task

from apps.trained_models.services import artifacts_purge as artifacts_purge_service


@shared_task(name="trained_models.artifacts_purge")
def artifacts_purge() -> dict:
    """Delete expired models, unreferenced blobs and orphan files; returns the counts."""
    return asdict(artifacts_purge_service())
