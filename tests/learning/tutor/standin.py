"""A stand-in for an OpenAI-compatible model server (vLLM, Ollama, llama.cpp, hosted), local.

A small ASGI app served by uvicorn on 127.0.0.1, on a port the OS picks, in a background thread
with its own event loop. `POST /v1/chat/completions` with `"stream": true` answers as those
servers do: `text/event-stream`, one `data: {json}\\n\\n` event per chunk (a first one with the
assistant role, one per piece of `Behaviour.pieces` in `choices[0].delta.content`, one with
`finish_reason: "stop"`), then, when the request asked for `stream_options.include_usage`, a
chunk with no choices and the `usage`, then `data: [DONE]`. Every request is recorded (method,
path, headers, JSON body) for the tests to check what the client sent.

`Behaviour` makes it misbehave: answer with an HTTP error status (an OpenAI-style error body,
which for 401 echoes the key it got, as some servers do, so tests can check it is not passed
on), hang before answering or after some chunks (until the server stops), or leave out usage.

`start()` returns once uvicorn is serving (waiting on it with a deadline); `stop()` releases
any hanging request, asks uvicorn to exit and joins its thread.
"""

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

START_DEADLINE_S = 10.0


@dataclass
class Behaviour:
    pieces: list[str] = field(default_factory=lambda: ["Hello", ", learner", "!"])
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168}
    )
    status: int = 200
    hang_before_response: bool = False
    hang_after_pieces: int | None = None  # send this many pieces, then hang


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lowercase names
    body: Any  # the parsed JSON, or None


class StandInServer:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.requests: list[RecordedRequest] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            interface="asgi3",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="tutor-standin", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._sock.listen(16)
        self._thread.start()
        deadline = time.monotonic() + START_DEADLINE_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the stand-in server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stand-in server did not start in {START_DEADLINE_S} s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError("the stand-in server did not stop")

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            await self._server.serve(sockets=[self._sock])

        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported by start()
            self._error = exc

    # The ASGI app.

    async def app(self, scope, receive, send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parsed = json.loads(body) if body else None
        self.requests.append(RecordedRequest(scope["method"], scope["path"], headers, parsed))

        behaviour = self.behaviour
        if scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            return await _json(send, 404, {"error": {"message": "not found", "type": "not_found"}})
        if behaviour.hang_before_response:
            await self._hang()
            return await _json(send, 503, {"error": {"message": "released", "type": "server"}})
        if behaviour.status != 200:
            return await _json(send, behaviour.status, _error_body(behaviour.status, headers))

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        model = parsed.get("model", "")

        async def event(data: Any) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {text}\n\n".encode(),
                    "more_body": True,
                }
            )

        await event(_chunk(model, {"role": "assistant", "content": ""}))
        for i, piece in enumerate(behaviour.pieces):
            if behaviour.hang_after_pieces is not None and i == behaviour.hang_after_pieces:
                await self._hang()
                break
            await event(_chunk(model, {"content": piece}))
        else:
            await event(_chunk(model, {}, finish_reason="stop"))
            include_usage = (parsed.get("stream_options") or {}).get("include_usage")
            if include_usage and behaviour.usage is not None:
                await event({**_chunk(model, {}), "choices": [], "usage": behaviour.usage})
            await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _hang(self) -> None:
        assert self._release is not None
        await self._release.wait()


def _chunk(model: str, delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _error_body(status: int, headers: dict[str, str]) -> dict:
    if status == 401:
        key = headers.get("authorization", "").removeprefix("Bearer ")
        message = f"Incorrect API key provided: {key}."
        return {"error": {"message": message, "type": "invalid_request_error", "code": "bad_key"}}
    return {"error": {"message": f"stand-in error {status}", "type": "server_error"}}


async def _json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
