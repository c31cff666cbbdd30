"""records.dataset knows its length when the record count is known, and only then.

A dataset of unknown length makes Keras warn "Your input ran out of data" at the end of
the first epoch; a wrong asserted length would fail training mid-epoch. So the length
is asserted only when the schema counted every record of exactly these files.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hublayer.records import Writer, dataset, encode_example, inspect

tf = pytest.importorskip("tensorflow")


def _write(path: Path, count: int, shards: int | None = None) -> list[Path]:
    with Writer(path, shards=shards) as writer:
        for i in range(count):
            writer.write(encode_example({"x": np.full(2, i, np.float32), "label": i % 2}))
    return list(writer.paths)


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """40 records in 4 files."""
    return _write(tmp_path_factory.mktemp("card") / "four", 40, shards=4)


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """10 records in one file."""
    return _write(tmp_path_factory.mktemp("card") / "one", 10)


def _count(ds: Any) -> int:
    return sum(1 for _ in ds)


@pytest.mark.parametrize(("batch", "expected"), [(8, 5), (16, 3), (40, 1), (64, 1)])
def test_a_fully_counted_dataset_knows_its_batches(
    four: list[Path], batch: int, expected: int
) -> None:
    ds = dataset(four, batch_size=batch, label="label", seed=0)
    assert int(ds.cardinality()) == expected
    assert len(ds) == expected
    assert _count(ds) == expected


def test_repeat_counts_and_forever_stays_infinite(four: list[Path]) -> None:
    twice = dataset(four, batch_size=8, label="label", repeat=2)
    assert int(twice.cardinality()) == _count(twice) == 10
    forever = dataset(four, batch_size=8, label="label", repeat=True)
    assert int(forever.cardinality()) == int(tf.data.INFINITE_CARDINALITY)


def test_record_shards_are_counted_and_file_shards_are_not(
    one: list[Path], four: list[Path]
) -> None:
    # One file, three workers: worker 1 reads records 1, 4 and 7.
    ds = dataset(one, batch_size=2, label="label", shard=(3, 1), shuffle=False)
    assert int(ds.cardinality()) == 2
    labels = [int(v) for _, y in ds for v in y.numpy()]
    assert labels == [1, 0, 1]
    # Whole files per worker: their record counts are not known one by one.
    by_file = dataset(four, batch_size=8, label="label", shard=(2, 0))
    assert int(by_file.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)
    assert _count(by_file) == 3  # 20 records


def test_a_schema_of_other_files_or_of_a_sample_asserts_nothing(
    one: list[Path], four: list[Path]
) -> None:
    other = inspect(one)  # exact, but for a different file set
    ds = dataset(four, other, batch_size=8, label="label")
    assert int(ds.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)
    assert _count(ds) == 5  # every record still comes through
    sampled = inspect(four, sample=5)
    assert sampled.total_records is None
    ds = dataset(four, sampled, batch_size=8, label="label")
    assert int(ds.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)


def test_keras_fit_does_not_warn_that_the_input_ran_out(four: list[Path]) -> None:
    import keras

    ds = dataset(four, batch_size=8, label="label", seed=0)
    model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(2)])
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    features = ds.map(lambda f, y: (f["x"], y))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(features, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert not [w for w in caught if "ran out of data" in str(w.message)]


def test_tabular_pipelines_run_without_the_autotuner(four: list[Path]) -> None:
    ds = dataset(four, batch_size=8, label="label")
    assert ds.options().autotune.enabled is False
    assert _count(ds) == 5
