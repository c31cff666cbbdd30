"""Schema inference: every kind, variable lengths, images, text, sampling, JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hublayer.errors import RecordError, SchemaError
from hublayer.records import Schema, Writer, encode_example, inspect
from hublayer.records._sniff import is_text, sniff_image


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB", **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (size[1], size[0]), color=0).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _write(path: Path, rows: list[dict[str, Any]], shards: int | None = None) -> list[Path]:
    with Writer(path, shards=shards) as writer:
        for row in rows:
            writer.write(encode_example(row))
    return list(writer.paths)


def _mixed_rows(n: int = 12) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "label": i % 3,
            "embedding": np.full(3, i, np.float32),
            "tokens": list(range(i % 5)),  # 0..4 values: variable, sometimes empty
            "photo": _image("JPEG", (20 + i, 30)),
            "mask": _image("PNG", (8, 8), mode="L"),
            "caption": f"a photo of thing {i} ✓",
            "blob": bytes([0xFF, 0x00, i]),
            "anim": _image("GIF", (5, 6), mode="P"),
            "empty": [],
            "mixed": 1.5 if i % 2 else 7,
        }
        if i % 4 == 0:
            row["sometimes"] = b"x"
        rows.append(row)
    return rows


@pytest.fixture
def mixed(tmp_path: Path) -> Schema:
    _write(tmp_path / "mixed.tfrecord", _mixed_rows())
    return inspect(tmp_path / "mixed.tfrecord")


def test_kinds_and_lengths(mixed: Schema) -> None:
    assert mixed.records == mixed.total_records == 12
    assert mixed.names == tuple(sorted(mixed.names))
    label, embedding, tokens = mixed["label"], mixed["embedding"], mixed["tokens"]
    assert (label.kind, label.is_fixed, label.shape) == ("int64", True, ())
    assert (embedding.kind, embedding.shape) == ("float", (3,))
    assert tokens.kind == "int64"
    assert (tokens.min_length, tokens.max_length, tokens.is_fixed) == (0, 4, False)
    assert tokens.mean_length == pytest.approx(np.mean([i % 5 for i in range(12)]))
    assert tokens.length == f"0-4 (mean {tokens.mean_length:.3g})"
    assert mixed["empty"].kind is None
    assert mixed["mixed"].kind == "mixed"


def test_missing_fraction(mixed: Schema) -> None:
    assert mixed["sometimes"].missing == pytest.approx(9 / 12)
    assert mixed["sometimes"].present == 3
    assert not mixed["sometimes"].is_fixed
    assert mixed["label"].missing == 0.0


def test_images_and_text_are_recognized(mixed: Schema) -> None:
    photo = mixed["photo"]
    assert photo.content == "image"
    assert photo.image is not None
    assert photo.image.formats == ("jpeg",)
    assert (photo.image.min_height, photo.image.max_height) == (20, 31)
    assert (photo.image.min_width, photo.image.max_width, photo.image.size) == (30, 30, None)
    assert photo.image.channels == (3,)
    assert mixed["mask"].image is not None
    assert mixed["mask"].image.channels == (1,)
    assert mixed["mask"].image.size == (8, 8)
    assert mixed["anim"].image is not None
    assert mixed["anim"].image.formats == ("gif",)
    assert mixed["caption"].content == "text"
    assert mixed["blob"].content == "binary"
    assert [f.name for f in mixed.images()] == ["anim", "mask", "photo"]
    assert [f.name for f in mixed.texts()] == ["caption", "sometimes"]


def test_table_shows_features_and_samples(mixed: Schema) -> None:
    table = str(mixed)
    assert table.splitlines()[0] == "1 file(s), 12 records"
    assert "feature" in table.splitlines()[1]
    assert "jpeg 20x30x3" in table
    assert "'a photo of thing 0 ✓'" in table
    assert "0-4 (mean" in table


def test_parse_spec_parses_the_records(tmp_path: Path, mixed: Schema) -> None:
    tf = pytest.importorskip("tensorflow")
    spec = mixed.parse_spec(["label", "embedding", "tokens", "sometimes", "photo"])
    assert spec["label"] == tf.io.FixedLenFeature([], tf.int64)
    assert spec["embedding"] == tf.io.FixedLenFeature([3], tf.float32)
    assert isinstance(spec["tokens"], tf.io.RaggedFeature)
    assert isinstance(mixed.parse_spec(["tokens"], ragged=False)["tokens"], tf.io.VarLenFeature)
    rows = [encode_example(r) for r in _mixed_rows()]
    parsed = tf.io.parse_example(rows, spec)
    assert parsed["label"].shape == (12,)
    assert parsed["embedding"].shape == (12, 3)
    assert parsed["tokens"].row_lengths().numpy().tolist() == [i % 5 for i in range(12)]
    assert "mixed" not in mixed.parse_spec()
    with pytest.raises(SchemaError, match="'mixed'") as info:
        mixed.parse_spec(["mixed"])
    assert info.value.feature == "mixed"


def test_unknown_feature_lists_the_available_ones(mixed: Schema) -> None:
    with pytest.raises(SchemaError, match="Available: anim, blob"):
        mixed["labels"]


def test_json_round_trip(tmp_path: Path, mixed: Schema) -> None:
    path = mixed.save(tmp_path / "schema.json")
    assert Schema.load(path) == mixed
    assert json.loads(path.read_text())["format"] == "hublayer.records.Schema"
    with pytest.raises(SchemaError, match="not JSON"):
        Schema.from_json("{")
    with pytest.raises(SchemaError, match="hublayer schema"):
        Schema.from_json('{"features": []}')


def test_sampling_reads_a_part_and_estimates_the_count(tmp_path: Path) -> None:
    rows = [{"x": np.array([i, i], np.float32)} for i in range(400)]
    files = _write(tmp_path / "big", rows, shards=4)
    schema = inspect(files, sample=20)
    assert schema.records == 20
    assert schema.total_records is None
    assert schema.estimated_records == pytest.approx(400, rel=0.05)
    assert schema["x"].shape == (2,)
    full = inspect(tmp_path, sample=None)
    assert full.total_records == 400
    assert len(full.files) == 4
    assert inspect(files, sample=3).records == 3  # fewer samples than files


def test_sampling_a_compressed_file_estimates_through_the_compression_ratio(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    with Writer(tmp_path / "z.tfrecord.gz", compression="GZIP") as writer:
        for i in range(5000):
            writer.write(encode_example({"x": rng.random(10, dtype=np.float32), "i": i}))
    schema = inspect(writer.paths, sample=200)
    assert schema.compression == "GZIP"
    assert schema.estimated_records == pytest.approx(5000, rel=0.2)


def test_empty_and_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(SchemaError, match="no records"):
        inspect(tmp_path / "empty.tfrecord")
    with Writer(tmp_path / "foreign.tfrecord") as writer:
        writer.write(b"\x0a\xff\xff")
    with pytest.raises(RecordError, match="record 0 at byte offset 0") as info:
        inspect(tmp_path / "foreign.tfrecord")
    assert info.value.file == str(tmp_path / "foreign.tfrecord")
    with pytest.raises(RecordError, match="no such file"):
        inspect(tmp_path / "missing.tfrecord")
    with pytest.raises(ValueError, match="sample"):
        inspect(tmp_path / "empty.tfrecord", sample=0)


def test_sniffing_headers() -> None:
    exif = Image.Exif()
    exif[0x010F] = "camera"
    assert sniff_image(_image("JPEG", (7, 9), exif=exif.tobytes())) == ("jpeg", 7, 9, 3)
    assert sniff_image(_image("JPEG", (7, 9), progressive=True)) == ("jpeg", 7, 9, 3)
    assert sniff_image(_image("JPEG", (4, 4), mode="L")) == ("jpeg", 4, 4, 1)
    assert sniff_image(_image("PNG", (3, 5), mode="RGBA")) == ("png", 3, 5, 4)
    assert sniff_image(_image("JPEG", (7, 9))[:40]) is None
    assert sniff_image(b"\xff\xd8\xff") is None
    assert sniff_image(b"hello") is None
    assert is_text(b"tab\tand\nnewline")
    assert not is_text(b"bell\x07")
    assert is_text(("é" * 40_000).encode(), limit=1001)  # a cut character is fine
