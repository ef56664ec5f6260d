"""NumPy arrays (runtime/ingest/arrays.py): what is read back is the arrays' own values; a
pickle is never loaded (a pickle that would write a file when loaded writes nothing); a header
claiming 10^12 elements is refused from the header alone."""

import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from numpy.lib import format as npy_format

from runtime.ingest.arrays import arrays_ingest
from runtime.ingest.common import IngestRefused


def _npy(array: np.ndarray, **kwargs) -> bytes:
    out = io.BytesIO()
    np.save(out, array, **kwargs)
    return out.getvalue()


def _npz(**arrays: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in arrays.items():
            archive.writestr(f"{name}.npy", data)
    return out.getvalue()


def _read(path) -> tuple[pa.Table, dict]:
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    return table, {k.decode(): v.decode() for k, v in table.schema.metadata.items()}


def _refusal(tmp_path, x: bytes, y: bytes | None = None) -> list[tuple[str, str]]:
    out = tmp_path / "out.arrow"
    with pytest.raises(IngestRefused) as refused:
        arrays_ingest(io.BytesIO(x), out, y_source=io.BytesIO(y) if y is not None else None)
    assert not out.exists()
    return [(p.path, p.message) for p in refused.value.problems]


def test_an_npz_of_uint8_images_is_read_back_exactly(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    y = np.arange(10) % 3
    out = tmp_path / "a.arrow"
    summary = arrays_ingest(io.BytesIO(_npz(x=_npy(x), y=_npy(y))), out)
    assert summary.as_dict() == {
        "samples": 10,
        "shape": [8, 8, 3],
        "dtype": "uint8",
        "classes": {"0": 4, "1": 3, "2": 3},
    }
    table, metadata = _read(out)
    assert metadata == {"dtype": "uint8", "shape": json.dumps([8, 8, 3])}
    got = np.frombuffer(b"".join(v.as_py() for v in table["x"]), np.uint8).reshape(x.shape)
    np.testing.assert_array_equal(got, x)
    assert table["label"].to_pylist() == [str(v) for v in y]


def test_two_npy_files_of_float64_are_stored_as_float32(tmp_path):
    x = np.linspace(-1, 1, 40, dtype=np.float64).reshape(20, 2)
    y = np.array(["cat", "dog"] * 10)
    out = tmp_path / "b.arrow"
    summary = arrays_ingest(io.BytesIO(_npy(x)), out, y_source=io.BytesIO(_npy(y)))
    assert (summary.dtype, summary.shape, summary.classes) == (
        "float32",
        (2,),
        {"cat": 10, "dog": 10},
    )
    table, _ = _read(out)
    got = np.frombuffer(b"".join(v.as_py() for v in table["x"]), np.float32).reshape(20, 2)
    np.testing.assert_array_equal(got, x.astype(np.float32))


class _Exploit:
    """Unpickling this would create a file (its path is the marker): pickle's __reduce__."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_inside_an_npy_is_refused_and_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    x = np.empty(2, dtype=object)
    x[:] = [_Exploit(marker), _Exploit(marker)]
    data = _npy(x, allow_pickle=True)
    assert b"pwned" in data  # the pickle is in the file
    assert _refusal(tmp_path, _npz(x=data, y=_npy(np.array([0, 1])))) == [
        ("x.npy", "an array of object (objects or records): only numbers and text, never pickles")
    ]
    assert not marker.exists()


def test_a_header_claiming_10_to_the_12_elements_is_refused_from_the_header(tmp_path):
    out = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    npy_format.write_array_header_2_0(out, header)
    assert _refusal(tmp_path, out.getvalue(), _npy(np.array([0, 1]))) == [
        (
            "x.npy",
            "its header declares shape (1000000000000,) (1000000000000 elements of float32); "
            "at most 4294967296 bytes",
        )
    ]


@pytest.mark.parametrize(
    ("x", "y", "problems"),
    [
        (
            _npy(np.zeros((10, 4), np.float32))[:-40],
            _npy(np.arange(10) % 2),
            [("x.npy", "shorter than its header says: 7 of 10 samples")],
        ),
        (
            _npy(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0], [2.0, 2.0]])),
            _npy(np.array([0, 1, 0, 1])),
            [("x.npy", "sample 1 has NaN or infinite values")],
        ),
        (
            _npy(np.zeros((4, 2))),
            _npy(np.array([0, 1, 0])),
            [("file", "x has 4 samples and y 3 labels: they must match")],
        ),
        (
            _npy(np.asfortranarray(np.zeros((4, 2)))),
            _npy(np.array([0, 1, 0, 1])),
            [("x.npy", "stored in Fortran order: save it in C order")],
        ),
        (
            _npy(np.zeros((4, 2))),
            _npy(np.zeros((4, 2))),
            [("y.npy", "shape (4, 2): the labels are one value per sample")],
        ),
        (
            _npy(np.zeros((4, 2))),
            _npy(np.array([0, 0, 0, 0])),
            [("y.npy", "one class only ('0'): a classifier needs two or more")],
        ),
        (b"not an array", _npy(np.array([0, 1])), None),
    ],
    ids=["truncated", "nan", "lengths", "fortran", "y-2d", "one-class", "garbage"],
)
def test_arrays_that_cannot_be_a_dataset_say_why(tmp_path, x, y, problems):
    got = _refusal(tmp_path, x, y)
    if problems is None:  # numpy's own words for a bad magic string
        assert got[0][0] == "x.npy" and got[0][1].startswith("not a readable NPY array: ")
    else:
        assert got == problems


def test_an_npz_without_y_names_what_it_has(tmp_path):
    data = _npz(features=_npy(np.zeros((2, 2))), x=_npy(np.zeros((2, 2))))
    assert _refusal(tmp_path, data) == [
        ("file", "no array named 'y'; the arrays in it: features, x")
    ]
