"""The prediction API's fast path: an ASGI layer in front of Django (config/asgi.py) that answers
`POST /api/v1/t/<slug>/models/<id>/predict` itself when it holds a valid grant for the caller's
token or key (apps/serving/grants.py), and hands everything else to Django untouched.

A request it answers costs two Redis reads (the grant, the epochs), the JSON parse and the same
sample checks as the view (`samples_decode`), the pool's run (awaited: the event loop serves
other requests meanwhile), and one SQL statement in a worker thread (the tenant's count; and, for
a model API key, its rate and last use). Anything it cannot answer exactly as the view would, it
does not answer: no grant, input the checks refuse (or that is not strict JSON: NaN, integers
past 64 bits), the pool down or refusing, the model's answer the wrong size, the allowance or the
key's rate used up, the day's first count, a database error. Then the request goes to Django with
its body as received, and the view's answer (and error message) is the one the caller gets: a
request is never half-answered by both, and a sample is counted only by the one that answers.
The first success of a caller through Django writes the grant that the next request uses; the
headers of that answer are the ones the fast path sends (so they are the security middleware's).
"""

import asyncio
import logging
import re
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor

import orjson
import redis
import redis.asyncio
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.utils import timezone
from django_scopes import scope as tenant_scope
from rest_framework.renderers import JSONRenderer

from apps.quotas.services import predictions_count
from apps.serving import grants
from apps.serving.auth import ModelKeyThrottle
from apps.serving.inference.client import (
    InferenceRefused,
    InferenceUnavailable,
    inference_run_async,
)
from apps.serving.inputs import BadInput, InputSpec, samples_decode
from apps.serving.models import ModelApiKey
from apps.serving.services import prediction_answer
from runtime.datasets import dataset_info

logger = logging.getLogger(__name__)

PREDICT_PATH = re.compile(r"/api/v1/t/(?P<slug>[-a-zA-Z0-9_]+)/models/(?P<id>[^/]+)/predict")
CREDENTIAL_SCHEMES = (b"token ", b"bearer ")
# Headers of Django's answer not to repeat: they belong to that one response.
_NOT_REPEATED = {b"content-length", b"date", b"server", b"set-cookie"}


class PredictFastPath:
    def __init__(self, app):
        self.app = app
        self.renderer = JSONRenderer()
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="predict-fast")
        self._redis: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per event loop
        self._headers: dict[str, list[tuple[bytes, bytes]]] = {}  # per scheme, from Django

    async def __call__(self, scope, receive, send):
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and settings.PREDICT_FAST_PATH
        ):
            return await self.app(scope, receive, send)
        match = PREDICT_PATH.fullmatch(scope["path"])
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"")
        declared = headers.get(b"content-length", b"")
        if (
            match is None
            or not authorization.lower().startswith(CREDENTIAL_SCHEMES)
            or not declared.isdigit()
            or int(declared) > settings.PREDICT_MAX_BODY_BYTES
        ):
            return await self.app(scope, receive, send)  # sessions, chunked, too large: Django's
        started = time.perf_counter()
        slug = match["slug"]
        try:
            model_id = str(uuid.UUID(match["id"]))
        except ValueError:
            return await self.app(scope, receive, send)
        client = self._redis_client()
        try:
            grant = await grants.grant_valid(
                client, authorization=authorization, slug=slug, model_id=model_id, now=time.time()
            )
        except redis.RedisError:
            return await self.app(scope, receive, send)
        if grant is None or scope["scheme"] not in self._headers:
            return await self._to_django(client, slug, scope, receive, send)
        body, disconnected = await _body(receive)
        if disconnected:
            return
        try:
            answer = await self._answer(grant, body)
        except Exception:  # a defect here must not cost the caller the answer Django would give
            logger.exception("prediction fast path failed; Django answers")
            answer = None
        if answer is None:
            return await self._to_django(client, slug, scope, _replay(body, receive), send)
        timing = b"predict-fast;dur=%.2f" % ((time.perf_counter() - started) * 1000)
        headers = [
            *self._headers[scope["scheme"]],
            (b"content-length", b"%d" % len(answer)),
            (b"server-timing", timing),  # what answered, and how long it took (ms)
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def _redis_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        if loop not in self._redis:
            self._redis[loop] = redis.asyncio.from_url(settings.REDIS_URL)
        return self._redis[loop]

    async def _to_django(self, client, slug, scope, receive, send):
        """Django answers; with the epochs read first, so that its success can become a grant,
        and its success's headers kept for the fast path's answers."""
        try:
            epochs = await grants.epochs_read(client, slug)
        except redis.RedisError:
            return await self.app(scope, receive, send)
        scheme = scope["scheme"]

        async def keep_headers(message):
            if message["type"] == "http.response.start" and message["status"] == 200:
                kept = [(k, v) for k, v in message["headers"] if k.lower() not in _NOT_REPEATED]
                self._headers.setdefault(scheme, kept)
            await send(message)

        scope = {**scope, grants.EPOCHS_SCOPE_KEY: epochs}
        return await self.app(scope, receive, keep_headers)

    async def _answer(self, grant: grants.Grant, body: bytes) -> bytes | None:
        """The answer's body, counted; None (nothing counted) for whatever Django should answer."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not data or set(data) - {"inputs", "images"}:
            return None
        if not all(isinstance(value, list) and value for value in data.values()):
            return None
        if ":" in grant.dataset:  # a teacher's dataset is described from the database, which
            return None  # this loop does not query (and a text model's texts are Django's)
        info = dataset_info(grant.dataset)
        try:
            samples = samples_decode(
                spec=InputSpec.of(info), inputs=data.get("inputs"), images=data.get("images")
            )
            output = await inference_run_async(
                tenant_id=grant.tenant_id, blob_id=grant.blob_id, array=samples
            )
        except (BadInput, InferenceRefused, InferenceUnavailable):
            return None
        answer = prediction_answer(model_id=grant.model_id, info=info, output=output)
        if answer is None or len(answer["predictions"]) != samples.shape[0]:
            return None
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(self.executor, _counted, grant, samples.shape[0]):
            return None
        return self.renderer.render(answer)


def _counted(grant: grants.Grant, samples: int) -> bool:
    """In a worker thread: the key's rate, then the tenant's count (one statement), then the
    key's rate and last use recorded. False, with nothing counted, for Django to answer."""
    throttle = _KeyRate(grant.key_id) if grant.key_id else None
    try:
        if throttle is not None and not throttle.allows():
            return False
        if not predictions_count(tenant_id=grant.tenant_id, samples=samples, allowed=grant.allowed):
            return False
        if throttle is not None:
            throttle.record()
            with tenant_scope(tenant=grant.tenant_id):
                ModelApiKey.objects.filter(pk=grant.key_id).update(last_used_at=timezone.now())
    except DatabaseError:
        logger.warning("prediction fast path: database error; Django answers", exc_info=True)
        connection.close()  # this thread's next call connects afresh
        return False
    return True


class _KeyRate:
    """ModelKeyThrottle's rate for one key, on the same cache entry, checked before the count
    and recorded only once the request is counted (DRF's allow_request does both at once)."""

    def __init__(self, key_id: str):
        self.throttle = ModelKeyThrottle()
        self.key = self.throttle.cache_format % {"scope": self.throttle.scope, "ident": key_id}
        self.history: list[float] = []
        self.now = 0.0

    def allows(self) -> bool:
        if self.throttle.rate is None:
            return True
        self.now = self.throttle.timer()
        window_start = self.now - self.throttle.duration
        self.history = [at for at in cache.get(self.key, []) if at > window_start]
        return len(self.history) < self.throttle.num_requests

    def record(self) -> None:
        if self.throttle.rate is not None:
            cache.set(self.key, [self.now, *self.history], self.throttle.duration)


async def _body(receive) -> tuple[bytes, bool]:
    """The whole body (its declared length was checked), and whether the client went away."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks), False


def _replay(body: bytes, receive):
    """A receive that gives Django the body already read, then whatever comes after."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
