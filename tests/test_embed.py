"""``hublayer.embed`` and ``hublayer embed`` on both engines, against a direct KerasLayer call.

One local Ray (``num_cpus=2``) for the module, started by the first test that needs it.
TF-written shards of PNG images with ``label`` and ``id``; a small image model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hublayer
from hublayer import records, testing
from hublayer.cli import main
from hublayer.errors import MissingExtraError, OutputExistsError, RecordError, SchemaError

tf = pytest.importorskip("tensorflow")

SHARDS, PER_SHARD, SIZE = 3, 12, 32


def _shard(path: Path, first: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(first, first + PER_SHARD):
            pixels = rng.integers(0, 256, (SIZE + 4 * (i % 2), SIZE, 3), dtype=np.uint8)
            png = tf.io.encode_png(pixels).numpy()
            feature = tf.train.Feature
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image": feature(bytes_list=tf.train.BytesList(value=[png])),
                        "label": feature(int64_list=tf.train.Int64List(value=[i % 3])),
                        "id": feature(bytes_list=tf.train.BytesList(value=[b"row-%03d" % i])),
                    }
                )
            )
            writer.write(example.SerializeToString())


def _shards(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(SHARDS):
        path = folder / f"train-{k:05d}-of-{SHARDS:05d}.tfrecord"
        _shard(path, k * PER_SHARD, seed=k)
        paths.append(path)
    return paths


def _flip(path: Path, record: int) -> None:
    data = bytearray(path.read_bytes())
    offset = 0
    for _ in range(record):
        offset += 16 + int.from_bytes(data[offset : offset + 8], "little")
    data[offset + 12 + 40] ^= 0x01
    path.write_bytes(bytes(data))


def _rows(out: Path) -> dict[bytes, dict[str, Any]]:
    rows: dict[bytes, dict[str, Any]] = {}
    for record in records.read_records(sorted(out.glob("*.tfrecord"))):
        row = records.decode_example(record)
        key = bytes(row["id"][0])
        assert key not in rows, f"{key!r} written twice"
        rows[key] = row
    return rows


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_feature_vector(tmp_path_factory.mktemp("m") / "model", image_size=SIZE)


def _direct(model: str, files: list[Path]) -> dict[bytes, np.ndarray]:
    """What a KerasLayer gives on the same examples, fed by records.dataset."""
    layer = hublayer.KerasLayer(model)
    inputs = records.dataset(files, batch_size=8, shuffle=False, for_model=layer)
    embeddings = np.concatenate([np.asarray(layer(x)) for x in inputs])
    ids = [bytes(records.decode_example(r)["id"][0]) for r in records.read_records(files)]
    return dict(zip(ids, embeddings, strict=True))


@pytest.mark.slow
def test_both_engines_give_every_row_once_equal_to_keras_layer(
    model: str, tmp_path: Path, local_ray: Any
) -> None:
    files = _shards(tmp_path / "data")
    expected = _direct(model, files)
    for engine in ("local", "ray"):
        out = tmp_path / f"out-{engine}"
        result = hublayer.embed(
            model,
            str(tmp_path / "data" / "*.tfrecord"),
            out,
            keep=["label", "id"],
            batch_size=5,
            engine=engine,
            num_workers=2 if engine == "ray" else None,
        )
        assert result.rows == SHARDS * PER_SHARD
        assert (result.shards_done, result.shards_skipped) == (SHARDS, 0)
        assert sorted(p.name for p in out.glob("*.tfrecord")) == [f.name for f in files]
        assert "values in [0, 1]" in result.preprocessing
        rows = _rows(out)
        assert set(rows) == set(expected)
        for key, row in rows.items():
            np.testing.assert_allclose(row["embedding"], expected[key], atol=1e-5)
            assert row["label"][0] == int(key[4:]) % 3


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_corrupt_shard_then_a_rerun_that_skips_finished_shards(
    model: str, tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "ray":
        request.getfixturevalue("local_ray")
    files = _shards(tmp_path / "data")
    _flip(files[1], 5)
    out = tmp_path / "out"
    options: dict[str, Any] = {"keep": ["id"], "batch_size": 4, "engine": engine}
    with pytest.raises(RecordError) as caught:
        hublayer.embed(model, files, out, **options)
    assert str(files[1]) in str(caught.value)
    assert not (out / files[1].name).exists()  # never marked complete
    assert not list(out.glob(".*.tmp"))  # no temp file left behind
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")}
    if engine == "local":
        assert list(finished) == [files[0].name]

    _shard(files[1], PER_SHARD, seed=1)  # the shard written again
    result = hublayer.embed(model, files, out, **options)
    assert result.shards_skipped == len(finished)
    assert result.shards_done == SHARDS - len(finished)
    assert result.rows == PER_SHARD * (SHARDS - len(finished))
    for name, mtime in finished.items():
        assert (out / name).stat().st_mtime_ns == mtime  # not recomputed
    assert len(_rows(out)) == SHARDS * PER_SHARD

    again = hublayer.embed(model, files, out, **options)
    assert (again.rows, again.shards_done, again.shards_skipped) == (0, 0, SHARDS)


def test_parquet_output(model: str, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    files = _shards(tmp_path / "data")
    result = hublayer.embed(model, files[:1], tmp_path / "out", keep=["id"], format="parquet")
    (output,) = result.outputs
    assert output.name == "train-00000-of-00003.parquet"
    table = pq.read_table(output)
    assert table.column_names == ["id", "embedding"]
    assert table.num_rows == PER_SHARD
    assert table.column("id")[0].as_py() == b"row-000"
    assert len(table.column("embedding")[0].as_py()) == 32


def test_an_image_folder_is_converted_once(model: str, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{i}.png")
    result = hublayer.embed(model, tmp_path / "photos", tmp_path / "out", keep=["label"])
    assert result.rows == 6
    rows = [records.decode_example(r) for r in records.read_records(sorted(result.outputs))]
    assert sorted(int(r["label"][0]) for r in rows) == [0, 0, 0, 1, 1, 1]
    again = hublayer.embed(model, tmp_path / "photos", tmp_path / "out", keep=["label"])
    assert (again.rows, again.shards_skipped) == (0, 1)


def test_a_folder_made_with_another_model_or_settings_is_refused(
    model: str, tmp_path: Path
) -> None:
    files = _shards(tmp_path / "data")[:1]
    out = tmp_path / "out"
    hublayer.embed(model, files, out, keep=["id"])
    with pytest.raises(OutputExistsError, match="keep") as caught:
        hublayer.embed(model, files, out, keep=["label"])
    assert caught.value.path == str(out)
    other = testing.image_feature_vector(tmp_path / "other", image_size=SIZE, seed=1)
    with pytest.raises(OutputExistsError, match="model"):
        hublayer.embed(other, files, out, keep=["id"])
    again = hublayer.embed(model, files, out, keep=["id"])  # the same: complete, skipped
    assert (again.rows, again.shards_skipped) == (0, 1)


def test_bad_arguments_fail_before_any_work(model: str, tmp_path: Path) -> None:
    files = _shards(tmp_path / "data")[:1]
    with pytest.raises(ValueError, match='engine to be "local" or "ray"'):
        hublayer.embed(model, files, tmp_path / "out", engine="spark")
    with pytest.raises(SchemaError, match="Available: id, image, label"):
        hublayer.embed(model, files, tmp_path / "out", keep=["nope"])
    with pytest.raises(ValueError, match="format"):
        hublayer.embed(model, files, tmp_path / "out", format="csv")  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="no-such"):
        hublayer.embed(model, tmp_path / "no-such.tfrecord", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.tfrecord"))


def test_without_ray_the_ray_engine_names_the_extra(
    model: str, tmp_path: Path, without_ray: None
) -> None:
    files = _shards(tmp_path / "data")[:1]
    with pytest.raises(MissingExtraError, match=r'pip install "hublayer\[ray\]"') as caught:
        hublayer.embed(model, files, tmp_path / "out", engine="ray")
    assert caught.value.extra == "ray"
    assert not (tmp_path / "out").exists()


def test_cli_embed(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _shards(tmp_path / "data")[:2]
    pattern = str(tmp_path / "data" / "train-0000[01]-*.tfrecord")
    status = main(["embed", model, pattern, "--out", str(tmp_path / "out"), "--keep", "label,id"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "24 rows in 2 shard(s) (0 already complete)" in printed
    assert "values in [0, 1]" in printed
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tfrecord")) == [f.name for f in files]
    assert set(_rows(tmp_path / "out")[b"row-013"]) == {"embedding", "id", "label"}

    status = main(["embed", model, pattern, "--out", str(tmp_path / "o2"), "--workers", "2"])
    assert status == 2
    assert "--engine ray" in capsys.readouterr().err
