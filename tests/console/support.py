"""Jobs for the console and audit tests."""

from datetime import timedelta

from django.utils import timezone

from apps.jobs.models import Job
from tests.factories import JobFactory, SubmissionFactory


def job_in(
    world, *, state: str, queue: str = "gpu", owner: str = "", attempt: int = 2, released=False
) -> Job:
    """A job of `world`'s learner: running (leased to `owner`, on the cpu) or in another state;
    a queued one waits for the dispatcher unless `released` (handed to `queue`)."""
    submission = SubmissionFactory(
        assignment=world.assignment, learner=world.learner.user, attempt=attempt
    )
    now = timezone.now()
    running = state == "running"
    return JobFactory(
        submission=submission,
        state=state,
        queue=queue,
        attempt=1 if running else 0,
        lease_token=1 if running else 0,
        lease_owner=owner,
        lease_expires_at=now + timedelta(minutes=5) if running else None,
        started_at=now if running else None,
        device="cpu" if running else "",
        dispatched_at=now if running or released else None,
    )
