"""The plan a record pipeline follows: which feature becomes which input, decoded how.

Plain data, made by :func:`hublayer.records._match.plan` and followed by the pipeline
builders (``_parse``, ``_parser``), so every decision is taken, and checked, before
TensorFlow builds anything.

Example:
    >>> label = TensorPlan("label", "label", "int64", ())
    >>> Plan((TensorPlan("x", "x", "float32", (4,)),), label, single=True).images
    ()
"""

from __future__ import annotations

from dataclasses import dataclass

from hublayer.records._options import Crop

__all__ = ["ImagePlan", "Plan", "TensorPlan"]


@dataclass(frozen=True)
class ImagePlan:
    """Decode ``feature`` into ``[height, width, channels]`` of ``dtype``."""

    feature: str
    output: str
    height: int
    width: int
    channels: int
    dtype: str
    value_range: tuple[float, float]
    #: Where ``value_range`` came from (``hublayer._specs.RANGE_*``): given by the caller,
    #: declared by the model, or assumed from TF Hub's convention.
    range_source: str
    crop: Crop
    crop_fraction: float
    jpeg_only: bool
    source_size: tuple[int, int] | None  # every image's size, when they all share one


@dataclass(frozen=True)
class TensorPlan:
    """Parse ``feature`` as is: dense with ``shape`` per record, or ragged."""

    feature: str
    output: str
    dtype: str  # as parsed: string, float32, int64
    shape: tuple[int, ...] | None  # None: ragged
    cast: str | None = None  # the model's dtype, when it differs
    reshape: tuple[int, ...] | None = None  # the model's per-record shape, when it differs
    rank2_text: bool = False  # a string input of shape [B, 1]


@dataclass(frozen=True)
class Plan:
    """What the pipeline produces: ``(inputs, label)``."""

    inputs: tuple[ImagePlan | TensorPlan, ...]
    label: TensorPlan | None
    single: bool  # yield the only input as a tensor instead of a dict

    @property
    def images(self) -> tuple[ImagePlan, ...]:
        return tuple(p for p in self.inputs if isinstance(p, ImagePlan))
