"""The wire decoder behind records.Source gives exactly what decode_example gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hublayer.errors import RecordError
from hublayer.records import decode_example, encode_example
from hublayer.records._wire import ExampleDecoder

_INT64 = st.integers(-(2**63), 2**63 - 1)
_VALUE = st.one_of(
    st.lists(_INT64, max_size=40),
    st.lists(st.integers(0, 127), min_size=24, max_size=60),  # one byte per value
    _INT64,
    st.lists(st.floats(width=32, allow_nan=False), max_size=20),
    st.binary(max_size=40),
    st.lists(st.binary(max_size=8), max_size=5),
)
_EXAMPLE = st.dictionaries(st.text(min_size=1, max_size=12), _VALUE, max_size=6)


def _some(values: dict[str, Any] | None) -> dict[str, Any]:
    assert values is not None
    return values


def _equal(got: dict[str, Any] | None, data: bytes) -> None:
    want = decode_example(data)
    if got is None:  # an encoding the decoder leaves to decode_example
        return
    assert list(got) == list(want) or set(got) == set(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype, name
        assert got[name].shape == value.shape, name
        assert got[name].tolist() == value.tolist(), name
        assert got[name].flags.writeable


@settings(max_examples=300, deadline=None)
@given(_EXAMPLE)
def test_one_record_decodes_as_decode_example_does(values: dict[str, Any]) -> None:
    data = encode_example(values)
    decoder = ExampleDecoder()
    _equal(decoder(data), data)
    _equal(decoder(data), data)  # the second read goes through the learned layout


@settings(max_examples=100, deadline=None)
@given(st.lists(_EXAMPLE, min_size=1, max_size=4), st.lists(st.integers(0, 3), max_size=40))
def test_batches_decode_as_decode_example_does(
    examples: list[dict[str, Any]], picks: list[int]
) -> None:
    datas = [encode_example(examples[p % len(examples)]) for p in picks]
    got = ExampleDecoder().many(datas)
    assert len(got) == len(datas)
    for values, data in zip(got, datas, strict=True):
        _equal(values, data)


def test_records_of_one_size_but_another_structure_are_not_misread() -> None:
    # Same byte length, different names: the layout learned from the first must not
    # be applied to the second.
    first, second = encode_example({"ab": 1}), encode_example({"cd": 2})
    assert len(first) == len(second)
    decoder = ExampleDecoder()
    assert _some(decoder(first))["ab"].tolist() == [1]
    assert decoder(second) == {"cd": np.array([2])}
    batch = decoder.many([first] * 10 + [second] * 10)
    assert [_some(v)["ab"].tolist() for v in batch[:10]] == [[1]] * 10
    assert [_some(v)["cd"].tolist() for v in batch[10:]] == [[2]] * 10


def test_varints_of_the_same_size_decode_per_record() -> None:
    # 300 and 1_000 both take 2 bytes: one layout, other values.
    datas = [encode_example({"n": n, "x": [float(n)]}) for n in (300, 1_000, 16_000) * 4]
    got = ExampleDecoder().many(datas)
    assert [_some(v)["n"].tolist()[0] for v in got] == [300, 1_000, 16_000] * 4
    assert [_some(v)["x"].tolist()[0] for v in got] == [300.0, 1_000.0, 16_000.0] * 4


def test_columns_leave_other_features_out() -> None:
    data = encode_example({"a": 1, "b": [1.0, 2.0], "c": b"x"})
    decoder = ExampleDecoder(columns=["b"])
    assert list(_some(decoder(data))) == ["b"]
    assert [list(_some(v)) for v in decoder.many([data] * 9)] == [["b"]] * 9


@pytest.mark.parametrize(
    "data",
    [b"garbage!", b"\x0a\x05\x0a\x03\x0a\x01", b"\x0a\x80", b"\x0a\x02\x0a\x7f"],
)
def test_malformed_bytes_are_left_to_decode_example(data: bytes) -> None:
    assert ExampleDecoder()(data) is None
    with pytest.raises(RecordError):
        decode_example(data)


def test_unknown_fields_are_left_to_decode_example() -> None:
    data = b"\x12\x00" + encode_example({"a": 1})  # field 2: not in Example, skipped by upb
    assert ExampleDecoder()(data) is None
    assert decode_example(data)["a"].tolist() == [1]
