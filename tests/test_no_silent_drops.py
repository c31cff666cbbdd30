"""No silent drops (issue #19): ``records.ray_dataset`` and ``embed`` never lose rows quietly.

A value of another kind than the schema says is a bad record (named, or skipped and
counted); skip counts reach the driver (also with ``log_to_driver=False``) and the
output folder's record; a shard is committed only when its rows add up, and a finished
one is never replaced. One local Ray (``num_cpus=2``) for the module.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hublayer
from hublayer import records, testing
from hublayer.cli import main
from hublayer.embed import embed
from hublayer.embed._job import Job
from hublayer.embed._output import ShardOutput
from hublayer.embed._record import EmbedRecord
from hublayer.errors import OutputExistsError, RecordError
from hublayer.records._ray_read import Piece, PieceCounts, columns_of, read_piece

tf = pytest.importorskip("tensorflow")

SIZE, PER_SHARD = 32, 8


def _example(i: int, *, tags: Any = None, size: int = SIZE) -> bytes:
    rng = np.random.default_rng(i)
    png = tf.io.encode_png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).numpy()
    feature = tf.train.Feature
    tag = tags if tags is not None else feature(int64_list=tf.train.Int64List(value=[i, 1]))
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": feature(bytes_list=tf.train.BytesList(value=[png])),
                "id": feature(bytes_list=tf.train.BytesList(value=[b"row-%03d" % i])),
                "tags": tag,
            }
        )
    )
    data: bytes = example.SerializeToString()
    return data


def _float_tags() -> Any:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[0.5]))


def _shard(
    path: Path, first: int, bad: dict[int, Any] | None = None, count: int = PER_SHARD
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(first, first + count):
            writer.write(_example(i, tags=(bad or {}).get(i), size=SIZE if count < 100 else 4))
    return path


def _offset(path: Path, record: int) -> int:
    data, offset = path.read_bytes(), 0
    for _ in range(record):
        offset += 16 + int.from_bytes(data[offset : offset + 8], "little")
    return offset


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_feature_vector(tmp_path_factory.mktemp("m") / "model", image_size=SIZE)


def test_a_value_of_another_kind_is_a_bad_record_in_the_read_task(tmp_path: Path) -> None:
    good = _shard(tmp_path / "good.tfrecord", 0)
    bad = _shard(tmp_path / "bad.tfrecord", 0, {3: _float_tags()})
    columns = columns_of(records.inspect(good), ["tags", "id"])
    piece = Piece(str(bad), "", bad.stat().st_size)
    with pytest.raises(RecordError) as caught:
        list(read_piece(piece, columns))
    error = caught.value
    assert (error.file, error.index, error.offset) == (str(bad), 3, _offset(bad, 3))
    assert error.feature == "tags"  # type: ignore[attr-defined]
    assert "'tags'" in str(error)
    assert "float" in str(error)
    assert str(bad) in str(error)

    counts = PieceCounts()
    rows = list(read_piece(piece, columns, on_error="skip", counts=counts))
    assert sum(len(b["id"]) for b in rows) == PER_SHARD - 1
    assert (counts.records, counts.skipped) == (PER_SHARD, 1)
    # a feature that is only checked (not a column) is checked all the same
    with pytest.raises(RecordError, match="'tags'"):
        list(read_piece(piece, columns_of(records.inspect(good), ["id"]), checks=columns[:1]))


def test_ray_dataset_raises_or_skips_and_counts_on_the_driver(
    local_ray: Any, tmp_path: Path
) -> None:
    good = _shard(tmp_path / "a.tfrecord", 0)
    bytes_tags = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))
    bad = _shard(tmp_path / "b.tfrecord", 100, {102: bytes_tags, 105: _float_tags()})
    schema = records.inspect(good)  # says: tags is an int64 list
    with pytest.raises(RecordError) as caught:
        records.ray_dataset([good, bad], schema).take_all()
    assert str(bad) in str(caught.value)
    assert f"offset {_offset(bad, 2)}" in str(caught.value)
    assert "'tags'" in str(caught.value)

    skipped = records.SkippedRecords()
    ds = records.ray_dataset([good, bad], schema, on_error="skip", skipped=skipped)
    rows = ds.take_all()
    assert len(rows) == 2 * PER_SHARD - 2
    assert all(r["tags"].dtype == np.int64 for r in rows)
    assert all(len(r["tags"]) == 2 for r in rows)
    assert skipped.total == 2  # Ray started with log_to_driver=False
    assert skipped.by_file() == {str(good): 0, str(bad): 2}
    assert skipped.file_counts(str(bad)) == (PER_SHARD, 2)
    assert ds.count() == 2 * PER_SHARD - 2
    assert skipped.total == 2  # read again: not doubled


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_embed_skips_count_per_shard_and_agree(
    model: str, tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "ray":
        request.getfixturevalue("local_ray")
    # The bad records lie past the 1,000 that the schema samples, as in real use.
    big = 1100
    bad = {1000 + 1090: _float_tags(), 1000 + 1095: _float_tags()}
    files = [
        _shard(tmp_path / "d/s-0.tfrecord", 0),
        _shard(tmp_path / "d/s-1.tfrecord", 1000, bad, count=big),
        _shard(tmp_path / "d/s-2.tfrecord", 20),
    ]
    out = tmp_path / "out"
    options: dict[str, Any] = {"keep": ["id", "tags"], "batch_size": 3, "engine": engine}
    if engine == "ray":
        options["num_workers"] = 1
    with pytest.raises(RecordError) as caught:
        embed(model, files, out, **options)
    assert str(files[1]) in str(caught.value)
    assert "'tags'" in str(caught.value)
    assert not (out / files[1].name).exists()

    result = embed(model, files, out, on_error="skip", **options)
    assert result.skipped == 2
    assert result.rows + PER_SHARD * result.shards_skipped == 2 * PER_SHARD + big - 2
    record = json.loads((out / ".hublayer-embed.json").read_text())
    entry = record["shards"][files[1].name]
    assert (entry["records"], entry["skipped"], entry["rows"]) == (big, 2, big - 2)
    assert record["shards"][files[0].name] == {
        "input": str(files[0]),
        "records": PER_SHARD,
        "skipped": 0,
        "rows": PER_SHARD,
    }
    ids = [
        bytes(records.decode_example(r)["id"][0]) for r in records.read_records(out / files[1].name)
    ]
    assert b"row-2090" not in ids
    assert len(ids) == big - 2


def test_a_short_shard_is_not_committed(tmp_path: Path) -> None:
    identity = {"model": "m"}
    record = EmbedRecord.claim(tmp_path, identity)
    job = Job("m", None, None, records.Schema.__new__(records.Schema), (), 4, "tfrecord", [])
    job.record = record
    out = ShardOutput(tmp_path / "a.tfrecord", "tfrecord")
    out.write({}, np.zeros((2, 4), np.float32))
    with pytest.raises(RecordError) as caught:
        job.finish(out, "data/a.tfrecord", records_met=4, skipped=1)
    message = str(caught.value)
    assert "'a.tfrecord'" in message
    assert "Expected 3 rows" in message
    assert "Received: 2 rows" in message
    assert not (tmp_path / "a.tfrecord").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    assert "a.tfrecord" not in json.loads((tmp_path / ".hublayer-embed.json").read_text())["shards"]


def test_a_finished_shard_is_never_replaced(tmp_path: Path) -> None:
    record = EmbedRecord.claim(tmp_path, {"model": "m"})
    target = tmp_path / "a.tfrecord"
    first = ShardOutput(target, "tfrecord")
    first.write({}, np.ones((2, 4), np.float32))
    first.commit(2, before_move=lambda: record.add(target, "a", records=2, skipped=0, rows=2))
    before = target.read_bytes()
    second = ShardOutput(target, "tfrecord")  # a concurrent run finishing the same shard
    second.write({}, np.zeros((2, 4), np.float32))
    with pytest.raises(OutputExistsError):
        second.commit(2)
    assert target.read_bytes() == before
    again = EmbedRecord.claim(tmp_path, {"model": "m"})
    assert again.finished(target, "a")  # kept: its rows match its entry
    with records.Writer(target) as writer:  # a file changed after it was written
        writer.write(records.encode_example({"embedding": np.ones(4, np.float32)}))
    with pytest.raises(OutputExistsError, match="2 rows"):
        again.finished(target, "a")


@pytest.mark.slow
def test_input_range_changes_the_embedding_and_the_assumption_is_visible(
    model: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [_shard(tmp_path / "d/s-0.tfrecord", 0)]
    layer = hublayer.KerasLayer(model)

    def direct(value_range: tuple[float, float]) -> np.ndarray:
        inputs = records.dataset(
            files, batch_size=8, shuffle=False, for_model=layer, image={"range": value_range}
        )
        return np.concatenate([np.asarray(layer(x)) for x in inputs])

    def embedded(out: Path) -> np.ndarray:
        return np.stack(
            [
                records.decode_example(r)["embedding"]
                for r in records.read_records(out / "s-0.tfrecord")
            ]
        )

    with caplog.at_level(logging.WARNING, logger="hublayer"):
        default = embed(model, files, tmp_path / "o1")
    assert any(
        r.levelno == logging.WARNING and "assumed: TF Hub convention" in r.getMessage()
        for r in caplog.records
    )
    assert default.assumed
    assert "input_range=" in default.assumed[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hublayer"):
        given = embed(model, files, tmp_path / "o2", input_range=(-1, 1))
    assert not given.assumed
    assert "values in [-1, 1]" in given.preprocessing
    assert not any("assumed" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(embedded(tmp_path / "o1"), direct((0, 1)), atol=1e-5)
    np.testing.assert_allclose(embedded(tmp_path / "o2"), direct((-1, 1)), atol=1e-5)
    assert not np.allclose(embedded(tmp_path / "o1"), embedded(tmp_path / "o2"))
    with pytest.raises(OutputExistsError, match="input_range"):  # not mixed into o1
        embed(model, files, tmp_path / "o1", input_range=(-1, 1))

    status = main(["embed", model, str(files[0]), "--out", str(tmp_path / "o3")])
    assert status == 0
    assert "assumed: TF Hub convention" in capsys.readouterr().err
    status = main(
        ["embed", model, str(files[0]), "--out", str(tmp_path / "o4"), "--input-range", "-1,1"]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert "values in [-1, 1]" in captured.out
    assert "assumed" not in captured.err
