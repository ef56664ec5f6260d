"""Dispatch: which waiting job runs next, and handing it to a worker.

Jobs wait in the database (queued, no `dispatched_at`); nothing reaches the broker until a
dispatch round releases it. One package, four modules:

- `round.py` — the round: counts each pool's free slots, asks the policy which waiting jobs get
  them, marks them released and publishes them after commit. Rounds run after the commit that
  queued a job (`dispatch_round_on_commit`; a submit to an idle pool takes the fast path
  `pool_for_new_job`), after each job's end (`apps.jobs.transitions`), and from the reaper.
- `fairshare.py` — the fair-share policy itself, pure Python (also run by
  benchmarks/fairness_sim.py).
- `publish.py` — `job_publish`: the `jobs.run_job` task, published by name.
- `reaper.py` — `jobs_reap`: requeues jobs whose worker was lost, publishes lost messages again,
  runs a round for whatever still waits.

Import the modules themselves; this file re-exports nothing, so importing one part does not
load the others.
"""
