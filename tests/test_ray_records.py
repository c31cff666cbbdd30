"""``records.ray_dataset`` and the read tasks under it, against TensorFlow's own reader.

One local Ray (``num_cpus=2``) for the module. The read-task code is also tested without
Ray: byte ranges from the offset index, CRC errors, schema mismatches.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hublayer import records
from hublayer.errors import MissingExtraError, RecordError, SchemaError
from hublayer.records._ray_read import columns_of, pieces_of, read_piece

tf = pytest.importorskip("tensorflow")
ray = pytest.importorskip("ray")

COUNT = 300


def _example(i: int) -> bytes:
    feature = tf.train.Feature
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "x": feature(float_list=tf.train.FloatList(value=[i, i + 0.5, -i])),
                "label": feature(int64_list=tf.train.Int64List(value=[i % 3])),
                "name": feature(bytes_list=tf.train.BytesList(value=[b"n%d" % i])),
                "tags": feature(int64_list=tf.train.Int64List(value=list(range(i % 4)))),
            }
        )
    )
    data: bytes = example.SerializeToString()
    return data


def _write(path: Path, compression: str = "", count: int = COUNT) -> Path:
    with tf.io.TFRecordWriter(str(path), options=compression) as writer:
        for i in range(count):
            writer.write(_example(i))
    return path


def _tf_rows(path: Path, compression: str) -> dict[str, Any]:
    """What TensorFlow's reader and parser give for the same file."""
    spec = {
        "x": tf.io.FixedLenFeature([3], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "name": tf.io.FixedLenFeature([], tf.string),
        "tags": tf.io.RaggedFeature(tf.int64),
    }
    serialized = list(tf.data.TFRecordDataset(str(path), compression_type=compression))
    parsed = tf.io.parse_example(tf.stack(serialized), spec)
    return {
        "x": parsed["x"].numpy(),
        "label": parsed["label"].numpy(),
        "name": list(parsed["name"].numpy()),
        "tags": [row.numpy() for row in parsed["tags"]],
    }


def _flip(path: Path, record: int) -> int:
    """Flip one payload byte of record ``record`` of a plain file; returns its offset."""
    data = bytearray(path.read_bytes())
    offset = 0
    for _ in range(record):
        length = int.from_bytes(data[offset : offset + 8], "little")
        offset += 16 + length
    data[offset + 12 + 3] ^= 0x01
    path.write_bytes(bytes(data))
    return offset


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_ray_dataset_reads_what_tensorflow_reads(
    local_ray: Any, tmp_path: Path, compression: str
) -> None:
    path = _write(tmp_path / "a.tfrecord", compression)
    rows = records.ray_dataset(path).take_all()
    expected = _tf_rows(path, compression)

    assert len(rows) == COUNT
    np.testing.assert_array_equal(np.stack([r["x"] for r in rows]), expected["x"])
    assert [r["label"] for r in rows] == expected["label"].tolist()
    assert [r["name"] for r in rows] == expected["name"]
    for got, want in zip((r["tags"] for r in rows), expected["tags"], strict=True):
        np.testing.assert_array_equal(got, want)
    assert rows[7]["x"].dtype == np.float32
    assert rows[7]["x"].shape == (3,)


def test_ray_dataset_columns_and_extra_columns(local_ray: Any, tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", count=20)
    ds = records.ray_dataset(path, columns=["label"], raw_column="raw", file_column="file")
    rows = ds.take_all()
    assert set(rows[0]) == {"label", "raw", "file"}
    assert rows[4]["raw"] == _example(4)
    assert rows[4]["file"] == str(path)
    with pytest.raises(SchemaError, match="nope"):
        records.ray_dataset(path, columns=["nope"])
    with pytest.raises(ValueError, match="raw_column"):
        records.ray_dataset(path, raw_column="label")


def test_a_bit_flip_raises_naming_file_and_offset(local_ray: Any, tmp_path: Path) -> None:
    good = _write(tmp_path / "a.tfrecord", count=50)
    bad = _write(tmp_path / "b.tfrecord", count=50)
    offset = _flip(bad, 17)
    schema = records.inspect(good)  # so the error comes from a Ray read task
    with pytest.raises(RecordError) as caught:
        records.ray_dataset([good, bad], schema).take_all()
    assert str(bad) in str(caught.value)
    assert f"offset {offset}" in str(caught.value)

    rows = records.ray_dataset([good, bad], on_error="skip").take_all()
    assert len(rows) == 99  # the one bad record skipped, nothing else lost
    assert sorted(r["name"] for r in rows).count(b"n17") == 1  # only good.tfrecord's


def test_without_ray_the_error_names_the_extra(tmp_path: Path, without_ray: None) -> None:
    path = _write(tmp_path / "a.tfrecord", count=3)
    with pytest.raises(MissingExtraError, match=r"hublayer\[ray\]"):
        records.ray_dataset(path)


# -- the read tasks, without Ray ---------------------------------------------------------
def test_byte_ranges_cover_every_record_once(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.tfrecord", count=1000)
    pieces = pieces_of([path], target_bytes=4096)
    assert len(pieces) > 5
    assert pieces[0].start == 0
    assert pieces[-1].end == path.stat().st_size
    for before, after in itertools.pairwise(pieces):
        assert before.end == after.start
        assert after.first == before.first + (before.rows or 0)
    schema = records.inspect(path)
    names = [
        name
        for piece in pieces
        for batch in read_piece(piece, columns_of(schema, ["name"]), block_rows=64)
        for name in batch["name"]
    ]
    assert names == [b"n%d" % i for i in range(1000)]


def test_a_bit_flip_in_a_byte_range(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.tfrecord", count=400)
    offset = _flip(path, 250)
    schema = records.inspect(path, sample=10)
    pieces = pieces_of([path], target_bytes=2048)
    columns = columns_of(schema, ["label"])

    def read_all() -> None:
        for piece in pieces:
            list(read_piece(piece, columns))

    with pytest.raises(RecordError) as caught:
        read_all()
    assert caught.value.file == str(path)
    assert caught.value.offset == offset
    assert caught.value.index == 250
    rows = sum(len(b["label"]) for p in pieces for b in read_piece(p, columns, on_error="skip"))
    assert rows == 399


def test_compressed_files_are_one_piece(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord.gz", "GZIP", count=1000)
    pieces = pieces_of([path], target_bytes=1024)
    assert len(pieces) == 1
    assert pieces[0].compression == "GZIP"


def test_a_record_that_breaks_the_schema_names_the_feature(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", count=10)
    schema = records.inspect(path)
    short = records.inspect(_write(tmp_path / "b.tfrecord", count=10))
    assert short["x"].shape == (3,)
    with tf.io.TFRecordWriter(str(tmp_path / "c.tfrecord")) as writer:
        writer.write(
            tf.train.Example(
                features=tf.train.Features(
                    feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}
                )
            ).SerializeToString()
        )
    (piece,) = pieces_of([tmp_path / "c.tfrecord"], target_bytes=1 << 20)
    with pytest.raises(SchemaError, match="'x'") as caught:
        list(read_piece(piece, columns_of(schema, ["x"])))
    assert "Received: 1 in record 0" in str(caught.value)


def test_rays_own_reader_returns_a_flipped_byte_without_an_error(
    local_ray: Any, tmp_path: Path
) -> None:
    """What README says of ``ray.data.read_tfrecords``: it checks no CRC, so a flipped
    byte inside a value comes back as data. hublayer's reader refuses the same file."""
    path = tmp_path / "a.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:  # one value per feature, as Ray's reader needs
        for i in range(20):
            name = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"n%d" % i]))
            writer.write(
                tf.train.Example(
                    features=tf.train.Features(feature={"name": name})
                ).SerializeToString()
            )
    data = bytearray(path.read_bytes())
    at = data.index(b"n17")
    data[at] ^= 0x01  # b"n17" -> b"o17": the Example still parses, its CRC no longer matches
    path.write_bytes(bytes(data))

    rows = ray.data.read_tfrecords(str(path)).take_all()
    names = [bytes(np.asarray(row["name"]).ravel()[0]) for row in rows]
    assert len(rows) == 20
    assert names.count(b"o17") == 1
    assert b"n17" not in names
    with pytest.raises(RecordError, match="CRC"):
        records.ray_dataset(path).take_all()
