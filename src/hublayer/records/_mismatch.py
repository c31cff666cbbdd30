"""The error a record pipeline raises when records cannot feed a model input.

Example:
    >>> from hublayer._specs import TensorInfo
    >>> error = mismatch(TensorInfo("x", "float32", (None, 4)), "x", "no values", "Write some.")
    >>> error.feature
    'x'
    >>> print(error)  # doctest: +NORMALIZE_WHITESPACE
    Expected records that can feed model input x: float32[None, 4]. Received: no values.
    Write some.
"""

from __future__ import annotations

from hublayer._specs import TensorInfo
from hublayer.errors import Fix, SpecMismatchError
from hublayer.records._schema import FeatureStats

__all__ = ["describe", "mismatch"]


def describe(stats: FeatureStats) -> str:
    extra = f", {stats.image}" if stats.image else (f", {stats.content}" if stats.content else "")
    return f"{stats.name}: {stats.kind}, length {stats.length}{extra}"


def mismatch(spec: TensorInfo, feature: str | None, why: str, fix: str | Fix) -> SpecMismatchError:
    """A mismatch error; ``fix`` is one sentence, or a :class:`Fix` when the CLI words
    it with a flag."""
    text = f"Expected records that can feed model input {spec}. Received: {why}."
    return SpecMismatchError(
        text if isinstance(fix, Fix) else f"{text} {fix}",
        feature=feature or spec.name,
        expected=str(spec),
        received=why,
        fix=fix if isinstance(fix, Fix) else None,
    )
