"""Forwarding statements to an external learning record store: a local stand-in LRS records what
it receives; a failure leaves the statements unforwarded (and counted) for the retry; a
request never waits for the LRS."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_scopes import scopes_disabled

from apps.learning.lrs import ForwardFailed
from apps.learning.models import Statement
from apps.learning.tasks import statements_forward
from apps.learning.xapi import statement_problems
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, page_client_for


class StandInLRS:
    """POST /xapi/statements: answers `status` (200 by default), keeps what it was sent."""

    def __init__(self):
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.status = 200
        self.requests_started = 0
        # Set by a test: each request waits for it (at most 30 s) before it is answered.
        self.hold: threading.Event | None = None
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                lrs.requests_started += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if lrs.hold is not None:
                    lrs.hold.wait(timeout=30)
                if lrs.status == 200 and self.path == "/xapi/statements":
                    docs = json.loads(body)
                    lrs.received.extend(docs)
                    lrs.headers.append(dict(self.headers))
                    payload = json.dumps([d["id"] for d in docs]).encode()
                else:
                    payload = b'{"error": "down"}'
                self.send_response(lrs.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/xapi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lrs(settings):
    server = StandInLRS()
    settings.LRS_ENDPOINT = server.url
    settings.LRS_USERNAME, settings.LRS_PASSWORD = "aula", "s3cret"
    yield server
    server.close()


def _some_statements(world):
    page_client_for(world.learner.user).get(f"/t/alpha/lessons/{world.lesson.id}/")
    page_client_for(world.learner.user).get(f"/t/alpha/lessons/{world.lesson.id}/")


def _unforwarded() -> int:
    with scopes_disabled():
        return Statement.objects.filter(forwarded_at__isnull=True).count()


@pytest.mark.django_db
def test_statements_are_forwarded_once_as_valid_xapi(tenant_a, lrs):
    _some_statements(tenant_a)
    assert statements_forward() == 2
    assert [d["verb"]["id"] for d in lrs.received] == [
        "http://adlnet.gov/expapi/verbs/experienced"
    ] * 2
    assert all(statement_problems(d) == [] for d in lrs.received)
    assert lrs.headers[0]["X-Experience-API-Version"] == "1.0.3"
    assert lrs.headers[0]["Authorization"] == "Basic YXVsYTpzM2NyZXQ="  # aula:s3cret
    assert _unforwarded() == 0
    assert statements_forward() == 0  # nothing twice
    assert len(lrs.received) == 2


@pytest.mark.django_db
def test_a_failing_lrs_keeps_the_statements_for_the_retry(tenant_a, lrs):
    _some_statements(tenant_a)
    lrs.status = 503
    with pytest.raises(ForwardFailed, match=r"The LRS at .*/xapi/statements answered 503\."):
        statements_forward()
    with scopes_disabled():
        assert list(Statement.objects.values_list("forward_attempts", "forwarded_at")) == [
            (1, None),
            (1, None),
        ]
    lrs.status = 200
    assert statements_forward() == 2  # the retry
    assert len(lrs.received) == 2
    assert _unforwarded() == 0


@pytest.mark.django_db
def test_an_unreachable_lrs_is_a_retryable_failure(tenant_a, settings):
    _some_statements(tenant_a)
    settings.LRS_ENDPOINT = "http://127.0.0.1:9/xapi"  # the discard port: nothing listens
    with pytest.raises(ForwardFailed, match="could not be reached"):
        statements_forward()
    assert _unforwarded() == 2


def test_the_task_retries_with_backoff_forever():
    options = statements_forward
    assert options.autoretry_for == (ForwardFailed,)
    assert (options.retry_backoff, options.retry_backoff_max, options.max_retries) == (5, 600, None)


@pytest.mark.django_db(transaction=True)
def test_a_request_does_not_call_the_lrs(tenant_a, lrs):
    """Forwarding is a task queued after the commit: the submit answers without the LRS having
    been asked anything (an LRS that hangs could not hold it up)."""
    lrs.hold = threading.Event()
    try:
        response = api_client_for(tenant_a.learner.user).post(
            f"/api/v1/t/alpha/assignments/{tenant_a.assignment.id}/submissions/",
            {"kind": "spec", "spec": TEMPLATES["xor"].spec},
            format="json",
        )
        assert response.status_code == 201
        assert (lrs.requests_started, _unforwarded()) == (0, 1)
    finally:
        lrs.hold.set()


@pytest.mark.django_db(transaction=True)
def test_one_commit_queues_forwarding_once(tenant_a, lrs):
    """A grade writes several statements in one transaction; the worker is asked once."""
    from django.db import connection, transaction

    from apps.learning.services import lesson_viewed

    with transaction.atomic():
        for _ in range(3):
            lesson_viewed(user=tenant_a.learner.user, lesson=tenant_a.lesson)
        hooks = [hook for hook in connection.run_on_commit if "forward" in hook[1].__name__]
    assert len(hooks) == 1
