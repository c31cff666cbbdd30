"""records.dataset(shuffle="global"): one exact permutation per epoch, exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hublayer.errors import RecordError
from hublayer.records import Writer, dataset, encode_example

N = 50  # records in 3 files; not a multiple of the batch size


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    out = []
    for shard, (start, stop) in enumerate([(0, 20), (20, 21), (21, N)]):
        path = tmp_path / f"part-{shard}.tfrecord"
        with Writer(path) as writer:
            for i in range(start, stop):
                x = np.array([i, -i], np.float32)
                writer.write(encode_example({"id": i, "x": x, "label": i % 4}))
        out.append(path)
    return out


def _ids(ds: object) -> list[list[int]]:
    return [features["id"].numpy().tolist() for features, _ in ds]  # type: ignore[attr-defined]


def test_each_epoch_is_the_seeds_permutation_of_every_record(files: list[Path]) -> None:
    pytest.importorskip("tensorflow")
    ds = dataset(files, batch_size=8, label="label", shuffle="global", seed=3, repeat=2)
    batches = _ids(ds)
    stream = [i for batch in batches for i in batch]
    assert len(stream) == 2 * N
    # The record number is the id here: the order is exactly the permutation.
    assert stream[:N] == np.random.default_rng([3, 0]).permutation(N).tolist()
    assert stream[N:] == np.random.default_rng([3, 1]).permutation(N).tolist()
    assert len(ds) == len(batches) == -(-2 * N // 8)
    again = _ids(dataset(files, batch_size=8, label="label", shuffle="global", seed=3, repeat=2))
    assert again == batches


def test_features_parse_as_with_any_shuffle(files: list[Path]) -> None:
    pytest.importorskip("tensorflow")
    ds = dataset(files, batch_size=8, label="label", shuffle="global", seed=0)
    for features, labels in ds:
        ids = features["id"].numpy()
        np.testing.assert_array_equal(labels.numpy(), ids % 4)
        np.testing.assert_array_equal(features["x"].numpy()[:, 1], -ids)


@pytest.mark.parametrize("start_step", [0, 3, 6, 7, 12, 18])
def test_a_run_resumes_exactly_at_any_step(files: list[Path], start_step: int) -> None:
    pytest.importorskip("tensorflow")
    kw = {"batch_size": 8, "label": "label", "shuffle": "global", "seed": 11, "repeat": 3}
    whole = _ids(dataset(files, **kw))  # type: ignore[arg-type]
    resumed = dataset(files, start_step=start_step, **kw)  # type: ignore[arg-type]
    assert _ids(resumed) == whole[start_step:]
    assert len(resumed) == len(whole) - start_step


def test_repeating_forever_resumes_across_epochs(files: list[Path]) -> None:
    pytest.importorskip("tensorflow")
    kw = {"batch_size": 8, "label": "label", "shuffle": "global", "seed": 5, "repeat": True}
    whole = _ids(dataset(files, **kw).take(20))  # type: ignore[arg-type]
    assert all(len(batch) == 8 for batch in whole)  # full batches: static shapes
    assert _ids(dataset(files, start_step=13, **kw).take(7)) == whole[13:]  # type: ignore[arg-type]


def test_shards_split_each_epoch_between_workers(files: list[Path]) -> None:
    pytest.importorskip("tensorflow")
    kw = {"batch_size": 4, "label": "label", "shuffle": "global", "seed": 2}
    first = [i for b in _ids(dataset(files, shard=(2, 0), **kw)) for i in b]  # type: ignore[arg-type]
    second = [i for b in _ids(dataset(files, shard=(2, 1), **kw)) for i in b]  # type: ignore[arg-type]
    order = np.random.default_rng([2, 0]).permutation(N).tolist()
    assert first == order[0::2]
    assert second == order[1::2]


def test_bad_arguments_say_what_to_pass(files: list[Path]) -> None:
    with pytest.raises(ValueError, match='shuffle="global"'):
        dataset(files, batch_size=8, shuffle=True, start_step=3)
    with pytest.raises(ValueError, match="seed"):
        dataset(files, batch_size=8, shuffle="global", start_step=3)
    with pytest.raises(ValueError, match="cache"):
        dataset(files, batch_size=8, shuffle="global", seed=1, cache=True)
    with pytest.raises(ValueError, match="start_step"):
        dataset(files, batch_size=8, shuffle="global", seed=1, start_step=-1)
    with pytest.raises(ValueError, match='"global"'):
        dataset(files, batch_size=8, shuffle="everywhere")  # type: ignore[arg-type]


def test_compressed_files_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    with Writer(tmp_path / "a.tfrecord.gz", compression="GZIP") as writer:
        writer.write(encode_example({"id": 1}))
    with pytest.raises(RecordError, match="GZIP"):
        dataset(tmp_path / "a.tfrecord.gz", batch_size=1, shuffle="global", seed=1)
