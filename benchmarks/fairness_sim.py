"""Fair-share dispatch in simulation: the dispatcher's own policy against first-come-first-served.

A discrete-event simulation of one GPU pool. Tenants' activity is Zipf-distributed (a few
tenants submit most jobs), job durations are Pareto-distributed (most short, a few up to the
hour a job may take), arrivals are Poisson at a load above the pool's capacity, so a backlog
builds and the order of release matters. Both disciplines run on the same workload:

- fair share: `apps.jobs.dispatch.fairshare.FairShare`, the code the dispatcher runs, kept across
  the whole run (jobs added on arrival, released when a GPU frees, usage added at each job's end and
  taken away when it leaves the recent-usage window), with each tenant's concurrency limit;
- first-come-first-served: one global queue, no limits (what publishing every job to Celery at
  submit time gives).

Printed for each: Jain's fairness index of per-tenant service (GPU-seconds run) among the
tenants backlogged for the whole of a window (mean over windows of the usage-window length),
the p50/p99 wait of small tenants' jobs (the half of tenants with the fewest jobs), and the
policy's time per decision (every call into the policy, divided by the jobs released).

Run: `.venv/bin/python benchmarks/fairness_sim.py` (10,000 tenants, 1,000,000 jobs, 64 GPUs),
or `--quick` (1,000 tenants, 100,000 jobs). No database, Redis or Django needed.
"""

import argparse
import heapq
import math
import platform
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.jobs.dispatch.fairshare import FairShare, QueuedJob  # noqa: E402


class Workload:
    def __init__(self, *, tenants: int, jobs: int, gpus: int, load: float, limit: int, seed: int):
        rng = np.random.default_rng(seed)
        # A class hands in work together: jobs come in bursts (1 + geometric, mean 10 jobs,
        # within 5 minutes) of one tenant; tenants' activity is Zipf-like.
        weights = 1.0 / np.arange(1, tenants + 1) ** 1.1
        sizes = 1 + rng.geometric(1 / 10, size=jobs)
        bursts = int(np.searchsorted(np.cumsum(sizes), jobs)) + 1
        sizes = sizes[:bursts]
        sizes[-1] -= sizes.sum() - jobs
        burst_tenant = rng.choice(tenants, size=bursts, p=weights / weights.sum())
        self.tenant = np.repeat(burst_tenant, sizes)
        counts = np.bincount(self.tenant, minlength=tenants)
        # Learners: one per 20 jobs of the tenant, 1 to 300.
        learners = np.clip(counts // 20, 1, 300)
        self.learner = (rng.random(jobs) * learners[self.tenant]).astype(np.int64)
        # Pareto durations (alpha 1.6, from 20 s), cut at the hour a job may take.
        self.duration = np.minimum(20.0 * (1.0 + rng.pareto(1.6, size=jobs)), 3600.0)
        burst_rate = load * gpus / self.duration.mean() / sizes.mean()
        starts = np.cumsum(rng.exponential(1.0 / burst_rate, size=bursts))
        arrival = np.repeat(starts, sizes) + rng.random(jobs) * 300.0
        order = np.argsort(arrival, kind="stable")
        self.arrival = arrival[order]
        self.tenant = self.tenant[order]
        self.learner = self.learner[order]
        self.duration = self.duration[order]
        self.limit = np.full(tenants, limit)
        by_count = np.argsort(counts, kind="stable")
        self.small = np.zeros(tenants, dtype=bool)
        self.small[by_count[: tenants // 2]] = True
        self.counts = counts
        self.gpus = gpus


class Discipline:
    """What a simulation asks of a dispatching discipline."""

    def add(self, job: QueuedJob) -> None: ...
    def release(self, slots: int) -> list[QueuedJob]: ...
    def finished(self, job: QueuedJob, used: float, now: float) -> None: ...
    def tick(self, now: float) -> None: ...


class FairShareDiscipline(Discipline):
    name = "fair share"

    def __init__(self, workload: Workload, window: float):
        self.policy = FairShare()
        for tenant, limit in enumerate(workload.limit.tolist()):
            self.policy.tenant_set(tenant, limit=limit)
        self.window = window
        self.expiring: deque = deque()  # (time, job, seconds), in time order

    def add(self, job):
        self.policy.add(job)

    def release(self, slots):
        return self.policy.release(slots)

    def finished(self, job, used, now):
        self.policy.finished(job, used=used)
        self.expiring.append((now + self.window, job, used))

    def tick(self, now):
        while self.expiring and self.expiring[0][0] <= now:
            _, job, used = self.expiring.popleft()
            self.policy.usage_add(job.tenant, job.learner, -used)


class FirstComeDiscipline(Discipline):
    name = "first come, first served"

    def __init__(self, workload: Workload, window: float):
        self.queue: deque = deque()

    def add(self, job):
        self.queue.append(job)

    def release(self, slots):
        n = min(slots, len(self.queue))
        return [self.queue.popleft() for _ in range(n)]

    def finished(self, job, used, now):
        pass

    def tick(self, now):
        pass


def simulate(workload: Workload, discipline: Discipline, window: float) -> dict:
    """Run the workload; `window`: the length of the windows Jain's index is measured over."""
    arrival = workload.arrival.tolist()
    tenant_of = workload.tenant.tolist()
    learner_of = workload.learner.tolist()
    duration = workload.duration.tolist()
    n = len(arrival)
    running: list = []  # (finish time, job id)
    jobs: dict[int, QueuedJob] = {}
    free = workload.gpus
    waiting = defaultdict(int)
    backlog_since: dict[int, float] = {}
    backlogs: list[tuple[int, float, float]] = []  # (tenant, from, to)
    service: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    wait = np.zeros(n)
    policy_seconds = 0.0
    decisions = 0
    i = 0
    now = 0.0
    while i < n or running:
        next_arrival = arrival[i] if i < n else math.inf
        now = min(next_arrival, running[0][0] if running else math.inf)
        clock = time.perf_counter()
        while running and running[0][0] <= now:
            _, job_id = heapq.heappop(running)
            discipline.finished(jobs.pop(job_id), duration[job_id], now)
            free += 1
        while i < n and arrival[i] <= now:
            job = jobs[i] = QueuedJob(id=i, tenant=tenant_of[i], learner=learner_of[i], order=i)
            discipline.add(job)
            if not waiting[job.tenant]:
                backlog_since[job.tenant] = now
            waiting[job.tenant] += 1
            i += 1
        discipline.tick(now)
        released = discipline.release(free) if free else []
        policy_seconds += time.perf_counter() - clock
        decisions += len(released)
        for job in released:
            free -= 1
            job_id = job.id
            end = now + duration[job_id]
            heapq.heappush(running, (end, job_id))
            wait[job_id] = now - arrival[job_id]
            waiting[job.tenant] -= 1
            if not waiting[job.tenant]:
                backlogs.append((job.tenant, backlog_since.pop(job.tenant), now))
            start = now
            while start < end:  # the run's GPU-seconds, split across windows
                w = int(start // window)
                upto = min(end, (w + 1) * window)
                service[w][job.tenant] += upto - start
                start = upto
    # Tenants backlogged for the whole of each window, and Jain's index of their service.
    backlogged: dict[int, list[int]] = defaultdict(list)
    for tenant, start, end in backlogs:
        for w in range(math.ceil(start / window), math.floor(end / window)):
            backlogged[w].append(tenant)
    jains = []
    for w, tenants in backlogged.items():
        if len(tenants) >= 2:
            x = np.array([service[w].get(t, 0.0) for t in tenants])
            jains.append(x.sum() ** 2 / (len(x) * (x**2).sum()) if x.any() else 1.0)
    small = wait[workload.small[workload.tenant]]
    return {
        "jain": float(np.mean(jains)) if jains else float("nan"),
        "jain_p5": float(np.percentile(jains, 5)) if jains else float("nan"),
        "windows": len(jains),
        "backlogged": float(np.mean([len(t) for t in backlogged.values()])) if jains else 0,
        "small_p50": float(np.percentile(small, 50)),
        "small_p99": float(np.percentile(small, 99)),
        "all_p99": float(np.percentile(wait, 99)),
        "per_decision_us": policy_seconds / max(decisions, 1) * 1e6,
        "decisions": decisions,
        "makespan_h": now / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--load", type=float, default=1.2, help="offered load / capacity")
    parser.add_argument(
        "--usage-window",
        type=float,
        default=3600.0,
        help="the policy's recent-usage window, seconds",
    )
    parser.add_argument(
        "--measure-window",
        type=float,
        default=600.0,
        help="Jain: over tenants backlogged a whole window",
    )
    parser.add_argument("--limit", type=int, default=16, help="each tenant's running jobs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1,000 tenants, 100,000 jobs")
    args = parser.parse_args()
    if args.quick:
        args.tenants, args.jobs = 1_000, 100_000
    started = time.perf_counter()
    workload = Workload(
        tenants=args.tenants,
        jobs=args.jobs,
        gpus=args.gpus,
        load=args.load,
        limit=args.limit,
        seed=args.seed,
    )
    small_jobs = int(workload.small[workload.tenant].sum())
    p99 = np.percentile(workload.duration, 99)
    machine = platform.processor() or platform.machine()
    print(
        f"{args.tenants:,} tenants, {args.jobs:,} jobs, {args.gpus} GPUs, load {args.load}, "
        f"limit {args.limit} running a tenant, "
        f"mean job {workload.duration.mean():.0f} s (p99 {p99:.0f} s), "
        f"largest tenant {workload.counts.max():,} jobs, small tenants' jobs {small_jobs:,}; "
        f"{machine}, Python {platform.python_version()}"
    )
    print(
        f"{'discipline':<26} {'Jain mean':>9} {'Jain p5':>8} {'windows':>7} {'backlogged':>10} "
        f"{'small p50 wait':>14} {'small p99 wait':>14} {'all p99 wait':>12} "
        f"{'per decision':>12}"
    )
    for kind in (FairShareDiscipline, FirstComeDiscipline):
        r = simulate(workload, kind(workload, args.usage_window), args.measure_window)
        print(
            f"{kind.name:<26} {r['jain']:>9.3f} {r['jain_p5']:>8.3f} {r['windows']:>7} "
            f"{r['backlogged']:>10.0f} {r['small_p50']:>13.0f}s {r['small_p99']:>13.0f}s "
            f"{r['all_p99']:>11.0f}s {r['per_decision_us']:>10.1f}µs",
            flush=True,
        )
    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
