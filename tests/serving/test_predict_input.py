"""Bad input to the prediction API: each answers 400 (or 413) naming what is wrong and where,
before the inference pool is asked (none runs here: a call to it would be a 503), and changes
nothing: no usage counted, no key marked used."""

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
from django.test import override_settings
from django_scopes import scopes_disabled
from PIL import Image

from apps.quotas.models import PredictionUsage
from apps.serving.inputs import BadInput, InputSpec, samples_decode
from runtime.datasets import dataset_info
from tests.conftest import api_client_for
from tests.serving.conftest import image_onnx, mlp_onnx, store_model
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_pool(settings):
    settings.INFERENCE_URL = "http://127.0.0.1:9"  # discard: a request that got there is a 503


@pytest.fixture
def digits_model(tenant_a):
    return store_model(tenant_a, mlp_onnx(64, 10), dataset="digits")


@pytest.fixture
def mnist_model(tenant_a):
    return store_model(tenant_a, image_onnx(1, 28, 10), dataset="mnist")


def _refused(world, model, body, status=400) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    client = api_client_for(world.learner.user)
    url = f"/api/v1/t/{world.tenant.slug}/models/{model.id}/predict"
    before = db_snapshot()
    response = client.generic("POST", url, raw, content_type="application/json")
    assert response.status_code == status, response.content[:500]
    assert db_snapshot() == before
    with scopes_disabled():
        assert not PredictionUsage.objects.exists()
    return response.json()["error"]


def _png(width: int, height: int, mode="L") -> str:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_wrong_number_of_numbers(tenant_a, digits_model):
    inputs = [[0.0] * 64] * 3 + [[0.0] * 63]
    error = _refused(tenant_a, digits_model, {"inputs": inputs})
    assert error["fields"] == {"inputs": ["inputs[3] has 63 numbers; this model takes 64"]}


def test_a_nested_sample_of_the_wrong_shape(tenant_a, mnist_model):
    sample = [[[0] * 28] * 27]  # [1, 27, 28]
    error = _refused(tenant_a, mnist_model, {"inputs": [sample]})
    assert error["fields"] == {
        "inputs": ["inputs[0][0] has 27 items; this model's sample shape [28, 28] needs 28 there"]
    }
    flat = _refused(tenant_a, mnist_model, {"inputs": [[0] * 700]})
    assert flat["fields"] == {
        "inputs": ["inputs[0] has 700 numbers; this model takes 784 (1 x 28 x 28)"]
    }


@pytest.mark.parametrize(
    "value,message",
    [
        ('"7"', "inputs[1][5] is not a number"),
        ("true", "inputs[1][5] is not a number"),
        ("null", "inputs[1][5] is not a number"),
        ("NaN", "inputs[1][5] is NaN; numbers must be finite"),
        ("Infinity", "inputs[1][5] is Infinity; numbers must be finite"),
        ("-Infinity", "inputs[1][5] is -Infinity; numbers must be finite"),
        ("1e400", "inputs[1][5] is inf; numbers must be finite"),
        ("1e39", "inputs[1][5] is too large for float32"),
        ("1" + "0" * 400, "inputs[1][5] is too large for float32"),  # past float64 too
    ],
)
def test_a_value_that_is_not_a_finite_number(tenant_a, digits_model, value, message):
    row = ["0"] * 64
    bad = list(row)
    bad[5] = value
    body = f'{{"inputs": [[{",".join(row)}], [{",".join(bad)}]]}}'.encode()
    error = _refused(tenant_a, digits_model, body)
    assert error["fields"] == {"inputs": [message]}


@override_settings(PREDICT_MAX_BATCH=256)
def test_a_batch_of_10000(tenant_a):
    xor_model = store_model(tenant_a, mlp_onnx(2, 2))
    body = b'{"inputs": [' + b",".join([b"[0.5,-0.5]"] * 10_000) + b"]}"
    assert len(body) < 1024 * 1024  # under the body limit: this is the batch's refusal
    error = _refused(tenant_a, xor_model, body)
    assert error["fields"] == {"inputs": ["a batch of 10000 is more than 256"]}


def test_ten_megabytes_of_base64_is_413_before_decoding(tenant_a, mnist_model):
    image = base64.b64encode(b"\0" * (10 * 1024 * 1024)).decode()
    error = _refused(tenant_a, mnist_model, {"images": [image]}, status=413)
    assert error["code"] == "request_too_large"
    assert error["message"] == "The request body is larger than 8192 KiB."


def test_a_full_batch_of_images_as_numbers_passes_the_body_limit(tenant_a, mnist_model):
    """256 MNIST-sized samples as JSON numbers are over the 1 MiB other requests may send, and
    within the prediction API's own limit: checked, decoded, and sent on to the pool (here a
    port nothing listens on: 503, nothing counted)."""
    body = json.dumps({"inputs": [[[[255.0] * 28] * 28]] * 256}).encode()
    assert 1024 * 1024 < len(body) < 8 * 1024 * 1024
    error = _refused(tenant_a, mnist_model, body, status=503)
    assert error["code"] == "inference_unavailable"


def _png_bomb(side: int) -> str:
    """A valid greyscale PNG of side x side zero pixels (side**2 bytes once decoded), a few
    tens of KB compressed; made without ever holding the decoded image."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte 0, then the row
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
    return base64.b64encode(png + chunk(b"IEND", b"")).decode()


def test_a_png_decompression_bomb(tenant_a, mnist_model):
    bomb = _png_bomb(5000)  # 25 megapixels of zeros
    assert len(bomb) < 100_000
    error = _refused(tenant_a, mnist_model, {"images": [_png(28, 28), bomb]})
    assert error["fields"] == {
        "images": ["images[1] is 5000 x 5000 pixels; at most 16777216 pixels are read"]
    }


def test_a_bomb_past_pillows_own_limit(tenant_a, mnist_model, settings):
    settings.PREDICT_MAX_IMAGE_PIXELS = 10**9  # Pillow's MAX_IMAGE_PIXELS still refuses it
    error = _refused(tenant_a, mnist_model, {"images": [_png_bomb(10_000)]})
    assert error["fields"] == {"images": ["images[0] has too many pixels"]}


@pytest.mark.parametrize(
    "image,message",
    [
        ("not base64!", "images[0] is not valid base64"),
        (
            base64.b64encode(b"GIF89a not really").decode(),
            "images[0] is not a readable PNG or JPEG",
        ),
        (7, "images[0] is not a base64 string"),
    ],
)
def test_an_image_that_is_not_one(tenant_a, mnist_model, image, message):
    error = _refused(tenant_a, mnist_model, {"images": [image]})
    assert error["fields"]["images"][0].startswith(message)


def test_a_gif_is_refused_by_name(tenant_a, mnist_model):
    buffer = io.BytesIO()
    Image.new("L", (28, 28)).save(buffer, format="GIF")
    gif = base64.b64encode(buffer.getvalue()).decode()
    error = _refused(tenant_a, mnist_model, {"images": [gif]})
    assert error["fields"] == {"images": ["images[0] is GIF; send PNG or JPEG"]}


def test_an_image_over_the_per_image_cap(tenant_a, mnist_model, settings):
    settings.PREDICT_MAX_IMAGE_BYTES = 1024
    error = _refused(tenant_a, mnist_model, {"images": ["A" * 2000]})
    assert error["fields"] == {
        "images": ["images[0] is more than 1 KiB; an image may have at most that"]
    }


def test_images_for_a_model_of_numbers(tenant_a, digits_model):
    error = _refused(tenant_a, digits_model, {"images": [_png(8, 8)]})
    assert error["fields"] == {
        "images": ["this model takes numbers (inputs), not images: its data is vector"]
    }


@pytest.mark.parametrize(
    "body,fields",
    [
        (
            {},
            {"non_field_errors": ["Send either inputs (numbers) or images (base64 PNG or JPEG)."]},
        ),
        (
            {"inputs": [[0] * 64], "images": ["x"]},
            {"non_field_errors": ["Send inputs or images, not both."]},
        ),
        ({"inputs": []}, {"inputs": ["Must be a list of samples."]}),
        ({"inputs": "0,1"}, {"inputs": ["Must be a list of samples."]}),
        ({"inputs": [5]}, {"inputs": ["inputs[0] is not a list of numbers"]}),
    ],
)
def test_a_body_without_samples(tenant_a, digits_model, body, fields):
    assert _refused(tenant_a, digits_model, body)["fields"] == fields


def test_unknown_fields_and_malformed_json(tenant_a, digits_model):
    error = _refused(tenant_a, digits_model, {"inputs": [[0] * 64], "temperature": 2})
    assert set(error["fields"]) == {"temperature"}
    assert _refused(tenant_a, digits_model, b'{"inputs": [[0, 1')["code"] == "parse_error"


def test_tokens_outside_the_vocabulary():
    spec = InputSpec.of(dataset_info("sequences"))  # 20 tokens from 0 to 15
    good = samples_decode(spec=spec, inputs=[[1] * 20])
    assert good.dtype.name == "int64" and good.shape == (1, 20)
    for token, shown in ((16, "16"), (-1, "-1"), (2.5, "2.5"), (2**70, str(2**70))):
        sample = [1] * 20
        sample[3] = token
        with pytest.raises(BadInput) as refused:
            samples_decode(spec=spec, inputs=[[1] * 20, sample])
        assert refused.value.message == (
            f"inputs[1][3] is {shown}; this model's tokens are whole numbers from 0 to 15"
        )


def test_tokens_through_the_api(tenant_a):
    model = store_model(tenant_a, mlp_onnx(20, 6), dataset="sequences")
    error = _refused(tenant_a, model, {"inputs": [[99] * 20]})
    assert error["fields"] == {
        "inputs": ["inputs[0][0] is 99; this model's tokens are whole numbers from 0 to 15"]
    }


def test_images_are_converted_to_the_models_channels_and_size():
    spec = InputSpec.of(dataset_info("shapes"))  # [3, 32, 32]
    buffer = io.BytesIO()
    Image.new("L", (64, 48), color=200).save(buffer, format="JPEG", quality=100)
    data = base64.b64encode(buffer.getvalue()).decode()
    array = samples_decode(spec=spec, images=[data, f"data:image/jpeg;base64,{data}"])
    assert array.shape == (2, 3, 32, 32) and array.dtype.name == "float32"
    assert abs(float(array.mean()) - 200) < 1.5


def test_texts_become_the_models_tokeniser_ids_and_other_models_take_none():
    from runtime.ingest.stored import TextDatasetInfo
    from runtime.text import TextTokenizer

    tokenizer = TextTokenizer.train(["今天下雨", "we play football"], vocabulary=50, max_length=8)
    info = TextDatasetInfo(
        name="upload:" + "0" * 32,
        title="Texts",
        kind="tokens",
        task="binary",
        input_shape=(8,),
        num_classes=2,
        class_names=("a", "b"),
        vocab_size=8000,
        sizes=(2, 0, 0),
        requires_download=False,
    )
    spec = InputSpec.of(info, tokenizer)
    samples = samples_decode(spec=spec, texts=["今天 football", ""])
    np.testing.assert_array_equal(samples, tokenizer.encode(["今天 football", ""])[0])
    assert samples.dtype == np.int64 and samples.shape == (2, 8)
    with pytest.raises(BadInput) as refused:
        samples_decode(spec=spec, texts=["fine", 3])
    assert (refused.value.field, refused.value.message) == ("texts", "texts[1] is not a string")
    with pytest.raises(BadInput) as refused:
        samples_decode(spec=spec, texts=["x"], inputs=[[1] * 8])
    assert refused.value.message == "Send one of texts and inputs, not both."
    with pytest.raises(BadInput) as refused:
        samples_decode(spec=InputSpec.of(dataset_info("sequences")), texts=["A B C"])
    assert refused.value.message == "this model takes no texts: its data is tokens; send inputs"
    with pytest.raises(BadInput) as refused:
        samples_decode(spec=InputSpec.of(dataset_info("xor")), texts=None, inputs=None)
    assert refused.value.message == "Send either inputs (numbers) or images (base64 PNG or JPEG)."
