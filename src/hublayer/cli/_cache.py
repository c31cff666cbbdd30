"""``hublayer cache ls | verify | rm | prune``: look after the model cache."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from hublayer.cli._table import table
from hublayer.errors import CorruptEntryError

__all__ = ["cache"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{num_bytes} B" if unit == "B" else f"{value:.1f} {unit}"


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _ago(when: float) -> str:
    age = max(0.0, time.time() - when)
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if age < limit:
            return f"{age / size:.0f} {unit} ago"
    return f"{age / 86400:.0f} days ago"


class _Duration(click.ParamType):
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value))
        if match is None:
            self.fail(
                f"Expected a number and a unit (s, m, h, d, w), such as 30d. Received: {value!r}.",
                param,
                ctx,
            )
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


_cache_dir = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder (default: $HUBLAYER_CACHE_DIR, else ~/.cache/hublayer).",
)


@click.group("cache")
def cache() -> None:
    """List, verify, remove and prune cache entries.

    An entry is a model folder under <cache>/models/<key>, complete only when its
    manifest (path, size and sha256 of each file) exists.

    \b
    Examples:
      hublayer cache ls
      hublayer cache verify
      hublayer cache rm kaggle://google/bert/tensorFlow2/en-uncased
      hublayer cache prune --older-than 30d
    """


@cache.command("ls")
@_cache_dir
def ls(cache_dir: Path | None) -> None:
    """List cache entries with their size, last use, handle and folder.

    Every handle listed works with `hublayer inspect` and `hublayer train --model`, as
    does the key (or the path).

    \b
    Example:
      hublayer cache ls --cache-dir /data/hublayer-cache
    """
    from hublayer.cache import list_entries

    entries = list_entries(cache_dir=cache_dir)
    if not entries:
        click.echo("The cache is empty.")
        return
    rows = [
        [e.key, _size(e.size), str(e.files), _ago(e.last_used), e.handle, str(e.path)]
        for e in entries
    ]
    click.echo(table(rows, ["key", "size", "files", "last used", "handle", "path"]))
    click.echo(f"\n{_entries(len(entries))}, {_size(sum(e.size for e in entries))} in all.")


@cache.command("verify")
@click.argument("targets", nargs=-1)
@_cache_dir
def verify(targets: tuple[str, ...], cache_dir: Path | None) -> None:
    """Re-hash entries (all, or the given keys or handles) against their manifests.

    A damaged entry is marked incomplete, so the next resolve fetches it again.
    Exits with status 1 when any entry is damaged.

    \b
    Examples:
      hublayer cache verify
      hublayer cache verify kaggle/google/bert/tensorflow2/en-uncased/3
    """
    from hublayer.cache import verify as verify_entries

    checks = verify_entries(*targets, cache_dir=cache_dir)
    rows = [
        [c.entry.key, _size(c.entry.size), "ok" if c.ok else "; ".join(c.problems)] for c in checks
    ]
    if rows:
        click.echo(table(rows, ["key", "size", "status"]))
    damaged = [c.entry for c in checks if not c.ok]
    if damaged:
        raise CorruptEntryError(
            f"Expected every entry to match its manifest. Received: {len(damaged)} damaged "
            f"({', '.join(e.key for e in damaged)}), now marked incomplete. Run `hublayer "
            f"fetch {damaged[0].handle}` (or just resolve it again) to fetch it anew.",
            handle=damaged[0].handle,
            path=str(damaged[0].path),
            problems=[c.problems for c in checks if not c.ok],
        )
    click.echo(f"{_entries(len(checks))} verified, all intact.")


@cache.command("rm")
@click.argument("targets", nargs=-1, required=True)
@_cache_dir
def rm(targets: tuple[str, ...], cache_dir: Path | None) -> None:
    """Remove entries by key or handle.

    A Kaggle handle without a version removes every cached version.

    \b
    Examples:
      hublayer cache rm kaggle/google/bert/tensorflow2/en-uncased/3
      hublayer cache rm https://tfhub.dev/google/nnlm-en-dim128/2
    """
    from hublayer.cache import remove

    removed = remove(*targets, cache_dir=cache_dir)
    for entry in removed:
        click.echo(f"removed {entry.key} ({_size(entry.size)})")


@cache.command("prune")
@click.option(
    "--older-than",
    type=_Duration(),
    default=None,
    help="Remove entries not used for this long (30d, 12h, 2w...).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@_cache_dir
def prune(older_than: timedelta | None, dry_run: bool, cache_dir: Path | None) -> None:
    """Remove entries unused for a while, and what crashed downloads left behind.

    Without --older-than, only the leftovers of dead processes are removed.

    \b
    Examples:
      hublayer cache prune
      hublayer cache prune --older-than 30d --dry-run
    """
    from hublayer.cache import prune as prune_entries

    removed = prune_entries(older_than, cache_dir=cache_dir, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for entry in removed:
        click.echo(f"{verb} {entry.key} ({_size(entry.size)}, last used {_ago(entry.last_used)})")
    total = _size(sum(e.size for e in removed))
    click.echo(f"{verb} {_entries(len(removed))}, {total}.")
