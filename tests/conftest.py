"""Shared fixtures: two tenants with people in every role, API clients with real tokens, the
session's real Celery worker process (lent to one module at a time) and uvicorn server, a
module's real inference pool (apps.serving), a clean Redis for throttles, a folder of its own
for trained models' files, and under pytest-xdist a Redis database per worker."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import celery
import psutil
import pytest
import redis
import torch
from channels.layers import channel_layers
from django.conf import settings
from django.test import Client
from django_scopes import scopes_disabled
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.courses.models import Assignment, Course, Enrollment, Exercise, Lesson, Skill
from apps.datasets.models import Dataset, DatasetVersion
from apps.jobs.models import Job, Submission
from apps.serving.inference.client import inference_client_reset
from apps.tenants.models import Invitation, Membership, Role, Tenant
from config.celery import app as project_celery_app
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
WORKER_QUEUES = ("default", "gpu")


def pytest_configure(config):
    """Trained models the tests' runs keep go to a folder of this process's own, not var/:
    this process's settings and the environment the workers and servers it starts inherit.

    Under pytest-xdist each process gets its share of the CPUs for torch (and the workers,
    sandboxes and servers it starts, through OMP_NUM_THREADS): two processes each training
    with every core's worth of threads oversubscribe them, and a run took five times as long."""
    processes = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if processes > 1:
        threads = max(1, (os.cpu_count() or 1) // processes)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
        torch.set_num_threads(threads)
    folder = tempfile.mkdtemp(prefix="aula-test-artifacts-")
    os.environ["ARTIFACTS_DIR"] = folder
    if "location" in settings.STORAGES["artifacts"].get("OPTIONS", {}):
        settings.STORAGES["artifacts"]["OPTIONS"]["location"] = folder
    # Uploaded datasets likewise: their storage, and the workers' scratch and cache folders.
    datasets = tempfile.mkdtemp(prefix="aula-test-datasets-")
    os.environ["AULA_TEST_DATASETS"] = datasets
    for name, setting in (
        ("DATASETS_DIR", None),
        ("DATASET_SCRATCH_DIR", "DATASET_SCRATCH_DIR"),
        ("DATASET_CACHE_DIR", "DATASET_CACHE_DIR"),
    ):
        os.environ[name] = os.path.join(datasets, name.lower())
        if setting:
            setattr(settings, setting, os.environ[name])
    if "location" in settings.STORAGES["datasets"].get("OPTIONS", {}):
        settings.STORAGES["datasets"]["OPTIONS"]["location"] = os.environ["DATASETS_DIR"]


def pytest_unconfigure(config):
    shutil.rmtree(os.environ["ARTIFACTS_DIR"], ignore_errors=True)
    shutil.rmtree(os.environ["AULA_TEST_DATASETS"], ignore_errors=True)


# The files that take longest (a minute or more on two cores; `--durations` shows them), run
# first, then the rest by their number of tests, most first. `make test` hands files to the two
# processes in this order (`--dist loadfile --no-loadscope-reorder`): xdist's own order, by
# number of tests alone, put these few-test files last, and one process spent minutes on them
# while the other had nothing left.
LONGEST_FIRST = (
    "tests/test_launcher.py",
    "tests/test_api_conformance.py",
    "tests/test_any_date.py",
    "tests/jobs/test_websocket.py",
    "tests/runtime/test_sandbox.py",
    "tests/runtime/test_trainer.py",
    "tests/jobs/test_faults.py",
    "tests/jobs/test_hostile_code.py",
    "tests/browser/test_accessibility.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    files = Counter(item.nodeid.partition("::")[0] for item in items)

    def order(item) -> tuple[int, int]:
        path = item.nodeid.partition("::")[0]
        return (rank.get(path, len(rank)), -files[path])

    items.sort(key=order)  # stable: a file's own tests keep their order


def pytest_report_header(config) -> str:
    # The day this run's clock reads: tests/test_any_date.py checks it moved a year ahead.
    return f"today: {date.today().isoformat()}"


def _redis_url_of_xdist_worker(index: int) -> str:
    base, _, db = os.environ["REDIS_URL"].rpartition("/")
    return f"{base}/{int(db or 0) + index}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Under pytest-xdist each worker gets a Redis database of its own, REDIS_URL's and the
    ones after it (gw0 REDIS_URL's, gw1 the next), as pytest-django gives each its own
    PostgreSQL database. Set in the worker's environment before it starts, since Django reads
    REDIS_URL when pytest-django loads the settings (a URL cannot travel in --tx: no "//")."""
    for index, spec in enumerate(specs):
        spec.env["REDIS_URL"] = _redis_url_of_xdist_worker(index)
        # xdist remakes a spec without this execution model from its text, dropping `env`.
        spec.execmodel = "main_thread_only"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    # Checked by the worker (_clean_test_redis): two workers on one Redis would break each other.
    index = int(node.workerinput["workerid"].removeprefix("gw"))
    node.workerinput["aula_redis_url"] = _redis_url_of_xdist_worker(index)


@pytest.fixture(scope="session", autouse=True)
def _clean_test_redis(request):
    """The suite owns its Redis database (REDIS_URL); start from an empty one."""
    meant = getattr(request.config, "workerinput", {}).get("aula_redis_url")
    assert meant in (None, settings.REDIS_URL), (
        f"this xdist worker runs on Redis {settings.REDIS_URL}, not its own {meant}"
    )
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets channel-layer instances of its own. channels_redis binds its locks to the
    event loop that first used them, and each async_to_sync runs a loop of its own: a lock
    still held by a cleanup task of an earlier test's loop fails the next test's consumer
    ("bound to a different event loop")."""
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _celery_app_stays_the_projects():
    """Code publishes with `celery.current_app`; a test that made a Celery app of its own and
    left it current would send the next tests' tasks to that app's broker (seen in CI: the
    demo's jobs went to a stopped launcher's Redis). Fail the test that did it, by name."""
    yield
    current = celery.current_app._get_current_object()
    project_celery_app.set_current()  # only the test that did it fails
    assert current is project_celery_app, (
        f"this test left Celery app {current!r} current (make it with set_as_current=False)"
    )


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
    # A dataset of the tenant with one version, still uploading.
    dataset: Dataset
    dataset_version: DatasetVersion


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
    with scopes_disabled():
        dataset = Dataset.objects.create(
            tenant=tenant, slug=f"{slug}-data", title=f"Data at {slug}"
        )
        version = DatasetVersion.objects.create(
            tenant=tenant,
            dataset=dataset,
            number=1,
            format="arrays",
            file_name="a.npz",
            upload_size=10,
            reserved=0,
        )
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
        dataset=dataset,
        dataset_version=version,
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


@dataclass
class _SessionWorker:
    hostname: str
    process: subprocess.Popen
    log: Path


def _worker_queues_purge() -> None:
    redis.Redis.from_url(settings.REDIS_URL).delete(*WORKER_QUEUES)


def _worker_start(log_path: Path) -> _SessionWorker:
    from apps.core.heartbeat import heartbeats_read

    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_POOL": "true",  # as production runs (the test process itself does not)
        "WORKER_HEARTBEAT_INTERVAL": "1",
    }
    hostname = f"test-{os.getpid()}-{log_path.parent.name}@localhost"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                ",".join(WORKER_QUEUES),
                "--concurrency",
                "1",
                "--pool",
                "solo",
                "-n",
                hostname,
                "--loglevel",
                "INFO",
                # No peers to sync with or gossip to: the worker starts faster.
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = _SessionWorker(hostname=hostname, process=process, log=log_path)
    try:
        wait_for(
            lambda: hostname in heartbeats_read() or process.poll() is not None,
            timeout=120,
            message="the Celery worker's first heartbeat",
        )
        if process.poll() is not None:
            raise AssertionError(f"worker exited: {log_path.read_text()[-4000:]}")
    except BaseException:
        stop_process(process)
        raise
    return worker


def _worker_control(command: str, worker: _SessionWorker) -> bool:
    """add_consumer / cancel_consumer for each queue; True when the worker answered each. The
    solo pool reads control messages between tasks, so an answer means no task is running."""
    from config.celery import app

    for queue in WORKER_QUEUES:
        replies = getattr(app.control, command)(
            queue, destination=[worker.hostname], reply=True, timeout=30
        )
        if not any(worker.hostname in reply for reply in replies or []):
            return False
    return True


def _consumed_queues(worker: _SessionWorker) -> set[str] | None:
    """The queues the worker consumes now, as it answers; None when it does not answer."""
    from config.celery import app

    inspect = app.control.inspect(destination=[worker.hostname], timeout=5, limit=1)
    queues = (inspect.active_queues() or {}).get(worker.hostname)
    return None if queues is None else {queue["name"] for queue in queues}


def _worker_consumes(worker: _SessionWorker, wanted: set[str]) -> bool:
    """Until the worker consumes exactly `wanted`, asked again for what differs: a control
    command answered late can be carried out after a later one (a pause's cancel after the next
    module's add), which left a lent worker not consuming `gpu`. False if it never gets there."""
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.process.poll() is None:
        queues = _consumed_queues(worker)
        if queues == wanted:
            return True
        for queue in wanted - (queues or set()):
            app.control.add_consumer(queue, destination=[worker.hostname], reply=True, timeout=5)
        for queue in (queues or set()) - wanted:
            app.control.cancel_consumer(queue, destination=[worker.hostname], reply=True, timeout=5)
    return False


def _worker_waits_on_a_queue(worker: _SessionWorker) -> bool:
    """Whether one of the worker's Redis connections is blocked in a BRPOP on its queues. The
    one it sent before its consumers were cancelled runs to its timeout (a second); stopped
    inside it, the worker would still be handed the next message pushed to those queues, and
    the message would vanish from the queue into the stopped process (seen in CI: a task the
    next module published and then read off the queue was not there)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    server_port = client.connection_pool.connection_kwargs["port"]
    ports = {
        connection.laddr.port
        for connection in psutil.Process(worker.process.pid).net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port == server_port
    }
    return any(
        int(entry["addr"].rpartition(":")[2]) in ports and "b" in entry["flags"]
        for entry in client.client_list()
    )


def _worker_pause(worker: _SessionWorker) -> bool:
    """Stops the worker taking jobs, then stops the process itself (SIGSTOP: no heartbeat, no
    database or Redis traffic) until the next module asks for it. False if it did not answer."""
    from apps.core.heartbeat import heartbeat_remove

    if worker.process.poll() is not None or not _worker_control("cancel_consumer", worker):
        return False
    if not _worker_consumes(worker, set()):
        return False
    wait_for(
        lambda: worker.process.poll() is not None or not _worker_waits_on_a_queue(worker),
        timeout=10,
        message="the worker's last wait on its queues to end",
    )
    worker.process.send_signal(signal.SIGSTOP)
    wait_for(
        lambda: worker.process.poll() is not None or _process_state(worker.process.pid) == "T",
        timeout=10,
        message="the paused worker to stop",
    )
    heartbeat_remove(hostname=worker.hostname)
    return worker.process.poll() is None


def _worker_resume(worker: _SessionWorker) -> bool:
    from apps.core.heartbeat import heartbeats_read

    worker.process.send_signal(signal.SIGCONT)
    if worker.process.poll() is not None or not _worker_control("add_consumer", worker):
        return False
    if not _worker_consumes(worker, set(WORKER_QUEUES)):
        return False
    # Its heartbeat is back (the pause removed it), so /readyz sees it again.
    wait_for(
        lambda: worker.hostname in heartbeats_read(),
        timeout=30,
        message="the resumed worker's heartbeat",
    )
    return True


def _process_state(pid: int) -> str:
    """Linux's one-letter state of a process ("T": stopped by a signal); "" once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def _worker_stop(worker: _SessionWorker) -> None:
    with contextlib.suppress(ProcessLookupError):
        worker.process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    stop_process(worker.process)


@pytest.fixture(scope="session")
def _session_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """The session's one Celery worker process, started on first use and lent to one test module
    at a time (`celery_worker_process`); stopped before the test database is dropped."""
    slot: dict[str, _SessionWorker | None] = {"worker": None}
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"

    def lend() -> _SessionWorker:
        worker = slot["worker"]
        if worker is not None and not _worker_resume(worker):
            _worker_stop(worker)
            worker = None
        if worker is None:
            worker = slot["worker"] = _worker_start(log_path)
        return worker

    def take_back(worker: _SessionWorker) -> None:
        if not _worker_pause(worker):
            _worker_stop(worker)
            slot["worker"] = None

    try:
        yield lend, take_back
    finally:
        if slot["worker"] is not None:
            _worker_stop(slot["worker"])


@pytest.fixture(scope="module")
def celery_worker_process(_session_worker):
    """A real Celery worker (a separate process) on the test database and the test Redis.

    Lent to one test module at a time and paused after it: a worker taking jobs between modules
    would take the jobs that later modules submit without wanting them run (and its writes
    would race their database flush). Each module gets it with empty queues for the same
    reason. Starting a worker imports torch (seconds), so the session starts it once.
    """
    lend, take_back = _session_worker
    _worker_queues_purge()
    worker = lend()
    try:
        yield {"hostname": worker.hostname, "process": worker.process, "log": worker.log}
    finally:
        take_back(worker)
        _worker_queues_purge()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """uvicorn on config.asgi (HTTP and websockets, as production runs it) in a separate
    process, on the test database and Redis; its URL. Tests using it need committed data
    (transactional_db, which the browser tests' `new_page` brings). One for the session: it only
    answers requests, so the modules that use it can share it (each start imports the app)."""
    process, url = uvicorn_start(tmp_path_factory)
    try:
        yield url
    finally:
        stop_process(process)


def uvicorn_start(tmp_path_factory, **environment) -> tuple[subprocess.Popen, str]:
    """uvicorn on config.asgi with these settings (environment variables) added, answering
    /healthz; the process and its URL (stop it with stop_process)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "STATIC_FROM_SOURCE": "true",
        "DATABASE_POOL": "true",  # as production runs (the test process itself does not)
        **{name: str(value) for name, value in environment.items()},
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"uvicorn exited: {log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(answers, timeout=60, message="uvicorn answering /healthz")
    except BaseException:
        stop_process(process)
        raise
    return process, url


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


@pytest.fixture(scope="module")
def pool_start(django_db_setup, tmp_path_factory) -> Callable[..., str]:
    """Starts an inference pool process (`python -m apps.serving.inference`) with these
    settings (environment variables) on a free port; its URL. Stopped after the module."""
    started: list[subprocess.Popen] = []

    def start(**environment) -> str:
        port = free_port()
        log_path = tmp_path_factory.mktemp("inference") / "inference.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "DATABASE_POOL": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            **{name: str(value) for name, value in environment.items()},
        }
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "apps.serving.inference", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the pool exited: {log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(answers, timeout=60, message="the inference pool answering /healthz")
        return url

    yield start
    for process in started:
        stop_process(process)


@pytest.fixture(scope="module")
def pool_url(pool_start) -> str:
    """The module's inference pool, with the default settings."""
    return pool_start()


@pytest.fixture
def pool(pool_url, settings) -> str:
    """The web side (this test process) talks to the module's pool."""
    settings.INFERENCE_URL = pool_url
    inference_client_reset()
    yield pool_url
    inference_client_reset()
