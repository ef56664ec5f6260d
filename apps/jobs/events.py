"""Where a job's events go live: one Channels group per job, named with its tenant."""

from apps.core.realtime import publish


def group_for_job(tenant_id, job_id) -> str:
    return f"tenant.{tenant_id.hex}.job.{job_id.hex}"


def job_event_publish(*, tenant_id, job_id, message: dict) -> None:
    """Push one stored event to the job's watchers (call after its row is committed).

    The database is the record: a publish that fails (Redis down) is logged and not retried,
    and websocket clients fill any gap from the database by sequence number.
    """
    publish(group=group_for_job(tenant_id, job_id), message={"type": "job.event", "event": message})
