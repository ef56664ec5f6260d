"""The fair-share policy on its own: exact release orders."""

from apps.jobs.dispatch.fairshare import FairShare, QueuedJob


def policy_with(jobs: list[tuple[str, str]], *, limits: dict | None = None) -> FairShare:
    """Jobs as (tenant, learner) in submission order; their ids are "<tenant><learner><n>"."""
    policy = FairShare(default_limit=10)
    for tenant, limit in (limits or {}).items():
        policy.tenant_set(tenant, limit=limit)
    seen: dict = {}
    for order, (tenant, learner) in enumerate(jobs):
        seen[tenant, learner] = seen.get((tenant, learner), 0) + 1
        job_id = f"{tenant}{learner}{seen[tenant, learner]}"
        policy.add(QueuedJob(id=job_id, tenant=tenant, learner=learner, order=order))
    return policy


def ids(jobs) -> list:
    return [job.id for job in jobs]


def test_a_tenant_that_submits_later_goes_before_the_backlog_of_another():
    policy = policy_with([("A", "x")] * 4 + [("B", "y")])
    assert ids(policy.release(3)) == ["Ax1", "By1", "Ax2"]
    assert ids(policy.release(5)) == ["Ax3", "Ax4"]
    assert policy.release(5) == []


def test_backlogged_tenants_take_turns():
    policy = policy_with([("A", "x")] * 3 + [("B", "y")] * 3 + [("C", "z")] * 3)
    assert ids(policy.release(9)) == [
        "Ax1",
        "By1",
        "Cz1",
        "Ax2",
        "By2",
        "Cz2",
        "Ax3",
        "By3",
        "Cz3",
    ]


def test_learners_of_one_tenant_are_interleaved_oldest_job_first():
    policy = policy_with([("T", "1")] * 5 + [("T", "2")] + [("T", "3")] * 2)
    assert ids(policy.release(6)) == ["T11", "T21", "T31", "T12", "T32", "T13"]


def test_a_tenant_never_goes_above_its_concurrency_limit():
    policy = policy_with([("A", "x")] * 5 + [("B", "y")] * 3, limits={"A": 2, "B": 1})
    assert ids(policy.release(10)) == ["Ax1", "By1", "Ax2"]
    assert policy.next_job() is None
    # A finished job frees a place under A's limit only.
    policy.finished(QueuedJob(id="Ax1", tenant="A", learner="x", order=0), used=30.0)
    assert ids(policy.release(10)) == ["Ax3"]


def test_jobs_in_flight_count_first_then_recent_usage():
    policy = policy_with([("A", "x"), ("B", "y"), ("C", "z")])
    policy.tenant_set("A", limit=10, in_flight=1, usage=0.0)
    policy.tenant_set("B", limit=10, in_flight=0, usage=500.0)
    policy.tenant_set("C", limit=10, in_flight=0, usage=20.0)
    assert ids(policy.release(3)) == ["Cz1", "By1", "Ax1"]


def test_usage_leaving_the_window_moves_a_tenant_forward():
    policy = policy_with([("A", "x"), ("A", "x"), ("B", "y"), ("B", "y")])
    policy.usage_add("A", "x", 100.0)
    policy.usage_add("B", "y", 50.0)
    assert ids(policy.release(1)) == ["By1"]
    policy.finished(QueuedJob(id="By1", tenant="B", learner="y", order=2), used=10.0)
    policy.usage_add("A", "x", -100.0)  # A's old usage left the window
    assert ids(policy.release(2)) == ["Ax1", "By2"]


def test_a_learner_with_jobs_in_flight_waits_behind_one_without():
    policy = policy_with([("T", "2"), ("T", "1"), ("T", "1"), ("T", "1")])
    policy.learner_set("T", "2", in_flight=2, usage=0.0)
    # Learner 1 catches up to learner 2's two jobs in flight; then the oldest job goes first.
    assert ids(policy.release(4)) == ["T11", "T12", "T21", "T13"]


def test_many_updates_keep_the_heaps_small_and_the_answers_right():
    policy = FairShare(default_limit=1)
    for order in range(2000):
        tenant = f"t{order % 50}"
        policy.add(QueuedJob(id=order, tenant=tenant, learner="l", order=order))
    released = []
    while (job := policy.next_job()) is not None:
        released.append(job.id)
        policy.finished(job, used=1.0)
    assert released == list(range(2000))  # equal usage: round-robin in submission order
    assert len(policy._heap) <= 4 * len(policy.tenants) + 1024
