"""``--engine``, ``--workers`` and ``--address``: how a command runs on Ray, one definition.

Example:
    >>> @click.command()
    ... @ray_options(engine="ray: Ray Data.", workers="Actors.", address="Ray cluster.")
    ... def run(engine: str, workers: int | None, address: str | None) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

__all__ = ["ray_options"]

_Command = TypeVar("_Command", bound=Callable[..., object])


def ray_options(*, engine: str, workers: str, address: str) -> Callable[[_Command], _Command]:
    """The three options, in this order, each with the command's own help text.

    Args:
        engine: help of ``--engine`` (``local``, the default, or ``ray``).
        workers: help of ``--workers`` (a positive int, or None).
        address: help of ``--address`` (the Ray cluster, or None for a local Ray).
    """
    options = [
        click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help=engine,
        ),
        click.option("--workers", type=click.IntRange(min=1), help=workers),
        click.option("--address", help=address),
    ]

    def apply(command: _Command) -> _Command:
        for option in reversed(options):
            command = option(command)
        return command

    return apply
