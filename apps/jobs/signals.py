"""What the jobs app tells the apps above it (learning writes its records from these).

Sent inside the transaction of the change, synchronously: a receiver's writes commit or roll
back with it, and a receiver that raises undoes the change. Receivers are connected in the
receiving app's `AppConfig.ready` (apps/learning/receivers.py); docs/architecture.md lists them.
"""

from django.dispatch import Signal

# A submission was created and its job queued. kwargs: submission.
submission_made = Signal()

# A grade was written: the automatic grade of a run, or a teacher's override. kwargs: grade,
# automatic (bool); for an automatic grade also job (the locked job being finished, its outcome
# set), metrics and hints (the run's diagnosis, which the grade's feedback quotes); else None.
grade_given = Signal()

# A job reached a final state (succeeded, failed, cancelled). kwargs: job.
job_ended = Signal()

# A regrade from the stored model changed a grade's automatic score (apps/jobs/regrade.py).
# kwargs: grade (updated), revision (the new GradeRevision), score_before and score_after (the
# current score before and after: equal when a teacher's override stays the current score).
grade_regraded = Signal()
