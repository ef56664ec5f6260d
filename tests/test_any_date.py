"""The suite passes on any date: no test names a calendar date still to come (it would pass one
day and flip a result), and the tests whose outcome reads today's date (marked `calendar`) pass
again with the clock a year ahead.

The clock moves with time-machine, started at interpreter start-up by
tests/year_ahead/sitecustomize.py in the pytest subprocess and in every Python process it starts
(the live server, the Celery worker), so they all read the same moved clock. PostgreSQL and
Chromium keep the real time, which is safe while the code takes every timestamp from Python
(`timezone.now`), never from the database's `now()` or the browser's clock.
"""

import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.conftest import ROOT

SHIFT_DAYS = 365
SITECUSTOMIZE = Path(__file__).resolve().parent / "year_ahead"

# ISO dates ("2024-12-08", "2024-12-08T17:00") and calls with a year, month and day first
# (`datetime(2024, 12, 8)`, `date(...)`, a test's own `utc(2024, 12, 8, 17)`).
_ISO = re.compile(r"(?<![\d-])(20\d\d)-([01]\d)-([0-3]\d)(?!\d)")
_CALL = re.compile(r"\b\w+\(\s*(20\d\d)\s*,\s*(\d{1,2})\s*,\s*(\d{1,2})\s*[,)]")


def future_dates(text: str, *, today: date) -> list[tuple[int, str]]:
    """(line number, literal) of each literal calendar date in `text` after `today`."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern in (_ISO, _CALL):
            for match in pattern.finditer(line):
                try:
                    named = date(*(int(part) for part in match.groups()))
                except ValueError:
                    continue  # not a date (a version, a count)
                if named > today:
                    found.append((number, match.group(0)))
    return found


def test_the_check_finds_a_future_date_in_each_form_and_passes_past_ones():
    today = date.today()
    ahead, behind = today + timedelta(days=30), today - timedelta(days=30)
    text = (
        f'fill("{ahead.isoformat()}T17:00")\n'
        f"due = datetime({ahead.year}, {ahead.month}, {ahead.day}, tzinfo=UTC)\n"
        f'opened = "{behind.isoformat()}"\n'
        f"start = utc({behind.year}, {behind.month}, {behind.day})\n"
        "version = (2099, 13, 1)\n"
    )
    assert future_dates(text, today=today) == [
        (1, ahead.isoformat()),
        (2, f"datetime({ahead.year}, {ahead.month}, {ahead.day},"),
    ]


def test_no_test_names_a_date_still_to_come():
    today = timezone.now().date()
    found = [
        f"{path.relative_to(ROOT)}:{line}: {literal}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for line, literal in future_dates(path.read_text(encoding="utf-8"), today=today)
    ]
    assert found == [], (
        "Dates still to come in tests (use dates relative to timezone.now(), or one in the "
        f"past for calendar arithmetic): {found}"
    )


def _shifted_services() -> dict[str, str]:
    """A database and a Redis database of its own for the inner run, next to the suite's."""
    database = settings.DATABASES["default"]
    user, host = database.get("USER") or "postgres", database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    redis_base, _, db = settings.REDIS_URL.rpartition("/")
    redis_db = (int(db or 0) + 8) % 16
    return {
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/aula_a_year_ahead",
        "REDIS_URL": f"{redis_base}/{redis_db}",
    }


def calendar_files() -> list[str]:
    """The test files that mark tests `calendar` (collecting only them spares the inner run
    importing the whole suite)."""
    marked = re.compile(r"\bmark\.calendar\b")
    return [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        if path.name != "test_any_date.py" and marked.search(path.read_text(encoding="utf-8"))
    ]


def test_the_calendar_files_are_found():
    found = calendar_files()
    assert "tests/jobs/test_submission_service.py" in found  # pytestmark = [..., calendar]
    assert "tests/browser/test_teacher_flow.py" in found
    assert "tests/runtime/test_datasets.py" not in found


@pytest.mark.timeout(900)
def test_the_date_sensitive_tests_pass_with_the_clock_a_year_ahead(tmp_path):
    python_path = [str(SITECUSTOMIZE), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        **_shifted_services(),
        "PYTHONPATH": os.pathsep.join(python_path),
        "AULA_TEST_CLOCK_SHIFT_DAYS": str(SHIFT_DAYS),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "calendar",
        "-p",
        "no:cacheprovider",
        "--create-db",
        f"--basetemp={tmp_path / 'run'}",
        *calendar_files(),
    ]
    inner = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = inner.stdout + inner.stderr
    assert inner.returncode == 0, f"a year ahead, the calendar tests failed:\n{out[-6000:]}"
    ran = re.search(r"(\d+) passed", out)
    assert ran and int(ran.group(1)) >= 20, f"too few calendar tests ran:\n{out[-2000:]}"
    # The inner run's header (tests/conftest.py) says which day its clock read.
    ahead = date.today() + timedelta(days=SHIFT_DAYS)
    seen = re.search(r"^today: (\S+)$", out, re.MULTILINE)
    days = {ahead.isoformat(), (ahead + timedelta(days=1)).isoformat()}  # past midnight
    assert seen and seen.group(1) in days, out[:2000]
