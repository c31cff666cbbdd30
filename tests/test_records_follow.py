"""TensorFlow's TFRecord writer and iterator behaviour (``tf_record_test.py``), ported.

A streaming ``Writer(atomic=False)`` makes records readable on ``flush()``; a reader's
iterator keeps its place at the end of a growing file and at a record cut short, as
``tf.compat.v1.io.tf_record_iterator`` does (TensorBoard depends on it).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from hublayer.errors import RecordError
from hublayer.records import Reader, Writer, read_records


def framed(data: bytes, tmp_path: Path) -> bytes:
    with Writer(tmp_path / "one.tfrecord") as writer:
        writer.write(data)
    return (tmp_path / "one.tfrecord").read_bytes()


# ------------------------------------------------------------------ flush, close, streaming


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_streaming_writer_records_are_readable_after_flush(
    tmp_path: Path, compression: str
) -> None:
    path = tmp_path / "events.tfrecord"
    writer = Writer(path, compression=compression, atomic=False)
    writer.write(b"one")
    writer.write(b"two")
    writer.flush()
    if compression:  # a flushed stream decodes up to the flush, without its end marker
        raw = path.read_bytes()
        if compression == "GZIP":
            plain = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
        else:
            plain = zlib.decompressobj().decompress(raw)
        both = tmp_path / "both.tfrecord"
        with Writer(both) as plain_writer:
            plain_writer.write(b"one")
            plain_writer.write(b"two")
        assert plain == both.read_bytes()
    else:
        assert list(Reader(path)) == [b"one", b"two"]
    writer.close()
    assert list(Reader(path, compression=compression)) == [b"one", b"two"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_writer_shows_nothing_until_close_even_after_flush(tmp_path: Path) -> None:
    path = tmp_path / "set.tfrecord"
    writer = Writer(path)
    writer.write(b"one")
    writer.flush()
    assert not path.exists()
    writer.close()
    assert list(Reader(path)) == [b"one"]


@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_flush_or_write_after_close_is_a_value_error(
    tmp_path: Path, atomic: bool, compression: str
) -> None:
    # testFlushAfterCloseIsError, testWriteAfterCloseIsError, testDoubleClose
    path = tmp_path / "w.tfrecord"
    writer = Writer(path, compression=compression, atomic=atomic)
    writer.write(b"Record 0")
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match=r"flush\(\) after close\(\)"):
        writer.flush()
    with pytest.raises(ValueError, match=r"write\(\) after close\(\)"):
        writer.write(b"Record 1")
    assert list(Reader(path, compression=compression)) == [b"Record 0"]


def test_a_streaming_writer_keeps_its_records_when_the_block_raises(tmp_path: Path) -> None:
    def write_then_fail(writer: Writer) -> None:
        with writer:
            writer.write(b"kept")
            raise KeyError("boom")

    path = tmp_path / "log.tfrecord"
    with pytest.raises(KeyError):
        write_then_fail(Writer(path, atomic=False))
    assert list(Reader(path)) == [b"kept"]
    atomic = tmp_path / "set.tfrecord"
    with pytest.raises(KeyError):
        write_then_fail(Writer(atomic))
    assert not atomic.exists()
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("bad", [5, 1.5, b"GZIP", ["GZIP"]])
def test_a_compression_of_the_wrong_type_is_a_value_error_naming_the_choices(
    tmp_path: Path, bad: object
) -> None:
    path = tmp_path / "a.tfrecord"
    for make in (lambda: Writer(path, compression=bad), lambda: Reader(path, compression=bad)):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='one of "", "GZIP", "ZLIB" or "auto"') as info:
            make()
        assert not isinstance(info.value, AttributeError)
        assert type(bad).__name__ in str(info.value)
    assert not path.exists()


def test_zlib_and_gzip_files_are_zlib_and_gzip_compatible(tmp_path: Path) -> None:
    # testWriteReadZLibFiles, testZlibReadWrite, testGzipReadWrite, testWriteGzipRead
    records = [b"Record %d of file 0" % i for i in range(7)]
    plain = tmp_path / "plain.tfrecord"
    with Writer(plain) as writer:
        for record in records:
            writer.write(record)
    for compression in ("ZLIB", "GZIP"):
        packed = tmp_path / f"{compression}.tfrecord"
        with Writer(packed, compression=compression) as writer:
            for record in records:
                writer.write(record)
        data = packed.read_bytes()
        unpacked = zlib.decompress(data) if compression == "ZLIB" else gzip.decompress(data)
        assert unpacked == plain.read_bytes()
    assert (tmp_path / "ZLIB.tfrecord").read_bytes() == zlib.compress(plain.read_bytes())
    by_hand = tmp_path / "by_hand.gz"
    by_hand.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(Reader(by_hand, compression="GZIP")) == records


def test_a_zlib_stream_of_many_flushed_blocks_reads_whole(tmp_path: Path) -> None:
    # testZLibFlushRecord: a full flush after every byte, and trailing empty blocks.
    raw = framed(b"small record", tmp_path)
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    output = b"".join(
        compressor.compress(raw[i : i + 1]) + compressor.flush(zlib.Z_FULL_FLUSH)
        for i in range(len(raw))
    )
    output += compressor.flush(zlib.Z_FULL_FLUSH) + compressor.flush(zlib.Z_FINISH)
    path = tmp_path / "small_record"
    path.write_bytes(output)
    assert list(Reader(path, compression="ZLIB")) == [b"small record"]
    assert list(Reader(path)) == [b"small record"]  # detected


def test_iterating_past_the_end_and_a_bad_file(tmp_path: Path) -> None:
    # testIterator (ZLIB, next() to StopIteration) and testBadFile (14 bytes of a record)
    path = tmp_path / "compressed_records"
    records = [b"Record 0 of file %d" % i for i in range(7)]
    with Writer(path, compression="ZLIB") as writer:
        for record in records:
            writer.write(record)
    iterator = iter(Reader(path, compression="ZLIB"))
    assert [next(iterator) for _ in records] == records
    with pytest.raises(StopIteration):
        next(iterator)
    bad = tmp_path / "bad_file_truncated"
    bad.write_bytes(framed(b"123", tmp_path)[:14])
    with pytest.raises(RecordError, match="cut short"):
        list(Reader(bad))


# ------------------------------------------------------------------ following a growing file


def test_reading_a_growing_file_preserves_the_read_offset(tmp_path: Path) -> None:
    # testReadGrowingFile_preservesReadOffset
    path = tmp_path / "file.tfrecord"
    with Writer(path, atomic=False) as writer:
        writer.write(b"one")
        writer.write(b"two")
        writer.flush()
        iterator = iter(Reader(path))
        assert next(iterator) == b"one"
        assert next(iterator) == b"two"
        for _ in range(2):
            with pytest.raises(StopIteration):
                next(iterator)
        writer.write(b"three")
        writer.flush()
        assert next(iterator) == b"three"
        with pytest.raises(StopIteration):
            next(iterator)


@pytest.mark.parametrize("how", ["reader", "read_records"])
def test_a_record_cut_short_raises_until_it_is_finished(tmp_path: Path, how: str) -> None:
    # testReadTruncatedFile_preservesReadOffset
    record = framed(b"truncated", tmp_path)
    path = tmp_path / "truncated_file"
    with Writer(path) as writer:
        writer.write(b"good")
    with open(path, "ab", buffering=0) as f:
        f.write(record[:-1])
        iterator = iter(Reader(path)) if how == "reader" else read_records(path)
        assert next(iterator) == b"good"
        for _ in range(2):
            with pytest.raises(RecordError, match="record 1 at byte offset 20") as info:
                next(iterator)
            assert "cut short" in str(info.value)
            assert getattr(info.value, "offset") == 20  # noqa: B009
        f.write(record[-1:])
        assert next(iterator) == b"truncated"
        with pytest.raises(StopIteration):
            next(iterator)


def test_skip_mode_counts_a_cut_tail_and_a_new_for_loop_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "a.tfrecord"
    with Writer(path) as writer:
        writer.write(b"good")
    with open(path, "ab") as f:
        f.write(framed(b"cut", tmp_path)[:-2])
    reader = Reader(path, on_error="skip")
    assert list(reader) == [b"good"]
    assert reader.skipped == 1
    assert list(reader) == [b"good"]  # a new pass, counted afresh
    assert (reader.count, reader.skipped) == (1, 1)


_WRITER = """
import sys, time
from hublayer.records import Writer
count, size = int(sys.argv[2]), int(sys.argv[3])
with Writer(sys.argv[1], atomic=False) as writer:
    for i in range(count):
        writer.write(bytes([i % 251]) * size)
        writer.flush()
        time.sleep(0.01)
"""


def test_a_follower_reads_every_record_of_a_concurrent_writer(tmp_path: Path) -> None:
    path = tmp_path / "events.tfrecord"
    count, size = 40, 3 << 20  # 3 MiB records: written in pieces, so the follower sees halves
    path.write_bytes(b"")
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(count), str(size)],
        stderr=subprocess.PIPE,
    )
    got: list[bytes] = []
    cut_short: list[str] = []
    iterator = iter(Reader(path, compression=""))
    deadline = time.monotonic() + 120
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(next(iterator))
        except StopIteration:
            time.sleep(0.005)
        except RecordError as error:
            cut_short.append(str(error))
            time.sleep(0.005)
    _, errors = writer.communicate(timeout=60)
    assert writer.returncode == 0, errors.decode()
    assert len(got) == count
    assert all(r == bytes([i % 251]) * size for i, r in enumerate(got))
    with pytest.raises(StopIteration):
        next(iterator)
    assert all("cut short" in e or "truncated length header" in e for e in cut_short)
    print(f"records cut short while followed: {len(cut_short)}")


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_a_compressed_stream_being_written_is_followed_and_its_open_end_reported(
    tmp_path: Path, compression: str
) -> None:
    path = tmp_path / "events.tfrecord"
    writer = Writer(path, compression=compression, atomic=False)
    writer.write(b"one")
    writer.flush()
    iterator = iter(Reader(path, compression=compression))
    assert next(iterator) == b"one"
    with pytest.raises(RecordError, match=f"end of the file inside the {compression} stream"):
        next(iterator)  # no end marker yet: cut short, or still being written
    writer.write(b"two")
    writer.close()
    assert next(iterator) == b"two"
    with pytest.raises(StopIteration):
        next(iterator)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a finished file cut short is no clean end
    with pytest.raises(RecordError):
        list(Reader(path, compression=compression))


def test_gzip_files_of_several_members_read_whole(tmp_path: Path) -> None:
    members = b"".join(gzip.compress(framed(r, tmp_path)) for r in (b"a", b"b", b"c"))
    path = tmp_path / "members.gz"
    path.write_bytes(members)
    assert list(Reader(path)) == [b"a", b"b", b"c"]


@pytest.mark.parametrize("atomic", [True, False])
def test_a_writer_left_open_leaves_no_temp_file(tmp_path: Path, atomic: bool) -> None:
    # testWriteAndLeaveOpen: no crash, and nothing half-written left behind.
    writer = Writer(tmp_path / "left.tfrecord", compression="GZIP", atomic=atomic)
    for i in range(20):
        writer.write(b"Record %d" % i)
    del writer
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ([] if atomic else ["left.tfrecord"])
    if not atomic:
        assert len(list(Reader(tmp_path / "left.tfrecord"))) == 20


def _open_descriptors(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path.resolve())
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_loop_left_early_closes_its_file_at_once(tmp_path: Path) -> None:
    first = tmp_path / "a.tfrecord"
    second = tmp_path / "b.tfrecord"
    for path in (first, second):
        with Writer(path) as writer:
            for i in range(3):
                writer.write(b"%d" % i)
    gc.disable()  # at once: by reference counting, not by a garbage collection later
    try:
        records = read_records([first, second])
        assert [next(records) for _ in range(4)] == [b"0", b"1", b"2", b"0"]
        assert (_open_descriptors(first), _open_descriptors(second)) == (0, 1)
        del records
        assert _open_descriptors(second) == 0
        own = iter(Reader(first).open())
        assert next(own) == b"0"
        assert _open_descriptors(first) == 1
        del own
        assert _open_descriptors(first) == 0
    finally:
        gc.enable()


def test_iterators_keep_their_place_after_the_end_and_after_an_error(tmp_path: Path) -> None:
    path = tmp_path / "grow.tfrecord"
    writer = Writer(path, atomic=False)
    writer.write(b"one")
    writer.flush()
    for records in (iter(Reader(path).open()), read_records(path)):
        assert list(records) == [b"one"]
        assert next(records, None) is None  # still at the end, and still alive
    following = [iter(Reader(path).open()), read_records(path)]
    for records in following:
        assert list(records) == [b"one"]
    writer.write(b"two")
    writer.flush()
    whole = path.read_bytes()
    with open(path, "ab") as file:  # a record cut short after "two"
        file.write(framed(b"three", tmp_path)[:14])
    for records in following:
        assert next(records) == b"two"
        with pytest.raises(RecordError, match="cut short"):
            next(records)
        with pytest.raises(RecordError, match="cut short"):
            next(records)  # retried, the same record
    path.write_bytes(whole + framed(b"three", tmp_path))
    for records in following:
        assert list(records) == [b"three"]
    writer.close()
