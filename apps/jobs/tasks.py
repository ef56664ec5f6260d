"""The Celery layer: thin tasks that take ids, open the tenant's scope and call a service."""

import os
import socket

from celery import shared_task
from django_scopes import scope

from apps.jobs.dispatch.reaper import jobs_reap
from apps.jobs.lease import job_claim
from apps.jobs.regrade import assignment_regrade_run
from apps.jobs.runner import job_run
from runtime.trainer import choose_device


def _owner(task) -> str:
    return f"{task.request.hostname or socket.gethostname()}:{os.getpid()}"


@shared_task(
    bind=True,
    name="jobs.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_job(self, tenant_id: str, job_id: str) -> str:
    """Train and grade one job. A delivery that finds the job finished or leased to another
    worker returns without running it (duplicates and redeliveries are harmless)."""
    with scope(tenant=tenant_id):
        claim = job_claim(job_id=job_id, owner=_owner(self), device=choose_device().type)
        if claim is None:
            return "skipped"
        return job_run(claim)


@shared_task(name="jobs.reap_jobs", ignore_result=True)
def reap_jobs() -> dict:
    """Periodic (beat): requeue jobs whose worker was lost, publish jobs that never reached the
    broker."""
    return jobs_reap()


@shared_task(name="jobs.regrade_assignment", acks_late=True, ignore_result=True)
def regrade_assignment(tenant_id: str, regrade_id: str) -> str:
    """Regrade an assignment from its stored models (no training): safe to deliver twice."""
    with scope(tenant=tenant_id):
        regrade = assignment_regrade_run(regrade_id=regrade_id)
        return regrade.state if regrade is not None else "missing"
