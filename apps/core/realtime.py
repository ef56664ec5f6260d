"""The one function that pushes a realtime event to a Channels group, for the whole project.

The database is the record and the push is a courtesy: a publish that fails (Redis down, slow,
misconfigured) is logged and not retried, so it never turns a committed change into an error.
Callers publish after their transaction commits (`transaction.on_commit`).
"""

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

# A publish that takes longer than this is given up (and logged); clients read the database.
PUBLISH_TIMEOUT_S = 5.0


class _PublishLoop:
    """One event loop on a daemon thread per process, for publishing from sync code (the worker
    publishes every progress event). `async_to_sync` makes a new loop per call, and the channel
    layer a new Redis connection per loop: about 5 ms a publish instead of under 1 ms."""

    _current: "_PublishLoop | None" = None
    _lock = threading.Lock()

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="realtime", daemon=True).start()

    @classmethod
    def get(cls) -> "_PublishLoop":
        with cls._lock:
            # A forked child (a prefork worker) inherits the object but not the thread.
            if cls._current is None or cls._current.pid != os.getpid():
                cls._current = cls()
            return cls._current

    def run(self, coroutine) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            future.result(timeout=PUBLISH_TIMEOUT_S)
        finally:
            future.cancel()  # a no-op when it finished


def publish(*, group: str, message: dict) -> bool:
    """Send `message` (a Channels message: its "type" names the consumer's handler) to `group`.
    True when the channel layer took it; False when it failed, which is logged, never raised."""
    try:
        _PublishLoop.get().run(get_channel_layer().group_send(group, message))
    except Exception:
        log.warning("could not publish %s to %s", message.get("type"), group, exc_info=True)
        return False
    return True
