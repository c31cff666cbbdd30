"""Case 9, the safety scan (#12): what each scanner catches, and what the scan costs.

``scan_detect``: the 24 unsafe models of ``hublayer.testing.unsafe_model`` (write, read,
list and print to a file, each in ``__call__`` without a signature, a signature only, a
``while_loop`` body, a ``tf.cond`` branch, a tf.data ``map`` function and a function
called from a function) and a clean set, scanned by ``hublayer.scan`` and by
TensorFlow's ``saved_model_cli scan`` (one process per model, as a user runs it).
protectai ``modelscan`` is measured when it is installed.

``scan_cost``: on the MobileNetV2-sized factory model, the scan against the load it
guards (goal: under 5 %), a load with the scan against one without, and the scan check
and the resolve of a cached entry whose report sits in its manifest (goal: under 100 µs).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._data import cached, factory_model
from benchmarks._harness import CaseResult, CaseSpec, InProcess, NotYet, Plan, Ratio, require
from benchmarks._suites import Suite

__all__ = ["CASES"]

OURS = "hublayer.scan"
SMC = "saved_model_cli scan"
MODELSCAN = "modelscan scan"
SCAN = "hublayer.scan (MobileNetV2-size SavedModel)"
TF_LOAD = "tf.saved_model.load (same model)"
LOAD_SCANNED = "hublayer.load (scan on, local folder)"
LOAD_UNSCANNED = "hublayer.load (safe_mode=False)"
CHECK_CACHED = "scan check of a cached entry (manifest note)"
RESOLVE_CACHED = "hublayer.resolve (cached entry with its scan note)"


def _models() -> tuple[dict[str, Path], dict[str, Path]]:
    """(unsafe models by ``family/place``, clean models by name), built once and cached."""
    testing = require("hublayer.testing", "unsafe_model", "UNSAFE_FAMILIES", "UNSAFE_PLACES")
    sources = [inspect.getsourcefile(testing.unsafe_model) or ""]
    digest = hashlib.sha256(b"".join(Path(s).read_bytes() for s in sources if s)).hexdigest()

    def build(folder: Path) -> None:
        for family in testing.UNSAFE_FAMILIES:
            for place in testing.UNSAFE_PLACES:
                target = folder / "victim" / f"{family}-{place}.txt"
                testing.unsafe_model(
                    folder / "unsafe" / f"{family}-{place}", family, place, target=target
                )
        clean = folder / "clean"
        testing.image_feature_vector(clean / "image_feature_vector", image_size=32, dim=8)
        testing.text_embedding(clean / "text_embedding", dim=8)
        testing.bert_encoder(clean / "bert_encoder", hidden_size=8)
        testing.tf1_saved_model(clean / "tf1_saved_model", dim=8)
        testing.signature_model(clean / "keras_export", style="export")

    root = cached("scan-models", {"source": digest[:10], "version": 1}, build)
    unsafe = {p.name.replace("-", "/", 1): p for p in sorted((root / "unsafe").iterdir())}
    clean = {p.name: p for p in sorted((root / "clean").iterdir())}
    return unsafe, clean


def _tally(
    flags: dict[str, bool], unsafe: dict[str, Path], clean: dict[str, Path]
) -> dict[str, Any]:
    caught = [name for name in unsafe if flags[name]]
    false = [name for name in clean if flags[name]]
    return {
        "rate": len(caught) / len(unsafe),
        "detected": len(caught),
        "unsafe": len(unsafe),
        "missed": sorted(set(unsafe) - set(caught)),
        "false_positives": len(false),
        "false_positive_names": false,
    }


def _ours(unsafe: dict[str, Path], clean: dict[str, Path]) -> Callable[[], Any]:
    models = require("hublayer.models", "scan")

    def run() -> dict[str, Any]:
        flags = {name: not models.scan(path).safe for name, path in {**unsafe, **clean}.items()}
        return _tally(flags, unsafe, clean)

    return run


#: saved_model_cli's own scan (``saved_model_cli scan --dir D`` without flags runs exactly
#: this), over every model in one process, so TensorFlow starts once, not once per model.
_SMC_SCRIPT = """
import contextlib, io, json, sys
from tensorflow.python.tools import saved_model_cli, saved_model_utils
for folder in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for meta_graph_def in saved_model_utils.read_saved_model(folder).meta_graphs:
            saved_model_cli.scan_meta_graph_def(meta_graph_def, saved_model_cli._OP_DENYLIST)
    print(json.dumps([folder, out.getvalue()]))
"""
_SMC_CLEAN = "does not contain the default denylisted ops"


def _saved_model_cli(unsafe: dict[str, Path], clean: dict[str, Path]) -> Callable[[], Any]:
    tool = Path(sys.executable).with_name("saved_model_cli")
    if not tool.is_file():
        raise NotYet(f"saved_model_cli is not installed next to {sys.executable}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    models = {**unsafe, **clean}
    # The command itself, once, on a model it does flag: its exit status.
    flagged = next(path for name, path in unsafe.items() if name.endswith("/signature"))
    command = subprocess.run(
        [str(tool), "scan", "--dir", str(flagged)], capture_output=True, text=True, env=env
    )

    def run() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", _SMC_SCRIPT, *map(str, models.values())],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        said = dict(json.loads(line) for line in done.stdout.splitlines() if line.startswith("["))
        flags = {name: _SMC_CLEAN not in said[str(path)] for name, path in models.items()}
        status = {"exit_status_when_flagging": command.returncode}
        return {**_tally(flags, unsafe, clean), **status}

    return run


def _modelscan(unsafe: dict[str, Path], clean: dict[str, Path]) -> Callable[[], Any]:
    tool = shutil.which("modelscan") or str(Path(sys.executable).with_name("modelscan"))
    if not Path(tool).is_file():
        raise NotYet("modelscan is not installed in this environment (pip install modelscan)")

    def run() -> dict[str, Any]:
        flags = {}
        for name, path in {**unsafe, **clean}.items():
            done = subprocess.run([tool, "-p", str(path)], capture_output=True, text=True)
            flags[name] = "No issues found" not in done.stdout
        return _tally(flags, unsafe, clean)

    return run


def _detection_note(result: CaseResult) -> str | None:
    parts = []
    for name in (OURS, SMC, MODELSCAN):
        contender = result.contender(name)
        if contender is None or not contender.samples:
            continue
        extras = contender.extras or contender.samples[-1].extras
        if "detected" not in extras:
            continue
        missed = ", ".join(extras["missed"]) or "none"
        line = (
            f"{name}: caught {extras['detected']} of {extras['unsafe']} unsafe models "
            f"(missed: {missed}); false positives on the clean set: "
            f"{extras['false_positives']}"
        )
        if "exit_status_when_flagging" in extras:
            line += f"; the command exits {extras['exit_status_when_flagging']} on a model it flags"
        parts.append(line)
    return ". ".join(parts) + "." if parts else None


def detect(suite: Suite) -> Plan:
    unsafe, clean = _models()
    return Plan(
        [
            InProcess(OURS, lambda: _ours(unsafe, clean)),
            InProcess(SMC, lambda: _saved_model_cli(unsafe, clean), role="peer"),
            InProcess(MODELSCAN, lambda: _modelscan(unsafe, clean), role="peer"),
        ],
        [
            Ratio(OURS, "", "metric", ">= 1.0", metric="rate"),
            Ratio(OURS, "", "metric", "<= 0", metric="false_positives"),
            Ratio(SMC, "", "metric", "", metric="rate"),
            Ratio(MODELSCAN, "", "metric", "", metric="rate"),
        ],
        warmup=0,
        reps=1,
        min_reps=1,
        notes=[
            "Detection rate over the unsafe models of hublayer.testing.unsafe_model (write, "
            "read, list, print to a file, each in __call__ without a signature, a signature "
            "only, a while_loop body, a tf.cond branch, a tf.data map function and a nested "
            "function), and false positives over five clean testing models. saved_model_cli's "
            "scan runs over all models in one process (the function `saved_model_cli scan "
            "--dir` calls), so its time includes starting TensorFlow once.",
            _detection_note,
        ],
    )


# ---------------------------------------------------------------- cost


def _cached_entry(model: Path, cache: str) -> tuple[Any, str]:
    """Resolve the model's archive into ``cache`` and scan it once (the report is kept)."""
    handles = require("hublayer.handles", "resolve")
    scan_module = require("hublayer.models._scan", "check_safe")
    handle = str(model.parent / "saved_model.tar.gz")
    entry = handles.resolve(handle, cache_dir=cache)
    os.environ["HUBLAYER_CACHE_DIR"] = cache
    scan_module.check_safe(entry)  # stores the report in the manifest, untimed
    return scan_module, handle


def cost(suite: Suite) -> Plan:
    model = factory_model()
    cache = tempfile.mkdtemp(prefix="hublayer-bench-scan-")

    def scan() -> Callable[[], Any]:
        scan_module = require("hublayer.models._scan", "scan_path")
        return lambda: scan_module.scan_path(model) and None

    def tf_load() -> Callable[[], Any]:
        import tensorflow as tf

        return lambda: tf.saved_model.load(str(model)) and None

    def load(safe: bool) -> Callable[[], Any]:
        hub = require("hublayer.models", "load")
        return lambda: hub.load(str(model), safe_mode=None if safe else False) and None

    def check_cached() -> Callable[[], Any]:
        scan_module, handle = _cached_entry(model, cache)
        handles = require("hublayer.handles", "resolve")
        entry = handles.resolve(handle, cache_dir=cache)
        return lambda: scan_module.check_safe(entry) and None

    def resolve_cached() -> Callable[[], Any]:
        _, handle = _cached_entry(model, cache)
        handles = require("hublayer.handles", "resolve")
        return lambda: handles.resolve(handle, cache_dir=cache) and None

    return Plan(
        [
            InProcess(SCAN, scan, min_seconds=1.0),
            InProcess(TF_LOAD, tf_load, role="peer"),
            InProcess(LOAD_SCANNED, lambda: load(True)),
            InProcess(LOAD_UNSCANNED, lambda: load(False), role="peer"),
            InProcess(CHECK_CACHED, check_cached, min_seconds=1.0),
            InProcess(RESOLVE_CACHED, resolve_cached, min_seconds=1.0),
        ],
        [
            Ratio(SCAN, TF_LOAD, "time", "< 0.05"),
            Ratio(LOAD_SCANNED, LOAD_UNSCANNED, "time", "< 1.05"),
            Ratio(CHECK_CACHED, "", "seconds", "< 0.0001"),
            Ratio(RESOLVE_CACHED, "", "seconds", "< 0.0001"),
        ],
        warmup=1,
        reps=suite.pick(5, 11),
        notes=[
            "The MobileNetV2-sized factory model (hublayer.testing.image_feature_vector, "
            "architecture mobilenet_v2, 224 px). The scan parses saved_model.pb and walks "
            "every graph and function; a local folder is scanned on every load. A cached "
            "entry keeps its report in its manifest, so loading it again only reads the "
            "manifest the resolve already parsed.",
        ],
        cleanup=[lambda: shutil.rmtree(cache, ignore_errors=True)],
    )


CASES = (
    CaseSpec(
        "scan_detect",
        "Unsafe-op detection: hublayer.scan vs saved_model_cli",
        detect,
        timeout_s=(900.0, 1800.0),
        issue="#12",
    ),
    CaseSpec("scan_cost", "Scan cost against the load it guards; cached check", cost, issue="#12"),
)
