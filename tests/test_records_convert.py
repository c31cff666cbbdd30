"""Converters: image folders, CSV, Parquet and numpy arrays to shards."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hublayer.records import (
    convert_csv,
    convert_images,
    convert_parquet,
    decode_example,
    inspect,
    read_records,
    write_arrays,
)


def _save(path: Path, size: tuple[int, int], fmt: str, mode: str = "RGB") -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new(mode, size, color=128).save(buffer, format=fmt)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i in range(5):
        _save(root / "cat" / f"c{i}.jpg", (40, 30), "JPEG")
        _save(root / "dog" / f"d{i}.png", (64, 48), "PNG")
    _save(root / "dog" / "old.bmp", (20, 20), "BMP")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def test_image_folder_keeps_bytes_and_writes_a_label_map(folder: Path, tmp_path: Path) -> None:
    summary = convert_images(folder, tmp_path / "out" / "train", shards=3)
    assert summary.count == 11
    assert summary.skipped == 1
    assert summary.skipped_examples == ("dog/notes.txt (not an image)",)
    assert [p.name for p in summary.paths] == [f"train-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert summary.nbytes == sum(p.stat().st_size for p in summary.paths)
    assert summary.label_map == tmp_path / "out" / "train.label_map.json"
    assert json.loads(summary.label_map.read_text())["classes"] == ["cat", "dog"]
    examples = {
        decode_example(r, numpy=False)["filename"][0].decode(): decode_example(r, numpy=False)
        for r in read_records(summary.paths)
    }
    assert examples["cat/c0.jpg"]["image"] == [(folder / "cat" / "c0.jpg").read_bytes()]
    assert examples["dog/d1.png"]["label"] == [1]
    assert examples["dog/old.bmp"]["image"][0][:2] == b"\xff\xd8"  # BMP became a JPEG
    assert "Wrote 11 examples" in str(summary)
    assert "Skipped 1 file(s)" in str(summary)
    schema = inspect(tmp_path / "out")
    assert schema["image"].content == "image"
    assert schema["image"].image is not None
    assert schema["image"].image.formats == ("jpeg", "png")


def test_image_folder_max_size_reencodes_large_images(folder: Path, tmp_path: Path) -> None:
    summary = convert_images(folder, tmp_path / "small", shards=1, max_size=32)
    image = inspect(summary.paths)["image"].image
    assert image is not None
    assert max(image.max_height, image.max_width) <= 32
    assert image.formats == ("jpeg",)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        convert_images(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="class subfolders"):
        convert_images(tmp_path / "flat", tmp_path / "out")
    (tmp_path / "flat" / "a").mkdir()
    (tmp_path / "flat" / "a" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="none of them a readable image"):
        convert_images(tmp_path / "flat", tmp_path / "out", shards=2)
    assert not list(tmp_path.glob("out*"))


def test_csv_columns_get_the_narrowest_kind(tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    source.write_text('id,score,name,maybe\n1,0.5,ann,3\n2,1,bob,\n3,2.5e1,"c, d",4\n')
    summary = convert_csv(source, tmp_path / "table.tfrecord")
    rows = [decode_example(r, numpy=False) for r in read_records(summary.paths)]
    assert rows[0] == {"id": [1], "score": [0.5], "name": [b"ann"], "maybe": [3]}
    assert rows[2]["name"] == [b"c, d"]
    assert rows[2]["score"] == [25.0]
    assert "maybe" not in rows[1]
    schema = inspect(summary.paths)
    assert (schema["id"].kind, schema["score"].kind, schema["name"].kind) == (
        "int64",
        "float",
        "bytes",
    )
    assert schema["maybe"].missing == pytest.approx(1 / 3)


def test_csv_with_a_short_row_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("a,b\n1,2\n3\n")
    with pytest.raises(ValueError, match="on line 3"):
        convert_csv(source, tmp_path / "bad.tfrecord")
    assert not (tmp_path / "bad.tfrecord").exists()


def test_parquet_rows_become_examples(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "x": [1.5, 2.5, None],
            "k": [1, 2, 3],
            "flag": [True, False, True],
            "text": ["a", "b", "c"],
            "tokens": [[1, 2], [], [3]],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    summary = convert_parquet(tmp_path / "t.parquet", tmp_path / "t", shards=2)
    rows = sorted(
        (decode_example(r, numpy=False) for r in read_records(summary.paths)),
        key=lambda r: r["k"],
    )
    assert rows[0] == {"x": [1.5], "k": [1], "flag": [1], "text": [b"a"], "tokens": [1, 2]}
    assert "x" not in rows[2]
    assert rows[1]["tokens"] == []


def test_write_arrays_round_trips(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    y = np.array(["a", "b", "c", "d", "e", "f"])
    summary = write_arrays(tmp_path / "arrays", {"x": x, "y": y, "i": np.arange(6)}, shards=2)
    assert summary.count == 6
    rows = sorted((decode_example(r) for r in read_records(summary.paths)), key=lambda r: r["i"][0])
    np.testing.assert_array_equal(rows[3]["x"], x[3].ravel())
    assert rows[3]["y"].tolist() == [b"d"]
    with pytest.raises(ValueError, match="same first dimension"):
        write_arrays(tmp_path / "bad", {"x": x, "y": y[:2]})


def test_records_package_imports_neither_tensorflow_nor_keras() -> None:
    code = (
        "import sys; import hublayer.records as r; "
        "r.inspect; r.Schema; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
