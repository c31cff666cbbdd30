"""The ``.keras`` walk of ``scan``: the archive's members, ``config.json``, embedded models.

Keras (``saving_lib.DiskIOStore``) extracts the *whole* archive with
``zipfile.extractall``, which rewrites each member name before writing it: it drops
empty, ``.`` and ``..`` components and a leading ``/``. So ``a/saved_model.pb/.``
is written as ``a/saved_model.pb``, and a later member of the same written name
overwrites an earlier one. hublayer's layer then loads the SavedModel it finds under
``assets/<layer>/saved_model/`` of that extracted tree (``layers/_assets.py``). What is
read here is what gets written there::

    member name                                   finding
    a/./b, a//b, a/b/., /a, ../a, a\\b            high "(member)": it extracts under another
                                                  name (backslash: on Windows)
    two names that extract to one file           high "(member)": the later one wins
      (case-folded too, for macOS and Windows)
    a symlink (unix mode in external_attr)       high "(link)": other unzip tools make it a link
    .../saved_model.pb(.pbtxt) by its            scanned (_scan_graph), whatever its raw name
      extracted name
    config.json                                  Lambda layers, serialized functions: high;
                                                  modules outside Keras and hublayer: medium
    a hublayer layer without an embedded copy    its handle is loaded (and scanned) on reload:
      (embed_saved_model=False), a TFSMLayer      a local one is scanned here too, its findings
                                                  included; a remote one is a medium finding

A ``.keras`` file that is not a sound zip, or holds a ``saved_model.pb`` or
``config.json`` that cannot be parsed, raises :class:`InvalidModelError`.

Example:
    >>> normal_name("assets/x/saved_model/saved_model.pb/.")
    'assets/x/saved_model/saved_model.pb'
"""

from __future__ import annotations

import json
import os
import stat
import urllib.parse
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hublayer.errors import Fix, HublayerError, InvalidModelError
from hublayer.models._scan_report import Finding, ScanReport

__all__ = ["KERAS_RULES", "KerasScan", "normal_name", "scan_keras"]

_HIGH, _MEDIUM = "high", "medium"
#: Bump when what this module reports changes, so cached reports are made again.
KERAS_RULES = "keras-1"
_SAVED_MODEL_NAMES = ("saved_model.pb", "saved_model.pbtxt")
_MARKER = "hublayer.json"
_EMBEDDED = "saved_model"

#: Top-level modules a ``.keras`` config may name without a finding.
_KERAS_MODULES = frozenset({"keras", "keras_hub", "keras_nlp", "hublayer", "builtins"})
_LAMBDA_WHY = "a Lambda layer runs Python code stored in the file when the model is called"
_FUNCTION_WHY = "a serialized Python function runs code stored in the file"
_MODULE_WHY = "loading imports this module, outside Keras and hublayer"
_MEMBER_WHY = (
    "an archive member whose name extracts as another name can hide a file from the scan; "
    "save the model again with model.save()"
)
_LINK_WHY = "an archive member that is a symlink; save the model again with model.save()"
_REMOTE_WHY = (
    "the layer's model is not in the archive: reloading resolves this handle, and it is "
    "scanned when it loads"
)
_LOCAL_WHY = (
    "the layer's model is not in the archive: reloading loads this path, scanned here as "
    "it is now (and again when it loads)"
)
_SAFE_MODE_WHY = (
    "safe_mode in a saved config is ignored: it is a load-time argument only "
    "(the file was edited, or written by something else than hublayer)"
)
_UNSCANNABLE_WHY = "the layer's model is not in the archive and this path cannot be scanned"

#: Scans one ``saved_model.pb`` (bytes, name, is text, where it lies for errors):
#: findings, op counts, functions; raises InvalidModelError when it cannot be parsed.
ScanBytes = Callable[[bytes, str, bool, str], tuple[list[Finding], Counter[str], int]]
#: Scans a local model path (a handle a layer loads on reload), never one in ``seen``.
ScanLocal = Callable[[Path, frozenset[Path]], ScanReport]


@dataclass
class KerasScan:
    """What the walk found; ``scan`` turns it into the :class:`ScanReport`."""

    findings: list[Finding] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    functions: int = 0
    files: list[str] = field(default_factory=list)


def normal_name(name: str) -> str:
    """The path ``zipfile.extractall`` writes a member to, relative to the target folder.

    Backslashes count as separators (they are on Windows); ``.``, ``..`` and empty
    components are dropped, as ``zipfile`` drops them.
    """
    parts = name.replace("\\", "/").split("/")
    return "/".join(part for part in parts if part not in ("", ".", ".."))


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member's name or type is refused, or None."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symlink"
    if "\\" in name:
        return "a backslash (a folder separator on Windows)"
    if name.startswith("/"):
        return "an absolute name"
    written = normal_name(name)
    if not written:
        return "a name that extracts to nothing"
    if ".." in name.split("/"):
        return "a '..' component"
    own = name[:-1] if info.is_dir() else name
    if own != written:
        return "a name that is not in normal form"
    return None


def scan_keras(
    path: Path, *, scan_bytes: ScanBytes, scan_local: ScanLocal, seen: frozenset[Path]
) -> KerasScan:
    """Walk the ``.keras`` archive at ``path`` as Keras extracts it.

    Raises:
        InvalidModelError: not a sound ``.keras`` zip, or an embedded ``saved_model.pb``
            or ``config.json`` that cannot be parsed.
    """
    from hublayer.models._keras_file import check_keras_file

    check_keras_file(path)
    result = KerasScan()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:  # pragma: no cover - checked above
        raise _invalid(path, f"a zip archive that cannot be opened ({error})") from error
    with archive:
        infos = archive.infolist()
        written: dict[str, str] = {}
        for info in infos:
            _check_member(info, written, result)
        config_data: Any = None
        for info in sorted(infos, key=lambda i: (normal_name(i.filename), i.filename)):
            name = normal_name(info.filename)
            if info.filename == "config.json":
                result.files.append(name)
                config_data = _read_json(archive, info, path)
            elif not info.is_dir() and name.rsplit("/", 1)[-1].casefold() in _SAVED_MODEL_NAMES:
                result.files.append(name)
                text = name.casefold().endswith(".pbtxt")
                where = f"{os.fspath(path)}, member {info.filename!r}"
                found, counts, walked = scan_bytes(archive.read(info), name, text, where)
                result.findings.extend(found)
                result.ops.update(counts)
                result.functions += walked
        embedded = _embedded_handles(archive, infos, path)
    if config_data is not None:
        result.findings.extend(config_findings(config_data, "config.json"))
        for layer, handle in _external_handles(config_data, embedded):
            _scan_external(layer, handle, result, scan_local, seen | {path.resolve()})
    return result


def _check_member(info: zipfile.ZipInfo, written: dict[str, str], result: KerasScan) -> None:
    name = info.filename
    problem = _member_problem(info)
    normal = normal_name(name)
    key = normal.casefold()
    if problem is None and key in written and not info.is_dir():
        problem = f"the same extracted name as member {written[key]!r} (the later one wins)"
    if not info.is_dir():
        written.setdefault(key, name)
    if problem is None:
        return
    op = "(link)" if problem == "a symlink" else "(member)"
    why = _LINK_WHY if op == "(link)" else _MEMBER_WHY
    detail = f"{problem}; extracts as {normal!r}"
    result.findings.append(Finding(op, "archive", repr(name), _HIGH, why, normal or name, detail))


def _read_json(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> Any:
    try:
        return json.loads(archive.read(info))
    except ValueError as error:
        raise _invalid(path, f"a {info.filename} that is not JSON ({error})") from None


def _embedded_handles(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: Path
) -> set[str]:
    """Handles whose model the archive holds: a hublayer marker next to a SavedModel."""
    names = {normal_name(i.filename) for i in infos if not i.is_dir()}
    handles: set[str] = set()
    for info in infos:
        name = normal_name(info.filename)
        if info.is_dir() or name.rsplit("/", 1)[-1] != _MARKER:
            continue
        folder = name[: -len(_MARKER)]
        if not any(f"{folder}{_EMBEDDED}/{pb}" in names for pb in _SAVED_MODEL_NAMES):
            continue
        marker = _read_json(archive, info, path)
        if isinstance(marker, dict) and marker.get("embedded") and marker.get("handle"):
            handles.add(str(marker["handle"]))
    return handles


def _external_handles(config_data: Any, embedded: set[str]) -> list[tuple[str, str]]:
    """(layer name, handle) of each layer that loads a model from outside the archive."""
    found: list[tuple[str, str]] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            config = value.get("config")
            module = value.get("module")
            if isinstance(config, dict) and isinstance(module, str):
                name = str(config.get("name", "?"))
                handle = config.get("handle")
                build = value.get("build_config")
                rebuilt = isinstance(build, dict) and "keras_model" in build
                if (
                    module.split(".")[0] == "hublayer"
                    and isinstance(handle, str)
                    and not rebuilt  # a wrapped .keras model: Keras rebuilds it from config
                    and (config.get("embed_saved_model") is False or handle not in embedded)
                ):
                    found.append((name, handle))
                elif value.get("class_name") == "TFSMLayer" and isinstance(
                    config.get("filepath"), str
                ):
                    found.append((name, config["filepath"]))
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(config_data)
    return found


def _local_path(handle: str) -> Path | None:
    """Where a local handle points (a path, or a ``file://`` URL), or None for a remote one."""
    text = handle.strip()
    if text.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(text).path))
    if "://" in text or not text:
        return None
    return Path(text).expanduser().absolute()


def _scan_external(
    layer: str, handle: str, result: KerasScan, scan_local: ScanLocal, seen: frozenset[Path]
) -> None:
    local = _local_path(handle)
    if local is None or not local.exists():
        result.findings.append(
            Finding(
                "(external handle)",
                "config.json",
                layer,
                _MEDIUM,
                _REMOTE_WHY,
                "config.json",
                handle,
            )
        )
        return
    if local.resolve() in seen:  # a handle that names this archive (or one being scanned)
        return
    try:
        report = scan_local(local, seen)
    except HublayerError as error:
        result.findings.append(
            Finding(
                "(external handle)",
                "config.json",
                layer,
                _MEDIUM,
                _UNSCANNABLE_WHY,
                "config.json",
                f"{handle}: {error.cli_message()}",
            )
        )
        return
    result.findings.append(
        Finding(
            "(external handle)", "config.json", layer, _MEDIUM, _LOCAL_WHY, "config.json", handle
        )
    )
    prefix = os.fspath(local)
    for finding in report.findings:
        result.findings.append(
            Finding(
                finding.op,
                finding.function,
                finding.node,
                finding.severity,
                finding.why,
                f"{prefix}/{finding.file}",
                finding.detail,
            )
        )
    result.ops.update(report.ops)
    result.functions += report.functions
    result.files.extend(f"{prefix}/{file}" for file in report.files)


def config_findings(config_data: Any, file: str) -> list[Finding]:
    """Lambda layers, serialized functions and foreign modules in a Keras config."""
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
                findings.append(Finding("Lambda", "config.json", name, _HIGH, _LAMBDA_WHY, file))
            elif class_name == "__lambda__" or (
                value.get("module") == "builtins" and class_name == "function"
            ):
                findings.append(
                    Finding(str(class_name), "config.json", name, _HIGH, _FUNCTION_WHY, file)
                )
            module = value.get("module")
            config = value.get("config")
            if (
                isinstance(module, str)
                and module.split(".")[0] == "hublayer"
                and isinstance(config, dict)
                and "safe_mode" in config
            ):
                detail = f"safe_mode={config['safe_mode']!r}"
                findings.append(
                    Finding(
                        str(class_name), "config.json", name, _MEDIUM, _SAFE_MODE_WHY, file, detail
                    )
                )
            if isinstance(module, str) and module.split(".")[0] not in _KERAS_MODULES:
                findings.append(
                    Finding(
                        str(class_name), "config.json", name, _MEDIUM, _MODULE_WHY, file, module
                    )
                )
            for key, item in value.items():
                visit(item, name if key == "config" else where)
        elif isinstance(value, list):
            for item in value:
                visit(item, where)

    visit(config_data, "model")
    return findings


def _invalid(path: Path, problem: str) -> InvalidModelError:
    return InvalidModelError(
        f"Expected a .keras model file at {os.fspath(path)!r}. Received: {problem}.",
        path=os.fspath(path),
        fix=Fix(
            "Save the model again (model.save(path)), or pass the path of a sound copy.",
            "Save the model again, or pass the path of a sound copy.",
        ),
    )
