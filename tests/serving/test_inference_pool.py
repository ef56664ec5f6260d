"""The inference pool on its own: the wire format refuses what does not add up; a request does
not wait the batch window when nothing runs; sessions are evicted least recently used first by
bytes."""

import asyncio
import threading
import uuid

import numpy as np
import pytest

from apps.serving.inference import wire
from apps.serving.inference.client import (
    InferenceRefused,
    InferenceUnavailable,
    inference_async_close,
    inference_client_reset,
    inference_run,
    inference_run_async,
)
from runtime.artifacts.session import onnx_session
from tests.conftest import free_port
from tests.serving.conftest import mlp_onnx, pool_stats, random_inputs, store_model


def test_the_wire_format_round_trips_and_checks_sizes():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    message = wire.decode(wire.encode({"tenant": "t", "blob": "1"}, array), max_elements=100)
    assert message.header == {"tenant": "t", "blob": "1", "dtype": "float32", "shape": [3, 4]}
    np.testing.assert_array_equal(message.array, array)
    body = wire.encode({}, array)
    cases = [
        (body[:-1], "shape [3, 4] of float32 needs 48 bytes; 47 came"),
        (body[:3], "the message is shorter than its length prefix"),
        (b"\xff\xff\xff\x00" + body[4:], "the header length 16777215 is out of bounds"),
    ]
    for data, message_text in cases:
        with pytest.raises(wire.WireError) as refused:
            wire.decode(data, max_elements=100)
        assert str(refused.value) == message_text
    with pytest.raises(wire.WireError, match="more than 10 elements"):
        wire.decode(body, max_elements=10)
    with pytest.raises(wire.WireError, match="dtype float64 is not one of float32, int64"):
        wire.encode({}, array.astype(np.float64))


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_do_not_wait_the_window(pool_start, tenant_a, settings):
    # A window longer than the client's timeout (INFERENCE_TIMEOUT_S): a request that waited
    # for it would fail. The first to arrive runs at once; the other, arriving while that run is
    # in flight or after it, runs when it ends. (Batching of what arrives during a run is shown
    # exactly in test_batcher.py, with a run held open.)
    url = pool_start(INFERENCE_BATCH_WINDOW_MS=60_000, INFERENCE_MAX_BATCH=256)
    settings.INFERENCE_URL = url
    inference_client_reset()
    data = mlp_onnx(2, 2)
    model = store_model(tenant_a, data)
    inputs = [random_inputs(1, 2, seed=seed) for seed in (1, 2)]
    results: dict[int, np.ndarray] = {}

    def call(index: int) -> None:
        results[index] = inference_run(
            tenant_id=tenant_a.tenant.id, blob_id=model.onnx_id, array=inputs[index]
        )

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        inference_client_reset()
    stats = pool_stats(url)["batcher"]
    assert stats == {"runs": 2, "requests": 2, "rows": 2, "failures": 0}
    session = onnx_session(data)
    for index in (0, 1):
        expected = session.run(None, {"input": inputs[index]})[0]
        np.testing.assert_allclose(results[index], expected, rtol=0, atol=1e-6)


@pytest.mark.django_db(transaction=True)
def test_sessions_are_evicted_least_recently_used_by_bytes(pool_start, tenant_a, settings):
    models = [
        store_model(tenant_a, mlp_onnx(2, 2, hidden=64, seed=s), dataset="xor") for s in (1, 2, 3)
    ]
    sizes = {m.onnx_id: m.onnx.size for m in models}
    # Room for two of them, not three.
    url = pool_start(INFERENCE_CACHE_BYTES=sum(sizes.values()) - 1, INFERENCE_BATCH_WINDOW_MS=0)
    settings.INFERENCE_URL = url
    inference_client_reset()
    tenant = str(tenant_a.tenant.id)

    def run(model) -> None:
        inference_run(tenant_id=tenant, blob_id=model.onnx_id, array=random_inputs(1, 2))

    try:
        run(models[0])
        run(models[1])
        run(models[0])  # now models[1] is the least recently used
        run(models[2])
        cache = pool_stats(url)["cache"]
        assert cache["keys"] == [[tenant, str(models[0].onnx_id)], [tenant, str(models[2].onnx_id)]]
        assert (cache["loads"], cache["hits"], cache["evictions"]) == (3, 1, 1)
        assert cache["bytes"] == sizes[models[0].onnx_id] + sizes[models[2].onnx_id]
        run(models[1])  # loaded again, and models[0] goes
        cache = pool_stats(url)["cache"]
        assert cache["keys"] == [[tenant, str(models[2].onnx_id)], [tenant, str(models[1].onnx_id)]]
        assert (cache["loads"], cache["evictions"]) == (4, 2)
    finally:
        inference_client_reset()


@pytest.mark.django_db(transaction=True)
def test_the_event_loops_client_answers_as_the_threads_client_does(pool, tenant_a, settings):
    model = store_model(tenant_a, mlp_onnx(2, 2))
    tenant, inputs = str(tenant_a.tenant.id), random_inputs(3, 2)

    async def calls():
        try:
            answer = await inference_run_async(
                tenant_id=tenant, blob_id=model.onnx_id, array=inputs
            )
            with pytest.raises(InferenceRefused) as refused:
                await inference_run_async(tenant_id=tenant, blob_id=uuid.uuid4(), array=inputs)
            return answer, refused.value.code
        finally:
            await inference_async_close()

    answer, code = asyncio.run(calls())
    expected = inference_run(tenant_id=tenant, blob_id=model.onnx_id, array=inputs)
    np.testing.assert_array_equal(answer, expected)
    assert code == "not_found"

    settings.INFERENCE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    inference_client_reset()

    async def down():
        try:
            await inference_run_async(tenant_id=tenant, blob_id=model.onnx_id, array=inputs)
        finally:
            await inference_async_close()

    with pytest.raises(InferenceUnavailable, match="not answering"):
        asyncio.run(down())
