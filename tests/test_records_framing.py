"""TFRecord framing: golden files from TensorFlow, corrupt files, atomic sharded writes."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hublayer.errors import RecordError
from hublayer.records import Reader, Writer, read_records
from hublayer.records._framing import detect_compression, masked_crc
from hublayer.records._writer import shard_paths

GOLDEN = Path(__file__).parent / "data" / "records"
RECORDS = [bytes.fromhex(line) for line in (GOLDEN / "records.hex").read_text().splitlines()]


def _write(path: Path, records: list[bytes], **kwargs: object) -> Path:
    with Writer(path, **kwargs) as writer:  # type: ignore[arg-type]
        for record in records:
            writer.write(record)
    return writer.paths[0]


@pytest.mark.parametrize("name", ["plain.tfrecord", "gzip.tfrecord.gz", "zlib.tfrecord.zz"])
def test_reads_files_written_by_tensorflow(name: str) -> None:
    with Reader(GOLDEN / name) as reader:
        assert list(reader) == RECORDS
    assert reader.count == len(RECORDS)
    assert reader.skipped == 0


@pytest.mark.parametrize("name", ["plain.tfrecord", "zlib.tfrecord.zz"])
def test_a_second_pass_starts_again(name: str) -> None:
    with Reader(GOLDEN / name) as reader:
        first = next(iter(reader))
        assert list(reader) == RECORDS
    assert first == RECORDS[0]
    assert reader.count == len(RECORDS)


def test_detects_compression_from_the_first_bytes() -> None:
    assert detect_compression(GOLDEN / "plain.tfrecord") == ""
    assert detect_compression(GOLDEN / "gzip.tfrecord.gz") == "GZIP"
    assert detect_compression(GOLDEN / "zlib.tfrecord.zz") == "ZLIB"


def test_writes_the_same_bytes_as_tensorflow(tmp_path: Path) -> None:
    path = _write(tmp_path / "ours.tfrecord", RECORDS)
    assert path.read_bytes() == (GOLDEN / "plain.tfrecord").read_bytes()


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_tensorflow_reads_our_files(tmp_path: Path, compression: str) -> None:
    tf = pytest.importorskip("tensorflow")
    with Writer(tmp_path / "out", shards=3, compression=compression) as writer:
        for record in RECORDS:
            writer.write(record)
    dataset = tf.data.TFRecordDataset([str(p) for p in writer.paths], compression_type=compression)
    got = sorted(r.numpy() for r in dataset)
    assert got == sorted(RECORDS)


def test_masked_crc_matches_the_known_value() -> None:
    # CRC32C("123456789") = 0xE3069283, the standard check value.
    crc = 0xE3069283
    assert masked_crc(b"123456789") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & (
        0xFFFFFFFF
    )


def test_sharded_writer_names_and_balances_shards(tmp_path: Path) -> None:
    with Writer(tmp_path / "train.tfrecord", shards=4) as writer:
        for i in range(10):
            writer.write(b"%d" % i)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"train-{i:05d}-of-00004.tfrecord" for i in range(4)]
    counts = [len(list(read_records([p]))) for p in writer.paths]
    assert counts == [3, 3, 2, 2]
    assert writer.count == 10
    assert sorted(read_records(writer.paths), key=int) == [b"%d" % i for i in range(10)]
    assert [p.name for p in shard_paths("x/out", 2)] == [
        "out-00000-of-00002.tfrecord",
        "out-00001-of-00002.tfrecord",
    ]


def test_writer_leaves_nothing_behind_when_the_block_fails(tmp_path: Path) -> None:
    (tmp_path / "keep-00000-of-00002.tfrecord").write_bytes(b"old")

    def fail_midway() -> None:
        with Writer(tmp_path / "keep", shards=2) as writer:
            writer.write(b"new")
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_midway()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep-00000-of-00002.tfrecord"]
    assert (tmp_path / "keep-00000-of-00002.tfrecord").read_bytes() == b"old"


def test_writer_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shards"):
        Writer(tmp_path / "x", shards=0)
    with pytest.raises(ValueError, match="compression"):
        Writer(tmp_path / "x", compression="bz2")
    assert list(tmp_path.iterdir()) == []


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no such file") as info, Reader(tmp_path / "nope"):
        pass
    assert info.value.file == str(tmp_path / "nope")


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with Reader(tmp_path / "empty.tfrecord") as reader:
        assert list(reader) == []


@pytest.mark.parametrize(
    ("cut", "what"),
    [(5, "truncated length header"), (12 + 3, "cut short"), (-2, "cut short")],
)
def test_truncated_file_names_record_and_offset(tmp_path: Path, cut: int, what: str) -> None:
    records = [b"first", b"second record"]
    path = _write(tmp_path / "t.tfrecord", records)
    first = 12 + len(records[0]) + 4
    data = path.read_bytes()
    path.write_bytes(data[: first + cut] if cut > 0 else data[:cut])
    reader = Reader(path)
    with reader, pytest.raises(RecordError, match=what) as info:
        list(reader)
    assert (info.value.file, info.value.index, info.value.offset) == (str(path), 1, first)
    assert reader.count == 1


@pytest.mark.parametrize(("byte", "what"), [(3, "length whose CRC"), (14, "data whose CRC")])
def test_bit_flip_is_caught_by_the_crc(tmp_path: Path, byte: int, what: str) -> None:
    path = _write(tmp_path / "f.tfrecord", [b"good", b"flipped!", b"after"])
    data = bytearray(path.read_bytes())
    second = 12 + 4 + 4
    data[second + byte] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(RecordError, match=what) as info, Reader(path) as reader:
        list(reader)
    assert (info.value.index, info.value.offset) == (1, second)
    assert "on_error=" in str(info.value)


@pytest.mark.parametrize("byte", [0, 3, 9, 14, 20])
def test_skip_mode_counts_bad_records_and_keeps_the_rest(tmp_path: Path, byte: int) -> None:
    records = [b"r%d-" % i * 5 for i in range(6)]
    path = _write(tmp_path / "s.tfrecord", records)
    data = bytearray(path.read_bytes())
    size = 12 + len(records[0]) + 4
    data[2 * size + byte] ^= 0xFF
    path.write_bytes(bytes(data))
    with Reader(path, on_error="skip") as reader:
        got = list(reader)
    assert got == records[:2] + records[3:]
    assert reader.skipped == 1
    assert reader.errors[0].index == 2


def test_skip_mode_counts_a_truncated_tail(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.tfrecord", [b"one", b"two"])
    path.write_bytes(path.read_bytes()[:-3])
    with Reader(path, on_error="skip") as reader:
        assert list(reader) == [b"one"]
    assert reader.skipped == 1


def test_unverified_reading_still_catches_truncation(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.tfrecord", [b"x" * 100])
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(RecordError, match="cut short"), Reader(path, verify=False) as reader:
        list(reader)


def test_corrupt_gzip_stream_is_a_record_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.tfrecord.gz", [os.urandom(2000)] * 20, compression="GZIP")
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = b"\x00" * (len(data) - len(data) // 2)
    path.write_bytes(bytes(data))
    # zlib may turn the zeros into bytes first (caught by the CRC) or refuse them at once.
    with pytest.raises(RecordError, match=r"GZIP stream|CRC does not match") as info:
        list(Reader(path))
    assert info.value.file == str(path)


@pytest.mark.parametrize("buffer_size", [4096, 1 << 16, 1 << 18, 1 << 20])
@pytest.mark.parametrize("kind", ["GZIP", "ZLIB", "GZIP members"])
def test_a_partial_read_estimates_the_records_of_a_compressed_file(
    tmp_path: Path, kind: str, buffer_size: int
) -> None:
    # Half random, half repeated bytes: about 2:1, the same all through the file.
    records = [os.urandom(40) + bytes([i % 7]) * 40 for i in range(5000)]
    plain = _write(tmp_path / "p.tfrecord", records).read_bytes()
    if kind == "GZIP members":  # two members, cut at a record boundary (122 bytes each)
        cut = 2500 * (12 + 80 + 4)
        data = gzip.compress(plain[:cut]) + gzip.compress(plain[cut:])
    else:
        data = gzip.compress(plain) if kind == "GZIP" else zlib.compress(plain)
    path = tmp_path / "c.tfrecord"
    path.write_bytes(data)
    with Reader(path, compression=kind.split()[0], buffer_size=buffer_size) as reader:
        for read, _ in enumerate(reader, 1):
            if read == 200:
                break
        # Decompressed read-ahead is not counted as compressed bytes taken in.
        assert reader.estimate_count() == pytest.approx(5000, rel=0.1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="on_error"):
        Reader("x", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compression"):
        Reader("x", compression="lzma")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), verify=st.booleans(), skip=st.booleans())
def test_random_bytes_raise_only_record_errors(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, verify: bool, skip: bool
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "random.tfrecord"
    path.write_bytes(data)
    for compression in ("auto", "", "GZIP", "ZLIB"):
        reader = Reader(
            path, compression=compression, verify=verify, on_error="skip" if skip else "raise"
        )
        try:
            with reader:
                for record in reader:
                    assert isinstance(record, bytes)
        except RecordError:
            assert not skip


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(st.binary(max_size=40), min_size=1, max_size=8),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 10_000),
)
def test_mutated_files_raise_only_record_errors_and_skip_recovers(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[bytes],
    edits: list[tuple[int, int]],
    cut: int,
) -> None:
    path = _write(tmp_path_factory.mktemp("mut") / "m.tfrecord", records)
    data = bytearray(path.read_bytes())
    for where, value in edits:
        data[where % len(data)] = value
    path.write_bytes(bytes(data[: len(data) - cut % 8]))
    caught: RecordError | None = None
    try:
        with Reader(path) as reader:
            list(reader)
    except RecordError as error:
        caught = error
    if caught is not None:
        assert caught.file == str(path)
        assert caught.offset is not None
    with Reader(path, on_error="skip") as reader:
        got = list(reader)
    assert all(record in records for record in got)
    if not edits and cut % 8 == 0:
        assert (got, reader.skipped) == (records, 0)
