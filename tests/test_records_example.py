"""tf.train.Example encode/decode without TensorFlow, checked against TensorFlow itself."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hublayer.errors import RecordError
from hublayer.records import (
    Reader,
    Writer,
    decode_example,
    decode_sequence_example,
    encode_example,
    encode_sequence_example,
)

GOLDEN = Path(__file__).parent / "data" / "records"


def test_decodes_examples_serialized_by_tensorflow() -> None:
    with Reader(GOLDEN / "plain.tfrecord") as reader:
        examples = [decode_example(r, numpy=False) for r in list(reader)[-3:]]
    assert examples[2] == {
        "label": [2],
        "score": [1.0, -1.25],
        "name": [b"item-2"],
        "ids": [0, 1],
    }
    assert examples[0]["ids"] == []


def test_numpy_output_has_the_tensorflow_dtypes() -> None:
    decoded = decode_example(encode_example({"f": 1.5, "i": True, "b": "é", "e": []}))
    assert decoded["f"].dtype == np.float32
    assert decoded["i"].dtype == np.int64
    assert decoded["i"].tolist() == [1]
    assert decoded["b"].dtype == object
    assert decoded["b"].tolist() == ["é".encode()]
    assert decoded["e"].shape == (0,)


def test_arrays_are_flattened_in_c_order() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)
    names = np.array([["a", "b"], ["c", "d"]])
    decoded = decode_example(encode_example({"image": image, "names": names}), numpy=False)
    assert decoded["image"] == list(range(12))
    assert decoded["names"] == [b"a", b"b", b"c", b"d"]


def test_tensorflow_parses_what_we_encode() -> None:
    tf = pytest.importorskip("tensorflow")
    data = encode_example({"x": np.array([1, 2, 3], np.float32), "y": 7, "s": [b"a", "b"], "e": []})
    parsed = tf.io.parse_single_example(
        data,
        {
            "x": tf.io.FixedLenFeature([3], tf.float32),
            "y": tf.io.FixedLenFeature([], tf.int64),
            "s": tf.io.VarLenFeature(tf.string),
            "e": tf.io.VarLenFeature(tf.int64),
        },
    )
    assert parsed["x"].numpy().tolist() == [1.0, 2.0, 3.0]
    assert int(parsed["y"]) == 7
    assert parsed["s"].values.numpy().tolist() == [b"a", b"b"]
    assert parsed["e"].values.shape == (0,)
    example = tf.train.Example()
    example.features.feature["y"].int64_list.value.append(7)
    assert encode_example({"y": 7}) == example.SerializeToString()


def test_sequence_examples_round_trip_and_parse_in_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    data = encode_sequence_example(
        {"id": b"seq-1", "length": 3}, {"tokens": [[1, 2], [3], [4, 5, 6]], "w": [0.5, 1.0, 2.0]}
    )
    context, lists = decode_sequence_example(data, numpy=False)
    assert context == {"id": [b"seq-1"], "length": [3]}
    assert lists == {"tokens": [[1, 2], [3], [4, 5, 6]], "w": [[0.5], [1.0], [2.0]]}
    tf_context, tf_lists = tf.io.parse_single_sequence_example(
        data,
        context_features={"length": tf.io.FixedLenFeature([], tf.int64)},
        sequence_features={
            "tokens": tf.io.RaggedFeature(tf.int64),
            "w": tf.io.FixedLenSequenceFeature([], tf.float32),
        },
    )
    assert int(tf_context["length"]) == 3
    assert tf_lists["tokens"].to_list() == [[1, 2], [3], [4, 5, 6]]
    assert tf_lists["w"].numpy().tolist() == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"nested": 1}, "dtype object"),
        (np.array([1 + 2j]), "dtype complex128"),
        ([2**63], "outside the int64 range"),
        ([2**70], "int64 range"),
        ([[1, 2], [3]], "inhomogeneous"),
        ([b"a", 1], "a mix of"),
    ],
)
def test_unsupported_values_name_the_feature(value: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        encode_example({"bad": value})
    assert "'bad'" in str(info.value)


def test_non_mapping_input_is_refused() -> None:
    with pytest.raises(TypeError, match="mapping"):
        encode_example([("x", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="names to be str"):
        encode_example({1: 1})  # type: ignore[dict-item]


def test_garbage_is_a_record_error() -> None:
    with pytest.raises(RecordError, match=r"tf\.train\.Example"):
        decode_example(b"\x0a\xff\xff\xff\xff\x0f")


_names = st.text(min_size=1, max_size=8)
_values = st.one_of(
    hnp.arrays(np.float32, st.integers(0, 6), elements=st.floats(width=32, allow_nan=False)),
    hnp.arrays(np.int64, st.integers(0, 6)),
    st.lists(st.binary(max_size=12), min_size=1, max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(_names, _values, max_size=5), min_size=1, max_size=5))
def test_write_then_read_round_trips_exactly(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]]
) -> None:
    path = tmp_path_factory.mktemp("roundtrip") / "rows.tfrecord"
    with Writer(path) as writer:
        for row in rows:
            writer.write(encode_example(row))
    with Reader(path) as reader:
        decoded = [decode_example(record) for record in reader]
    assert len(decoded) == len(rows)
    for row, got in zip(rows, decoded, strict=True):
        assert got.keys() == row.keys()
        for name, value in row.items():
            if isinstance(value, list):
                assert got[name].tolist() == value
            else:
                assert got[name].dtype == value.dtype
                np.testing.assert_array_equal(got[name], value)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_record_errors(data: bytes) -> None:
    for decode in (decode_example, decode_sequence_example):
        with contextlib.suppress(RecordError):
            decode(data)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_deeply_nested_garbage_does_not_crash() -> None:
    data = b""
    for _ in range(5_000):  # field 1, length-delimited, nested 5,000 deep
        data = b"\x0a" + _varint(len(data)) + data
    for decode in (decode_example, decode_sequence_example):
        with pytest.raises(RecordError):
            decode(data)
