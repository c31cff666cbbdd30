"""``scan``: judge a model's files before anything of it runs, without TensorFlow.

What is read, for each kind of model ``load`` accepts::

    folder/saved_model.pb (or .pbtxt)   every graph and every library function (_scan_graph)
    model.keras                         config.json: Lambda layers, non-Keras modules;
                                        every saved_model.pb embedded in the archive

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
import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from google.protobuf import message, text_format

from hublayer import config
from hublayer.errors import Fix, ModelNotFoundError, UnsafeModelError
from hublayer.models._scan_graph import walk
from hublayer.models._scan_proto import SavedModel
from hublayer.models._scan_registry import TF_VERSION
from hublayer.models._scan_report import Finding, ScanReport
from hublayer.models._scan_rules import ASSET_LINK_WHY, DENYLIST, HIGH, MEDIUM

__all__ = ["RULES_ID", "check_safe", "check_safe_data", "scan", "scan_path"]

_NOTE = "scan"
#: id(note) -> (note, report): a manifest parsed once gives one report object.
_REPORTS: dict[int, tuple[Any, ScanReport]] = {}
#: Which scanner judged a cached report; a report made under other rules is not reused.
RULES_ID = hashlib.sha256(
    repr((sorted((k, v.check, v.severity) for k, v in DENYLIST.items()), TF_VERSION, 2)).encode()
).hexdigest()[:16]

#: Top-level modules a ``.keras`` config may name without a finding.
_KERAS_MODULES = frozenset({"keras", "keras_hub", "keras_nlp", "hublayer", "builtins"})
_LAMBDA_WHY = "a Lambda layer runs Python code stored in the file when the model is called"
_FUNCTION_WHY = "a serialized Python function runs code stored in the file"
_MODULE_WHY = "loading imports this module, outside Keras and hublayer"
_UNREADABLE_WHY = "the file cannot be parsed, so the scan cannot vouch for it"


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
    trigger scans all of it, which made the scan about 4 times slower."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scan_saved_model(
    data: bytes, file: str, text: bool = False
) -> tuple[list[Finding], Counter[str], int]:
    with _no_gc():
        return _scan_saved_model_now(data, file, text)


def _scan_saved_model_now(
    data: bytes, file: str, text: bool
) -> tuple[list[Finding], Counter[str], int]:
    try:
        model = _parse(data, text=text)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as error:
        detail = str(error)[:200]
        return (
            [Finding("(unparseable)", "-", file, HIGH, _UNREADABLE_WHY, file, detail)],
            Counter(),
            0,
        )
    return walk(model, file=file)


def _keras_config_findings(config_data: Any, file: str) -> list[Finding]:
    findings: list[Finding] = []

    def visit(value: Any, where: str) -> None:
        if isinstance(value, dict):
            name = (
                str(value.get("config", {}).get("name", where))
                if isinstance(value.get("config"), dict)
                else where
            )
            class_name = value.get("class_name")
            if class_name == "Lambda":
                findings.append(Finding("Lambda", "config.json", name, HIGH, _LAMBDA_WHY, file))
            elif class_name == "__lambda__" or (
                value.get("module") == "builtins" and class_name == "function"
            ):
                findings.append(
                    Finding(str(class_name), "config.json", name, HIGH, _FUNCTION_WHY, file)
                )
            module = value.get("module")
            if isinstance(module, str) and module.split(".")[0] not in _KERAS_MODULES:
                findings.append(
                    Finding(str(class_name), "config.json", name, MEDIUM, _MODULE_WHY, file, module)
                )
            for key, item in value.items():
                visit(item, name if key == "config" else where)
        elif isinstance(value, list):
            for item in value:
                visit(item, where)

    visit(config_data, "model")
    return findings


def _scan_keras(path: Path) -> ScanReport:
    findings: list[Finding] = []
    ops: Counter[str] = Counter()
    functions = 0
    files: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ModelNotFoundError(
            f"Expected a .keras file (a zip archive). Received: {str(path)!r}, which cannot be "
            f"opened as one ({error}). Check the path, or save the model again.",
            path=str(path),
        ) from error
    with archive:
        for member in sorted(archive.namelist()):
            if member == "config.json":
                files.append(member)
                try:
                    data = json.loads(archive.read(member))
                except ValueError as error:
                    findings.append(
                        Finding(
                            "(unparseable)", "-", member, HIGH, _UNREADABLE_WHY, member, str(error)
                        )
                    )
                    continue
                findings.extend(_keras_config_findings(data, member))
            elif member.endswith(("saved_model.pb", "saved_model.pbtxt")):
                files.append(member)
                found, counts, walked = _scan_saved_model(
                    archive.read(member), member, member.endswith(".pbtxt")
                )
                findings.extend(found)
                ops.update(counts)
                functions += walked
    return _report(path, findings, ops, functions, files)


def _report(
    path: Path, findings: list[Finding], ops: Counter[str], functions: int, files: list[str]
) -> ScanReport:
    order: dict[str, int] = {HIGH: 0, MEDIUM: 1}
    ranked = sorted(findings, key=lambda f: (order.get(f.severity, 2), f.file, f.function, f.node))
    return ScanReport(str(path), tuple(ranked), dict(ops), functions, tuple(files))


def _escaping_links(folder: Path) -> Iterator[Finding]:
    """Links under ``assets/`` that point outside the model folder (a vocabulary that is
    really ``/etc/passwd``); the cache's unpacker refuses them, a local folder may hold them."""
    assets = folder / "assets"
    if not assets.is_dir():
        return
    root = folder.resolve()
    for base, dirnames, filenames in os.walk(assets):
        for name in dirnames + filenames:
            path = Path(base, name)
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                rel = path.relative_to(folder).as_posix()
                target = os.readlink(path)
                yield Finding("(link)", "assets", rel, HIGH, ASSET_LINK_WHY, rel, target)


def scan_path(path: str | os.PathLike[str]) -> ScanReport:
    """Scan a local SavedModel folder, ``.keras`` file, or folder holding one ``.keras`` file.

    Raises:
        ModelNotFoundError: ``path`` holds no SavedModel and no ``.keras`` file.
    """
    from hublayer.models._load import _keras_file

    folder = Path(path)
    found = _keras_file(folder)
    if found is not None:
        return _scan_keras(found)
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        file = folder / name
        if file.is_file():
            findings, ops, functions = _scan_saved_model(
                file.read_bytes(), name, name.endswith(".pbtxt")
            )
            findings.extend(_escaping_links(folder))
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
    functions), not only the signatures. ``.keras`` files are checked for Lambda layers
    and non-Keras modules in ``config.json``, and any SavedModel they embed is scanned.

    Args:
        handle_or_path: a local SavedModel folder or ``.keras`` file, or any handle
            ``hublayer.resolve`` accepts (it is fetched into the cache first).

    Returns:
        The :class:`ScanReport`: ``.safe``, ``.findings`` (op, function, node, severity,
        why), ``.ops``; ``str(report)`` is a short table.

    Raises:
        ModelNotFoundError: the path holds no SavedModel and no ``.keras`` file.
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
        from hublayer.models._load import resolve_handle

        local = resolve_handle(handle_or_path)
    return scan_path(local)


def _cached_scan(path: Path) -> ScanReport:
    """The entry's stored report when it matches, else a new scan (stored when cached)."""
    from hublayer.handles import read_entry_note, write_entry_note

    note = read_entry_note(path, _NOTE)
    if isinstance(note, dict) and note.get("rules") == RULES_ID:
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
    write_entry_note(path, _NOTE, {"rules": RULES_ID, "report": report.to_dict()})
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
    found = _scan_saved_model(read(), name, name.endswith(".pbtxt"))
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
