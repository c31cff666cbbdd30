"""``hublayer embed``: embeddings of a dataset, one output shard per input shard.

The work is :func:`hublayer.embed.embed`; this parses flags and prints the result.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from hublayer.cli._notes import notes_shown
from hublayer.cli._range_option import input_range_option, parse_input_range
from hublayer.cli._ray_options import ray_options
from hublayer.cli._text_options import output_key_option, preprocess_option

__all__ = ["embed"]


def _keep(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise click.BadParameter(
            f"Expected feature names separated by commas. Received: {value!r}.",
            param_hint="--keep",
        )
    return names


@click.command("embed")
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: one shard per input shard, named after it.",
)
@click.option("--keep", help="Features copied to each output row, comma separated: label,id.")
@click.option("--signature", help="Model signature [default: the model's call].")
@output_key_option
@preprocess_option
@click.option("--text", "text_feature", help="Feature holding the text [default: the only one].")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["tfrecord", "parquet"]),
    default="tfrecord",
    show_default=True,
)
@ray_options(
    engine='local: this machine; ray: Ray Data and model actors (pip install "hublayer[ray]").',
    workers="Model actors with --engine ray [default: one per 2 CPUs, at most one per 2 GiB].",
    address="Ray cluster to join (ray://host:10001, auto) [default: a local Ray].",
)
@input_range_option
@click.option(
    "--on-error",
    type=click.Choice(["raise", "skip"]),
    default="raise",
    show_default=True,
    help="A bad record (truncated, a wrong CRC, a value of another kind than the schema): "
    "fail its shard, or skip it and count it (the counts per shard are in the output "
    "folder's .hublayer-embed.json).",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar [default: on a terminal]."
)
def embed(
    model: str,
    inputs: tuple[str, ...],
    out_dir: Path,
    keep: str | None,
    signature: str | None,
    output_key: str | None,
    preprocess: str | None,
    text_feature: str | None,
    batch_size: int,
    output_format: str,
    engine: str,
    workers: int | None,
    address: str | None,
    input_range: str | None,
    on_error: str,
    progress: bool | None,
) -> None:
    """Embed every record of INPUTS with MODEL and write the embeddings to --out.

    INPUTS are TFRecord files, globs, folders or URLs (gs://, s3://...), or one image
    folder with a subfolder per class. Each output row holds the --keep features and
    `embedding`. A run that is started again skips the output shards that are complete.

    \b
    Examples:
      hublayer embed models/encoder "data/train-*.tfrecord" --out emb --keep label,id
      hublayer embed models/encoder data/photos --out emb --format parquet
      hublayer embed models/encoder data/photos --out emb --input-range -1,1
      hublayer embed models/bert_encoder "reviews/*.tfrecord" --out emb \\
          --preprocess models/bert_preprocess --keep id
      hublayer embed models/encoder "data/*.tfrecord" --out emb --engine ray --workers 4
      hublayer embed models/encoder "gs-mounted/*.tfrecord" --out emb --engine ray \\
          --address auto
    """
    from hublayer.embed import embed as run_embed

    if engine == "local" and (workers is not None or address is not None):
        raise click.BadParameter(
            "Expected --workers and --address only with --engine ray. Received: "
            f"--engine {engine}. Add --engine ray, or drop them.",
            param_hint="--engine",
        )
    with notes_shown(logging.INFO):
        result = run_embed(
            model,
            list(inputs),
            out_dir,
            signature=signature,
            output_key=output_key,
            batch_size=batch_size,
            keep=_keep(keep),
            format="parquet" if output_format == "parquet" else "tfrecord",
            engine=engine,
            num_workers=workers,
            address=address,
            progress=progress,
            on_error=on_error,
            input_range=parse_input_range(input_range),
            preprocess=preprocess,
            text=text_feature,
        )
    click.echo(result.preprocessing)
    click.echo(str(result))
    click.echo(f"Outputs: {out_dir} ({len(result.outputs)} shard(s))")
