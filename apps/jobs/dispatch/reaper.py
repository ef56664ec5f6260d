"""The reaper (beat, every JOB_REAPER_INTERVAL_SECONDS): it keeps the dispatcher's promises.

It requeues running jobs whose worker stopped renewing its lease, publishes again jobs released
so long ago that the broker may have lost the message, and runs a round for jobs left waiting
(no free slot, or the broker was down when their own round ran)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.jobs.dispatch.publish import job_publish
from apps.jobs.dispatch.round import dispatch_round, dispatch_round_on_commit
from apps.jobs.models import Job
from apps.jobs.states import JobState
from apps.jobs.transitions import worker_lost

log = logging.getLogger(__name__)


@scopes_disabled()  # the reaper looks after every tenant's jobs
def jobs_reap() -> dict:
    """Returns counts; `published` counts the jobs handed to the broker, released by the round
    or published again."""
    now = timezone.now()
    requeued = failed = published = 0
    expired = Job.objects.filter(state=JobState.RUNNING, lease_expires_at__lt=now)
    for job_id in expired.values_list("id", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(id=job_id)
            if job.state != JobState.RUNNING or job.lease_expires_at >= now:
                continue  # renewed or finished since the query
            worker_lost(job, now=now)
            if job.state == JobState.QUEUED:
                requeued += 1
                dispatch_round_on_commit()
            else:
                failed += 1
    # Released long ago and still not claimed: a Redis without persistence lost the message.
    # Publishing again is harmless: the lease lets one delivery run the job.
    stale = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_SECONDS)
    lost = Job.objects.filter(state=JobState.QUEUED, dispatched_at__lt=stale)
    for job_id, tenant_id, queue in lost.values_list("id", "tenant_id", "queue"):
        published += job_publish(tenant_id=tenant_id, job_id=job_id, queue=queue)
    # Jobs written within the grace are the business of the round their own commit runs.
    grace = now - timedelta(seconds=settings.JOB_DISPATCH_GRACE_SECONDS)
    published += len(dispatch_round(waiting_before=grace))
    if requeued or failed or published:
        log.info("reaper: %d requeued, %d failed, %d published", requeued, failed, published)
    return {"requeued": requeued, "failed": failed, "published": published}
