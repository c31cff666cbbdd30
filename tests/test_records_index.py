"""records.index: DALI's index format, where it lives, when it is reused, rebuilt or refused."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hublayer.cli._app import cli
from hublayer.errors import RecordError
from hublayer.records import Source, Writer, encode_example, expand_files, index
from hublayer.records import _index as index_module

GOLDEN = Path(__file__).parent / "data" / "records"


def _write(path: Path, count: int, *, start: int = 0, compression: str = "") -> Path:
    with Writer(path, compression=compression) as writer:
        for i in range(start, start + count):
            writer.write(encode_example({"i": i, "x": np.full(i % 4, i, np.float32)}))
    return path


def _frames(path: Path) -> list[tuple[int, int]]:
    """(offset, frame size) of every record, walked from the file's own headers."""
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length + 16))
        pos += length + 16
    return out


def _lines(path: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()]  # type: ignore[misc]


def test_index_matches_the_files_framing_and_goes_beside_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 50)
    (written,) = index(path)
    assert written == tmp_path / "a.tfrecord.idx"
    assert _lines(written) == _frames(path)
    assert written.read_text().endswith("\n")


def test_index_of_tensorflows_golden_file(tmp_path: Path) -> None:
    copy = tmp_path / "plain.tfrecord"
    copy.write_bytes((GOLDEN / "plain.tfrecord").read_bytes())
    (written,) = index(copy)
    assert _lines(written) == _frames(copy)
    assert len(_lines(written)) == len((GOLDEN / "records.hex").read_text().splitlines())


def test_index_is_byte_for_byte_the_tfrecord_packages(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 37)
    theirs = tmp_path / "a.tfindex"
    # The tfrecord package cannot share a process with TensorFlow: run it alone.
    code = (
        "import sys; from tfrecord.tools.tfrecord2idx import create_index; "
        "create_index(sys.argv[1], sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(theirs)], check=True)
    (ours,) = index(path)
    assert ours.read_bytes() == theirs.read_bytes()


def test_an_empty_file_has_an_empty_index(tmp_path: Path) -> None:
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    (written,) = index(path)
    assert written.read_bytes() == b""
    assert len(Source(path)) == 0


def test_a_current_index_is_reused_without_a_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "a.tfrecord", 20)
    (first,) = index(path)
    written = first.stat().st_mtime_ns

    def no_scan(*args: object) -> None:
        raise AssertionError("a current index was scanned again")

    monkeypatch.setattr(index_module, "_scan", no_scan)
    (again,) = index(path)
    assert again == first
    assert first.stat().st_mtime_ns == written
    assert len(Source(path)) == 20


def test_an_index_of_ours_edited_since_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 20)
    (written,) = index(path)
    written.write_text("0 16\n")  # its stamp no longer matches it
    assert len(Source(path)) == 20
    assert _lines(written) == _frames(path)


def test_a_stale_index_of_ours_is_rebuilt_when_the_file_grows(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 10)
    (written,) = index(path)
    _write(path, 25)  # the file is written again, with more records
    (again,) = index(path)
    assert again == written
    assert _lines(again) == _frames(path)
    assert len(Source(path)) == 25


def test_a_foreign_index_that_matches_is_adopted_unchanged(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 12)
    foreign = tmp_path / "a.tfrecord.idx"
    foreign.write_text("".join(f"{o} {s}\n" for o, s in _frames(path)))
    os.utime(foreign, ns=(1, 1))
    (written,) = index(path)
    assert written == foreign
    assert foreign.stat().st_mtime_ns == 1  # checked against a scan, not rewritten


def test_a_foreign_index_that_disagrees_is_refused_then_replaced(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 12)
    foreign = tmp_path / "a.tfrecord.idx"
    foreign.write_text("0 20\n20 20\n")
    with pytest.raises(RecordError, match="did not write") as caught:
        index(path)
    assert "overwrite=True" in str(caught.value)
    assert "--overwrite" in caught.value.cli_message()
    assert foreign.read_text() == "0 20\n20 20\n"  # left as it was
    with pytest.raises(RecordError):
        Source(path)  # never trusted by a reader either
    (written,) = index(path, overwrite=True)
    assert _lines(written) == _frames(path)


def test_a_read_only_folder_gets_its_index_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hublayer_env: Path
) -> None:
    path = _write(tmp_path / "data" / "a.tfrecord", 8)
    # Tests run as root, for whom no folder is read-only: say so the way os.access would.
    monkeypatch.setattr(index_module, "_writable", lambda folder: False)
    (written,) = index(path)
    assert written.is_relative_to(hublayer_env / "records-index")
    assert written.name == "a.tfrecord.idx"
    assert not (tmp_path / "data" / "a.tfrecord.idx").exists()
    assert _lines(written) == _frames(path)
    assert Source(path)[7]["i"].tolist() == [7]


def test_folders_and_patterns_skip_index_files(tmp_path: Path) -> None:
    _write(tmp_path / "a.tfrecord", 3)
    _write(tmp_path / "b.tfrecord", 3)
    index(tmp_path)
    (tmp_path / "c.tfindex").write_text("0 16\n")
    assert [Path(p).name for p in expand_files(tmp_path)] == ["a.tfrecord", "b.tfrecord"]
    assert len(Source(tmp_path)) == 6


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_compressed_files_are_refused_with_the_way_out(tmp_path: Path, compression: str) -> None:
    path = _write(tmp_path / "a.tfrecord.gz", 5, compression=compression)
    with pytest.raises(RecordError, match=compression) as caught:
        index(path)
    assert caught.value.file == str(path)
    assert "records.convert_records" in str(caught.value)
    assert "records convert records" in caught.value.cli_message()
    assert "--compression none" in caught.value.cli_message()
    with pytest.raises(RecordError, match="cannot be read at random"):
        Source(path)


def test_the_way_out_works(tmp_path: Path) -> None:
    packed = _write(tmp_path / "a.tfrecord.gz", 30, compression="GZIP")
    result = CliRunner().invoke(
        cli,
        ["records", "convert", "records", str(packed), str(tmp_path / "plain.tfrecord")],
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 30 examples" in result.output
    assert Source(tmp_path / "plain.tfrecord")[29]["i"].tolist() == [29]


def test_a_corrupt_length_is_indexed_up_to_the_next_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 6)
    frames = _frames(path)
    data = bytearray(path.read_bytes())
    data[frames[3][0]] ^= 0xFF  # the 4th record's length: its end is unknown
    path.write_bytes(bytes(data))
    (written,) = index(path)
    assert _lines(written) == frames  # the next header is found again
    src = Source(path)
    with pytest.raises(RecordError, match="length whose CRC") as caught:
        src[3]
    assert (caught.value.file, caught.value.index, caught.value.offset) == (
        str(path),
        3,
        frames[3][0],
    )
    assert [src[i]["i"].tolist() for i in (2, 4, 5)] == [[2], [4], [5]]


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tfrecord", 6)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(RecordError, match="cut short") as caught:
        index(path)
    assert caught.value.index == 5


def test_remote_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no such file"):
        index(tmp_path / "missing.tfrecord")
    fsspec = pytest.importorskip("fsspec")
    remote = "memory://bucket/h-index/a.tfrecord"
    fsspec.filesystem("memory").pipe(remote, _write(tmp_path / "a.tfrecord", 2).read_bytes())
    with pytest.raises(RecordError, match="local") as caught:
        index(remote)
    assert caught.value.file == remote


def test_cli_writes_indexes_and_counts_records(tmp_path: Path) -> None:
    _write(tmp_path / "a.tfrecord", 4)
    _write(tmp_path / "b.tfrecord", 9)
    result = CliRunner().invoke(cli, ["records", "index", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{tmp_path / 'a.tfrecord.idx'}  4 records",
        f"{tmp_path / 'b.tfrecord.idx'}  9 records",
    ]


def test_cli_refuses_a_foreign_index_naming_the_flag(tmp_path: Path) -> None:
    _write(tmp_path / "a.tfrecord", 4)
    (tmp_path / "a.tfrecord.idx").write_text("0 16\n")
    result = CliRunner().invoke(cli, ["records", "index", str(tmp_path / "a.tfrecord")])
    assert result.exit_code == 1
    assert "--overwrite" in result.output
    result = CliRunner().invoke(
        cli, ["records", "index", "--overwrite", str(tmp_path / "a.tfrecord")]
    )
    assert result.exit_code == 0, result.output
    assert "4 records" in result.output


def test_the_next_header_is_found_across_read_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "_CHUNK", 40)  # reads smaller than one record
    path = tmp_path / "a.tfrecord"
    with Writer(path) as writer:
        for i in range(8):
            writer.write(encode_example({"i": i, "pad": b"x" * 90}))
    frames = _frames(path)
    data = bytearray(path.read_bytes())
    data[frames[5][0] + 2] ^= 0x10
    path.write_bytes(bytes(data))
    (written,) = index(path)
    assert _lines(written) == frames
