"""Handing a released job to the broker: the `jobs.run_job` task is published by name, so
nothing here imports the Celery glue (apps/jobs/tasks.py). A broker fault never raises: the
release is taken back and a later round, or the reaper, publishes the job again."""

import logging

from celery import current_app
from django.conf import settings
from django.utils import timezone
from django_scopes import scope

from apps.jobs.models import Job
from apps.jobs.states import JobState

log = logging.getLogger(__name__)

RUN_JOB_TASK = "jobs.run_job"


def job_publish(*, tenant_id, job_id, queue: str = "gpu", released_at=None) -> bool:
    """Publish the job's task; True when the broker took it. Never raises for a broker fault.

    `released_at`: the dispatcher's mark on the job; when the broker refuses, the mark is taken
    back so that a later round releases the job again. Without it (a job published again), the
    job is marked once the broker took it."""
    try:
        current_app.send_task(
            RUN_JOB_TASK,
            args=[str(tenant_id), str(job_id)],
            queue=queue,
            retry_policy=settings.JOB_PUBLISH_RETRY_POLICY,
        )
    except Exception:
        log.warning("could not publish job %s; the reaper will retry", job_id, exc_info=True)
        if released_at is not None:
            with scope(tenant=tenant_id):
                Job.objects.filter(
                    id=job_id, state=JobState.QUEUED, dispatched_at=released_at
                ).update(dispatched_at=None)
        return False
    if released_at is None:
        with scope(tenant=tenant_id):
            Job.objects.filter(id=job_id, state=JobState.QUEUED).update(
                dispatched_at=timezone.now()
            )
    return True
