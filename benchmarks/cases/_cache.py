"""Case 4, the cache: resolve a cached handle, download + unpack, build a layer from cache.

Archives are served over HTTP on 127.0.0.1 by a server in its own process
(``peers/_server.py``), so no client shares a GIL with it. Each contender gets its own
empty cache folder under a temp root, removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._data import archive, factory_model
from benchmarks._harness import CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._subprocess import LEGACY_ENV, ColdProcess, Worker
from benchmarks._suites import Suite
from benchmarks.peers._server import LoopbackServer

__all__ = ["CASES"]

OURS_RESOLVE = "hublayer.resolve (repeat)"
HUB_RESOLVE = "tensorflow_hub.resolve (repeat)"
OURS_FIRST = "hublayer.resolve (first, fresh process)"
HUB_FIRST = "tensorflow_hub.resolve (first, fresh process)"
OURS_LAYER = "hublayer.KerasLayer(handle)"
HUB_LAYER = "hub.KerasLayer(handle) (tf_keras)"
OURS_DOWNLOAD = "hublayer.resolve (download + unpack)"
CURL_TAR = "curl -o + tar xzf"
CURL_PIPE = "curl | tar xz (streamed)"
RESOLVE_CALLS = 50


def _serve(file: Path, plan_cleanup: list[Callable[[], object]]) -> tuple[str, str]:
    """Serve ``file``'s folder; returns (the file's URL, a temp root for caches)."""
    server = LoopbackServer(file.parent)
    plan_cleanup.append(server.close)
    root = tempfile.mkdtemp(prefix="hublayer-bench-cache-")
    plan_cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
    return server.url(file.name), root


# ---------------------------------------------------------------- resolve


def _resolve_ours(handle: str, cache: str) -> Callable[[], Any]:
    handles = require("hublayer.handles", "resolve")
    handles.resolve(handle, cache_dir=cache)  # download and unpack once, untimed
    return lambda: handles.resolve(handle, cache_dir=cache)


def _first(which: str, url: str, cache: str, **kw: Any) -> ColdProcess:
    argv = [sys.executable, "-m", "benchmarks.peers._first_call", which, url, cache]
    name = OURS_FIRST if which == "hublayer" else HUB_FIRST
    env = LEGACY_ENV if which == "hub" else None
    return ColdProcess(name, argv, env=env, until="reported", **kw)


def resolve(suite: Suite) -> Plan:
    model = factory_model()
    cleanup: list[Callable[[], object]] = []
    url, root = _serve(model.parent / "saved_model.tar.gz", cleanup)
    ours, hub = f"{root}/ours", f"{root}/hub"
    return Plan(
        [
            InProcess(OURS_RESOLVE, lambda: _resolve_ours(url, ours), inner=RESOLVE_CALLS),
            Worker(
                HUB_RESOLVE,
                "benchmarks.peers._legacy:resolve_hub",
                {"handle": url, "cache_dir": hub},
                env=LEGACY_ENV,
                inner=RESOLVE_CALLS,
                role="peer",
            ),
            # Started after the two above, which fill the caches; warm-up runs are untimed.
            _first("hublayer", url, ours),
            _first("hub", url, hub, role="peer"),
        ],
        [
            Ratio(OURS_RESOLVE, "", "seconds", "<= 0.005"),
            Ratio(OURS_RESOLVE, HUB_RESOLVE, "time", "< 1.0"),
            Ratio(OURS_FIRST, "", "seconds", "<= 0.005"),
            Ratio(OURS_FIRST, HUB_FIRST, "time", "< 1.0"),
        ],
        warmup=2,
        reps=suite.pick(9, 21),
        notes=[
            "Resolving a handle whose entry is already in the cache (an http://127.0.0.1 "
            "archive of the MobileNetV2-sized model), two ways. Repeat: in a warm process, "
            f"each run is the mean of {RESOLVE_CALLS} calls of the same handle, so in-process "
            "memos answer after the first. First: a fresh process per run imports the "
            "resolver (untimed) and times its first resolve of the handle, with no memo "
            "warm: what a new program or a CLI call pays. hublayer checks its completion "
            "marker and manifest; tensorflow_hub checks that the folder is not empty.",
        ],
        cleanup=cleanup,
    )


# ---------------------------------------------------------------- download + unpack


def _download_ours(url: str, cache: str) -> Callable[[], Any]:
    handles = require("hublayer.handles", "resolve")
    return lambda: handles.resolve(url, cache_dir=cache) and None


def _curl_tar(url: str, folder: str) -> Callable[[], Any]:
    target = Path(folder) / "model.tar.gz"
    unpacked = Path(folder) / "model"

    def run() -> None:
        unpacked.mkdir(parents=True)
        subprocess.run(["curl", "-sSf", "-o", str(target), url], check=True)
        subprocess.run(["tar", "xzf", str(target), "-C", str(unpacked)], check=True)

    return run


def _curl_pipe_tar(url: str, folder: str) -> Callable[[], Any]:
    """curl's output streamed into tar, as hublayer streams: no archive file on disk."""
    unpacked = Path(folder) / "model"

    def run() -> None:
        unpacked.mkdir(parents=True)
        curl = subprocess.Popen(["curl", "-sSf", url], stdout=subprocess.PIPE)
        tar = subprocess.run(["tar", "xzf", "-", "-C", str(unpacked)], stdin=curl.stdout)
        assert curl.stdout is not None  # PIPE above
        curl.stdout.close()
        if curl.wait() != 0 or tar.returncode != 0:
            raise RuntimeError(f"curl | tar failed: curl {curl.returncode}, tar {tar.returncode}")

    return run


def _emptied(folder: str) -> Callable[[], None]:
    def empty() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)

    return empty


def download(suite: Suite) -> Plan:
    file = archive(suite.archive_mb)
    size = file.stat().st_size
    cleanup: list[Callable[[], object]] = []
    url, root = _serve(file, cleanup)
    ours, peer, piped = f"{root}/ours", f"{root}/curl", f"{root}/pipe"
    return Plan(
        [
            InProcess(
                OURS_DOWNLOAD,
                lambda: _download_ours(url, ours),
                before=_emptied(ours),
                nbytes=size,
            ),
            InProcess(
                CURL_TAR,
                lambda: _curl_tar(url, peer),
                before=_emptied(peer),
                role="peer",
                nbytes=size,
            ),
            InProcess(
                CURL_PIPE,
                lambda: _curl_pipe_tar(url, piped),
                before=_emptied(piped),
                role="peer",
                nbytes=size,
            ),
        ],
        [
            Ratio(OURS_DOWNLOAD, CURL_TAR, "speed", ">= 0.8"),
            Ratio(OURS_DOWNLOAD, CURL_PIPE, "speed", ">= 0.8"),
        ],
        warmup=1,
        reps=suite.pick(5, 7),
        notes=[
            f"A {size / 1e6:.0f} MB .tar.gz (a small SavedModel plus float32 assets, which "
            "compress little, like weights) from a loopback HTTP server, into an empty cache "
            "each run (emptied untimed). Speed-up is throughput against two ways a shell user "
            "does it: curl -o then tar xzf, and curl | tar xz, which streams like hublayer "
            "(no archive on disk, download and unpack overlapping). hublayer also checks the "
            "archive's members and writes its manifest and completion marker.",
        ],
        cleanup=cleanup,
    )


# ---------------------------------------------------------------- layer from a cached handle


def _construct_ours(handle: str, cache: str) -> Callable[[], Any]:
    layers = require("hublayer.layers", "KerasLayer")
    handles = require("hublayer.handles", "resolve")
    os.environ["HUBLAYER_CACHE_DIR"] = cache  # KerasLayer takes the cache from config
    handles.resolve(handle, cache_dir=cache)  # fill the cache, untimed
    return lambda: layers.KerasLayer(handle) and None


def construct(suite: Suite) -> Plan:
    model = factory_model()
    cleanup: list[Callable[[], object]] = []
    url, root = _serve(model.parent / "saved_model.tar.gz", cleanup)
    return Plan(
        [
            InProcess(OURS_LAYER, lambda: _construct_ours(url, f"{root}/ours")),
            Worker(
                HUB_LAYER,
                "benchmarks.peers._legacy:construct_hub",
                {"handle": url, "cache_dir": f"{root}/hub"},
                env=LEGACY_ENV,
                role="peer",
            ),
        ],
        [Ratio(OURS_LAYER, HUB_LAYER, "time")],
        warmup=1,
        reps=suite.pick(5, 11),
        notes=[
            "Constructing the layer from an http handle already in the cache (resolve + load "
            "of the MobileNetV2-sized SavedModel), in a warm process. tensorflow_hub runs in "
            "its own process with TF_USE_LEGACY_KERAS=1.",
        ],
        cleanup=cleanup,
    )


CASES = (
    CaseSpec("resolve", "Resolve a cached handle", resolve, issue="#3"),
    CaseSpec("download", "Download + unpack an archive from loopback", download, issue="#3"),
    CaseSpec("construct", "Layer construction on a cached handle", construct, issue="#4"),
)
