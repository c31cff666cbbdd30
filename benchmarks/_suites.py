"""The two suites: the sizes and repetitions each case uses.

``quick`` (``make bench``) fits in 10 minutes on 2 cores, so some inputs are smaller than
the issue's; the table says so next to each case. ``full`` (``make bench-full``) uses the
issue's sizes: 20k JPEGs, 1M tabular examples, a 200 MB archive, 1 GB of shards.

Example:
    >>> SUITES["quick"].images < SUITES["full"].images
    True
    >>> SUITES["full"].pick(3, 10)
    10
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

__all__ = ["SUITES", "Suite"]

T = TypeVar("T")


@dataclass(frozen=True)
class Suite:
    """Sizes for one suite.

    Args:
        name: ``"quick"`` or ``"full"``.
        images: JPEG examples (256 px, resized to 224) for the image pipelines.
        tabular: small tabular examples for the tabular pipeline and raw framing.
        archive_mb: size of the archive that is downloaded and unpacked.
        inspect_mb: total size of the shards that ``records inspect`` looks at.
        train_images: examples for the feature-extraction training case.
        train_size: image side for the training case's backbone.
        epochs: epochs of the training case.
    """

    name: str
    images: int
    tabular: int
    archive_mb: int
    inspect_mb: int
    train_images: int
    train_size: int
    epochs: int = 10

    @property
    def full(self) -> bool:
        return self.name == "full"

    def pick(self, quick: T, full: T) -> T:
        """``full`` in the full suite, ``quick`` otherwise."""
        return full if self.full else quick


SUITES: dict[str, Suite] = {
    "quick": Suite(
        name="quick",
        images=4_000,
        tabular=200_000,
        archive_mb=200,
        inspect_mb=1024,
        train_images=640,
        train_size=64,
    ),
    "full": Suite(
        name="full",
        images=20_000,
        tabular=1_000_000,
        archive_mb=200,
        inspect_mb=1024,
        train_images=2_000,
        train_size=224,
    ),
}
