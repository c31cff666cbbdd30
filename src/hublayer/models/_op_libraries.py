"""Register the op libraries a model needs, before TensorFlow reads it.

TensorFlow knows only the ops registered in the process. A model built with TensorFlow
Text (TF Hub's ``bert_en_uncased_preprocess`` and its kin) holds ops such as
``CaseFoldUTF8`` and ``WordpieceTokenizeWithOffsets`` that exist only after
``import tensorflow_text``; without it ``tf.saved_model.load`` fails with
"Op type not registered". The scan reads every op of the model before TensorFlow does,
and ``scan_ops.tsv`` names the library of each, so the loader imports what is needed::

    load_path / load_in_place
      ├── check_safe (the scan)  ──▶ report.ops ─┐
      │   (safe_mode=False: ops_in_folder /      │
      │    ops_in_data, the same TF-free parse) ─┤
      └── require_op_libraries(ops) ◀────────────┘  import tensorflow_text, or
                                                    MissingExtraError (pip install "hublayer[text]")
      └── tf.saved_model.load

Every load goes through there: ``hub.load``, ``hub.KerasLayer``, ``hub.inspect``,
``embed``, the training recipes, and ``keras.models.load_model`` of a ``.keras`` file
holding a ``KerasLayer`` (the layer loads its embedded copy through ``load_path``). Keras
turns any error raised while it loads assets into a ``ValueError``, so a ``KerasLayer``
also writes :func:`library_ops` into its build config, and ``build_from_config`` calls
:func:`require_op_libraries` with them first: a reload without the extra raises
:class:`MissingExtraError` itself. The op names are looked up in ``scan_ops.tsv``, and only
the modules in :data:`LIBRARIES` are ever imported, whatever a file lists.

Example:
    >>> require_op_libraries({"Conv2D": 3, "Relu": 3})
    ()
    >>> sorted(LIBRARIES)
    ['tensorflow_text']
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hublayer.errors import Fix, MissingExtraError
from hublayer.models._scan_ops import libraries_of
from hublayer.models._scan_report import ScanReport

__all__ = [
    "LIBRARIES",
    "OpLibrary",
    "library_ops",
    "ops_in_data",
    "ops_in_folder",
    "register_for",
    "require_op_libraries",
]

_log = logging.getLogger("hublayer.models")


@dataclass(frozen=True)
class OpLibrary:
    """An op library that registers ops with TensorFlow when imported.

    Attributes:
        module: the module to import (also the ``library`` column of ``scan_ops.tsv``).
        package: the distribution that ships it, as pip spells it.
        extra: the hublayer extra that installs it.
        what: its name for people.
    """

    module: str
    package: str
    extra: str
    what: str


#: library (as ``scan_ops.tsv`` names it) -> how to register its ops. TensorFlow's own
#: ops need nothing.
LIBRARIES: Mapping[str, OpLibrary] = MappingProxyType(
    {
        "tensorflow_text": OpLibrary(
            "tensorflow_text", "tensorflow-text", "text", "TensorFlow Text"
        ),
    }
)


def require_op_libraries(
    report_or_ops: ScanReport | Mapping[str, int] | Iterable[str], *, handle: Any = None
) -> tuple[str, ...]:
    """Import every op library whose ops the model holds, before TensorFlow loads it.

    Args:
        report_or_ops: the model's :class:`ScanReport`, its op counts, or its op names.
        handle: the handle the model came from, for the error message.

    Returns:
        The modules imported (or found imported already), such as ``("tensorflow_text",)``.

    Raises:
        MissingExtraError: a library the ops need is not installed, or does not load
            (a release built for another TensorFlow). Raised before TensorFlow reads
            the model, naming the ops and the extra to install.
    """
    ops = report_or_ops.ops if isinstance(report_or_ops, ScanReport) else report_or_ops
    imported: list[str] = []
    for library, names in libraries_of(ops).items():
        known = LIBRARIES.get(library)
        if known is None:  # TensorFlow's own ops
            continue
        _import(known, names, handle)
        imported.append(known.module)
    return tuple(imported)


def _import(library: OpLibrary, ops: list[str], handle: Any) -> None:
    try:
        importlib.import_module(library.module)
    except Exception as error:
        raise _missing(library, ops, handle, error) from error
    _log.debug("Imported %s for the ops %s of %s.", library.module, ", ".join(ops), handle)


def _missing(
    library: OpLibrary, ops: list[str], handle: Any, error: Exception
) -> MissingExtraError:
    shown = os.fspath(handle) if isinstance(handle, str | os.PathLike) else handle
    listed = ", ".join(ops[:6]) + (", ..." if len(ops) > 6 else "")
    absent = isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] == (
        library.module
    )
    why = (
        "which is not installed"
        if absent
        else f"which is installed but does not load ({type(error).__name__}: {error})"
    )
    install = f'pip install "hublayer[{library.extra}]"'
    matching = _matching_release(library)
    advice = f"{install}{matching}, then load the model again."
    return MissingExtraError(
        f"Expected the {library.what} op library for this model: its ops {listed} exist "
        f"only once `import {library.module}` registers them. Received: handle={shown!r}, "
        f"and {library.module}, {why}. Nothing of the model ran.",
        fix=Fix(f"Install it: {advice}", f"Install it: {advice}"),
        extra=library.extra,
        package=library.package,
        handle=shown,
        ops=tuple(ops),
    )


def _matching_release(library: OpLibrary) -> str:
    """`` (tensorflow-text 2.21.*, the release for TensorFlow 2.21.0)``, or ``""``."""
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        minor = ".".join(version.split(".")[:2])
        return f" ({library.package} {minor}.*, the release for TensorFlow {version})"
    return ""


def ops_in_data(data: bytes, name: str = "saved_model.pb") -> frozenset[str]:
    """The op names in ``saved_model.pb`` (or ``.pbtxt``) bytes, read without TensorFlow.

    The parse the scan uses, without its judgement: for ``safe_mode=False``, where the
    scan does not run but the op libraries must still be registered. Bytes that do not
    parse give no ops (TensorFlow then says what is wrong with the file).
    """
    from google.protobuf import message, text_format

    from hublayer.models._scan_proto import SavedModel

    model = SavedModel()
    try:
        if name.endswith(".pbtxt"):
            text_format.Parse(data.decode("utf-8"), model, allow_unknown_field=True)
        else:
            model.ParseFromString(data)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError, ValueError):
        return frozenset()
    ops: set[str] = set()
    for meta in model.meta_graphs:
        ops.update(node.op for node in meta.graph_def.node)
        for function in meta.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return frozenset(ops)


def ops_in_folder(folder: str | os.PathLike[str]) -> frozenset[str]:
    """:func:`ops_in_data` of the ``saved_model.pb`` (or ``.pbtxt``) in ``folder``."""
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        file = Path(folder, name)
        if file.is_file():
            return ops_in_data(file.read_bytes(), name)
    return frozenset()


def library_ops(folder: str | os.PathLike[str] | None) -> list[str]:
    """The ops of the SavedModel in ``folder`` that an op library registers, sorted.

    A ``KerasLayer`` writes them into its build config, so that a ``.keras`` reload
    registers the library (or raises :class:`MissingExtraError`) before Keras loads
    any asset: Keras turns an error raised while loading assets into a ``ValueError``.
    """
    if folder is None:
        return []
    found = libraries_of(sorted(ops_in_folder(folder)))
    return sorted(op for library, ops in found.items() if library in LIBRARIES for op in ops)


def register_for(
    report: ScanReport | None, read: Callable[[], frozenset[str]], *, handle: Any = None
) -> tuple[str, ...]:
    """:func:`require_op_libraries` of the scan's ``report``, or of ``read()`` when the
    scan did not run (``safe_mode=False``)."""
    return require_op_libraries(report if report is not None else read(), handle=handle)
