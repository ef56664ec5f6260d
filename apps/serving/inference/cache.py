"""Sessions kept between requests: least recently used first out, bounded by the total bytes of
their models and by their number. A session is made once per model however many requests ask
for it at the same moment."""

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import onnxruntime as ort

from runtime.artifacts.session import onnx_session

# onnxruntime's input types -> the wire's dtype names.
INPUT_TYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


class ModelUnusable(Exception):
    """The artifact cannot be served (missing, failed verification, or no session from it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class LoadedModel:
    key: tuple[str, str]
    session: ort.InferenceSession
    nbytes: int  # the ONNX file's size: the session's memory grows with it
    input_name: str
    input_dtype: str
    output_name: str


@dataclass
class CacheStats:
    loads: int = 0
    hits: int = 0
    evictions: int = 0


def loaded_model(key: tuple[str, str], data: bytes, *, threads: int) -> LoadedModel:
    """A session for ONNX `data`, with the one input and output a served model has."""
    try:
        session = onnx_session(data, threads=threads)
    except Exception as exc:  # onnxruntime raises its own exception types, not a base class
        raise ModelUnusable("model_failed", f"onnxruntime cannot load the model: {exc}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise ModelUnusable(
            "model_failed",
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; "
            "a served model has one input and an output",
        )
    dtype = INPUT_TYPES.get(inputs[0].type)
    if dtype is None:
        unserved = f"the model's input type {inputs[0].type} is not served"
        raise ModelUnusable("model_failed", unserved)
    names = [output.name for output in outputs]
    output = "probabilities" if "probabilities" in names else names[0]
    return LoadedModel(key, session, len(data), inputs[0].name, dtype, output)


class SessionCache:
    def __init__(
        self,
        *,
        max_bytes: int,
        max_models: int,
        read: Callable[[str, str], bytes],
        executor: Executor,
        threads: int = 1,
    ):
        self.max_bytes = max_bytes
        self.max_models = max_models
        self.read = read  # (tenant id, blob id) -> verified ONNX bytes; raises ModelUnusable
        self.executor = executor
        self.threads = threads
        self.stats = CacheStats()
        self._models: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._loading: dict[tuple[str, str], asyncio.Future] = {}

    @property
    def nbytes(self) -> int:
        return sum(model.nbytes for model in self._models.values())

    def order(self) -> list[tuple[str, str]]:
        """Oldest first."""
        return list(self._models)

    async def get(self, tenant: str, blob: str) -> LoadedModel:
        key = (tenant, blob)
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            self.stats.hits += 1
            return model
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future = self._loading[key] = loop.create_future()
        try:
            model = await loop.run_in_executor(self.executor, self._load, key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else waiting is not an error
            raise
        else:
            future.set_result(model)
            self._keep(model)
            return model
        finally:
            del self._loading[key]

    def _load(self, key: tuple[str, str]) -> LoadedModel:
        data = self.read(*key)
        self.stats.loads += 1
        return loaded_model(key, data, threads=self.threads)

    def _keep(self, model: LoadedModel) -> None:
        if model.nbytes > self.max_bytes:
            return  # served, never kept: it alone would be over the bound
        self._models[model.key] = model
        while len(self._models) > self.max_models or self.nbytes > self.max_bytes:
            self._models.popitem(last=False)
            self.stats.evictions += 1
