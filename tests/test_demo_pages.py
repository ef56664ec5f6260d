"""`make run`'s demo data fills every main page: the seed, a real worker training the learners'
first attempts, then each page as the demo user who uses it sees it."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from apps.accounts.models import User
from apps.courses.models import Course
from apps.jobs.models import Job
from tests.conftest import page_client_for, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(html: str, table_id: str) -> int:
    table = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    return len(re.findall(r"<tr", table.group(0))) - 1  # less the header row


def _items(html: str, list_id: str) -> int:
    found = re.search(rf'<(ol|ul) id="{list_id}">(.*?)</\1>', html, re.S)
    assert found, f"no list {list_id}"
    return found.group(2).count("<li>")


def test_every_main_page_has_demo_data(celery_worker_process):
    call_command("seed_demo", stdout=StringIO())
    log = celery_worker_process["log"]

    def all_succeeded() -> bool:
        with scopes_disabled():
            return set(Job.objects.values_list("state", flat=True)) == {"succeeded"}

    wait_for(
        all_succeeded,
        timeout=180,
        message=lambda: f"the demo's first runs succeeded\n{log.read_text()[-3000:]}",
    )
    users = {
        email: User.objects.get(email=email)
        for email in (
            "ada@demo.aula.localhost",
            "teacher@demo.aula.localhost",
            "admin@demo.aula.localhost",
            "root@aula.localhost",
        )
    }
    with scopes_disabled():
        course = Course.objects.get(slug="building-neural-networks")
        ada_runs = list(
            users["ada@demo.aula.localhost"]
            .submissions.order_by("created_at")
            .values_list("id", flat=True)
        )

    ada = page_client_for(users["ada@demo.aula.localhost"])
    home = ada.get("/t/demo/").content.decode()
    assert (_rows(home, "assignments"), _rows(home, "recent-runs")) == (5, 2)
    run = ada.get(f"/t/demo/runs/{ada_runs[0]}/").content.decode()
    assert re.search(r'<p id="grade" class="grade"><strong>[\d.]+ / 100.00</strong>', run)
    assert 'id="confusion"' in run

    teacher = page_client_for(users["teacher@demo.aula.localhost"])
    book = teacher.get(f"/t/demo/teach/courses/{course.id}/gradebook/").content.decode()
    assert _rows(book, "gradebook") == 2
    assert len(re.findall(r'href="/t/demo/runs/[0-9a-f-]+/">[\d.]+</a>', book)) == 3
    page = teacher.get(f"/t/demo/teach/courses/{course.id}/").content.decode()
    assert (_rows(page, "assignments"), _items(page, "lessons"), _items(page, "exercises")) == (
        5,
        4,
        5,
    )
    # Knowledge tracing: ada's graded runs moved her mastery; her next step and the teacher's
    # heat map show it.
    assert _rows(home, "mastery") == 5
    assert 'id="next-step"' in home
    grid = teacher.get(f"/t/demo/teach/courses/{course.id}/mastery/").content.decode()
    assert _rows(grid, "mastery-grid") == 2

    usage = (
        page_client_for(users["admin@demo.aula.localhost"]).get("/t/demo/usage/").content.decode()
    )
    assert _rows(usage, "usage-by-course") == 1 and _rows(usage, "usage-by-learner") == 2

    console = page_client_for(users["root@aula.localhost"]).get("/console/").content.decode()
    assert "Aula Demo School" in console
