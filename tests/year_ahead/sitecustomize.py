"""Moves this interpreter's wall clock AULA_TEST_CLOCK_SHIFT_DAYS ahead, ticking, from start-up.

Python runs a module named `sitecustomize` at start-up when it is on the path: the run a year
ahead (tests/test_any_date.py) puts this folder on PYTHONPATH, so the pytest process and every
Python process it starts (the live server, the Celery worker) read the same moved clock. The
monotonic clock is left alone, so timeouts keep their length.
"""

import os

_days = os.environ.get("AULA_TEST_CLOCK_SHIFT_DAYS")
if _days:
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(days=float(_days)), tick=True).start()
