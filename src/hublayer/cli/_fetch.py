"""``hublayer fetch HANDLE``: resolve a handle into the cache and print its path."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["fetch"]


@click.command("fetch")
@click.argument("handle")
@click.option("--force", is_flag=True, help="Download again even if a complete entry exists.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder (default: $HUBLAYER_CACHE_DIR, else ~/.cache/hublayer).",
)
def fetch(handle: str, force: bool, cache_dir: Path | None) -> None:
    """Download a model HANDLE into the cache, check it, and print its local path.

    HANDLE is a tfhub.dev or Kaggle handle, kaggle://..., an http(s) archive URL,
    gs://..., s3://..., hf://..., or a local archive. A damaged cache entry is
    fetched again. A progress bar is shown on a terminal.

    \b
    Examples:
      hublayer fetch https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5
      hublayer fetch kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector
      hublayer fetch ./model.tar.gz --cache-dir /data/hublayer-cache
    """
    from hublayer.handles import resolve

    # Always into the cache, even with TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED (read in place).
    click.echo(resolve(handle, cache_dir=cache_dir, force_download=force, load_format="COMPRESSED"))
