"""Matching records to a model's input spec, before any TensorFlow work."""

from __future__ import annotations

import pytest

from hublayer._specs import TensorInfo
from hublayer.errors import SchemaError, SpecMismatchError
from hublayer.records import FeatureStats, ImageOptions, ImageStats, Schema
from hublayer.records._match import ImagePlan, TensorPlan, plan


def _image(name: str, channels: tuple[int, ...] = (3,), size: int | None = 256) -> FeatureStats:
    low, high = (size, size) if size else (100, 300)
    stats = ImageStats(("jpeg",), low, high, low, high, channels)
    return FeatureStats(name, "bytes", 10, 0.0, 1, 1, 1.0, "image", stats)


def _plain(name: str, kind: str, length: int = 1, *, low: int | None = None) -> FeatureStats:
    content = "text" if kind == "bytes" else None
    low = length if low is None else low
    return FeatureStats(name, kind, 10, 0.0, low, length, float(length), content)  # type: ignore[arg-type]


RGB = TensorInfo("images", "float32", (None, 224, 224, 3), value_range=(0.0, 1.0))
TEXT = TensorInfo("sentences", "string", (None,))


def test_image_model_takes_size_channels_dtype_and_range_from_the_spec() -> None:
    schema = Schema((_image("image"), _plain("label", "int64")), records=10)
    spec = TensorInfo("images", "bfloat16", (None, 160, 128, 3), value_range=(-1.0, 1.0))
    result = plan(schema, label="label", for_model=[spec])
    (image,) = result.inputs
    assert isinstance(image, ImagePlan)
    assert (image.feature, image.output) == ("image", "images")
    assert (image.height, image.width, image.channels) == (160, 128, 3)
    assert (image.dtype, image.value_range) == ("bfloat16", (-1.0, 1.0))
    assert result.single
    assert result.label == TensorPlan("label", "label", "int64", ())


def test_default_value_range_is_zero_to_one_for_floats_and_full_for_uint8() -> None:
    schema = Schema((_image("image"),), records=10)
    no_range = TensorInfo("x", "float32", (None, 224, 224, 3))
    assert plan(schema, for_model=[no_range]).images[0].value_range == (0.0, 1.0)
    as_uint8 = TensorInfo("x", "uint8", (None, 224, 224, 3))
    assert plan(schema, for_model=[as_uint8]).images[0].value_range == (0.0, 255.0)


def test_no_image_feature_names_the_input_and_what_the_records_hold() -> None:
    schema = Schema((_plain("caption", "bytes"), _plain("label", "int64")), records=10)
    with pytest.raises(SpecMismatchError, match="no image feature") as info:
        plan(schema, label="label", for_model=[RGB])
    error = info.value
    assert error.feature == "images"
    assert error.expected == "images: float32[None, 224, 224, 3]"
    assert "caption: bytes" in error.received
    assert "images: float32[None, 224, 224, 3]" in str(error)


def test_grayscale_data_for_an_rgb_model_is_converted_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hublayer.records import _image_plan

    _image_plan._NOTED.clear()
    schema = Schema((_image("scan", channels=(1,)),), records=10)
    with caplog.at_level("WARNING", logger="hublayer.records"):
        automatic = plan(schema, for_model=[RGB])
        plan(schema, for_model=[RGB])
    assert automatic.images[0].channels == 3
    notes = [r.getMessage() for r in caplog.records if "Converting" in r.getMessage()]
    assert notes == [
        "Converting the grayscale images of 'scan' to RGB, as the model takes 3 channel(s)."
    ]
    converted = plan(schema, image={"channels": 3}, for_model=[RGB])
    assert converted.images[0].channels == 3
    with pytest.raises(SpecMismatchError, match="channels=1 asked for"):
        plan(schema, image={"channels": 1}, for_model=[RGB])


def test_text_model_fed_int64_is_refused() -> None:
    schema = Schema((_plain("sentences", "int64", 12), _plain("label", "int64")), records=10)
    with pytest.raises(SpecMismatchError, match="int64") as info:
        plan(schema, label="label", for_model=[TEXT])
    assert info.value.feature == "sentences"
    assert "text=" in str(info.value)
    with pytest.raises(SpecMismatchError, match="text model takes strings"):
        plan(schema, text="label", for_model=[TEXT])


def test_text_model_picks_the_only_text_feature_and_its_rank() -> None:
    schema = Schema((_plain("review", "bytes"), _plain("stars", "int64")), records=10)
    result = plan(schema, label="stars", for_model=[TensorInfo("text", "string", (None, 1))])
    assert result.inputs == (TensorPlan("review", "text", "string", (), rank2_text=True),)


def test_a_string_label_is_never_taken_for_the_text_input() -> None:
    schema = Schema((_plain("review", "bytes"), _plain("topic", "bytes")), records=10)
    result = plan(schema, label="topic", for_model=[TEXT])
    assert result.inputs == (TensorPlan("review", "sentences", "string", ()),)
    assert result.label is not None
    assert result.label.feature == "topic"


def test_several_image_features_need_a_choice() -> None:
    schema = Schema((_image("left"), _image("right")), records=10)
    with pytest.raises(SpecMismatchError, match=r"several image features \(left, right\)"):
        plan(schema, for_model=[RGB])
    assert plan(schema, image="right", for_model=[RGB]).images[0].feature == "right"


def test_image_size_comes_from_options_or_fixed_data() -> None:
    varied = Schema((_image("image", size=None),), records=10)
    any_size = TensorInfo("x", "float32", (None, None, None, 3))
    with pytest.raises(SchemaError, match="Pass image="):
        plan(varied, for_model=[any_size])
    assert plan(varied, image=96, for_model=[any_size]).images[0].height == 96
    fixed = Schema((_image("image"),), records=10)
    assert plan(fixed, for_model=[any_size]).images[0].width == 256
    with pytest.raises(SpecMismatchError, match="leave size= out"):
        plan(fixed, image={"size": 96}, for_model=[RGB])


def test_numeric_inputs_match_by_name_kind_and_length() -> None:
    schema = Schema(
        (_plain("pixels", "int64", 784), _plain("x", "float", 4), _plain("y", "float", 4, low=2)),
        records=10,
    )
    digits = TensorInfo("pixels", "float32", (None, 28, 28, 1))
    (pixels,) = plan(schema, for_model=[digits]).inputs
    assert pixels == TensorPlan("pixels", "pixels", "int64", (784,), "float32", (28, 28, 1))
    features = TensorInfo("x", "float32", (None, 4))
    assert plan(schema, for_model=[features]).inputs[0].shape == (4,)  # type: ignore[union-attr]
    with pytest.raises(SpecMismatchError, match="no feature named 'z'"):
        plan(schema, for_model=[TensorInfo("z", "float32", (None, 4))])
    with pytest.raises(SpecMismatchError, match="same number of values"):
        plan(schema, for_model=[TensorInfo("y", "float32", (None, 4))])
    with pytest.raises(SpecMismatchError, match="int32"):
        plan(schema, for_model=[TensorInfo("x", "int32", (None, 4))])


def test_label_must_exist_and_be_fixed() -> None:
    schema = Schema((_plain("tags", "int64", 3, low=0),), records=10)
    with pytest.raises(SchemaError, match="label feature 'label'"):
        plan(schema, label="label")
    with pytest.raises(SchemaError, match="same number of values"):
        plan(schema, label="tags")


def test_without_a_model_every_known_feature_is_parsed() -> None:
    schema = Schema(
        (
            _image("image"),
            _plain("label", "int64"),
            _plain("tokens", "int64", 5, low=0),
            FeatureStats("mixed", "mixed", 10, 0.0, 1, 1, 1.0),
        ),
        records=10,
    )
    result = plan(schema, label="label", image={"size": 64})
    outputs = {item.output: item for item in result.inputs}
    assert sorted(outputs) == ["image", "tokens"]
    assert outputs["tokens"].shape is None  # type: ignore[union-attr]
    assert (outputs["image"].height, outputs["image"].channels) == (64, 3)  # type: ignore[union-attr]
    assert not result.single


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"size": (0, 3)}, "size"),
        ({"channels": 2}, "channels"),
        ({"crop": "random"}, "crop"),
        ({"crop_fraction": 0}, "crop_fraction"),
        ({"colour": 3}, "Expected image options among"),
    ],
)
def test_bad_image_options(options: dict[str, object], match: str) -> None:
    schema = Schema((_image("image"),), records=10)
    with pytest.raises(ValueError, match=match):
        plan(schema, image=options)
    assert ImageOptions(size=5).size == (5, 5)  # type: ignore[arg-type]  # an int: square
