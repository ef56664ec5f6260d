"""Shared fixtures: two tenants with people in every role, API clients with real tokens, a real
Celery worker process, and a clean Redis for throttles."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.courses.models import Assignment, Course, Enrollment, Exercise, Lesson, Skill
from apps.jobs.models import Job, Submission
from apps.tenants.models import Invitation, Membership, Role, Tenant
from tests.factories import (
    AssignmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ExerciseFactory,
    InvitationFactory,
    LessonFactory,
    MembershipFactory,
    SkillFactory,
    TenantFactory,
    TenantQuotaFactory,
    UserFactory,
    graded_submission,
)

ROOT = Path(__file__).resolve().parent.parent


def pytest_report_header(config) -> str:
    # The day this run's clock reads: tests/test_any_date.py checks it moved a year ahead.
    return f"today: {date.today().isoformat()}"


@pytest.fixture(scope="session", autouse=True)
def _clean_test_redis():
    """The suite owns its Redis database (REDIS_URL); start from an empty one."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(autouse=True)
def _reset_throttles():
    """DRF throttles count in Redis; each test starts with fresh counters."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match="aula:*throttle_*"))
    if keys:
        client.delete(*keys)


@dataclass
class TenantWorld:
    tenant: Tenant
    admin: Membership
    teacher: Membership
    learner: Membership
    invitation: Invitation
    invitation_token: str
    # A published course taught by `teacher`, `learner` enrolled, one lesson, skill, exercise
    # (XOR, spec) and open assignment, and the learner's first attempt: succeeded, graded 80.
    skill: Skill
    course: Course
    lesson: Lesson
    exercise: Exercise
    assignment: Assignment
    enrollment: Enrollment
    submission: Submission
    job: Job


def _tenant_world(slug: str) -> TenantWorld:
    tenant = TenantFactory(slug=slug, name=f"School {slug.upper()}")
    TenantQuotaFactory(tenant=tenant)
    token = f"token-for-{slug}-0123456789abcdef"
    teacher = MembershipFactory(tenant=tenant, role=Role.TEACHER)
    learner = MembershipFactory(tenant=tenant, role=Role.LEARNER)
    skill = SkillFactory(tenant=tenant, slug=f"{slug}-mlp", name=f"MLPs at {slug}")
    course = CourseFactory(tenant=tenant, slug=f"{slug}-nn", title=f"Neural networks at {slug}")
    course.teachers.add(teacher.user)
    lesson = LessonFactory(course=course, position=1)
    lesson.skills.add(skill)
    exercise = ExerciseFactory(course=course, title=f"XOR at {slug}")
    exercise.skills.add(skill)
    assignment = AssignmentFactory(exercise=exercise)
    submission = graded_submission(assignment=assignment, learner=learner.user, attempt=1)
    return TenantWorld(
        tenant=tenant,
        admin=MembershipFactory(tenant=tenant, role=Role.ADMIN),
        teacher=teacher,
        learner=learner,
        invitation=InvitationFactory(tenant=tenant, raw_token=token),
        invitation_token=token,
        skill=skill,
        course=course,
        lesson=lesson,
        exercise=exercise,
        assignment=assignment,
        enrollment=EnrollmentFactory(course=course, user=learner.user),
        submission=submission,
        job=submission.job,
    )


@pytest.fixture
def tenant_a(db) -> TenantWorld:
    return _tenant_world("alpha")


@pytest.fixture
def tenant_b(db) -> TenantWorld:
    return _tenant_world("beta")


@pytest.fixture
def platform_admin(db):
    return UserFactory(email="root@example.org", is_staff=True, is_superuser=True)


def api_client_for(user) -> APIClient:
    """An API client that authenticates the way real clients do: with a token header."""
    client = APIClient()
    if user is not None:
        _, raw = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


def page_client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def wait_for(condition, *, timeout: float, interval: float = 0.1, message=""):
    """Poll `condition` until it returns a truthy value or the deadline passes.

    `message` says what was awaited: a string, or a callable for one built at the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            explained = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout} s: {explained}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker (a separate process) on the test database and the test Redis.

    One per test module that asks for it, stopped after that module: a worker left running
    would take the jobs that later modules submit without wanting them run (and its writes
    would race their database flush). It starts from empty queues for the same reason.
    """
    from apps.core.heartbeat import heartbeats_read

    redis.Redis.from_url(settings.REDIS_URL).delete("gpu", "default")

    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_POOL": "true",  # as production runs (the test process itself does not)
        "WORKER_HEARTBEAT_INTERVAL": "1",
    }
    hostname = f"test-{os.getpid()}-{log_path.parent.name}@localhost"  # one name per module
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-Q", "default,gpu", "--concurrency", "1", "--pool", "solo",
                "-n", hostname, "--loglevel", "INFO",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(
            lambda: hostname in heartbeats_read() or process.poll() is not None,
            timeout=120,
            message="the Celery worker's first heartbeat",
        )
        if process.poll() is not None:
            raise AssertionError(f"worker exited: {log_path.read_text()[-4000:]}")
        yield {"hostname": hostname, "process": process, "log": log_path}
    finally:
        stop_process(process)


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def database_url_of_test_db() -> str:
    from django.db import connection

    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"
