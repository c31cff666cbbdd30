"""``hublayer records``: inspect TFRecord files and convert data into them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["records"]

_PROGRESS = click.option(
    "--progress/--no-progress",
    default=None,
    help="Draw a progress bar (default: $HUBLAYER_PROGRESS, else on a terminal).",
)
_COMPRESSION = click.option(
    "--compression",
    type=click.Choice(["none", "GZIP", "ZLIB"], case_sensitive=False),
    default="none",
    show_default=True,
    help="Compress the output files.",
)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Show bad input (a missing file, a wrong folder) as a one-line error, exit 1."""
    try:
        yield
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error


def _compression(value: str) -> str:
    return "" if value.lower() == "none" else value.upper()


@click.group("records")
def records() -> None:
    """Inspect and convert TFRecord files.

    \b
    Examples:
      hublayer records inspect data/train-*.tfrecord
      hublayer records convert images photos/ data/train --shards 8
    """


@records.command("inspect")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the schema as JSON.")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="About how many records to read, spread over the files.",
)
@click.option("--all", "read_all", is_flag=True, help="Read every record (exact counts).")
def inspect(files: tuple[str, ...], as_json: bool, sample: int, read_all: bool) -> None:
    """Describe what TFRecord files hold: each feature's kind, length, missing rate,
    images (format, size, channels) or text, and a few sample values.

    FILES are paths, glob patterns or folders.

    \b
    Examples:
      hublayer records inspect data/train-*.tfrecord
      hublayer records inspect data/ --json > data/schema.json
    """
    from hublayer.records import inspect as inspect_records

    with _user_errors():
        schema = inspect_records(list(files), sample=None if read_all else sample)
    click.echo(schema.to_json().rstrip() if as_json else str(schema))


@records.group("convert")
def convert() -> None:
    """Write image folders, CSV or Parquet files as TFRecord shards."""


def _run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with _user_errors():
        summary = function(*args, **kwargs)
    click.echo(str(summary))


@convert.command("images")
@click.argument("src", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("out")
@click.option("--shards", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="PX",
    help="Re-encode images larger than PX on their longer side (default: keep the bytes).",
)
@click.option("--quality", type=click.IntRange(1, 100), default=90, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the file shuffle.")
@_COMPRESSION
@_PROGRESS
def convert_images(
    src: str,
    out: str,
    shards: int,
    max_size: int | None,
    quality: int,
    seed: int,
    compression: str,
    progress: bool | None,
) -> None:
    """Convert DIR, with one subfolder of images per class, into OUT-NNNNN-of-NNNNN
    shards (features: image, label, filename) and OUT.label_map.json.

    \b
    Examples:
      hublayer records convert images photos/ data/train --shards 8
      hublayer records convert images photos/ data/small --max-size 256
    """
    from hublayer.records import convert_images as run

    _run(
        run,
        src,
        out,
        shards=shards,
        max_size=max_size,
        quality=quality,
        seed=seed,
        compression=_compression(compression),
        progress=progress,
    )


@convert.command("csv")
@click.argument("path", metavar="FILE")
@click.argument("out")
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Default: one file.")
@click.option("--delimiter", default=",", show_default=True)
@_COMPRESSION
@_PROGRESS
def convert_csv(
    path: str,
    out: str,
    shards: int | None,
    delimiter: str,
    compression: str,
    progress: bool | None,
) -> None:
    """Convert a CSV file with a header row: one Example per row, one feature per
    column (int64, float or bytes, whichever holds every value).

    \b
    Example:
      hublayer records convert csv iris.csv data/iris.tfrecord
    """
    from hublayer.records import convert_csv as run

    _run(
        run,
        path,
        out,
        shards=shards,
        delimiter=delimiter,
        compression=_compression(compression),
        progress=progress,
    )


@convert.command("parquet")
@click.argument("path", metavar="FILE")
@click.argument("out")
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Default: one file.")
@_COMPRESSION
@_PROGRESS
def convert_parquet(
    path: str, out: str, shards: int | None, compression: str, progress: bool | None
) -> None:
    """Convert a Parquet file (needs pyarrow): one Example per row.

    \b
    Example:
      hublayer records convert parquet events.parquet data/events --shards 4
    """
    from hublayer.records import convert_parquet as run

    _run(run, path, out, shards=shards, compression=_compression(compression), progress=progress)
