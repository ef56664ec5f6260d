"""Requests for the same model run together as one session.run: their rows are stacked, run in a
thread (the event loop keeps accepting), and split back. A request for a model with nothing in
flight runs at once; those that arrive while one of its runs is in flight wait for it to end (at
most the batch window) and then run together."""

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from apps.serving.inference.cache import LoadedModel


class ModelRunFailed(Exception):
    """onnxruntime refused to run the model on these inputs, or it answered the wrong shape."""


@dataclass
class BatchStats:
    runs: int = 0  # session.run calls
    requests: int = 0
    rows: int = 0
    failures: int = 0


@dataclass
class _Pending:
    model: LoadedModel
    items: list[tuple[np.ndarray, asyncio.Future]] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


def model_run(model: LoadedModel, array: np.ndarray) -> np.ndarray:
    """The model's output for `array`, which must be [rows, classes] float32."""
    try:
        (output,) = model.session.run([model.output_name], {model.input_name: array})
    except Exception as exc:  # onnxruntime's own exception types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelRunFailed(f"the model failed while running: {first_line}") from exc
    if output.ndim != 2 or output.shape[0] != array.shape[0] or output.dtype != np.float32:
        raise ModelRunFailed(
            f"the model answered {output.dtype} of shape {list(output.shape)}; "
            f"a served model answers float32 of shape [{array.shape[0]}, classes]"
        )
    return output


class Batcher:
    def __init__(self, *, window_s: float, max_rows: int, executor: Executor):
        self.window_s = window_s
        self.max_rows = max_rows
        self.executor = executor
        self.stats = BatchStats()
        self._pending: dict[tuple, _Pending] = {}
        self._running: dict[tuple, int] = {}  # runs in flight per group

    async def run(self, model: LoadedModel, array: np.ndarray) -> np.ndarray:
        """`model`'s output for `array`, possibly computed together with other requests'."""
        self.stats.requests += 1
        rows = array.shape[0]
        if rows >= self.max_rows or self.window_s <= 0:
            return await self._run_alone(model, array)
        group = (model.key, array.dtype.str, array.shape[1:])
        pending = self._pending.get(group)
        if pending is None and not self._running.get(group):
            # Nothing of this model in flight: no reason to wait; what comes meanwhile batches.
            return await self._in_flight(group, self._run_alone(model, array))
        if pending is not None and pending.rows + rows > self.max_rows:
            self._flush(group)
            pending = None
        if pending is None:  # runs when a run of the group ends, or after the window at most
            pending = self._pending[group] = _Pending(model=model)
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(self.window_s, self._flush, group)
        future = asyncio.get_running_loop().create_future()
        pending.items.append((array, future))
        pending.rows += rows
        if pending.rows >= self.max_rows:
            self._flush(group)
        return await future

    def _flush(self, group: tuple) -> None:
        pending = self._pending.pop(group, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        task = asyncio.get_running_loop().create_task(
            self._in_flight(group, self._run_batch(pending))
        )
        task.add_done_callback(lambda t: t.exception())  # failures go to the futures

    async def _in_flight(self, group: tuple, coroutine):
        """Runs `coroutine` counted as a run of `group` in flight; when it ends, the requests
        that came meanwhile run."""
        self._running[group] = self._running.get(group, 0) + 1
        try:
            return await coroutine
        finally:
            self._running[group] -= 1
            if not self._running[group]:
                del self._running[group]
            self._flush(group)

    async def _run_alone(self, model: LoadedModel, array: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        self.stats.runs += 1
        self.stats.rows += array.shape[0]
        try:
            return await loop.run_in_executor(self.executor, model_run, model, array)
        except ModelRunFailed:
            self.stats.failures += 1
            raise

    async def _run_batch(self, pending: _Pending) -> None:
        items = pending.items
        if len(items) == 1:
            array, future = items[0]
            await self._settle(future, self._run_alone(pending.model, array))
            return
        stacked = np.concatenate([array for array, _ in items])
        try:
            output = await self._run_alone(pending.model, stacked)
        except ModelRunFailed:
            # One request's rows may be what fails: each runs alone, so only it fails.
            await asyncio.gather(
                *(self._settle(f, self._run_alone(pending.model, a)) for a, f in items)
            )
            return
        except BaseException as exc:
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            raise
        start = 0
        for array, future in items:
            end = start + array.shape[0]
            if not future.done():
                future.set_result(output[start:end])
            start = end

    @staticmethod
    async def _settle(future: asyncio.Future, coroutine) -> None:
        try:
            result = await coroutine
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)
