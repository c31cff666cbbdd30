"""How ``records.dataset`` decodes images: :class:`ImageOptions` and its short forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from hublayer._specs import check_range

__all__ = ["Crop", "ImageOptions", "image_options"]

Crop: TypeAlias = Literal["none", "center"]


@dataclass(frozen=True)
class ImageOptions:
    """How to decode an image feature. Fields left None come from the model, or the data.

    Args:
        feature: the bytes feature holding encoded images (default: the model input's
            name, else the only image feature).
        size: ``(height, width)`` or one int for a square; None keeps the model's size,
            else the images' own size when they all have one.
        channels: decode to this many channels (1, 3 or 4), converting when the data
            differs: asking for it is how grayscale data feeds an RGB model.
        dtype: ``"float32"`` (default), ``"float16"``, ``"bfloat16"`` or ``"uint8"``.
        value_range: ``(low, high)`` that pixel values are scaled to (also accepted as
            ``range`` in a dict: ``image={"range": (-1, 1)}``); default the range the
            model declares, else ``(0, 1)`` for floats, TF Hub's convention, reported as
            assumed, and ``(0, 255)`` for ``uint8``.
        crop: ``"none"`` (default: resize the whole image) or ``"center"``: keep the
            central ``crop_fraction`` of the shorter side, decoding only that region of a
            JPEG, then resize. ``"center"`` is the ImageNet *evaluation* protocol (TF-slim's
            ``central_fraction=0.875``, timm's ``crop_pct=0.875``): use it to evaluate a
            pretrained classifier as its authors did, or for speed when the images are
            about 1/0.875 of the model's size (256 px for 224: the crop needs no resize;
            ``benchmarks/RESULTS.md``, case ``images``, measures it). It is not the default
            because it throws away the border (23 % of the area at 0.875), where the data may
            hold what the label depends on, and upsamples images that are already at the
            model's size (224 to 196 and back); TF Hub's model pages and Keras' image
            loaders resize the whole image, and training and serving must preprocess alike.
        crop_fraction: the part of the shorter side that ``"center"`` keeps.

    Example:
        >>> ImageOptions(size=224, channels=3).size
        (224, 224)
    """

    feature: str | None = None
    size: tuple[int, int] | None = None
    channels: int | None = None
    dtype: str | None = None
    value_range: tuple[float, float] | None = None
    crop: Crop = "none"
    crop_fraction: float = 0.875

    def __post_init__(self) -> None:
        size: Any = self.size
        if isinstance(size, int) and not isinstance(size, bool):
            object.__setattr__(self, "size", (size, size))
        elif size is not None:
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(
                    "Expected image size to be an int or (height, width) of positive ints. "
                    f"Received: size={size!r}."
                )
            object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        if self.value_range is not None:
            object.__setattr__(self, "value_range", check_range(self.value_range, name="range"))
        if self.channels not in (None, 1, 3, 4):
            raise ValueError(
                f"Expected image channels to be 1, 3 or 4. Received: channels={self.channels!r}."
            )
        if self.crop not in ("none", "center"):
            raise ValueError(
                f'Expected crop to be "none" or "center". Received: crop={self.crop!r}.'
            )
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(
                f"Expected crop_fraction in (0, 1]. Received: crop_fraction={self.crop_fraction!r}."
            )


def image_options(image: ImageOptions | Mapping[str, Any] | str | int | None) -> ImageOptions:
    """Normalize ``dataset(image=...)``: options, a dict of them, a feature name, a size."""
    if image is None:
        return ImageOptions()
    if isinstance(image, ImageOptions):
        return image
    if isinstance(image, str):
        return ImageOptions(feature=image)
    if isinstance(image, int | tuple):
        return ImageOptions(size=image)  # type: ignore[arg-type]
    if isinstance(image, Mapping):
        if "range" in image:  # the short spelling of value_range
            if "value_range" in image:
                raise ValueError(
                    "Expected one of image 'range' and 'value_range'. Received both: "
                    f"{image['range']!r} and {image['value_range']!r}. Keep one."
                )
            image = {("value_range" if k == "range" else k): v for k, v in image.items()}
        try:
            return ImageOptions(**image)
        except TypeError:
            valid = ", ".join([*ImageOptions.__dataclass_fields__, "range"])
            raise ValueError(
                f"Expected image options among {valid}. Received: {sorted(image)}."
            ) from None
    raise TypeError(
        "Expected image= to be None, a feature name, a size, a dict or ImageOptions. "
        f"Received: {image!r}."
    )
