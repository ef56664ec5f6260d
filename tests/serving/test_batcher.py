"""The pool's batcher on its own, with a session whose runs wait for the test: a request for a
model with nothing in flight runs at once (it does not wait the window); those that arrive while
a run is in flight run together when it ends."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from apps.serving.inference.batcher import Batcher
from apps.serving.inference.cache import LoadedModel
from runtime.artifacts.session import onnx_session
from tests.serving.conftest import mlp_onnx, random_inputs

LONG_WINDOW_S = 60.0  # longer than any test waits: nothing here runs because the window passed


class GatedSession:
    """An onnxruntime session whose runs wait until `gate` is set, recording their batch sizes."""

    def __init__(self, session):
        self.session = session
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.rows: list[int] = []

    def run(self, outputs, feeds):
        self.rows.append(feeds["input"].shape[0])
        self.entered.set()
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return self.session.run(outputs, feeds)


def _model(session) -> LoadedModel:
    return LoadedModel(("tenant", "blob"), session, 1, "input", "float32", "probabilities")


def test_a_lone_request_runs_at_once_without_waiting_the_window():
    session = onnx_session(mlp_onnx(4, 3))
    batcher = Batcher(window_s=LONG_WINDOW_S, max_rows=256, executor=ThreadPoolExecutor(2))
    array = random_inputs(1, 4)

    async def scenario():
        return await asyncio.wait_for(batcher.run(_model(session), array), timeout=10)

    output = asyncio.run(scenario())
    np.testing.assert_array_equal(output, session.run(None, {"input": array})[0])
    assert batcher.stats.runs == 1 and batcher.stats.requests == 1


def test_requests_arriving_during_a_run_run_together_when_it_ends():
    real = onnx_session(mlp_onnx(4, 3))
    gated = GatedSession(real)
    batcher = Batcher(window_s=LONG_WINDOW_S, max_rows=256, executor=ThreadPoolExecutor(2))
    model = _model(gated)
    arrays = [random_inputs(rows, 4, seed=seed) for seed, rows in enumerate((1, 2, 3))]

    async def scenario():
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(batcher.run(model, arrays[0]))
        assert await loop.run_in_executor(None, gated.entered.wait, 10)  # the first is running
        rest = [asyncio.ensure_future(batcher.run(model, array)) for array in arrays[1:]]
        await asyncio.sleep(0.05)  # both are waiting, neither has run
        assert gated.rows == [1] and not any(task.done() for task in rest)
        gated.gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), timeout=10)

    outputs = asyncio.run(scenario())
    assert gated.rows == [1, 5]  # the first alone, then the two that came meanwhile as one
    assert (batcher.stats.runs, batcher.stats.requests, batcher.stats.rows) == (2, 3, 6)
    for array, output in zip(arrays, outputs, strict=True):
        np.testing.assert_allclose(output, real.run(None, {"input": array})[0], rtol=0, atol=1e-6)
