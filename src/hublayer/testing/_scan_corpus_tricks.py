"""The corpus's tricks: harm hidden from a scanner by more than an op in a function.

A path in ``tensor_content``, in a variable (assigned, or only in the checkpoint), behind
a TF1 asset, in the checkpoint restore function, behind ``api_implements``; links out of
the model folder; paths derived from a proven root (the model's own asset), and a
variable whose proof is an initializer the loader never runs. The ``.keras`` tricks are
in :mod:`._scan_corpus_keras`.

Example:
    >>> TRICK_NAMES[0]
    'ReadFile--tensor_content'
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from hublayer.testing._scan_corpus_build import SPEC, op_model, save_module, save_tf1_model
from hublayer.testing._scan_corpus_build import corpus_model as _model
from hublayer.testing._scan_corpus_model import CorpusModel
from hublayer.testing._scan_corpus_ops import PAYLOADS
from hublayer.testing._scan_corpus_payload import Payload, Targets
from hublayer.testing._scan_corpus_protos import (
    add_restore_write,
    move_string_to_tensor_content,
    retarget_tf1_asset,
)

__all__ = ["TRICK_NAMES", "build_tricks"]

TRICK = "trick"


def _path_variable(path: Path, t: Targets, *, assigned: bool) -> None:
    """The secret's path held in a string variable: assigned in the function, or only in
    the checkpoint (the graph never holds the path)."""
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))
    root.p = tf.Variable("" if assigned else t.secret)

    def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
        if assigned:
            root.p.assign(
                tf.strings.join([os.path.dirname(t.secret), "/", os.path.basename(t.secret)])
            )
        return {"y": x * root.w, "s": tf.io.read_file(root.p.read_value())}

    save_module(path, forward, "call", root)


def _tf1_asset(path: Path, t: Targets) -> None:
    """A TF1 model that reads its listed asset; then the Const moves to the secret's path."""
    save_tf1_model(path, lambda x, asset: {"y": tf.identity(x), "s": tf.io.read_file(asset)})
    retarget_tf1_asset(path / "saved_model.pb", "asset_path", t.secret)


def _api_implements(path: Path, t: Targets) -> None:
    """``__call__`` calls a clean function preferring GPU; a WriteFile twin that prefers
    CPU, with the same ``api_implements``, rides along in the library for grappler."""
    attributes = {"api_implements": "hublayer_corpus_op"}
    clean = tf.function(
        lambda x: x * 2.0,
        experimental_attributes={**attributes, "api_preferred_device": "GPU"},
    )

    def evil_body(x: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies([tf.io.write_file(t.at("created.txt"), "pwned")]):
            return x * 2.0

    evil = tf.function(
        evil_body, experimental_attributes={**attributes, "api_preferred_device": "CPU"}
    )
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))

    def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
        evil.get_concrete_function(SPEC).add_to_graph()
        return {"y": clean(x) * root.w, "s": tf.constant("")}

    save_module(path, forward, "call", root)


def _asset_model(path: Path, asset_name: str) -> None:
    """A model that reads its own asset through TextLineDataset (a clean pattern)."""
    with tempfile.TemporaryDirectory() as scratch:
        file = Path(scratch) / asset_name
        file.write_text("placeholder\n")
        root = tf.Module()
        root.w = tf.Variable(tf.ones([4]))
        root.vocab = tf.saved_model.Asset(str(file))

        def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
            lines = tf.data.TextLineDataset(root.vocab.asset_path)
            return {"y": x * root.w, "s": lines.reduce(tf.constant(""), lambda a, b: a + b)}

        save_module(path, forward, "call", root)


def _label_model(path: Path) -> None:
    """A model that outputs a string variable (its checkpoint is moved out later)."""
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))
    root.label = tf.Variable("cat")

    def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * root.w, "s": root.label.read_value()}

    save_module(path, forward, "call", root)


def build_tricks(
    folder: Path, secret: Path, victims: Path, want: Callable[[str], bool]
) -> list[CorpusModel]:
    from hublayer.testing import _scan_corpus_keras

    built: list[CorpusModel] = []
    read, write, text = PAYLOADS["ReadFile"], PAYLOADS["WriteFile"], PAYLOADS["TextLineDataset"]

    def targets(name: str) -> Targets:
        return Targets(str(secret), str(victims / name))

    name = "ReadFile--tensor_content"
    if want(name):
        op_model(folder / name, read, "call", targets(name))
        move_string_to_tensor_content(folder / name / "saved_model.pb", str(secret))
        built.append(_model(name, folder / name, read, "tensor_content", targets(name), secret))
    for assigned, place in ((True, "variable_assigned"), (False, "variable_checkpoint")):
        name = f"ReadFile--{place}"
        if want(name):
            _path_variable(folder / name, targets(name), assigned=assigned)
            built.append(_model(name, folder / name, read, place, targets(name), secret))
    name = "ReadFile--tf1_asset_const"
    if want(name):
        _tf1_asset(folder / name, targets(name))
        built.append(_model(name, folder / name, read, "tf1_asset_const", targets(name), secret))
    name = "WriteFile--traced_restore"
    if want(name):
        t = targets(name)
        _label_model(folder / name)
        add_restore_write(folder / name / "saved_model.pb", t.at("restored.txt"))
        created = Payload("WriteFile", write.sources, "create", "restored.txt", write.build)
        built.append(
            _model(name, folder / name, created, "traced_restore", t, secret, loader="tf1_session")
        )
    name = "WriteFile--api_implements"
    if want(name):
        _api_implements(folder / name, targets(name))
        created = Payload("WriteFile", write.sources, "create", "created.txt", write.build)
        built.append(_model(name, folder / name, created, "api_implements", targets(name), secret))
    name = "TextLineDataset--assets_symlink"
    if want(name):
        _asset_model(folder / name, secret.name)
        shutil.rmtree(folder / name / "assets")
        (folder / name / "assets").symlink_to(secret.parent, target_is_directory=True)
        built.append(
            _model(
                name, folder / name, text, "assets_symlink", targets(name), secret, sources=(TRICK,)
            )
        )
    name = "TextLineDataset--asset_hardlink"
    if want(name):
        _asset_model(folder / name, secret.name)
        (folder / name / "assets" / secret.name).unlink()
        os.link(secret, folder / name / "assets" / secret.name)
        built.append(
            _model(
                name, folder / name, text, "asset_hardlink", targets(name), secret, sources=(TRICK,)
            )
        )
    name = "RestoreV2--variables_symlink"
    if want(name):
        _label_model(folder / name)
        outside = victims / f"{name}-variables"
        shutil.rmtree(outside, ignore_errors=True)
        shutil.move(str(folder / name / "variables"), outside)
        (folder / name / "variables").symlink_to(outside, target_is_directory=True)
        restore = Payload("RestoreV2", (TRICK,), "leak", "", read.build, "variables_outside")
        built.append(
            _model(
                name,
                folder / name,
                restore,
                "variables_symlink",
                targets(name),
                secret,
                extra={"checkpoint": str(outside / "variables")},
            )
        )
    built += value_tricks(folder, secret, victims, want)
    built += _scan_corpus_keras.build_keras_tricks(folder, secret, victims, want)
    return built


#: The tricks, by name, in build order.
TRICK_NAMES: tuple[str, ...] = (
    "ReadFile--tensor_content",
    "ReadFile--variable_assigned",
    "ReadFile--variable_checkpoint",
    "ReadFile--tf1_asset_const",
    "WriteFile--traced_restore",
    "WriteFile--api_implements",
    "TextLineDataset--assets_symlink",
    "TextLineDataset--asset_hardlink",
    "RestoreV2--variables_symlink",
    "ReadFile--asset_regex_replace",
    "ReadFile--asset_dotdot_split",
    "ReadFile--tf1_variable_initializer",
    "WriteFile--keras_member_dot",
    "WriteFile--keras_safe_mode_false",
    "WriteFile--keras_outside_handle",
    "Lambda--keras_lambda",
)


def _asset_derived(path: Path, t: Targets, how: str) -> None:
    """ReadFile of a path *computed from* the model's own asset path.

    ``regex_replace``: the asset path rewritten to the secret's. ``dotdot_split``: the
    asset (made a folder after saving) joined with ``/.`` and ``.`` constants, none of
    which holds a ``..`` part, that together climb to ``/``, then the secret's path.
    """
    with tempfile.TemporaryDirectory() as scratch:
        file = Path(scratch) / "vocab.txt"
        file.write_text("the\n")
        root = tf.Module()
        root.w = tf.Variable(tf.ones([4]))
        root.vocab = tf.saved_model.Asset(str(file))

        def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
            asset = root.vocab.asset_path
            if how == "regex_replace":
                target = tf.strings.regex_replace(asset, "^.*$", t.secret)
            else:
                climb = ["/.", "."] * 64
                target = tf.strings.join([asset, *climb, t.secret])
            return {"y": x * root.w, "s": tf.io.read_file(target)}

        save_module(path, forward, "call", root)
    if how == "dotdot_split":
        (path / "assets" / "vocab.txt").unlink()
        (path / "assets" / "vocab.txt").mkdir()


def _tf1_variable_initializer(path: Path, t: Targets) -> None:
    """A TF1 model whose path variable is *initialized* from its asset (so it looks
    proven), while its checkpoint holds the secret's path: the loader restores the
    checkpoint and never runs the initializer."""
    holders: list[tf.Variable] = []

    def outputs(x: tf.Tensor, asset: tf.Tensor) -> dict[str, tf.Tensor]:
        holder = tf.compat.v1.get_variable(
            "holder", initializer=asset, use_resource=True, trainable=False
        )
        holders.append(holder)
        return {"y": tf.identity(x), "s": tf.io.read_file(holder.read_value())}

    save_tf1_model(path, outputs, lambda session: session.run(holders[0].initializer))
    prefix = str(path / "variables" / "variables")
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    values = [
        tf.constant(t.secret) if name == "holder" else tf.constant(reader.get_tensor(name))
        for name in names
    ]
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values
    )


def value_tricks(
    folder: Path, secret: Path, victims: Path, want: Callable[[str], bool]
) -> list[CorpusModel]:
    """Paths derived from a proven root, and a variable whose proof is its initializer."""
    built: list[CorpusModel] = []
    read = PAYLOADS["ReadFile"]
    for how in ("regex_replace", "dotdot_split"):
        name = f"ReadFile--asset_{how}"
        if want(name):
            targets = Targets(str(secret), str(victims / name))
            _asset_derived(folder / name, targets, how)
            built.append(_model(name, folder / name, read, f"asset_{how}", targets, secret))
    name = "ReadFile--tf1_variable_initializer"
    if want(name):
        targets = Targets(str(secret), str(victims / name))
        _tf1_variable_initializer(folder / name, targets)
        built.append(_model(name, folder / name, read, "tf1_variable_initializer", targets, secret))
    return built
