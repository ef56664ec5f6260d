"""Where a job's events go live: one Channels group per job, named with its tenant."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def group_for_job(tenant_id, job_id) -> str:
    return f"tenant.{tenant_id.hex}.job.{job_id.hex}"


def job_event_publish(*, tenant_id, job_id, message: dict) -> None:
    """Push one stored event to the job's watchers (call after its row is committed).

    The database is the record: a publish that fails (Redis down) is logged and not retried,
    and websocket clients fill any gap from the database by sequence number.
    """
    try:
        async_to_sync(get_channel_layer().group_send)(
            group_for_job(tenant_id, job_id), {"type": "job.event", "event": message}
        )
    except Exception:
        log.warning(
            "could not publish event %s of job %s", message.get("seq"), job_id, exc_info=True
        )
