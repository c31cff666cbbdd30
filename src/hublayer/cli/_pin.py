"""``hublayer pin HANDLE...`` and ``hublayer lock HANDLE...``: pin models to their content."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["lock", "pin"]

_cache_dir = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder (default: $HUBLAYER_CACHE_DIR, else ~/.cache/hublayer).",
)


@click.command("pin")
@click.argument("handles", nargs=-1, required=True, metavar="HANDLE...")
@_cache_dir
def pin(handles: tuple[str, ...], cache_dir: Path | None) -> None:
    """Print each HANDLE pinned to the content it names now: HANDLE@sha256:<64 hex>.

    Each handle is resolved first (downloaded into the cache when needed). A pinned
    handle then loads exactly that content anywhere a handle is accepted, or fails
    with IntegrityError. A Kaggle handle without a version gets the version it
    resolved to. The lock file is not consulted.

    \b
    Examples:
      hublayer pin kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector
      hublayer pin ./model.tar.gz https://example.com/encoder.tar.gz
    """
    from hublayer.handles import pin as pin_handle

    for handle in handles:
        click.echo(pin_handle(handle, cache_dir=cache_dir))


@click.command("lock")
@click.argument("handles", nargs=-1, metavar="[HANDLE]...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The lock file (default: $HUBLAYER_LOCKFILE, else ./hublayer.lock).",
)
@click.option(
    "--update",
    is_flag=True,
    help="Pin the given handles (all listed ones when none is given) to their content now.",
)
@_cache_dir
def lock(
    handles: tuple[str, ...], output: Path | None, update: bool, cache_dir: Path | None
) -> None:
    """Write each HANDLE and its content digest into a lock file.

    While the lock file is in force ($HUBLAYER_LOCKFILE, or ./hublayer.lock), an
    unpinned handle it lists loads only that content (IntegrityError otherwise);
    HUBLAYER_LOCKED=1 also refuses handles it does not list. A handle already listed is
    checked against its entry, not changed, unless --update pins it again. With no
    HANDLE, every listed handle is checked (or, with --update, pinned again). The file
    is written only when every handle succeeds.

    \b
    Examples:
      hublayer lock kaggle://google/bert/tensorFlow2/en-uncased/3 --output hublayer.lock
      hublayer lock                 # check every entry of ./hublayer.lock
      hublayer lock --update https://example.com/encoder.tar.gz
    """
    from hublayer import config
    from hublayer.handles import write_lock_file

    target = config.lockfile(output) or Path(config.LOCKFILE_NAME)
    entries = write_lock_file(*handles, path=target, update=update, cache_dir=cache_dir)
    for handle, digest in entries.items():
        click.echo(f"{handle}  {digest}")
    click.echo(f"\n{len(entries)} {'entry' if len(entries) == 1 else 'entries'} in {target}.")
