"""A file that changes size while a Reader reads it: an error, never a crash or a short read.

The Reader used to memory-map plain files, and a mapped file truncated by another process
kills the reader with SIGBUS. It now reads with ``pread`` and checks the size it saw when
it opened the file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hublayer.errors import RecordError
from hublayer.records import Reader, Writer

RECORD = 1000  # bytes of data; 1016 on disk with the framing


def _write(path: Path, count: int) -> Path:
    with Writer(path) as writer:
        for i in range(count):
            writer.write(bytes([i % 256]) * RECORD)
    return path


@pytest.mark.parametrize("on_error", ["raise", "skip"])
@pytest.mark.parametrize("keep", [100 * (RECORD + 16), 100 * (RECORD + 16) + 7])
def test_a_file_truncated_while_read_raises_a_record_error(
    tmp_path: Path, on_error: str, keep: int
) -> None:
    # keep: cut at a record boundary (a valid, shorter file) or inside a record.
    path = _write(tmp_path / "a.tfrecord", 1000)
    reader = Reader(path, buffer_size=8192, on_error=on_error)  # type: ignore[arg-type]
    seen: list[bytes] = []

    def read_and_truncate() -> None:
        with reader:
            for i, record in enumerate(reader):
                seen.append(record)
                if i == 4:
                    os.truncate(path, keep)

    with pytest.raises(RecordError, match="shrank from 1,016,000 to") as caught:
        read_and_truncate()
    fields = vars(caught.value)  # RecordError's file, index and offset
    assert fields["file"] == str(path)
    assert fields["offset"] is not None
    assert fields["offset"] <= keep
    assert "rename it into place" in str(caught.value)
    # Every record returned before the error is whole and correct.
    assert 5 <= len(seen) < 1000
    assert all(r == bytes([i % 256]) * RECORD for i, r in enumerate(seen))


def test_a_file_that_grows_while_read_is_read_to_its_size_when_opened(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 50)
    extra = _write(tmp_path / "b.tfrecord", 10).read_bytes()
    count = 0
    with Reader(path, buffer_size=4096) as reader:
        for i, _ in enumerate(reader):
            count += 1
            if i == 2:
                with open(path, "ab") as f:
                    f.write(extra)
    assert count == 50
    with Reader(path) as reader:
        assert sum(1 for _ in reader) == 60


def test_records_larger_than_the_buffer_and_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "big.tfrecord"
    with Writer(path) as writer:
        for size in (10, 100_000, 3, 250_000):
            writer.write(b"z" * size)
    with Reader(path, buffer_size=64) as reader:
        assert [len(r) for r in reader] == [10, 100_000, 3, 250_000]
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    with Reader(empty) as reader:
        assert list(reader) == []


def test_a_pipe_is_read_in_order(tmp_path: Path) -> None:
    source = _write(tmp_path / "a.tfrecord", 20).read_bytes()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(source)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with Reader(fifo, compression="") as reader:
            records = list(reader)
    finally:
        writer.join()
    assert len(records) == 20
    assert records[3] == bytes([3]) * RECORD
