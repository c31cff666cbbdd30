"""``--input-range LOW,HIGH``: the value range a model's images take, one definition for
``train`` and ``embed``.

Example:
    >>> parse_input_range("-1,1"), parse_input_range(None)
    ((-1.0, 1.0), None)
"""

from __future__ import annotations

import click

__all__ = ["input_range_option", "parse_input_range"]

#: The option, as every command that feeds images to a model takes it.
input_range_option = click.option(
    "--input-range",
    "input_range",
    metavar="LOW,HIGH",
    help="Value range the model's images take, such as -1,1 [default: what the model "
    "declares, else 0,1, assumed from TF Hub's convention].",
)


def parse_input_range(value: str | None) -> tuple[float, float] | None:
    """``--input-range``'s value as ``(low, high)``, or None when it was not given.

    Raises:
        click.BadParameter: not two numbers with low < high.
    """
    if value is None:
        return None
    from hublayer._specs import check_range

    try:
        return check_range(value, name="--input-range")
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--input-range") from None
