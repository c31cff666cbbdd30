"""``hublayer records``: inspect TFRecord files and convert data into them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from hublayer.errors import HublayerError

__all__ = ["records"]

_PROGRESS = click.option(
    "--progress/--no-progress",
    default=None,
    help="Draw a progress bar (default: $HUBLAYER_PROGRESS, else on a terminal).",
)
_OVERWRITE = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace records already at OUT (the old set is removed once the new one is written).",
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
    except HublayerError:
        raise  # the CLI shows it with its fix worded for the command line
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
      hublayer records index data/train-*.tfrecord
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
@click.option(
    "--on-error",
    type=click.Choice(["raise", "skip"]),
    default="raise",
    show_default=True,
    help="Corrupt records: stop at the first, or skip and count them.",
)
def inspect(
    files: tuple[str, ...], as_json: bool, sample: int, read_all: bool, on_error: str
) -> None:
    """Describe what TFRecord files hold: each feature's kind, length, missing rate,
    images (format, size, channels) or text, and a few sample values.

    FILES are paths, glob patterns, folders or URLs (gs://, s3://...). With --all
    every image is also decoded; images that do not decode are listed (file, record,
    feature) and the exit status is 1.

    \b
    Examples:
      hublayer records inspect data/train-*.tfrecord
      hublayer records inspect data/ --json > data/schema.json
      hublayer records inspect 'data/train-*' --all
    """
    from hublayer.records import inspect as inspect_records
    from hublayer.records import verify_images

    with _user_errors():
        schema = inspect_records(
            list(files),
            sample=None if read_all else sample,
            on_error=on_error,  # type: ignore[arg-type]
        )
        bad = verify_images(list(files), limit=1000) if read_all else []
    click.echo(schema.to_json().rstrip() if as_json else str(schema))
    if bad:
        shown = "\n".join(f"  {b}" for b in bad[:20])
        more = f"\n  ... and more ({len(bad)} shown at most 1000)" if len(bad) > 20 else ""
        raise click.ClickException(
            f"{len(bad)} image(s) do not decode; training on these files would fail:\n"
            f"{shown}{more}\nConvert the source images again (hublayer records convert "
            "images skips and lists undecodable files)."
        )


@records.command("index")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an index that hublayer did not write and that does not match its file.",
)
def index(files: tuple[str, ...], overwrite: bool) -> None:
    """Write a random-access index for each TFRecord file: one line "offset size" per
    record, the format of NVIDIA DALI's tfrecord2idx and of the tfrecord package.

    FILES are local, uncompressed TFRecord files: paths, glob patterns or folders. Each
    index is written beside its file as FILE.idx (in hublayer's cache when the folder
    is read-only) and reused while the file is unchanged. Prints one line per file:
    the index and its record count. records.Source reads through these indexes.

    \b
    Examples:
      hublayer records index data/train-*.tfrecord
      hublayer records index data/ --overwrite
    """
    from hublayer.records import index as write_index

    with _user_errors():
        paths = write_index(list(files), overwrite=overwrite)
    for path in paths:
        with open(path, "rb") as f:
            count = sum(1 for _ in f)
        click.echo(f"{path}  {count:,} records")


@records.group("convert")
def convert() -> None:
    """Write image folders, CSV, Parquet or TFRecord files as TFRecord shards."""


def _run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with _user_errors():
        summary = function(*args, **kwargs)
    click.echo(str(summary))


@convert.command("images")
@click.argument("pairs", metavar="DIR OUT [DIR OUT]...", nargs=-1, required=True)
@click.option(
    "--classes",
    metavar="A,B,C",
    help="The class names, in label order (default: every class folder, sorted).",
)
@click.option(
    "--label-map",
    type=click.Path(dir_okay=False, exists=True),
    help="Take the classes from a label map written before (OUT.label_map.json).",
)
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
@click.option(
    "--on-error",
    type=click.Choice(["skip", "raise"]),
    default="skip",
    show_default=True,
    help="Files that are not readable images: skip and list them, or fail listing them.",
)
@_OVERWRITE
@_COMPRESSION
@_PROGRESS
def convert_images(
    pairs: tuple[str, ...],
    classes: str | None,
    label_map: str | None,
    shards: int,
    max_size: int | None,
    quality: int,
    seed: int,
    on_error: str,
    overwrite: bool,
    compression: str,
    progress: bool | None,
) -> None:
    """Convert DIR, with one subfolder of images per class, into OUT-NNNNN-of-NNNNN
    shards (features: image, label, filename) and OUT.label_map.json.

    Give several DIR OUT pairs (train, validation, test) to convert them with one
    label map: the classes are every folder found in any DIR, so a split that lacks
    a class numbers the others as the rest do. Converting splits one at a time? Pass
    the same --classes, or --label-map OUT.label_map.json of the first one.

    Every image is decoded first: files that are empty, truncated or not images are
    skipped and listed (or, with --on-error raise, nothing is written).

    \b
    Examples:
      hublayer records convert images photos/train data/train photos/val data/val \\
          photos/test data/test --shards 8
      hublayer records convert images more/ data/more --label-map data/train.label_map.json
      hublayer records convert images photos/ data/small --max-size 256 --overwrite
    """
    import os

    from hublayer.records import convert_image_splits

    if len(pairs) % 2:
        raise click.UsageError(
            f"Expected pairs of DIR OUT. Received: {len(pairs)} argument(s): "
            f"{' '.join(pairs)}. Give an output prefix for every folder."
        )
    if classes is not None and label_map is not None:
        raise click.UsageError("Pass --classes or --label-map, not both.")
    names: list[str] | str | None = label_map
    if classes is not None:
        names = [c.strip() for c in classes.split(",") if c.strip()]
    splits: dict[str | os.PathLike[str], str | os.PathLike[str]] = {
        pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)
    }
    if len(splits) * 2 != len(pairs):
        raise click.UsageError("Expected each DIR once. Received: a folder given twice.")
    with _user_errors():
        summaries = convert_image_splits(
            splits,
            classes=names,
            shards=shards,
            max_size=max_size,
            quality=quality,
            seed=seed,
            on_error=on_error,
            overwrite=overwrite,
            compression=_compression(compression),
            progress=progress,
        )
    for summary in summaries:
        click.echo(str(summary))


@convert.command("csv")
@click.argument("path", metavar="FILE")
@click.argument("out")
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Default: one file.")
@click.option("--delimiter", default=",", show_default=True)
@_OVERWRITE
@_COMPRESSION
@_PROGRESS
def convert_csv(
    path: str,
    out: str,
    shards: int | None,
    delimiter: str,
    overwrite: bool,
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
        overwrite=overwrite,
        compression=_compression(compression),
        progress=progress,
    )


@convert.command("parquet")
@click.argument("path", metavar="FILE")
@click.argument("out")
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Default: one file.")
@_OVERWRITE
@_COMPRESSION
@_PROGRESS
def convert_parquet(
    path: str,
    out: str,
    shards: int | None,
    overwrite: bool,
    compression: str,
    progress: bool | None,
) -> None:
    """Convert a Parquet file (needs pyarrow): one Example per row.

    \b
    Example:
      hublayer records convert parquet events.parquet data/events --shards 4
    """
    from hublayer.records import convert_parquet as run

    _run(
        run,
        path,
        out,
        shards=shards,
        overwrite=overwrite,
        compression=_compression(compression),
        progress=progress,
    )


@convert.command("records")
@click.argument("files", metavar="FILES... OUT", nargs=-1, required=True)
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Default: one file.")
@_OVERWRITE
@_COMPRESSION
@_PROGRESS
def convert_records(
    files: tuple[str, ...],
    shards: int | None,
    overwrite: bool,
    compression: str,
    progress: bool | None,
) -> None:
    """Copy TFRecord files (any compression, detected) into new shards: uncompressed by
    default, which random access (records index, records.Source) needs. Every CRC is
    checked on the way; the last argument is the output.

    \b
    Examples:
      hublayer records convert records data/train-*.tfrecord.gz plain/train --compression none
      hublayer records convert records big.tfrecord data/train --shards 16
    """
    from hublayer.records import convert_records as run

    if len(files) < 2:
        raise click.UsageError(
            f"Expected FILES... OUT: input files, then the output. Received: {list(files)}."
        )
    _run(
        run,
        list(files[:-1]),
        files[-1],
        shards=shards,
        overwrite=overwrite,
        compression=_compression(compression),
        progress=progress,
    )
