"""`hublayer records inspect|convert` prints tables, JSON and summaries; bad input exits 1."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hublayer.cli import main
from hublayer.cli._app import cli
from hublayer.records import Schema, Writer, encode_example


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    with Writer(tmp_path / "data" / "train", shards=2) as writer:
        for i in range(30):
            writer.write(
                encode_example({"x": np.array([i, 0.5], np.float32), "label": i % 3, "name": "ab"})
            )
    return tmp_path / "data"


def test_inspect_prints_a_table_with_samples(shards: Path) -> None:
    result = CliRunner().invoke(cli, ["records", "inspect", str(shards)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 file(s), 30 records"
    assert lines[1].split() == ["feature", "kind", "length", "missing", "content", "samples"]
    assert any(line.split()[:3] == ["label", "int64", "1"] for line in lines)
    assert "[0, 0.5]" in result.output
    assert "'ab'" in result.output


def test_inspect_json_is_a_loadable_schema(shards: Path) -> None:
    pattern = str(shards / "train-*.tfrecord")
    result = CliRunner().invoke(cli, ["records", "inspect", pattern, "--json", "--sample", "5"])
    assert result.exit_code == 0, result.output
    schema = Schema.from_json(result.output)
    assert schema.records == 6  # 3 from each of the 2 files
    assert schema.estimated_records == 30
    assert json.loads(result.output)["features"][0]["name"] == "label"


def test_inspect_all_counts_exactly(shards: Path) -> None:
    result = CliRunner().invoke(cli, ["records", "inspect", str(shards), "--all", "--json"])
    assert result.exit_code == 0, result.output
    assert Schema.from_json(result.output).total_records == 30


def test_inspect_missing_and_corrupt_files_exit_1(tmp_path: Path, shards: Path) -> None:
    result = CliRunner().invoke(cli, ["records", "inspect", str(tmp_path / "nope.tfrecord")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output
    damaged = shards / "train-00000-of-00002.tfrecord"
    damaged.write_bytes(damaged.read_bytes()[:-5])
    assert main(["records", "inspect", str(damaged), "--all"]) == 1


def test_convert_images_prints_a_summary(tmp_path: Path) -> None:
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            buffer = io.BytesIO()
            Image.new("RGB", (50, 40)).save(buffer, format="JPEG")
            (tmp_path / "photos" / name / f"{i}.jpg").write_bytes(buffer.getvalue())
    out = tmp_path / "out" / "train"
    args = ["records", "convert", "images", str(tmp_path / "photos"), str(out), "--shards", "2"]
    result = CliRunner().invoke(cli, [*args, "--max-size", "20"])
    assert result.exit_code == 0, result.output
    assert "Wrote 6 examples" in result.output
    assert "in 2 shard(s)" in result.output
    assert "train.label_map.json" in result.output
    assert (tmp_path / "out" / "train-00001-of-00002.tfrecord").exists()


def test_convert_csv_and_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    out = tmp_path / "t.tfrecord"
    result = CliRunner().invoke(
        cli, ["records", "convert", "csv", str(tmp_path / "t.csv"), str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 2 examples" in result.output
    pq.write_table(pa.table({"a": [1, 2, 3]}), tmp_path / "t.parquet")
    args = ["records", "convert", "parquet", str(tmp_path / "t.parquet"), str(tmp_path / "p")]
    result = CliRunner().invoke(cli, [*args, "--shards", "3", "--compression", "gzip"])
    assert result.exit_code == 0, result.output
    assert "Wrote 3 examples" in result.output
    assert (tmp_path / "p-00002-of-00003.tfrecord").read_bytes()[:2] == b"\x1f\x8b"


def test_progress_bar_goes_to_stderr_when_asked(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a\n" + "\n".join(str(i) for i in range(50)) + "\n")
    args = ["records", "convert", "csv", str(tmp_path / "t.csv"), str(tmp_path / "o.tfrecord")]
    quiet = CliRunner().invoke(cli, args)
    assert quiet.stderr == ""
    loud = CliRunner().invoke(cli, [*args, "--progress", "--overwrite"])
    assert loud.exit_code == 0, loud.output
    assert "rows" in loud.stderr
    assert "/50 " in loud.stderr
    assert loud.stdout.startswith("Wrote 50 examples")


def test_convert_a_missing_folder_exits_1(tmp_path: Path) -> None:
    args = ["records", "convert", "csv", str(tmp_path / "none.csv"), str(tmp_path / "o")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "Error:" in result.output


def test_help_shows_examples() -> None:
    for args in (["records"], ["records", "inspect"], ["records", "convert", "images"]):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0
        assert "hublayer records" in result.output
