"""Periodic upkeep of quotas: start the new period of every quota whose period has ended."""

from celery import shared_task

from apps.quotas.services import quota_periods_roll as quota_periods_roll_service


@shared_task(name="apps.quotas.tasks.quota_periods_roll")
def quota_periods_roll() -> int:
    return quota_periods_roll_service()
