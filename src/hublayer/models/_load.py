"""Load a model handle into a Python object, the way ``tensorflow_hub.load`` does.

What a resolved handle may hold, and what :func:`load` returns for it::

    folder/saved_model.pb              TF2 SavedModel   -> tf.saved_model.load(folder)
    folder/saved_model.pb              TF1 SavedModel   -> the same, signatures only; with
      (+ tfhub_module.pb, or several                       tags=None, the TF Hub convention:
       meta graphs)                                        the meta graph with no tags
    model.keras  (or a folder holding                      keras.saving.load_model(file)
      exactly one *.keras file)
    gs://bucket/folder                 SavedModel read in place through tf.io.gfile, when
                                       TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED names it

Example:
    >>> import hublayer
    >>> from hublayer import testing
    >>> model = hublayer.load(testing.image_feature_vector("/tmp/ifv"))
    >>> sorted(model.signatures)
    ['serving_default']
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hublayer.errors import InvalidModelError, ModelNotFoundError
from hublayer.models._locate import (
    HUB_MODULE_FILE,
    SAVED_MODEL_FILES,
    Handle,
    is_hub_module_v1,
    resolve,
)
from hublayer.models._locate import keras_file as find_keras_file

__all__ = ["load", "load_in_place", "load_path"]

_NEITHER = "contains neither 'saved_model.pb' nor 'saved_model.pbtxt'"


def _meta_graph_tags(path: Path) -> list[frozenset[str]]:
    """The tag sets of the meta graphs in a binary ``saved_model.pb`` (empty if unreadable).

    Raises:
        InvalidModelError: the file does not parse (safe mode off: the scan did not run).
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    file = path / "saved_model.pb"
    try:
        data = file.read_bytes()
    except OSError:
        return []
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError) as error:
        from hublayer.models._scan import _unparseable

        raise _unparseable(str(file), file.name, len(data), str(error)[:200]) from None
    return [frozenset(meta.meta_info_def.tags) for meta in proto.meta_graphs]


def _default_tags(path: Path) -> list[str] | None:
    """``tags=None`` means: the TF Hub convention (no tags) when the choice is ambiguous."""
    if is_hub_module_v1(path):
        return []
    tag_sets = _meta_graph_tags(path)
    if len(tag_sets) > 1 and frozenset() in tag_sets:
        return []
    return None


def load_path(
    path: str | os.PathLike[str],
    tags: Iterable[str] | None = None,
    options: Any = None,
    *,
    handle: Handle | None = None,
    safe_mode: bool | None = None,
) -> Any:
    """Load the model in a local folder or ``.keras`` file, after scanning it.

    Args:
        path: a SavedModel folder, a ``.keras`` file, or a folder holding one ``.keras`` file.
        tags: the meta graph to load from a TF1 SavedModel. ``None`` picks the one with no
            tags when there are several (the TF Hub convention), else TensorFlow's default.
            Must be None for a ``.keras`` file.
        options: a ``tf.saved_model.LoadOptions``; must be None for a ``.keras`` file.
        handle: the handle ``path`` came from, for error messages.
        safe_mode: scan the model first and refuse unsafe ops (see :func:`hublayer.scan`);
            ``None`` follows ``$HUBLAYER_SAFE_MODE`` (on by default), ``False`` skips it.

    Returns:
        The loaded object: what ``tf.saved_model.load`` returns (with
        ``_is_hub_module_v1`` set, as ``tensorflow_hub.load`` does), or a ``keras.Model``.

    Raises:
        ModelNotFoundError: ``path`` does not exist.
        InvalidModelError: ``path`` exists but holds no SavedModel and no ``.keras`` file
            (a ``ValueError``, as in tensorflow_hub), or ``tags``/``options`` were given
            for a ``.keras`` file (they would be ignored).
        UnsafeModelError: the scan found ops that reach files, the network or Python.
        MissingExtraError: the model's ops need an op library that is not installed
            (TensorFlow Text: ``pip install "hublayer[text]"``).
    """
    folder = Path(path)
    shown = os.fspath(handle) if handle is not None else str(folder)
    keras_file = find_keras_file(folder)
    if keras_file is not None and (tags is not None or options is not None):
        raise InvalidModelError(
            "Expected tags=None and options=None for a .keras model: they choose a "
            "SavedModel's meta graph and its tf.saved_model.LoadOptions, which a .keras "
            f"file has neither of. Received: tags={tags!r}, options={options!r} for "
            f"{shown!r} ({str(keras_file)!r}). Drop them, or export the model as a "
            "SavedModel (hublayer.export_saved_model) to load it with them.",
            handle=shown,
            path=str(keras_file),
        )
    if keras_file is not None:  # a damaged file says what is wrong (Keras: "File not found")
        from hublayer.models._keras_file import check_keras_file

        check_keras_file(keras_file, handle=shown)
    report = None
    if keras_file is not None or any((folder / n).is_file() for n in SAVED_MODEL_FILES):
        from hublayer.models._scan import check_safe

        # Nothing of the model runs, and TensorFlow does not read it, before this.
        report = check_safe(keras_file or folder, safe_mode=safe_mode, handle=shown)
    if keras_file is not None:  # the models it embeds, against the digests it records
        from hublayer.models._keras_file import check_embedded

        check_embedded(keras_file, handle=shown)
    from hublayer.models._op_libraries import ops_in_folder, register_for

    if keras_file is not None:
        if report is not None:  # else its KerasLayers register them, loading through here
            register_for(report, frozenset, handle=shown)
        import keras

        # `import hublayer` installed the hook that registers KerasLayer with Keras.
        return keras.saving.load_model(keras_file)
    if not any((folder / name).is_file() for name in SAVED_MODEL_FILES):
        error = InvalidModelError if folder.exists() else ModelNotFoundError
        raise error(
            f"Expected a SavedModel (a folder with saved_model.pb) or a .keras file. "
            f"Received: handle={shown!r}, which resolved to {str(folder)!r} holding "
            f"{_listing(folder)}: {str(folder)!r} {_NEITHER}. Check the handle, or remove "
            "the damaged folder so it is fetched again.",
            handle=shown,
            path=str(folder),
        )
    register_for(report, lambda: ops_in_folder(folder), handle=shown)  # e.g. tensorflow_text
    import tensorflow as tf

    chosen = list(tags) if tags is not None else _default_tags(folder)
    loaded = tf.saved_model.load(str(folder), tags=chosen, options=options)
    loaded._is_hub_module_v1 = is_hub_module_v1(folder)
    return loaded


def load(
    handle: Handle,
    tags: Iterable[str] | None = None,
    options: Any = None,
    *,
    safe_mode: bool | None = None,
) -> Any:
    """Resolve a handle and load the model it names, like ``tensorflow_hub.load``.

    Args:
        handle: any handle ``hublayer.resolve`` accepts: a tfhub.dev or Kaggle URL, a
            ``kaggle://``, ``gs://``, ``s3://`` or ``hf://`` handle, an archive URL, or a
            local folder or ``.keras`` file.
        tags: the meta graph to load from a TF1 SavedModel; ``None`` follows TF Hub (the
            meta graph with no tags when there are several).
        options: a ``tf.saved_model.LoadOptions``.
        safe_mode: scan the model before TensorFlow loads it and refuse ops that reach
            files, the network or Python (see :func:`hublayer.scan`). ``None`` follows
            ``$HUBLAYER_SAFE_MODE`` (on by default); ``False`` loads a model you trust as is.

    Returns:
        The loaded object. For a SavedModel, what ``tf.saved_model.load`` returns: call it,
        read ``.signatures``, ``.variables``... For a ``.keras`` file, a ``keras.Model``.

    Raises:
        HandleError: the handle fits no accepted form, or is not a string or path.
        ModelNotFoundError: the handle names a path that does not exist.
        InvalidModelError: the handle resolves to a folder that holds no model, or (with
            ``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED``) the server names no ``gs://`` folder.
        UnsafeModelError: the scan found ops that reach files, the network or Python.

    Example:
        >>> import hublayer
        >>> from hublayer import testing
        >>> model = hublayer.load(testing.image_feature_vector("/tmp/ifv", dim=8))
        >>> import tensorflow as tf
        >>> model(tf.zeros([1, 32, 32, 3])).shape
        TensorShape([1, 8])
    """
    location = resolve(handle)
    if location.startswith("gs://"):
        return load_in_place(location, tags, options, handle=handle, safe_mode=safe_mode)
    return load_path(location, tags, options, handle=handle, safe_mode=safe_mode)


def load_in_place(
    location: str,
    tags: Iterable[str] | None = None,
    options: Any = None,
    *,
    handle: Handle | None = None,
    safe_mode: bool | None = None,
) -> Any:
    """Load the SavedModel at ``location`` where it is, through ``tf.io.gfile``; no copy.

    This is how ``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED`` reads the ``gs://`` folder a
    server names. Any location TensorFlow's file system can read works: ``gs://``,
    ``file://`` or a local path.

    Args:
        location: the SavedModel folder.
        tags: as for :func:`load_path`.
        options: a ``tf.saved_model.LoadOptions``.
        handle: the handle ``location`` came from, for error messages.
        safe_mode: as for :func:`load_path` (``saved_model.pb`` is read and scanned first).

    Raises:
        InvalidModelError: ``location`` holds neither ``saved_model.pb`` nor
            ``saved_model.pbtxt`` (a ``ValueError``, as in tensorflow_hub).

    Example:
        >>> from hublayer import testing
        >>> folder = testing.image_feature_vector("/tmp/ifv-in-place", dim=8)
        >>> sorted(load_in_place("file://" + folder).signatures)
        ['serving_default']
    """
    import tensorflow as tf

    base = location.rstrip("/")
    exists = [tf.io.gfile.exists(f"{base}/{name}") for name in SAVED_MODEL_FILES]
    shown = os.fspath(handle) if handle is not None else location
    if not any(exists):
        raise InvalidModelError(
            f"Expected a SavedModel folder at {location!r}. Received: {location!r} "
            f"{_NEITHER} (handle={shown!r}). Check the handle, or unset "
            "TFHUB_MODEL_LOAD_FORMAT to download the model's archive instead.",
            handle=shown,
            path=location,
        )
    from hublayer.models._scan import check_safe_data

    name = SAVED_MODEL_FILES[0] if exists[0] else SAVED_MODEL_FILES[1]

    def read() -> bytes:
        with tf.io.gfile.GFile(f"{base}/{name}", "rb") as f:
            return bytes(f.read())

    report = check_safe_data(read, name, location=location, safe_mode=safe_mode, handle=shown)
    from hublayer.models._op_libraries import ops_in_data, register_for

    register_for(report, lambda: ops_in_data(read(), name), handle=shown)
    hub_v1 = tf.io.gfile.exists(f"{base}/{HUB_MODULE_FILE}")
    chosen = list(tags) if tags is not None else ([] if hub_v1 else None)
    loaded = tf.saved_model.load(location, tags=chosen, options=options)
    loaded._is_hub_module_v1 = hub_v1
    return loaded


def _listing(folder: Path) -> str:
    if not folder.exists():
        return "nothing (it does not exist)"
    if folder.is_file():
        return f"a file named {folder.name!r}"
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return "nothing (an empty folder)"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"[{shown}]"
