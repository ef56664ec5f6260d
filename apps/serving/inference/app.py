"""The inference pool's ASGI application, a raw ASGI callable (no web framework): POST /v1/run
runs a model on one request's array, GET /v1/stats reports the batcher's and the cache's
counters, GET /healthz answers liveness. Everything but /healthz needs the shared secret."""

import hmac
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from apps.serving.inference import wire
from apps.serving.inference.batcher import Batcher, ModelRunFailed
from apps.serving.inference.cache import ModelUnusable, SessionCache

logger = logging.getLogger(__name__)

SECRET_HEADER = b"x-aula-inference-secret"


@dataclass(frozen=True)
class PoolSettings:
    secret: str
    cache_bytes: int
    cache_models: int
    batch_window_s: float
    max_batch_rows: int
    max_request_bytes: int
    run_threads: int  # session.run calls at once
    session_threads: int  # onnxruntime's threads inside one session.run


class InferenceApp:
    def __init__(self, settings: PoolSettings, read):
        """`read(tenant_id, blob_id) -> bytes` returns verified ONNX bytes or raises
        ModelUnusable; it runs in a thread (it may use the database and storage)."""
        self.settings = settings
        self.executor = ThreadPoolExecutor(settings.run_threads, thread_name_prefix="inference")
        self.cache = SessionCache(
            max_bytes=settings.cache_bytes,
            max_models=settings.cache_models,
            read=read,
            executor=self.executor,
            threads=settings.session_threads,
        )
        self.batcher = Batcher(
            window_s=settings.batch_window_s,
            max_rows=settings.max_batch_rows,
            executor=self.executor,
        )
        # Arrays are counted in elements: float32 and int64 alike stay within the byte cap.
        self.max_elements = settings.max_request_bytes // 4

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", "/healthz"):
            await _answer(send, 200, {"status": "ok"})
            return
        if not self._authorised(scope):
            await _answer(send, 401, _error("unauthorised", "the inference secret is missing"))
            return
        if route == ("POST", "/v1/run"):
            await self._run(scope, receive, send)
        elif route == ("GET", "/v1/stats"):
            await _answer(send, 200, self.stats())
        else:
            missing = _error("not_found", f"no route {scope['method']} {scope['path']}")
            await _answer(send, 404, missing)

    def stats(self) -> dict:
        return {
            "batcher": asdict(self.batcher.stats),
            "cache": {
                **asdict(self.cache.stats),
                "models": len(self.cache.order()),
                "bytes": self.cache.nbytes,
                "keys": [list(key) for key in self.cache.order()],
            },
        }

    def _authorised(self, scope) -> bool:
        given = next((v for k, v in scope["headers"] if k == SECRET_HEADER), b"")
        return hmac.compare_digest(given, self.settings.secret.encode())

    async def _run(self, scope, receive, send):
        body = await _read_body(scope, receive, self.settings.max_request_bytes)
        if body is None:
            limit = self.settings.max_request_bytes
            await _answer(send, 413, _error("too_large", f"the request is over {limit} bytes"))
            return
        try:
            message = wire.decode(body, max_elements=self.max_elements)
            tenant, blob = str(message.header["tenant"]), str(message.header["blob"])
        except (wire.WireError, KeyError) as exc:
            await _answer(send, 400, _error("bad_request", f"unreadable request: {exc}"))
            return
        try:
            model = await self.cache.get(tenant, blob)
            if model.input_dtype != message.header["dtype"]:
                raise ModelRunFailed(
                    f"the model takes {model.input_dtype}, not {message.header['dtype']}"
                )
            output = await self.batcher.run(model, message.array)
        except ModelUnusable as exc:
            status = 404 if exc.code == "not_found" else 422
            await _answer(send, status, _error(exc.code, exc.message))
            return
        except ModelRunFailed as exc:
            logger.info("model %s of tenant %s failed: %s", blob, tenant, exc)
            await _answer(send, 422, _error("model_failed", str(exc)))
            return
        await _send(send, 200, wire.encode({}, output), b"application/octet-stream")

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


async def _read_body(scope, receive, limit: int) -> bytes | None:
    """The request body, or None once it is over `limit` bytes (declared or sent)."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""  # the caller is gone: nothing it sent is run
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send, status: int, payload: dict) -> None:
    await _send(send, status, json.dumps(payload).encode(), b"application/json")


async def _send(send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
