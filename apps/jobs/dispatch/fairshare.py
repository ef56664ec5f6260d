"""The fair-share policy: which waiting jobs a pool's free slots go to (pure Python, no Django).

Among tenants with a waiting job and room under their concurrency limit, the next slot goes to
the one with the fewest jobs in flight, then the least device time used recently, then the one
waiting longest; within that tenant, to the learner chosen by the same rule, who gives their
oldest job. Every backlogged tenant weighs the same. Both keys sit in heaps with lazy deletion, so
a decision costs O(log tenants + log learners). The dispatcher builds one per round from the
database; `benchmarks/fairness_sim.py` keeps one across a simulated week.
"""

import heapq
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from itertools import count


@dataclass(frozen=True, slots=True)
class QueuedJob:
    id: Hashable
    tenant: Hashable
    learner: Hashable
    order: int  # submission order: a smaller one was submitted earlier


@dataclass(slots=True)
class _Party:
    """A tenant, or a learner within one: what its key is made of, and a heap version."""

    in_flight: int = 0
    usage: float = 0.0
    # Tenant: the order of the job that began its current backlog; learner: its oldest job's.
    since: int = 0
    waiting: int = 0
    version: int = 0


@dataclass(slots=True)
class _Learner(_Party):
    jobs: deque = field(default_factory=deque)


@dataclass(slots=True)
class _Tenant(_Party):
    limit: int = 1
    learners: dict = field(default_factory=dict)
    heap: list = field(default_factory=list)  # eligible learners, lazily deleted


def _key(party: _Party) -> tuple:
    return (party.in_flight, party.usage, party.since)


class FairShare:
    """The state the policy decides on. Jobs of one learner must be added in submission order."""

    def __init__(self, *, default_limit: int = 1):
        self.default_limit = default_limit
        self.tenants: dict[Hashable, _Tenant] = {}
        self._heap: list = []  # eligible tenants: (key..., tick, version, tenant id)
        self._ticks = count()

    # -- state ----------------------------------------------------------------------------------

    def _tenant(self, tenant) -> _Tenant:
        state = self.tenants.get(tenant)
        if state is None:
            state = self.tenants[tenant] = _Tenant(limit=self.default_limit)
        return state

    def _learner(self, tenant: _Tenant, learner) -> _Learner:
        state = tenant.learners.get(learner)
        if state is None:
            state = tenant.learners[learner] = _Learner()
        return state

    def tenant_set(self, tenant, *, limit: int, in_flight: int = 0, usage: float = 0.0) -> None:
        state = self._tenant(tenant)
        state.limit, state.in_flight, state.usage = limit, in_flight, usage
        self._touch_tenant(tenant, state)

    def learner_set(self, tenant, learner, *, in_flight: int = 0, usage: float = 0.0) -> None:
        owner = self._tenant(tenant)
        state = self._learner(owner, learner)
        state.in_flight, state.usage = in_flight, usage
        self._touch_learner(owner, learner, state)

    def add(self, job: QueuedJob) -> None:
        tenant = self._tenant(job.tenant)
        learner = self._learner(tenant, job.learner)
        if not learner.waiting:
            learner.since = job.order
        if not tenant.waiting:
            tenant.since = job.order
        learner.jobs.append(job)
        learner.waiting += 1
        tenant.waiting += 1
        self._touch_learner(tenant, job.learner, learner)
        self._touch_tenant(job.tenant, tenant)

    def finished(self, job: QueuedJob, *, used: float) -> None:
        """A released job ended after `used` seconds of device time."""
        self.usage_add(job.tenant, job.learner, used, in_flight=-1)

    def usage_add(self, tenant, learner, seconds: float, *, in_flight: int = 0) -> None:
        """Add (or, when usage leaves the recent window, take away) device time."""
        owner = self._tenant(tenant)
        state = self._learner(owner, learner)
        owner.usage += seconds
        state.usage += seconds
        owner.in_flight += in_flight
        state.in_flight += in_flight
        self._touch_learner(owner, learner, state)
        self._touch_tenant(tenant, owner)

    def waiting(self) -> int:
        return sum(tenant.waiting for tenant in self.tenants.values())

    # -- heaps ----------------------------------------------------------------------------------

    def _touch_tenant(self, tenant_id, tenant: _Tenant) -> None:
        tenant.version += 1
        if tenant.waiting and tenant.in_flight < tenant.limit:
            entry = (*_key(tenant), next(self._ticks), tenant.version, tenant_id)
            heapq.heappush(self._heap, entry)
            if len(self._heap) > 4 * len(self.tenants) + 1024:
                self._compact()

    def _touch_learner(self, tenant: _Tenant, learner_id, learner: _Learner) -> None:
        learner.version += 1
        if learner.waiting:
            entry = (*_key(learner), next(self._ticks), learner.version, learner_id)
            heapq.heappush(tenant.heap, entry)
            if len(tenant.heap) > 4 * len(tenant.learners) + 64:
                tenant.heap = [e for e in tenant.heap if tenant.learners[e[-1]].version == e[-2]]
                heapq.heapify(tenant.heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self.tenants[e[-1]].version == e[-2]]
        heapq.heapify(self._heap)

    # -- the decision ---------------------------------------------------------------------------

    def next_job(self) -> QueuedJob | None:
        """Release one job (counted in flight from now on), or None when no tenant may start
        one: nothing waits, or every tenant that waits is at its concurrency limit."""
        while self._heap:
            *_, version, tenant_id = heapq.heappop(self._heap)
            tenant = self.tenants[tenant_id]
            if tenant.version != version:
                continue  # a stale entry: the tenant's key changed since it was pushed
            while True:
                *_, learner_version, learner_id = heapq.heappop(tenant.heap)
                learner = tenant.learners[learner_id]
                if learner.version == learner_version:
                    break
            job = learner.jobs.popleft()
            learner.waiting -= 1
            tenant.waiting -= 1
            learner.in_flight += 1
            tenant.in_flight += 1
            if learner.jobs:
                learner.since = learner.jobs[0].order
            self._touch_learner(tenant, learner_id, learner)
            self._touch_tenant(tenant_id, tenant)
            return job
        return None

    def release(self, slots: int) -> list[QueuedJob]:
        """Up to `slots` jobs, in the order they should start."""
        released = []
        while len(released) < slots:
            job = self.next_job()
            if job is None:
                break
            released.append(job)
        return released
