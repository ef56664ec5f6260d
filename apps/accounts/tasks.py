"""Periodic upkeep of credentials: expired sessions, API tokens and login-failure records."""

from celery import shared_task

from apps.accounts.services import credentials_purge as credentials_purge_service


@shared_task(name="apps.accounts.tasks.credentials_purge")
def credentials_purge() -> dict:
    return credentials_purge_service()
