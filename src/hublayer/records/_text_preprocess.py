"""``records.dataset(..., preprocess=)``: a text preprocessor inside the tf.data pipeline.

TF Hub's text models come as a preprocessor (TensorFlow Text ops: normalize, WordPiece,
pack into ``input_word_ids`` / ``input_mask`` / ``input_type_ids``) and an encoder.
Run in the input pipeline, the preprocessor turns each batch of raw strings into token
ids before the model sees them::

    records ─▶ batch ─▶ parse (the string feature) ─▶ map(preprocessor) ─▶ {name: ids}

so the model receives only numbers. This is the way to train a **JAX** model on text:
tf2jax cannot convert TensorFlow Text ops (a ``KerasLayer`` of the preprocessor on JAX
is refused at construction), but the pipeline is TensorFlow on every backend. TensorFlow
recommends the same split for accelerators: strings stay on the host.

With ``for_model`` (the encoder), the preprocessor's outputs are matched to its inputs
by name (extra outputs are dropped; a missing one is an error listing both sides), and
the features are keyed by the encoder's input names, or a single tensor for a one-input
model. Without it, every output of the preprocessor is kept.

The preprocessor is a handle or folder (loaded and scanned by ``hublayer.load``, its
TensorFlow Text ops registered first), a ``hublayer.KerasLayer`` of it, or any callable
from ``tf.string [batch]`` to a dict of tensors.

One deliberate upward import: ``records`` (floor 2) sits below ``models`` (floor 3), yet
a handle string is loaded here with ``hublayer.models.load``. ``preprocess=HANDLE`` is
public API, and loading a handle safely (resolve, scan, op libraries, then TensorFlow)
is ``models``' job, which ``records`` must not repeat. So ``models`` is imported by name
(:data:`_LOADER`), only when a handle string is passed, never when ``records`` is
imported; ``tests/test_import_graph.py`` allows exactly this edge (``BY_NAME_UPWARD``).
A caller that loads the preprocessor itself (a ``KerasLayer``, ``hublayer.load(...)``,
any callable) never reaches it.

Example:
    >>> from hublayer import records  # doctest: +SKIP
    >>> train = records.dataset("reviews/train-*.tfrecord", batch_size=32,  # doctest: +SKIP
    ...                         label="label", preprocess="/models/bert_preprocess",
    ...                         for_model=encoder)
    >>> features, labels = next(iter(train))  # doctest: +SKIP
    >>> sorted(features)  # doctest: +SKIP
    ['input_mask', 'input_type_ids', 'input_word_ids']
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hublayer._specs import TensorInfo, input_specs_of, match_by_name

__all__ = ["TextPreprocess", "text_preprocess"]

#: Loads a handle the way ``hublayer.load`` does (scan, op libraries, then TensorFlow).
#: Named, not imported: the one upward edge of ``records``, allowed by name in
#: ``tests/test_import_graph.py`` (see the module docstring).
_LOADER = "hublayer.models"


@dataclass(frozen=True)
class TextPreprocess:
    """A preprocessor ready for the pipeline.

    Attributes:
        call: ``tf.string [batch]`` -> dict of tensors.
        input: the string input the records feed (planned like a text model's input).
        outputs: what ``call`` returns, by name.
        feeds: the outputs kept, in the model's input order; None keeps them all.
    """

    call: Callable[[Any], Any]
    input: TensorInfo
    outputs: tuple[TensorInfo, ...]
    feeds: tuple[str, ...] | None

    def features(self, strings: Any) -> Any:
        """The model's features for a batch of strings."""
        tokens = self.call(strings)
        if self.feeds is None:
            return dict(tokens)
        if len(self.feeds) == 1:
            return tokens[self.feeds[0]]
        return {name: tokens[name] for name in self.feeds}

    def apply(self, batches: Any, *, labelled: bool, deterministic: bool) -> Any:
        """``batches`` of strings (and labels) -> batches of the model's features."""
        import tensorflow as tf

        if labelled:
            step: Callable[..., Any] = lambda x, y: (self.features(x), y)  # noqa: E731
        else:
            step = self.features
        return batches.map(step, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def _callable(preprocess: Any) -> tuple[Callable[[Any], Any], str]:
    """The function to call, and the name of its string input."""
    if isinstance(preprocess, str | os.PathLike):
        loader = importlib.import_module(_LOADER)
        preprocess = loader.load(os.fspath(preprocess))
    obj = getattr(preprocess, "resolved_object", preprocess)  # a KerasLayer: its model
    serving = (getattr(obj, "signatures", None) or {}).get("serving_default")
    name = "text"
    if serving is not None:
        _, named = serving.structured_input_signature
        name = next(iter(named), name)
    if callable(obj):
        return obj, name
    if serving is not None:
        return lambda strings: serving(**{name: strings}), name
    raise TypeError(
        "Expected preprocess to be a text preprocessor: a handle or folder, a "
        "hublayer.KerasLayer, or a callable from strings to a dict of tensors. "
        f"Received: preprocess={preprocess!r} of type {type(preprocess).__name__}."
    )


def text_preprocess(preprocess: Any, for_model: Any = None) -> TextPreprocess:
    """Load ``preprocess`` and match its outputs to ``for_model``'s inputs by name.

    Args:
        preprocess: a handle or folder, a ``hublayer.KerasLayer``, or a callable.
        for_model: the model the features feed (``hublayer.inspect(...)``, a
            ``KerasLayer``, ``TensorInfo`` values), or None to keep every output.

    Raises:
        SpecMismatchError: an input of ``for_model`` the preprocessor does not give.
        MissingExtraError: its TensorFlow Text ops need ``pip install "hublayer[text]"``.
        TypeError: ``preprocess`` is none of the accepted kinds.
    """
    import tensorflow as tf

    call, name = _callable(preprocess)
    sample = call(tf.constant([""]))
    if not isinstance(sample, Mapping):
        sample = {"output": sample}
    outputs = tuple(
        TensorInfo(str(key), value.dtype.name, (None, *value.shape[1:]))
        for key, value in sample.items()
    )
    feeds = None
    if for_model is not None:
        feeds = match_by_name(
            outputs, input_specs_of(for_model), producer="the preprocessor", consumer="the model"
        )
    return TextPreprocess(call, TensorInfo(name, "string", (None,)), outputs, feeds)
