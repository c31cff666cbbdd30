"""Case ``pin`` (issue #21): what a pin costs: a cached resolve, and a download.

A pinned resolve of a cached entry compares the digest its manifest records (no
re-hash), so it should cost what an unpinned one does. A pinned download is checked
from the hashes taken while unpacking, before the entry is committed. Both are measured
against the same call without the pin, in the same process, on the same loopback server
(in its own process, ``peers/_server.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks._data import archive, factory_model
from benchmarks._harness import CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._suites import Suite
from benchmarks.peers._server import LoopbackServer

__all__ = ["CASES"]

PINNED = "hublayer.resolve(HANDLE@sha256) (cached, repeat)"
UNPINNED = "hublayer.resolve(HANDLE) (cached, repeat)"
PINNED_DOWNLOAD = "hublayer.resolve(HANDLE@sha256) (download + unpack + verify)"
UNPINNED_DOWNLOAD = "hublayer.resolve(HANDLE) (download + unpack)"
CALLS = 200


def _serve(folder: str, cleanup: list[Callable[[], object]]) -> tuple[LoopbackServer, str]:
    server = LoopbackServer(folder)
    cleanup.append(server.close)
    root = tempfile.mkdtemp(prefix="hublayer-bench-pin-")
    cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
    return server, root


def _cached(handle: str, cache: str, *, pinned: bool) -> Callable[[], Any]:
    handles = require("hublayer.handles", "resolve", "pin")
    target = handles.pin(handle, cache_dir=cache) if pinned else handle  # fills the cache
    handles.resolve(target, cache_dir=cache)
    return lambda: handles.resolve(target, cache_dir=cache)


def cached(suite: Suite) -> Plan:
    model = factory_model()
    cleanup: list[Callable[[], object]] = []
    server, root = _serve(str(model.parent), cleanup)
    url = server.url("saved_model.tar.gz")
    return Plan(
        [
            InProcess(PINNED, lambda: _cached(url, f"{root}/pinned", pinned=True), inner=CALLS),
            InProcess(
                UNPINNED,
                lambda: _cached(url, f"{root}/unpinned", pinned=False),
                inner=CALLS,
                role="peer",
            ),
        ],
        [
            Ratio(PINNED, UNPINNED, "time", "<= 1.05"),
            Ratio(PINNED, "", "seconds", "<= 0.0001"),
        ],
        warmup=2,
        reps=suite.pick(9, 21),
        notes=[
            "Resolving an http://127.0.0.1 handle whose entry is already in the cache (the "
            f"MobileNetV2-sized SavedModel), each run the mean of {CALLS} calls in a warm "
            "process, with and without @sha256:<digest>. The pinned call splits the pin "
            "off (memoized), then compares the digest the manifest records with it: no file "
            "is read. The unpinned call looks for ./hublayer.lock (none here), so it does "
            "one stat the pinned call skips.",
        ],
        cleanup=cleanup,
    )


def _download(url: str, digest: str | None, cache: str) -> Callable[[], Any]:
    handles = require("hublayer.handles", "resolve")
    target = url if digest is None else f"{url}@{digest}"
    return lambda: handles.resolve(target, cache_dir=cache) and None


def _emptied(folder: str) -> Callable[[], None]:
    def empty() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)

    return empty


def download(suite: Suite) -> Plan:
    file = archive(suite.archive_mb)
    size = file.stat().st_size
    cleanup: list[Callable[[], object]] = []
    server, root = _serve(str(file.parent), cleanup)
    url = server.url(file.name)
    handles = require("hublayer.handles", "pin")
    digest = handles.pin(url, cache_dir=f"{root}/probe").rsplit("@", 1)[1]
    pinned, unpinned = f"{root}/pinned", f"{root}/unpinned"
    return Plan(
        [
            InProcess(
                PINNED_DOWNLOAD,
                lambda: _download(url, digest, pinned),
                before=_emptied(pinned),
                nbytes=size,
            ),
            InProcess(
                UNPINNED_DOWNLOAD,
                lambda: _download(url, None, unpinned),
                before=_emptied(unpinned),
                role="peer",
                nbytes=size,
            ),
        ],
        [Ratio(PINNED_DOWNLOAD, UNPINNED_DOWNLOAD, "time", "<= 1.05")],
        warmup=1,
        reps=suite.pick(5, 7),
        notes=[
            f"Downloading a {size / 1e6:.0f} MB .tar.gz from a loopback server into an empty "
            "cache each run (emptied untimed), with and without the pin. Verifying reuses "
            "the sha256 of each file taken while it was unpacked, so the pin adds one "
            "sha256 over the sorted file listing before the commit.",
        ],
        cleanup=cleanup,
    )


CASES = (
    CaseSpec("pin", "A pinned cached resolve against an unpinned one", cached, issue="#21"),
    CaseSpec("pin_download", "Download + verify a pinned handle", download, issue="#21"),
)
