"""records.Source: random reads equal what TensorFlow wrote; CRCs; corruption stays local."""

from __future__ import annotations

import os
import pickle
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hublayer.errors import RecordError, SchemaError
from hublayer.records import Source, Writer, encode_example, index, inspect

N = 64


def _values(i: int) -> dict[str, Any]:
    return {
        "label": i % 5,
        "id": 1_000_003 * i - 40_000_000,  # multi-byte and negative varints
        "x": np.arange(3, dtype=np.float32) + i,
        "tokens": list(range(i % 7)),  # varies, sometimes empty
        "name": f"item-{i}".encode(),
    }


@pytest.fixture(scope="module")
def tf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file TensorFlow wrote, Examples built with TensorFlow's own protos."""
    tf = pytest.importorskip("tensorflow")
    path = tmp_path_factory.mktemp("tf") / "tf.tfrecord"

    def feature(value: Any) -> Any:
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        if isinstance(value, np.ndarray):
            return tf.train.Feature(float_list=tf.train.FloatList(value=value.tolist()))
        ints = value if isinstance(value, list) else [value]
        return tf.train.Feature(int64_list=tf.train.Int64List(value=ints))

    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(N):
            example = tf.train.Example(
                features=tf.train.Features(feature={k: feature(v) for k, v in _values(i).items()})
            )
            writer.write(example.SerializeToString())
    return path


def _same(got: dict[str, Any], i: int) -> None:
    want = _values(i)
    assert set(got) == set(want)
    assert got["label"].tolist() == [want["label"]]
    assert got["label"].dtype == np.int64
    assert got["id"].tolist() == [want["id"]]
    assert got["x"].dtype == np.float32
    assert got["x"].tolist() == want["x"].tolist()
    assert got["tokens"].tolist() == want["tokens"]
    assert got["name"].tolist() == [want["name"]]
    assert got["name"].dtype == object


def _write(path: Path, count: int, start: int = 0) -> Path:
    with Writer(path) as writer:
        for i in range(start, start + count):
            writer.write(encode_example(_values(i)))
    return path


def test_random_reads_equal_what_tensorflow_wrote(tf_file: Path) -> None:
    src = Source(tf_file)
    assert len(src) == N
    order = list(range(N))
    random.Random(0).shuffle(order)
    for i in order:
        _same(src[i], i)
    _same(src[-1], N - 1)
    _same(src[-N], 0)


def test_batches_equal_single_reads(tf_file: Path) -> None:
    src = Source(tf_file)
    order = [5, 63, 0, 17, 17, -2, *range(20, 44)]
    batch = src.__getitems__(order)
    assert len(batch) == len(order)
    for got, i in zip(batch, order, strict=True):
        _same(got, i % N)
    assert src._getitems([3, 4])[1]["label"].tolist() == [4]  # grain's spelling


def test_raw_gives_the_serialized_examples(tf_file: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    written = [r.numpy() for r in tf.data.TFRecordDataset(str(tf_file))]
    src = Source(tf_file, raw=True)
    assert src[7] == written[7]
    assert src.__getitems__([9, 2]) == [written[9], written[2]]


def test_indexes_past_the_end_raise_index_error(tmp_path: Path) -> None:
    src = Source(_write(tmp_path / "a.tfrecord", 3))
    with pytest.raises(IndexError, match=r"\[-3, 3\)"):
        src[3]
    with pytest.raises(IndexError):
        src[-4]
    with pytest.raises(IndexError):
        src.__getitems__([0, 3])
    with pytest.raises(TypeError, match="int index"):
        src["0"]  # type: ignore[index]
    with pytest.raises(TypeError, match="int index"):
        src.__getitems__([0, 1.5])  # type: ignore[list-item]
    assert src.__getitems__([]) == []
    picked: Any = np.array([2, -3])  # numpy indices, as samplers may give
    assert [v["label"].tolist() for v in src.__getitems__(picked)] == [[2], [0]]
    assert [v["label"].tolist() for v in src] == [[0], [1], [2]]  # iteration stops


def test_records_of_several_files_are_numbered_in_order(tmp_path: Path) -> None:
    _write(tmp_path / "a.tfrecord", 10)
    _write(tmp_path / "b.tfrecord", 0 + 1, start=10)
    _write(tmp_path / "c.tfrecord", 7, start=11)
    src = Source(tmp_path)
    assert len(src) == 18
    assert [src[i]["id"].tolist()[0] for i in range(18)] == [_values(i)["id"] for i in range(18)]
    got = src.__getitems__([17, 10, 0, 9, 11])
    assert [g["id"].tolist()[0] for g in got] == [_values(i)["id"] for i in (17, 10, 0, 9, 11)]


def test_columns_decode_only_those_features(tmp_path: Path) -> None:
    src = Source(_write(tmp_path / "a.tfrecord", 20), columns=["x", "label"])
    assert set(src[3]) == {"x", "label"}
    assert all(set(v) == {"x", "label"} for v in src.__getitems__(list(range(20))))


def test_schema_gives_fixed_shapes_and_dtypes(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 30)
    schema = inspect(path, sample=None)
    src = Source(path, schema=schema)
    got = src[8]
    assert got["label"].shape == ()
    assert got["label"] == 3
    assert got["x"].shape == (3,)
    assert got["tokens"].dtype == np.int64
    empty = src[0]["tokens"]  # record 0 has no tokens: an empty list of the schema's kind
    assert empty.shape == (0,)
    assert empty.dtype == np.int64
    labels = np.stack([v["label"] for v in src.__getitems__(list(range(30)))])
    assert labels.shape == (30,)


def test_a_record_that_breaks_the_schema_names_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 10)
    schema = inspect(path, sample=None)
    with Writer(path) as writer:  # the same features, but record 4 has two labels
        for i in range(10):
            values = _values(i)
            if i == 4:
                values["label"] = [1, 2]
            writer.write(encode_example(values))
    src = Source(path, schema=schema)
    with pytest.raises(SchemaError, match="'label'") as caught:
        src[4]
    error: Any = caught.value  # index and file are extra fields of this SchemaError
    assert error.feature == "label"
    assert error.index == 4
    assert error.file == str(path)
    assert src[5]["label"] == 0
    with pytest.raises(SchemaError, match="columns that the schema has"):
        Source(path, schema=schema, columns=["nope"])


def test_raw_with_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="raw=True alone"):
        Source(_write(tmp_path / "a.tfrecord", 1), raw=True, columns=["x"])


def _corrupt(path: Path, record: int, where: str) -> int:
    """Flip a bit of one record's data or length in place, as bit rot would (size and
    modification time unchanged); return the record's offset."""
    index(path)
    offset, size = (int(v) for v in Path(f"{path}.idx").read_text().splitlines()[record].split())
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset + (3 if where == "length" else size - 6)] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return offset


@pytest.mark.parametrize("where", ["data", "length"])
def test_a_corrupt_record_names_file_offset_and_index_and_spares_neighbours(
    tmp_path: Path, where: str
) -> None:
    path = _write(tmp_path / "a.tfrecord", 40)
    offset = _corrupt(path, 21, where)
    src = Source(path)
    with pytest.raises(RecordError, match="CRC does not match") as caught:
        src[21]
    error = caught.value
    assert (error.file, error.offset, error.index) == (str(path), offset, 21)
    assert str(path) in str(error)
    assert str(offset) in str(error)
    _same(src[20], 20)
    _same(src[22], 22)
    with pytest.raises(RecordError) as batch_error:
        src.__getitems__([0, 21, 39])
    assert batch_error.value.index == 21
    assert len(src.__getitems__([0, 20, 22, 39])) == 4


def _sizes(path: Path) -> list[int]:
    index(path)
    return [int(line.split()[1]) for line in Path(f"{path}.idx").read_text().splitlines()]


@pytest.mark.parametrize("where", ["value", "length"])
def test_a_corrupt_record_is_caught_after_records_of_its_size_read_well(
    tmp_path: Path, where: str
) -> None:
    """A size read before takes a shorter path; it still checks both CRCs (a flipped
    bit in a float value leaves the record's structure as it was: only the CRC sees it)."""
    path = _write(tmp_path / "a.tfrecord", 40)
    sizes = _sizes(path)
    assert sizes.count(sizes[21]) > 1
    src = Source(path)
    for i in range(40):  # every size learned from good records first
        if i != 21:
            _same(src[i], i)
    offset = int(Path(f"{path}.idx").read_text().splitlines()[21].split()[0])
    floats = (np.arange(3, dtype=np.float32) + 21).tobytes()
    at = offset + (3 if where == "length" else 12 + encode_example(_values(21)).index(floats))
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(RecordError, match="CRC does not match") as caught:
        src[21]
    assert (caught.value.file, caught.value.offset, caught.value.index) == (str(path), offset, 21)
    _same(src[20], 20)
    _same(src[22], 22)


def test_a_file_cut_short_after_reads_names_the_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 10)
    sizes = _sizes(path)
    assert sizes[9] in sizes[:9]
    src = Source(path, raw=True)
    records = [src[i] for i in range(9)]
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - 3)
    with pytest.raises(RecordError, match="the file shrank") as caught:
        src[9]
    assert caught.value.index == 9
    assert src[8] == records[8]


def test_damage_after_the_source_was_made_stays_in_its_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 30)
    src = Source(path)
    index(path)
    offset, size = (int(v) for v in Path(f"{path}.idx").read_text().splitlines()[12].split())
    data = bytearray(path.read_bytes())
    data[offset + size - 6] ^= 0x40  # in place: same size, a new modification time
    path.write_bytes(bytes(data))
    with pytest.raises(RecordError, match="data whose CRC") as caught:
        src[12]
    assert (caught.value.offset, caught.value.index) == (offset, 12)
    _same(src[11], 11)
    _same(src[13], 13)


def test_a_file_changed_after_indexing_is_refused_not_misread(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 10)
    src = Source(path)
    _write(path, 12, start=100)  # rewritten, other records
    with pytest.raises(RecordError, match="changed"):
        src[0]
    assert len(Source(path)) == 12  # a new Source indexes it again


def test_reads_from_threads_equal_reads_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 300)
    src = Source(path)
    order = list(range(300)) * 3
    random.Random(1).shuffle(order)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: src[i]["id"].tolist()[0], order))
        batches = list(pool.map(src.__getitems__, [order[k : k + 32] for k in range(0, 900, 32)]))
    assert got == [_values(i)["id"] for i in order]
    flat = [v["id"].tolist()[0] for batch in batches for v in batch]
    assert flat == [_values(i)["id"] for i in order]


def test_a_pickled_source_reopens_its_files(tmp_path: Path) -> None:
    src = Source(_write(tmp_path / "a.tfrecord", 10), columns=["id"])
    src[1]  # files open now
    copy = pickle.loads(pickle.dumps(src))
    assert copy.columns == ("id",)
    assert copy[9]["id"].tolist() == [_values(9)["id"]]
    assert len(copy) == 10
    src.close()
    assert copy.__getitems__([2, 3])[1]["id"].tolist() == [_values(3)["id"]]


def test_records_not_written_canonically_still_decode(tmp_path: Path) -> None:
    # An Example whose floats are not packed (valid protobuf, another layout):
    # field 1 (features) > entry {key "v", value Feature{float_list{value: 1.5 (fixed32)}}}
    float_list = b"\x0d" + np.float32(1.5).tobytes()
    feature = b"\x12" + bytes([len(float_list)]) + float_list
    entry = b"\x0a\x01v" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    example = b"\x0a" + bytes([len(features)]) + features
    path = tmp_path / "a.tfrecord"
    with Writer(path) as writer:
        writer.write(example)
        writer.write(b"not an example")
        writer.write(encode_example({"v": 2.5}))
    src = Source(path)
    assert src[0]["v"].tolist() == [1.5]
    assert src[2]["v"].tolist() == [2.5]
    with pytest.raises(RecordError, match=r"tf\.train\.Example") as caught:
        src[1]
    assert caught.value.index == 1
    assert caught.value.file == str(path)


def _fixed(path: Path, count: int) -> Path:
    """Records of one size and structure: a batch reads them as one block."""
    with Writer(path) as writer:
        for i in range(count):
            x = np.array([i, i / 2], np.float32)
            writer.write(encode_example({"x": x, "label": i % 100, "n": 200 + i % 50}))
    return path


@pytest.mark.parametrize("where", ["data", "length"])
def test_a_corrupt_record_inside_a_block_is_named(tmp_path: Path, where: str) -> None:
    path = _fixed(tmp_path / "a.tfrecord", 120)
    offset = _corrupt(path, 57, where)
    src = Source(path)
    with pytest.raises(RecordError, match="CRC does not match") as caught:
        src.__getitems__(list(range(100)))
    assert (caught.value.index, caught.value.offset) == (57, offset)
    fine = [i for i in range(120) if i != 57]
    got = src.__getitems__(fine)
    assert [int(v["label"][0]) for v in got] == [i % 100 for i in fine]
    raw = Source(path, raw=True)
    with pytest.raises(RecordError):
        raw.__getitems__(list(range(50, 70)))


def test_blocks_decode_as_single_reads_do(tmp_path: Path) -> None:
    src = Source(_fixed(tmp_path / "a.tfrecord", 300))
    order = list(range(300))
    random.Random(2).shuffle(order)
    batch = src.__getitems__(order)
    for values, i in zip(batch, order, strict=True):
        one = src[i]
        assert values.keys() == one.keys()
        for name in one:
            assert values[name].dtype == one[name].dtype
            assert values[name].tolist() == one[name].tolist()
            assert values[name].flags.writeable
    raw = Source(tmp_path / "a.tfrecord", raw=True)
    assert raw.__getitems__(order[:40]) == [raw[i] for i in order[:40]]
