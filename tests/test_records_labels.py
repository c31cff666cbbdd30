"""Converting image folders: one label map for every split, no silent overwrite, and
bad images caught at conversion (issue #11)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from hublayer.cli._app import cli
from hublayer.errors import ImageDecodeError, OutputExistsError, SchemaError
from hublayer.records import (
    LabelMap,
    convert_csv,
    convert_image_splits,
    convert_images,
    decode_example,
    find_label_map,
    read_records,
    verify_images,
    write_arrays,
)


def _jpeg(seed: int = 0, size: int = 24) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _folder(root: Path, classes: dict[str, int]) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{name}{i}.jpg").write_bytes(_jpeg(hash(name) % 1000 + i))
    return root


def _labels_by_file(pattern: Path) -> dict[str, int]:
    found = {}
    for record in read_records(sorted(pattern.parent.glob(pattern.name))):
        example = decode_example(record)
        found[example["filename"][0].decode()] = int(example["label"][0])
    return found


def test_splits_share_one_label_map_when_a_class_is_missing(tmp_path: Path) -> None:
    train = _folder(tmp_path / "train", {"ant": 2, "bee": 2, "cat": 2})
    test = _folder(tmp_path / "test", {"ant": 1, "cat": 1})  # no "bee"
    summaries = convert_image_splits(
        {train: tmp_path / "data" / "train", test: tmp_path / "data" / "test"}, shards=2
    )
    assert [s.classes for s in summaries] == [("ant", "bee", "cat")] * 2
    labels = _labels_by_file(tmp_path / "data" / "test-*.tfrecord")
    assert labels == {"ant/ant0.jpg": 0, "cat/cat0.jpg": 2}  # cat keeps index 2, not 1
    shards = sorted((tmp_path / "data").glob("test-*.tfrecord"))
    found = find_label_map(shards, label="label")
    assert found is not None
    assert found.classes == ("ant", "bee", "cat")
    assert found.path == tmp_path / "data" / "test.label_map.json"
    assert find_label_map(shards, label="other") is None


def test_classes_and_label_map_fix_the_order_across_calls(tmp_path: Path) -> None:
    _folder(tmp_path / "a", {"x": 1, "y": 1})
    first = convert_images(tmp_path / "a", tmp_path / "out" / "a", classes=["y", "x"], shards=1)
    assert json.loads(first.label_map.read_text())["classes"] == ["y", "x"]  # type: ignore[union-attr]
    _folder(tmp_path / "b", {"x": 1})
    convert_images(tmp_path / "b", tmp_path / "out" / "b", classes=first.label_map, shards=1)
    assert _labels_by_file(tmp_path / "out" / "b-*.tfrecord") == {"x/x0.jpg": 1}
    assert LabelMap.load(tmp_path / "out" / "b.label_map.json").classes == ("y", "x")
    _folder(tmp_path / "c", {"z": 1})
    with pytest.raises(ValueError, match=r"folders \['z'\] that are not"):
        convert_images(tmp_path / "c", tmp_path / "out" / "c", classes=["x", "y"])
    assert not list((tmp_path / "out").glob("c*"))


def test_files_with_different_label_maps_are_refused(tmp_path: Path) -> None:
    _folder(tmp_path / "a", {"x": 1, "y": 1})
    _folder(tmp_path / "b", {"x": 1, "z": 1})
    convert_images(tmp_path / "a", tmp_path / "out" / "a", shards=1)
    convert_images(tmp_path / "b", tmp_path / "out" / "b", shards=1)
    with pytest.raises(SchemaError, match=r"one label map.*\['x', 'y'\].*\['x', 'z'\]"):
        find_label_map(sorted((tmp_path / "out").glob("*.tfrecord")), label="label")


def test_converting_again_is_refused_unless_overwrite_replaces_the_whole_set(
    tmp_path: Path,
) -> None:
    src = _folder(tmp_path / "photos", {"x": 3, "y": 3})
    out = tmp_path / "data" / "train"
    convert_images(src, out, shards=4)
    before = {p: p.read_bytes() for p in (tmp_path / "data").iterdir()}
    with pytest.raises(OutputExistsError, match="4 file") as caught:
        convert_images(src, out, shards=2)
    assert "overwrite=True" in str(caught.value)
    assert "--overwrite" in caught.value.cli_message()
    assert {p: p.read_bytes() for p in (tmp_path / "data").iterdir()} == before
    convert_images(src, out, shards=2, overwrite=True)
    names = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert names == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
        "train.label_map.json",
    ]
    assert len(_labels_by_file(tmp_path / "data" / "train-*.tfrecord")) == 6  # each image once


def test_overwrite_applies_to_every_converter(tmp_path: Path) -> None:
    write_arrays(tmp_path / "a", {"x": np.arange(4)}, shards=2)
    with pytest.raises(OutputExistsError):
        write_arrays(tmp_path / "a", {"x": np.arange(4)})
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    convert_csv(tmp_path / "t.csv", tmp_path / "t.tfrecord")
    with pytest.raises(OutputExistsError):
        convert_csv(tmp_path / "t.csv", tmp_path / "t.tfrecord")
    summary = convert_csv(tmp_path / "t.csv", tmp_path / "t.tfrecord", overwrite=True)
    assert summary.count == 1


def test_truncated_and_empty_images_are_skipped_and_named(tmp_path: Path) -> None:
    src = _folder(tmp_path / "photos", {"x": 2, "y": 2})
    good = (src / "x" / "x0.jpg").read_bytes()
    (src / "x" / "cut.jpg").write_bytes(good[: len(good) // 2])
    (src / "y" / "empty.jpg").write_bytes(b"")
    summary = convert_images(src, tmp_path / "out" / "train", shards=1)
    assert summary.count == 4
    assert summary.skipped == 2
    assert any(s.startswith("x/cut.jpg (cannot be decoded") for s in summary.skipped_examples)
    assert "y/empty.jpg (empty file)" in summary.skipped_examples
    assert "x/cut.jpg" in str(summary)
    assert verify_images(tmp_path / "out") == []


def test_on_error_raise_lists_the_bad_files_and_writes_nothing(tmp_path: Path) -> None:
    src = _folder(tmp_path / "photos", {"x": 2})
    good = (src / "x" / "x0.jpg").read_bytes()
    (src / "x" / "cut.jpg").write_bytes(good[:-40])
    with pytest.raises(ImageDecodeError, match=r"x/cut\.jpg") as caught:
        convert_images(src, tmp_path / "out" / "train", on_error="raise")
    assert 'on_error="skip"' in str(caught.value)
    assert "--on-error skip" in caught.value.cli_message()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_verify_images_names_file_record_and_feature(tmp_path: Path) -> None:
    good = _jpeg(1)
    images = np.array([good, good[: len(good) // 2], good], dtype=object)
    write_arrays(tmp_path / "r", {"image": images, "label": np.arange(3)})
    bad = verify_images(tmp_path / "r")
    assert [(b.file, b.record, b.feature) for b in bad] == [(str(tmp_path / "r"), 1, "image")]
    assert "record 1" in str(bad[0])


# -- the CLI --------------------------------------------------------------------------


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_cli_converts_several_splits_with_one_label_map(tmp_path: Path) -> None:
    train = _folder(tmp_path / "train", {"ant": 2, "bee": 2})
    test = _folder(tmp_path / "test", {"bee": 1})
    result = _run(
        "records", "convert", "images",
        str(train), str(tmp_path / "d" / "train"), str(test), str(tmp_path / "d" / "test"),
        "--shards", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("(2 classes: ant, bee)") == 2
    assert _labels_by_file(tmp_path / "d" / "test-*.tfrecord") == {"bee/bee0.jpg": 1}


def test_cli_odd_arguments_and_both_class_options_are_usage_errors(tmp_path: Path) -> None:
    train = _folder(tmp_path / "train", {"ant": 1})
    odd = _run("records", "convert", "images", str(train), "o", str(train))
    assert odd.exit_code == 2
    assert "pairs of DIR OUT" in odd.output


def test_cli_refuses_to_overwrite_then_overwrites(tmp_path: Path) -> None:
    src = _folder(tmp_path / "photos", {"x": 2, "y": 2})
    out = str(tmp_path / "d" / "train")
    assert _run("records", "convert", "images", src.as_posix(), out).exit_code == 0
    again = _run("records", "convert", "images", src.as_posix(), out, "--shards", "2")
    assert again.exit_code == 1
    assert "--overwrite" in again.output
    assert "overwrite=True" not in again.output
    assert "Traceback" not in again.output
    assert len(list((tmp_path / "d").glob("*.tfrecord"))) == 8
    done = _run("records", "convert", "images", src.as_posix(), out, "--shards", "2", "--overwrite")
    assert done.exit_code == 0
    assert len(list((tmp_path / "d").glob("*.tfrecord"))) == 2


def test_cli_bad_images_skip_or_fail(tmp_path: Path) -> None:
    src = _folder(tmp_path / "photos", {"x": 2})
    good = (src / "x" / "x0.jpg").read_bytes()
    (src / "x" / "cut.jpg").write_bytes(good[: len(good) // 2])
    out = str(tmp_path / "d" / "train")
    failed = _run("records", "convert", "images", src.as_posix(), out, "--on-error", "raise")
    assert failed.exit_code == 1
    assert "x/cut.jpg" in failed.output
    assert "--on-error skip" in failed.output
    assert not list(tmp_path.glob("d/*"))
    skipped = _run("records", "convert", "images", src.as_posix(), out)
    assert skipped.exit_code == 0
    assert "Skipped 1 file(s) that are not readable images: x/cut.jpg" in skipped.output


def test_cli_inspect_all_flags_undecodable_images(tmp_path: Path) -> None:
    good = _jpeg(2)
    images = np.array([good, good, good[:-50]], dtype=object)
    write_arrays(tmp_path / "r.tfrecord", {"image": images, "label": np.arange(3)})
    sampled = _run("records", "inspect", str(tmp_path / "r.tfrecord"))
    assert sampled.exit_code == 0
    full = _run("records", "inspect", str(tmp_path / "r.tfrecord"), "--all")
    assert full.exit_code == 1
    assert f"{tmp_path / 'r.tfrecord'}, record 2, feature 'image'" in full.output
    assert "Traceback" not in full.output


def test_cli_csv_error_names_the_flag_and_python_the_argument(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a;b\n1;2\n")
    (tmp_path / "u.csv").write_text("a,b\n1,2\n3\n")
    result = _run("records", "convert", "csv", str(tmp_path / "u.csv"), str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "--delimiter" in result.output
    assert "delimiter=" not in result.output
    assert not (tmp_path / "o").exists()
    with pytest.raises(SchemaError, match="delimiter="):
        convert_csv(tmp_path / "u.csv", tmp_path / "o")


def test_cli_classes_and_label_map_options(tmp_path: Path) -> None:
    _folder(tmp_path / "a", {"x": 1, "y": 1})
    first = _run(
        "records", "convert", "images", str(tmp_path / "a"), str(tmp_path / "d" / "a"),
        "--classes", "y, x", "--shards", "1",
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "(2 classes: y, x)" in first.output
    _folder(tmp_path / "b", {"x": 1})
    label_map = str(tmp_path / "d" / "a.label_map.json")
    second = _run(
        "records", "convert", "images", str(tmp_path / "b"), str(tmp_path / "d" / "b"),
        "--label-map", label_map, "--shards", "1",
    )  # fmt: skip
    assert second.exit_code == 0, second.output
    assert _labels_by_file(tmp_path / "d" / "b-*.tfrecord") == {"x/x0.jpg": 1}
    both = _run(
        "records", "convert", "images", str(tmp_path / "b"), str(tmp_path / "d" / "c"),
        "--label-map", label_map, "--classes", "x",
    )  # fmt: skip
    assert both.exit_code == 2
    assert "not both" in both.output
    same_out = _run(
        "records", "convert", "images", str(tmp_path / "a"), str(tmp_path / "d" / "e"),
        str(tmp_path / "b"), str(tmp_path / "d" / "e"),
    )  # fmt: skip
    assert same_out.exit_code == 1
    assert "one output per split" in same_out.output
    assert not list((tmp_path / "d").glob("e*"))
