"""File sets: ``records.expand_files`` is the one reading of ``files`` for every entry point.

A file, a folder, a glob, a list, a ``file://`` URL and remote URLs (fsspec's in-process
``memory://`` filesystem stands in for ``gs://``/``s3://``: no network) are accepted the
same way by ``records.inspect``/``dataset``/``Reader``, ``train.fit_classifier``/``predict``
/``evaluate``, ``hublayer.embed`` and the CLI; remote files are read by hublayer's reader.
"""

from __future__ import annotations

import gzip
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from click.testing import CliRunner

from hublayer import records, testing
from hublayer.cli._app import cli
from hublayer.embed import embed
from hublayer.errors import HublayerError, MissingExtraError, RecordError, SchemaError

SIZE = 16


def _write(prefix: Path, values: range, *, shards: int = 2) -> list[Path]:
    with records.Writer(prefix, shards=shards) as writer:
        for i in values:
            writer.write(records.encode_example({"x": np.float32(i), "label": np.int64(i % 2)}))
    return sorted(prefix.parent.glob(f"{prefix.name}-*"))


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh folder on fsspec's memory filesystem, removed afterwards."""
    name = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield f"memory://{name}"  # memory:///bucket-..., as fsspec spells its URLs
    fs = fsspec.filesystem("memory")
    if fs.exists(name):
        fs.rm(name, recursive=True)


def _upload(paths: list[Path], url: str) -> list[str]:
    fs = fsspec.filesystem("memory")
    targets = []
    for path in paths:
        target = f"{url}/{path.name}"
        fs.pipe(target.removeprefix("memory://"), path.read_bytes())
        targets.append(target)
    return targets


def _xs(dataset: Any) -> list[float]:
    return sorted(float(v) for x, _ in dataset for v in np.ravel(x["x"].numpy()))


# -- expand_files ------------------------------------------------------------------------


def test_a_file_reached_twice_is_read_once_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # tf.data reads a file as often as it is listed; hublayer reads it once, and says so.
    shards = _write(tmp_path / "data" / "train", range(6))
    monkeypatch.chdir(tmp_path)
    overlapping = ["./data/train-*", str(shards[0]), "data/" + shards[1].name]
    with caplog.at_level(logging.WARNING, logger="hublayer.records"):
        assert records.expand_files(overlapping) == ["./data/" + s.name for s in shards]
        assert records.expand_files(overlapping) == ["./data/" + s.name for s in shards]
    warnings = [r.getMessage() for r in caplog.records if "more than once" in r.getMessage()]
    assert len(warnings) == 1  # once per file list
    assert "2 file(s)" in warnings[0]
    assert "tf.data would read it" in warnings[0]
    assert sum(1 for _ in records.read_records([shards[0], shards[0]])) == 3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hublayer.records"):
        records.expand_files([shards[1], shards[0]])
    assert not caplog.records


def test_every_form_names_the_same_files(tmp_path: Path, bucket: str) -> None:
    shards = _write(tmp_path / "data" / "train", range(6))
    (tmp_path / "data" / "train.label_map.json").write_text("{}")
    (tmp_path / "data" / ".hidden").write_bytes(b"")
    (tmp_path / "data" / "partial.tmp").write_bytes(b"")
    local = [str(p) for p in shards]
    folder = tmp_path / "data"
    assert records.expand_files(folder) == local
    assert records.expand_files(str(folder / "train-*")) == local
    assert records.expand_files([shards[1], str(shards[0])]) == [local[1], local[0]]
    assert records.expand_files([str(folder / "*"), shards[0]]) == local  # each once
    assert records.expand_files(f"file://{folder}") == local
    assert records.expand_files(f"file://{folder}/train-*") == local

    remote = _upload(shards, bucket)
    assert records.expand_files(bucket) == remote
    assert records.expand_files(f"{bucket}/train-*") == remote
    assert records.expand_files([remote[1], f"{bucket}/*"]) == [remote[1], remote[0]]
    assert records.expand_files(remote[0]) == [remote[0]]


@pytest.mark.parametrize(
    ("given", "received"),
    [
        ("{root}/missing.tfrecord", "no such file or folder"),
        ("{root}/val-*.tfrecord", "a pattern that matches no file"),
        ("{root}/empty", "an empty folder"),
        ("{bucket}/val-*", "a pattern that matches no file"),
        ("{bucket}/missing.tfrecord", "no such file or folder"),
    ],
)
def test_nothing_to_read_names_the_role_and_the_input(
    tmp_path: Path, bucket: str, given: str, received: str
) -> None:
    (tmp_path / "empty").mkdir()
    text = given.format(root=tmp_path, bucket=bucket)
    with pytest.raises(RecordError) as caught:
        records.expand_files(text, role="validation")
    message = str(caught.value)
    assert message.startswith("Expected the validation files to match at least one")
    assert received in message
    assert repr(text) in message
    assert caught.value.file == text


def test_an_empty_list_and_an_unknown_scheme_are_refused() -> None:
    with pytest.raises(RecordError, match=r"Received: files=\[\]"):
        records.expand_files([])
    with pytest.raises(RecordError, match=r"nosuch://bucket/a\.tfrecord"):
        records.expand_files("nosuch://bucket/a.tfrecord")


def test_a_missing_filesystem_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_gcsfs(url: str, **kwargs: Any) -> Any:
        raise ImportError("Install gcsfs to access Google Storage")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_gcsfs)
    with pytest.raises(MissingExtraError, match=r'pip install "hublayer\[gcs\]"') as caught:
        records.expand_files("gs://bucket/train-*")
    assert caught.value.extra == "gcs"


def test_a_backend_error_while_listing_is_a_record_error(
    monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    class NoCredentialsError(Exception):  # what botocore raises, not an OSError
        pass

    def refuse(self: Any, path: str, **kwargs: Any) -> Any:
        raise NoCredentialsError("Unable to locate credentials")

    monkeypatch.setattr(type(fsspec.filesystem("memory")), "glob", refuse)
    with pytest.raises(RecordError, match="NoCredentialsError: Unable to locate credentials"):
        records.expand_files(f"{bucket}/train-*")


# -- reading remote files ------------------------------------------------------------------


def test_the_reader_streams_a_remote_file_with_crcs_checked(tmp_path: Path, bucket: str) -> None:
    [shard] = _write(tmp_path / "a", range(5), shards=1)
    [url] = _upload([shard], bucket)
    with records.Reader(url) as reader:
        remote = list(reader)
    assert remote == list(records.read_records(shard))
    assert reader.count == 5

    fs = fsspec.filesystem("memory")
    fs.pipe(f"{bucket}/a.gz".removeprefix("memory://"), gzip.compress(shard.read_bytes()))
    assert list(records.read_records(f"{bucket}/a.gz")) == remote

    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF  # the last record's data CRC
    fs.pipe(f"{bucket}/bad".removeprefix("memory://"), bytes(data))
    with pytest.raises(RecordError, match="CRC does not match") as caught:
        list(records.read_records(f"{bucket}/bad"))
    assert caught.value.file == f"{bucket}/bad"
    assert caught.value.index == 4

    with pytest.raises(RecordError, match="no such file"):
        list(records.read_records(f"{bucket}/missing"))


def test_read_records_takes_every_form(tmp_path: Path, bucket: str) -> None:
    shards = _write(tmp_path / "data" / "part", range(6))
    expected = [r for shard in shards for r in records.read_records(shard)]
    assert len(expected) == 6
    urls = _upload(shards, bucket)
    for given in (tmp_path / "data", str(tmp_path / "data" / "part-*"), bucket, urls):
        assert list(records.read_records(given)) == expected
    with pytest.raises(RecordError, match="a pattern that matches no file"):
        list(records.read_records(str(tmp_path / "nothing-*")))


def test_inspect_and_dataset_read_remote_files_as_local_ones(tmp_path: Path, bucket: str) -> None:
    shards = _write(tmp_path / "train", range(10))
    urls = _upload(shards, bucket)
    local = records.inspect(shards)
    remote = records.inspect(bucket)
    assert remote.total_records == local.total_records == 10
    assert remote.features == local.features
    assert len(remote.files) == 2
    assert all(f.startswith("memory://") for f in remote.files)

    ordered = records.dataset(f"{bucket}/train-*", batch_size=4, label="label", shuffle=False)
    expected = records.dataset(shards, batch_size=4, label="label", shuffle=False)
    assert [x["x"].numpy().tolist() for x, _ in ordered] == [
        x["x"].numpy().tolist() for x, _ in expected
    ]
    shuffled = records.dataset(urls, batch_size=3, label="label", shuffle=True, seed=1)
    assert _xs(shuffled) == [float(i) for i in range(10)]


def test_ray_read_tasks_read_a_remote_file_whole(tmp_path: Path, bucket: str) -> None:
    from hublayer.records._ray_read import columns_of, pieces_of, read_piece

    [shard] = _write(tmp_path / "big", range(40), shards=1)
    [url] = _upload([shard], bucket)
    assert len(pieces_of([shard], target_bytes=256)) > 1  # a local file is cut in ranges
    [piece] = pieces_of([url], target_bytes=256)  # a URL is read in order, whole
    assert piece.path == url
    assert piece.size == shard.stat().st_size
    schema = records.inspect(url)
    rows = list(read_piece(piece, columns_of(schema, ["x"])))
    assert np.concatenate([r["x"] for r in rows]).tolist() == [float(i) for i in range(40)]


def test_a_label_map_beside_remote_shards_is_found(tmp_path: Path, bucket: str) -> None:
    shards = _write(tmp_path / "train", range(4))
    urls = _upload(shards, bucket)
    assert records.find_label_map(urls, label="label") is None
    fs = fsspec.filesystem("memory")
    where = f"{bucket}/train.label_map.json".removeprefix("memory://")
    fs.pipe(where, b'{"classes": ["even", "odd"], "label": "label", "image": null}')
    found = records.find_label_map(records.expand_files(f"{bucket}/train-*"), label="label")
    assert found is not None
    assert found.classes == ("even", "odd")
    assert found.path == f"{bucket}/train.label_map.json"

    other = _upload(_write(tmp_path / "val", range(2), shards=1), bucket)
    with pytest.raises(SchemaError, match="no label map"):
        records.find_label_map([*urls, *other], label="label")


def test_a_folder_feeds_dataset(tmp_path: Path) -> None:
    _write(tmp_path / "data" / "part", range(7))
    dataset = records.dataset(tmp_path / "data", batch_size=4, label="label", shuffle=False)
    assert _xs(dataset) == [float(i) for i in range(7)]


def test_records_cli_reads_a_folder_a_file_url_and_a_remote_glob(
    tmp_path: Path, bucket: str
) -> None:
    shards = _write(tmp_path / "data" / "part", range(6))
    _upload(shards, bucket)
    runner = CliRunner()
    for given in (str(tmp_path / "data"), f"file://{tmp_path}/data/part-*", f"{bucket}/part-*"):
        result = runner.invoke(cli, ["records", "inspect", given, "--json"])
        assert result.exit_code == 0, result.output
        assert '"total_records": 6' in result.output
    missing = runner.invoke(cli, ["records", "inspect", f"{bucket}/nothing-*"])
    assert missing.exit_code == 1
    assert "a pattern that matches no file" in missing.output


# -- train and embed: every form, the same way ----------------------------------------------


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_feature_vector(
        tmp_path_factory.mktemp("models") / "ifv", image_size=SIZE, dim=16
    )


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("splits")
    found = {}
    for name, count, seed in (("train", 60, 1), ("val", 24, 2), ("test", 24, 3)):
        testing.image_records(root / name / name, count, size=SIZE, seed=seed)
        found[name] = root / name
    return found


def test_train_predict_and_evaluate_take_folders_globs_lists_and_urls(
    splits: dict[str, Path], model_path: str, tmp_path: Path, bucket: str
) -> None:
    from hublayer.train import evaluate, fit_classifier, predict

    val_urls = _upload(sorted(splits["val"].glob("*.tfrecord")), bucket)
    out = tmp_path / "run"
    result = fit_classifier(
        model_path,
        splits["train"],  # a folder
        validation=f"{bucket}/val-*",  # a remote glob
        test=[f"file://{p}" for p in sorted(splits["test"].glob("*.tfrecord"))],  # file URLs
        epochs=2,
        batch_size=16,
        learning_rate=0.02,
        out_dir=out,
    )
    assert result.metrics["splits"]["train"]["examples"] == 60
    assert result.metrics["splits"]["validation"]["examples"] == 24
    assert result.metrics["splits"]["test"]["examples"] == 24

    local = predict(out, splits["val"])
    remote = predict(out, val_urls)
    assert len(local.probabilities) == 24
    np.testing.assert_allclose(remote.probabilities, local.probabilities, atol=1e-6)
    assert remote.accuracy == local.accuracy is not None
    scores = evaluate(out, bucket)  # a remote folder
    assert scores["examples"] == 24
    assert scores["accuracy"] == pytest.approx(local.accuracy)

    shown = CliRunner().invoke(cli, ["evaluate", "--model", str(out), "--data", bucket])
    assert shown.exit_code == 0, shown.output
    assert f"{scores['accuracy']:.4f}" in shown.output

    with pytest.raises(RecordError, match="Expected the data files to match") as caught:
        predict(out, f"{bucket}/nothing-*")
    assert isinstance(caught.value, HublayerError)


def test_predict_warns_when_the_labels_are_not_the_models_classes(
    splits: dict[str, Path], model_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hublayer.train import fit_classifier, predict

    out = tmp_path / "run"
    fit_classifier(model_path, splits["train"], epochs=1, batch_size=16, out_dir=out)
    other = testing.image_records(tmp_path / "five" / "five", 10, classes=5, size=SIZE)
    with caplog.at_level(logging.WARNING, logger="hublayer"):
        result = predict(out, other)
    assert len(result.probabilities) == 10
    assert result.labels is None
    assert result.accuracy is None
    [note] = [r for r in caplog.records if "without an accuracy" in r.getMessage()]
    assert note.levelno == logging.WARNING
    assert "Predicted 10 records without an accuracy" in note.getMessage()
    assert "labels from" in note.getMessage()  # the mismatch itself: labels 0..4, classes 0..2

    runner = CliRunner()
    shown = runner.invoke(cli, ["predict", "--model", str(out), "--data", other])
    assert shown.exit_code == 0, shown.output
    assert "without an accuracy" in shown.output
    assert "; accuracy" not in shown.output


def test_embed_reads_remote_inputs_as_local_ones(
    splits: dict[str, Path], model_path: str, tmp_path: Path, bucket: str
) -> None:
    shards = sorted(splits["val"].glob("*.tfrecord"))
    _upload(shards, bucket)
    local = embed(model_path, splits["val"], tmp_path / "local", keep=["label"])
    remote = embed(model_path, f"{bucket}/val-*", tmp_path / "remote", keep=["label"])
    assert remote.rows == local.rows == 24
    assert [p.name for p in remote.outputs] == [p.name for p in local.outputs]
    for a, b in zip(local.outputs, remote.outputs, strict=True):
        rows_a = [records.decode_example(r) for r in records.read_records(a)]
        rows_b = [records.decode_example(r) for r in records.read_records(b)]
        assert [r["label"].tolist() for r in rows_a] == [r["label"].tolist() for r in rows_b]
        np.testing.assert_allclose(
            np.stack([r["embedding"] for r in rows_b]),
            np.stack([r["embedding"] for r in rows_a]),
            atol=1e-5,
        )
