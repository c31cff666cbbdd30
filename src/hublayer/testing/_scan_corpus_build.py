"""Building blocks of the corpus's harmful SavedModels: the saved module, the TF1 builder,
and the :class:`CorpusModel` record of each.

Every harmful model takes ``x: float32[None, 4]`` and returns ``{"y": x * w, "s": string}``,
so one prover calls them all; ``s`` carries what a leak stole.

Example:
    >>> SPEC.shape.as_list(), SPEC.name
    ([None, 4], 'x')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from hublayer.testing._scan_corpus_model import CorpusModel
from hublayer.testing._scan_corpus_payload import Payload, Targets, hide

__all__ = ["SPEC", "corpus_model", "op_model", "save_module", "save_tf1_model"]

SPEC = tf.TensorSpec([None, 4], tf.float32, name="x")


def save_module(
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

    save_module(path, forward, place, root)


def save_tf1_model(
    path: Path,
    outputs: Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]],
    before_save: Callable[[tf.compat.v1.Session], object] = lambda session: None,
) -> None:
    """A TF1 SavedModel (tag ``serve``) whose ``serving_default`` maps ``x`` to
    ``outputs(x, asset)``; ``asset`` is a Const holding the path of a listed asset file.

    ``before_save`` runs in the session first (to initialize variables).
    """
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("a\nb\n")
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
            asset = tf.constant(str(vocab), name="asset_path")
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, asset)
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, outputs(x, asset))
            with tf.compat.v1.Session(graph=graph) as session:
                before_save(session)
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


def corpus_model(
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
