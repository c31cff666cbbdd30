"""``scan``: judge a model's files before anything of it runs, without TensorFlow.

What is read, for each kind of model ``load`` accepts::

    folder/saved_model.pb (or .pbtxt)   every graph and every library function (_scan_graph)
    folder/**                           no link, hard link or special file (_scan_tree)
    model.keras                         member names as Keras extracts them, config.json
                                        (Lambda layers, non-Keras modules), every
                                        saved_model.pb embedded in the archive, the local
                                        models of layers that load one on reload
                                        (_scan_keras)

A ``saved_model.pb`` that cannot be parsed, or a ``.keras`` file that is no sound zip,
raises :class:`InvalidModelError` (what is wrong with it), never a protobuf error.

:func:`check_safe` is what every load path calls first (``hub.load``, ``hub.KerasLayer``,
``hub.inspect``, ``train.fit_classifier`` all load through ``models.load_path``). For a
cache entry the report is kept in the entry's manifest, bound to the sha256 of the files
it read and to this scanner's rules, and reused while the manifest matches; a local
folder is scanned on every load.

Example:
    >>> import hublayer
    >>> from hublayer import testing
    >>> report = hublayer.scan(testing.image_feature_vector("/tmp/ifv"))
    >>> report.safe, report.findings
    (True, ())
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from google.protobuf import message, text_format

from hublayer import config
from hublayer.errors import Fix, InvalidModelError, ModelNotFoundError, UnsafeModelError
from hublayer.models._locate import keras_file, resolve_handle
from hublayer.models._scan_graph import walk
from hublayer.models._scan_keras import KERAS_RULES, scan_keras
from hublayer.models._scan_ops import table_digest
from hublayer.models._scan_proto import SavedModel
from hublayer.models._scan_registry import TF_VERSION
from hublayer.models._scan_report import Finding, ScanReport
from hublayer.models._scan_rules import ASSET_LINK_WHY, HIGH, MEDIUM
from hublayer.models._scan_tree import TREE_RULES, tree_findings

__all__ = ["RULES_ID", "check_safe", "check_safe_data", "scan", "scan_path"]

_NOTE = "scan"
#: id(note) -> (note, report): a manifest parsed once gives one report object.
_REPORTS: dict[int, tuple[Any, ScanReport]] = {}
#: Which scanner judged a cached report; a report made under other rules is not reused.
#: The op table's digest and the proof code's version (3: the allowlist and value proofs).
RULES_ID = hashlib.sha256(repr((table_digest(), TF_VERSION, 3)).encode()).hexdigest()[:16]

#: The archive and folder rules (``_scan_keras``, ``_scan_tree``); a cached report made
#: under others is not reused either.
_LAYOUT_RULES = f"{KERAS_RULES},{TREE_RULES}"


def _parse(data: bytes, *, text: bool) -> Any:
    model = SavedModel()
    if text:
        text_format.Parse(data.decode("utf-8"), model, allow_unknown_field=True)
    else:
        model.ParseFromString(data)
    return model


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: the walk makes many short-lived objects, and in
    a process that already holds a large heap (a loaded model) each collection it would
    trigger scans all of it, which made the scan several times slower (the ``scan_cost``
    case of ``benchmarks/RESULTS.md`` times the scan with it paused)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scan_saved_model(
    data: bytes, file: str, text: bool = False, location: str = ""
) -> tuple[list[Finding], Counter[str], int]:
    """Walk one ``saved_model.pb`` (``location``: where it lies, for the error).

    Raises:
        InvalidModelError: the bytes are no SavedModel (garbage, cut off, no meta graph).
    """
    with _no_gc():
        return _scan_saved_model_now(data, file, text, location or file)


def _scan_saved_model_now(
    data: bytes, file: str, text: bool, location: str
) -> tuple[list[Finding], Counter[str], int]:
    try:
        model = _parse(data, text=text)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as error:
        raise _unparseable(location, file, len(data), str(error)[:200]) from None
    if not model.meta_graphs:
        raise _unparseable(location, file, len(data), "it holds no meta graph")
    return walk(model, file=file)


def _unparseable(location: str, file: str, size: int, problem: str) -> InvalidModelError:
    return InvalidModelError(
        f"Expected {file!r} to be a SavedModel protocol buffer. Received: {location!r}, "
        f"{size:,} bytes that do not parse as one ({problem}): the file is cut off, "
        "damaged, or not a SavedModel. Nothing of the model ran.",
        path=location,
        fix=Fix(
            "Fetch or export the model again (remove the damaged folder, or call "
            "hublayer.export_saved_model), then pass its path.",
            "Fetch or export the model again (remove the damaged folder), then pass its path.",
        ),
    )


def _report(
    path: Path, findings: list[Finding], ops: Counter[str], functions: int, files: list[str]
) -> ScanReport:
    order: dict[str, int] = {HIGH: 0, MEDIUM: 1}
    ranked = sorted(findings, key=lambda f: (order.get(f.severity, 2), f.file, f.function, f.node))
    return ScanReport(str(path), tuple(ranked), dict(ops), functions, tuple(files))


def scan_path(path: str | os.PathLike[str]) -> ScanReport:
    """Scan a local SavedModel folder, ``.keras`` file, or folder holding one ``.keras`` file.

    Raises:
        ModelNotFoundError: ``path`` holds no SavedModel and no ``.keras`` file.
        InvalidModelError: a ``saved_model.pb`` that cannot be parsed, or a ``.keras``
            file that is not a sound zip archive.
    """
    return _scan_local(Path(path), frozenset())


def _scan_local(folder: Path, seen: frozenset[Path]) -> ScanReport:
    """:func:`scan_path`; ``seen``: the ``.keras`` files whose layers led here."""
    found = keras_file(folder)
    if found is not None:
        walked = scan_keras(found, scan_bytes=_scan_saved_model, scan_local=_scan_local, seen=seen)
        return _report(found, walked.findings, walked.ops, walked.functions, walked.files)
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        file = folder / name
        if file.is_file():
            findings, ops, functions = _scan_saved_model(
                file.read_bytes(), name, name.endswith(".pbtxt"), str(file)
            )
            # Links anywhere in the folder; a linked saved_model.pb too.
            findings.extend(tree_findings(folder, asset_why=ASSET_LINK_WHY))
            return _report(folder, findings, ops, functions, [name])
    raise ModelNotFoundError(
        "Expected a SavedModel (a folder with saved_model.pb) or a .keras file to scan. "
        f"Received: {str(folder)!r}, which holds neither. Check the path.",
        path=str(folder),
    )


def scan(handle_or_path: str | os.PathLike[str]) -> ScanReport:
    """Scan a model for ops that touch files, the network or Python, without running it.

    TensorFlow is not imported. Every graph and every function in ``saved_model.pb`` is
    walked (``While``/``If``/``Case`` bodies, tf.data functions, functions called by
    functions), not only the signatures. A folder must hold no link, hard link or
    special file. ``.keras`` files are read as Keras extracts them: member names that
    extract as other names, and symlink members, are refused; ``config.json`` is checked
    for Lambda layers and non-Keras modules; every SavedModel they embed is scanned, and
    so is the local model of a layer that loads one from outside the archive.

    Args:
        handle_or_path: a local SavedModel folder or ``.keras`` file, or any handle
            ``hublayer.resolve`` accepts (it is fetched into the cache first).

    Returns:
        The :class:`ScanReport`: ``.safe``, ``.findings`` (op, function, node, severity,
        why), ``.ops``; ``str(report)`` is a short table.

    Raises:
        ModelNotFoundError: the path holds no SavedModel and no ``.keras`` file.
        InvalidModelError: a ``saved_model.pb`` that cannot be parsed (cut off, garbage,
            no meta graph), or a ``.keras`` file that is not a sound zip archive.
        HandleError, DownloadError, NotCachedError...: as ``hublayer.resolve`` raises them.

    Example:
        >>> import hublayer
        >>> from hublayer import testing
        >>> print(hublayer.scan(testing.image_feature_vector("/tmp/ifv")))  # doctest: +ELLIPSIS
        /tmp/ifv: safe (no findings)
        ...
    """
    local = Path(os.fspath(handle_or_path))
    if not local.exists():
        local = resolve_handle(handle_or_path)
    return scan_path(local)


def _cached_scan(path: Path) -> ScanReport:
    """The entry's stored report when it matches, else a new scan (stored when cached)."""
    from hublayer.handles import read_entry_note, write_entry_note

    note = read_entry_note(path, _NOTE)
    if (
        isinstance(note, dict)
        and note.get("rules") == RULES_ID
        and note.get("layout") == _LAYOUT_RULES
    ):
        known = _REPORTS.get(id(note))
        if known is not None and known[0] is note:
            return known[1]
        try:
            report = ScanReport.from_dict(note["report"])
        except (KeyError, TypeError, ValueError):
            pass
        else:
            if len(_REPORTS) >= 64:
                _REPORTS.clear()
            _REPORTS[id(note)] = (note, report)  # the note is kept, so its id stays its own
            return report
    report = scan_path(path)
    stored = {"rules": RULES_ID, "layout": _LAYOUT_RULES, "report": report.to_dict()}
    write_entry_note(path, _NOTE, stored)
    return report


def check_safe(
    path: str | os.PathLike[str], *, safe_mode: bool | None = None, handle: Any = None
) -> ScanReport | None:
    """Refuse a model with a high-severity finding, before TensorFlow sees it.

    Args:
        path: the resolved model folder or ``.keras`` file.
        safe_mode: ``False`` skips the scan; ``None`` follows ``$HUBLAYER_SAFE_MODE``
            (default on).
        handle: the handle ``path`` came from, for the error message.

    Returns:
        The report, or ``None`` when safe mode is off.

    Raises:
        UnsafeModelError: a finding of severity ``high``.
        InvalidModelError: the model's files cannot be parsed (see :func:`scan`).
    """
    if not config.safe_mode(safe_mode):
        return None
    report = _cached_scan(Path(path))
    if not report.safe:
        raise _unsafe(report, handle, str(path))
    return report


def check_safe_data(
    read: Callable[[], bytes],
    name: str,
    *,
    location: str,
    safe_mode: bool | None = None,
    handle: Any = None,
) -> ScanReport | None:
    """:func:`check_safe` for a ``saved_model.pb`` read from elsewhere (``gs://`` in place).

    ``read`` is called only when safe mode is on.
    """
    if not config.safe_mode(safe_mode):
        return None
    found = _scan_saved_model(read(), name, name.endswith(".pbtxt"), f"{location}/{name}")
    report = _report(Path(location), *found, [name])
    if not report.safe:
        raise _unsafe(report, handle, location)
    return report


def _unsafe(report: ScanReport, handle: Any, path: str) -> UnsafeModelError:
    shown = os.fspath(handle) if isinstance(handle, str | os.PathLike) else path
    high = report.high
    listed = "; ".join(f.describe() for f in high[:5]) + (" ..." if len(high) > 5 else "")
    return UnsafeModelError(
        f"Expected a model whose ops stay inside its tensors. Received: handle={shown!r}, "
        f"with {len(high)} unsafe op(s): {listed}. Nothing of the model ran. Run "
        f"`hublayer scan {shown}` for the full report.",
        handle=shown,
        path=path,
        findings=high,
        fix=Fix(
            "If you trust this model, pass safe_mode=False (hub.load, hub.KerasLayer) or set "
            "HUBLAYER_SAFE_MODE=0.",
            "If you trust this model, set HUBLAYER_SAFE_MODE=0.",
        ),
    )
