"""The web side of the pool: one keep-alive httpx client per process for the view's threads and
one aiohttp session per event loop for the fast path, the wire format out and back, and the
exceptions the prediction API answers (503 when the pool is down)."""

import asyncio
import threading
import weakref

import aiohttp
import httpx
import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _

from apps.serving.inference import wire
from apps.serving.inference.app import SECRET_HEADER
from apps.serving.inference.config import inference_secret


class InferenceUnavailable(Exception):
    """The pool did not answer (down, overloaded past the timeout, or broken)."""


class InferenceRefused(Exception):
    """The pool answered that this model cannot run these inputs; `code` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_lock = threading.Lock()
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(
                base_url=settings.INFERENCE_URL,
                timeout=httpx.Timeout(settings.INFERENCE_TIMEOUT_S, connect=1.0),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                headers={SECRET_HEADER.decode(): inference_secret()},
            )
        return _client


def inference_client_reset() -> None:
    """Drops the client (and its connections): after settings.INFERENCE_URL changes."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _async_clients.clear()  # the next call in each loop makes its own again


def inference_run(*, tenant_id, blob_id, array: np.ndarray) -> np.ndarray:
    """The model's output (float32 [rows, classes]) for `array`, run by the pool."""
    body = wire.encode({"tenant": str(tenant_id), "blob": str(blob_id)}, array)
    try:
        response = _http().post(
            "/v1/run", content=body, headers={"content-type": "application/octet-stream"}
        )
    except httpx.HTTPError as exc:
        raise _unavailable(exc) from exc
    return _output(response, rows=array.shape[0])


# One session per event loop (uvicorn runs one per worker), gone with its loop.
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def inference_run_async(*, tenant_id, blob_id, array: np.ndarray) -> np.ndarray:
    """inference_run for an event loop (the prediction API's fast path): one keep-alive
    aiohttp session per loop (httpx's async client costs the event loop several times more
    per request)."""
    loop = asyncio.get_running_loop()
    session = _async_clients.get(loop)
    if session is None:
        session = _async_clients[loop] = aiohttp.ClientSession(
            base_url=settings.INFERENCE_URL,
            timeout=aiohttp.ClientTimeout(total=settings.INFERENCE_TIMEOUT_S, connect=1.0),
            connector=aiohttp.TCPConnector(limit=64),
            headers={SECRET_HEADER.decode(): inference_secret()},
        )
    body = wire.encode({"tenant": str(tenant_id), "blob": str(blob_id)}, array)
    try:
        async with session.post(
            "/v1/run", data=body, headers={"content-type": "application/octet-stream"}
        ) as response:
            content = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _unavailable(exc) from exc
    return _output(httpx.Response(response.status, content=content), rows=array.shape[0])


async def inference_async_close() -> None:
    """Closes this event loop's session (before the loop ends: tests, a server's shutdown)."""
    session = _async_clients.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


def _unavailable(exc: Exception) -> InferenceUnavailable:
    return InferenceUnavailable(
        _("The inference service is not answering (%(reason)s); try again shortly.")
        % {"reason": type(exc).__name__}
    )


def _output(response: httpx.Response, *, rows: int) -> np.ndarray:
    if response.status_code == 200:
        try:
            return wire.decode(response.content, max_elements=rows * 2**20).array
        except wire.WireError as exc:
            raise InferenceUnavailable(_("The inference service answered garbage.")) from exc
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "", ""
    if response.status_code in (404, 422) and code:
        raise InferenceRefused(code, message)
    raise InferenceUnavailable(
        _("The inference service failed (HTTP %(status)s%(message)s).")
        % {"status": response.status_code, "message": f": {message}" if message else ""}
    )


def inference_stats() -> dict:
    """The pool's counters (batcher runs, cache loads and evictions)."""
    try:
        response = _http().get("/v1/stats")
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise InferenceUnavailable(str(exc)) from exc
    return response.json()
