"""records.dataset: shapes, order, sharding, images, text, and errors before training."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hublayer._specs import TensorInfo
from hublayer.errors import SchemaError, SpecMismatchError
from hublayer.records import Writer, dataset, encode_example, inspect

tf = pytest.importorskip("tensorflow")


def _write(path: Path, rows: list[dict[str, Any]], shards: int | None = None) -> list[Path]:
    with Writer(path, shards=shards) as writer:
        for row in rows:
            writer.write(encode_example(row))
    return list(writer.paths)


def _jpeg(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    rows = [
        {"id": i, "x": np.full(3, i, np.float32), "tokens": list(range(i % 4)), "label": i % 2}
        for i in range(40)
    ]
    return _write(tmp_path_factory.mktemp("tab") / "tab", rows, shards=4)


def _ids(ds: Any) -> list[int]:
    return [int(i) for features, _ in ds for i in features["id"].numpy()]


def test_tabular_batches_have_static_shapes_and_every_record_once(tabular: list[Path]) -> None:
    ds = dataset(tabular, batch_size=8, label="label", seed=1)
    features, label = ds.element_spec
    assert features["x"].shape.as_list() == [None, 3]
    assert features["id"].shape.as_list() == [None]
    assert isinstance(features["tokens"], tf.RaggedTensorSpec)
    assert label.shape.as_list() == [None]
    assert sorted(_ids(ds)) == list(range(40))
    first = next(iter(ds))[0]
    ids = first["id"].numpy()
    np.testing.assert_array_equal(first["x"].numpy(), np.repeat(ids[:, None], 3, 1))
    assert first["tokens"].row_lengths().numpy().tolist() == [i % 4 for i in ids]


def test_seed_makes_the_order_reproducible_and_no_shuffle_keeps_file_order(
    tabular: list[Path],
) -> None:
    a = _ids(dataset(tabular, batch_size=8, label="label", seed=7))
    b = _ids(dataset(tabular, batch_size=8, label="label", seed=7))
    assert a == b
    assert a != sorted(a)
    ordered = _ids(dataset(tabular, batch_size=8, label="label", shuffle=False))
    assert ordered == [i for shard in range(4) for i in range(shard, 40, 4)]


def test_repeat_gives_full_static_batches(tabular: list[Path]) -> None:
    ds = dataset(tabular, batch_size=16, label="label", repeat=True)
    assert ds.element_spec[1].shape.as_list() == [16]
    assert len(list(ds.take(5))) == 5  # more than one pass of 40 records
    two = dataset(tabular, batch_size=8, label="label", repeat=2, shuffle=False)
    assert len(_ids(two)) == 80


@pytest.mark.parametrize("count", [2, 8])
def test_shards_split_the_data_between_workers(tabular: list[Path], count: int) -> None:
    parts = [
        _ids(dataset(tabular, batch_size=8, label="label", shard=(count, i), shuffle=False))
        for i in range(count)
    ]
    assert sorted(i for part in parts for i in part) == list(range(40))
    assert all(part for part in parts)


def test_cache_and_features_only(tabular: list[Path], tmp_path: Path) -> None:
    ds = dataset(tabular, batch_size=8, cache=True, shuffle=False)
    assert "label" in ds.element_spec
    assert sum(int(b["id"].shape[0]) for b in ds) == 40
    on_disk = dataset(tabular, batch_size=8, cache=tmp_path / "cache", label="label")
    assert sorted(_ids(on_disk)) == sorted(_ids(on_disk)) == list(range(40))


def test_saved_schema_is_used_as_is(tabular: list[Path], tmp_path: Path) -> None:
    path = inspect(tabular).save(tmp_path / "schema.json")
    ds = dataset(tabular, path, batch_size=8, label="label")
    assert ds.element_spec[0]["x"].shape.as_list() == [None, 3]


def test_bad_arguments_fail_before_reading(tabular: list[Path]) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        dataset(tabular, batch_size=0)
    with pytest.raises(ValueError, match="shard"):
        dataset(tabular, batch_size=8, shard=(2, 2))
    with pytest.raises(SchemaError, match="label feature 'target'"):
        dataset(tabular, batch_size=8, label="target")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("img")
    smooth = np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3).astype(np.uint8)
    rgb = [{"image": _jpeg(np.roll(smooth, i, 0)), "label": i % 2} for i in range(12)]
    gray = [
        {"image": _jpeg(rng.integers(0, 255, (20, 24), np.uint8), "PNG"), "label": i % 2}
        for i in range(6)
    ]
    sizes = [
        {"image": _jpeg(np.zeros((10 + i, 30, 3), np.uint8)), "label": 0, "caption": f"c{i}"}
        for i in range(6)
    ]
    return {
        "rgb": _write(folder / "rgb", rgb, shards=2),
        "gray": _write(folder / "gray.tfrecord", gray),
        "sizes": _write(folder / "sizes.tfrecord", sizes),
    }


def test_images_decode_to_the_model_size_dtype_and_range(images: dict[str, list[Path]]) -> None:
    spec = TensorInfo("images", "float32", (None, 32, 32, 3), value_range=(-1.0, 1.0))
    ds = dataset(images["rgb"], batch_size=4, label="label", for_model=[spec])
    x_spec, y_spec = ds.element_spec
    assert x_spec.shape.as_list() == [None, 32, 32, 3]
    assert (x_spec.dtype, y_spec.dtype) == (tf.float32, tf.int64)
    x = np.concatenate([x.numpy() for x, _ in ds])
    assert x.shape == (12, 32, 32, 3)
    assert -1.0 <= x.min() < -0.9
    assert 0.9 < x.max() <= 1.0


def test_uint8_images_at_their_own_size_are_not_resized(images: dict[str, list[Path]]) -> None:
    spec = TensorInfo("images", "uint8", (None, None, None, 3))
    x, _ = next(iter(dataset(images["rgb"], batch_size=12, label="label", for_model=[spec])))
    first = tf.io.decode_jpeg(next(iter(_records(images["rgb"])))["image"][0]).numpy()
    assert x.dtype == tf.uint8
    assert x.shape == (12, 64, 64, 3)
    assert any(np.array_equal(first, image) for image in x.numpy())


def _records(paths: list[Path]) -> Any:
    from hublayer.records import decode_example, read_records

    return (decode_example(r) for r in read_records(paths))


def test_center_crop_decodes_only_the_middle(images: dict[str, list[Path]]) -> None:
    spec = TensorInfo("images", "uint8", (None, 48, 48, 3))
    crop = {"crop": "center", "crop_fraction": 0.75}
    ds = dataset(images["rgb"], batch_size=12, shuffle=False, for_model=[spec], image=crop)
    cropped = next(iter(ds)).numpy()
    first = tf.io.decode_jpeg(next(iter(_records(images["rgb"])))["image"][0]).numpy()
    np.testing.assert_allclose(cropped[0], first[8:56, 8:56], atol=2)


def test_grayscale_converts_to_what_the_model_takes(images: dict[str, list[Path]]) -> None:
    spec = TensorInfo("images", "float32", (None, 16, 16, 3))
    for options in ({}, {"image": {"channels": 3}}):  # without being asked, or asked
        ds = dataset(images["gray"], batch_size=3, for_model=[spec], **options)  # type: ignore[arg-type]
        x = next(iter(ds)).numpy()
        assert x.shape == (3, 16, 16, 3)
        np.testing.assert_allclose(x[..., 0], x[..., 2])


def test_images_of_many_sizes_need_a_size(images: dict[str, list[Path]]) -> None:
    with pytest.raises(SchemaError, match="Pass image="):
        dataset(images["sizes"], batch_size=2, label="label")
    ds = dataset(images["sizes"], batch_size=6, label="label", image={"size": (8, 16)})
    features, _ = next(iter(ds))
    assert features["image"].shape == (6, 8, 16, 3)
    assert features["caption"].dtype == tf.string


def test_text_input_gets_strings(images: dict[str, list[Path]]) -> None:
    spec = TensorInfo("sentences", "string", (None,))
    x, y = next(iter(dataset(images["sizes"], batch_size=6, label="label", for_model=[spec])))
    assert sorted(x.numpy().tolist()) == [b"c%d" % i for i in range(6)]
    assert y.shape == (6,)


def test_text_model_fed_int64_fails_before_any_tensorflow_work(
    images: dict[str, list[Path]],
) -> None:
    spec = TensorInfo("sentences", "string", (None,))
    with pytest.raises(SpecMismatchError, match="int64") as info:
        dataset(images["sizes"], batch_size=2, text="label", for_model=[spec])
    assert info.value.feature == "label"


@pytest.mark.parametrize("crop", ["none", "center"])
def test_an_image_the_sample_missed_still_decodes(tmp_path: Path, crop: str) -> None:
    seen = _write(tmp_path / "a.tfrecord", [{"image": _jpeg(np.zeros((32, 32, 3), np.uint8))}])
    unseen = _write(tmp_path / "b.tfrecord", [{"image": _jpeg(np.zeros((40, 50, 3), np.uint8))}])
    schema = inspect(seen)
    assert schema["image"].image is not None
    assert schema["image"].image.size == (32, 32)
    spec = TensorInfo("images", "uint8", (None, 28, 28, 3))
    options = {"crop": crop, "crop_fraction": 0.875}
    ds = dataset(seen + unseen, schema, batch_size=2, for_model=[spec], image=options)
    assert next(iter(ds)).shape == (2, 28, 28, 3)
