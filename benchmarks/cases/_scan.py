"""Case 9, the safety scan (#12): what each scanner catches, and what the scan costs.

``scan_detect``: a held-out corpus (``hublayer.testing.scan_corpus``) of harmful models
built from published op lists (TensorAbuse, protectai modelscan, ``saved_model_cli``), in
hiding places and tricks, each proven harmful under plain TensorFlow in this run, and
every clean model we can build; scanned by ``hublayer.scan``, by ``saved_model_cli scan``
and by ``modelscan`` (one process per model, as a user runs them). See ``_scan_peers.py``.

``scan_cost``: on the MobileNetV2-sized factory model, the scan against the load it
guards (goal: under 5 %), a load with the scan against one without, and the scan check
and the resolve of a cached entry whose report sits in its manifest (goal: under 100 µs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._data import factory_model
from benchmarks._harness import CaseResult, CaseSpec, InProcess, Plan, Ratio, require
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


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _ours(corpus: Any) -> Callable[[], Any]:
    models = require("hublayer.models", "scan")
    peers = require("benchmarks.cases._scan_peers", "tally")
    every = [*corpus.harmful, *corpus.clean]

    def run() -> dict[str, Any]:
        flags = {m.name: bool(models.scan(m.path).high) for m in every}
        return peers.tally(flags, corpus.harmful, corpus.clean)

    return run


def _peer(corpus: Any, which: str) -> Callable[[], Any]:
    peers = require("benchmarks.cases._scan_peers", "saved_model_cli_flags", "modelscan_flags")
    flagger = peers.saved_model_cli_flags if which == SMC else peers.modelscan_flags
    if which == MODELSCAN:
        peers.modelscan_tool()  # installs it once, untimed (NotYet when it cannot)
    every = [*corpus.harmful, *corpus.clean]

    def run() -> dict[str, Any]:
        found = flagger(every, _env())
        flags = found.pop("flags")
        return {**peers.tally(flags, corpus.harmful, corpus.clean), **found}

    return run


def _extras(result: CaseResult, name: str) -> dict[str, Any] | None:
    contender = result.contender(name)
    if contender is None or not contender.samples:
        return None
    extras = contender.extras or contender.samples[-1].extras
    return extras if "detected" in extras else None


def _detection_note(result: CaseResult) -> str | None:
    parts = []
    for name in (OURS, SMC, MODELSCAN):
        extras = _extras(result, name)
        if extras is None:
            continue
        missed = ", ".join(extras["missed"]) or "none"
        false = ", ".join(extras["false_positive_names"]) or "none"
        line = (
            f"{name}: caught {extras['detected']} of {extras['harmful']} proven-harmful models "
            f"(missed: {missed}); false positives: {extras['false_positives']} of "
            f"{extras['clean']} clean models ({false})"
        )
        if extras.get("errors"):
            line += f"; exited non-zero (counted as found) on: {', '.join(extras['errors'])}"
        if extras.get("exit_when_flagging") is not None:
            line += f"; the command exits {extras['exit_when_flagging']} on a model it flags"
        if "exit_statuses" in extras:
            line += f"; exit statuses: {extras['exit_statuses']}"
        parts.append(line)
    return ". ".join(parts) + "." if parts else None


def _breakdown_note(key: str, title: str) -> Callable[[CaseResult], str | None]:
    def note(result: CaseResult) -> str | None:
        rows = []
        for name in (OURS, SMC, MODELSCAN):
            extras = _extras(result, name)
            if extras is not None:
                shares = ", ".join(f"{group} {share}" for group, share in extras[key].items())
                rows.append(f"{name}: {shares}")
        return f"Detected by {title}: " + "; ".join(rows) + "." if rows else None

    return note


def detect(suite: Suite) -> Plan:
    peers = require("benchmarks.cases._scan_peers", "load_corpus")
    corpus = peers.load_corpus()
    dropped = "; ".join(f"{n} ({why})" for n, why in corpus.dropped.items()) or "none"
    broken = "; ".join(f"{n} ({why})" for n, why in corpus.broken.items()) or "none"
    ops_module = require("hublayer.testing._scan_corpus_ops", "NOT_BUILT")
    not_built = "; ".join(f"{op} ({why})" for op, why in ops_module.NOT_BUILT.items())
    return Plan(
        [
            InProcess(OURS, lambda: _ours(corpus)),
            InProcess(SMC, lambda: _peer(corpus, SMC), role="peer"),
            InProcess(MODELSCAN, lambda: _peer(corpus, MODELSCAN), role="peer"),
        ],
        [
            Ratio(OURS, "", "metric", ">= 1.0", metric="rate"),
            Ratio(OURS, "", "metric", "<= 0", metric="false_positives"),
            Ratio(SMC, "", "metric", "", metric="rate"),
            Ratio(SMC, "", "metric", "", metric="false_positives"),
            Ratio(MODELSCAN, "", "metric", "", metric="rate"),
            Ratio(MODELSCAN, "", "metric", "", metric="false_positives"),
        ],
        warmup=0,
        reps=1,
        min_reps=1,
        notes=[
            "A held-out corpus (hublayer.testing.scan_corpus), built from published lists "
            "rather than ours: the ops of TensorAbuse (ZJU-SEC, TensorDetect/settings.py), "
            "protectai modelscan's unsafe_tf_operators and Lambda, saved_model_cli's "
            "_OP_DENYLIST, and the file-touching ops the issue adds, each in several hiding "
            "places (__call__ only, a signature only, a while body, a cond branch, a tf.data "
            "map function, a nested function), plus tricks (the path in tensor_content, in a "
            "variable, behind a TF1 asset, computed from the model's own asset, in the "
            "checkpoint restore function, behind api_implements, links out of the folder, "
            ".keras archives). Every harmful model counted was proven harmful in this run, "
            "in fresh processes under plain TensorFlow or Keras (a file outside the model "
            "appeared, was replaced or deleted; a secret written after the build reached "
            "the output; or the process died). Clean: every clean model we can build, with "
            "the zoo's EfficientNet-Lite0 and the all-MiniLM-L6-v2 export, each run under "
            "plain TF first. The peers: saved_model_cli's own scan function (what "
            "`saved_model_cli scan --dir X` runs without --tag_set: every meta graph) over "
            "every SavedModel folder in one process, found when it prints denylisted ops "
            "or fails, not run on .keras files (no SavedModel folders); and `modelscan -p "
            "FOLDER -r json` 0.8.8 once per folder of models, found when an issue or a scan "
            "error names a file of the model.",
            f"Harmful models dropped, not proven: {dropped}. Clean models dropped, did not "
            f"run under plain TF: {broken}.",
            f"Listed ops not built: {not_built}.",
            _detection_note,
            _breakdown_note("by_source", "source list (detected/proven)"),
            _breakdown_note("by_place", "hiding place or trick (detected/proven)"),
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
        "Unsafe-op detection on a held-out corpus: hublayer.scan vs saved_model_cli, modelscan",
        detect,
        timeout_s=(2400.0, 2400.0),
        issue="#12",
    ),
    CaseSpec("scan_cost", "Scan cost against the load it guards; cached check", cost, issue="#12"),
)
