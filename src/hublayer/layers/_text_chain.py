"""The text chain: raw strings in, a preprocessor, then an encoder, one output out.

TF Hub's text models come as a pair, as in its "classify text with BERT" tutorial::

    strings [B] ──preprocessor──▶ {input_word_ids, input_mask, input_type_ids, ...}
                                      │ matched to the encoder's inputs by name
                                      ▼ (extra preprocessor outputs are left out)
                                  encoder ──▶ {pooled_output, sequence_output, ...}
                                      │ output_key, else "pooled_output" (said once)
                                      ▼
                                  [B, features]

:class:`TextChain` is that chain as one ``keras.Layer``, the only place hublayer builds
it: ``train.fit_classifier(..., preprocess=)`` and ``embed(..., preprocess=)`` use it.
The preprocessor (TensorFlow Text ops, no trainable weights) stays frozen; the chain's
``trainable``, :meth:`TextChain.unfreeze` and :attr:`TextChain.variable_paths` are the
encoder's. Both parts are ``KerasLayer`` values, so a ``.keras`` file holds both models
and reloads offline; the preprocessor's TensorFlow Text ops are registered on reload
from the op names its build config stores (``models._op_libraries``), so a fresh
process needs no ``import tensorflow_text``.

Stated behaviours, as TF Hub's BERT preprocessors have them: an empty string becomes
``[CLS] [SEP]`` and padding, and embeds like any other sentence; a sentence longer than
the preprocessor's sequence length is cut there. :class:`Truncation` counts the
sentences that filled every position (the cut ones among them), for the recipes to say
so once per run.

Example:
    >>> import keras  # doctest: +SKIP
    >>> chain = TextChain("/models/bert_preprocess", "/models/bert_encoder")  # doctest: +SKIP
    >>> text = keras.Input((), dtype="string")  # doctest: +SKIP
    >>> chain(text).shape  # doctest: +SKIP
    (None, 768)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from hublayer._specs import TensorInfo, match_by_name
from hublayer.errors import Fix, SignatureError
from hublayer.layers._whole_output import whole_output_layer

__all__ = ["DEFAULT_OUTPUT", "TextChain", "Truncation", "output_infos"]

log = logging.getLogger("hublayer.layers")

#: The encoder output used when none is named: TF Hub's BERT convention.
DEFAULT_OUTPUT = "pooled_output"
#: Names a preprocessor gives the 0/1 mask of real tokens.
_MASK_NAMES = ("input_mask", "attention_mask", "padding_mask")
_NOTED: set[str] = set()


def _note_once(message: str) -> None:
    if message not in _NOTED:
        _NOTED.add(message)
        log.warning(message)


def output_infos(outputs: Any) -> tuple[TensorInfo, ...]:
    """Symbolic outputs (a dict of ``KerasTensor``, or one) as :class:`TensorInfo`.

    Example:
        >>> output_infos({"ids": keras.KerasTensor((None, 8), dtype="int32")})[0].name
        'ids'
    """
    items = outputs.items() if isinstance(outputs, Mapping) else [("output", outputs)]
    return tuple(
        TensorInfo(str(name), str(value.dtype), tuple(value.shape)) for name, value in items
    )


def _handle(layer: keras.Layer) -> str:
    handle = getattr(layer, "handle", None)
    return os.fspath(handle) if isinstance(handle, str | os.PathLike) else layer.name


@keras.saving.register_keras_serializable(package="hublayer")
class TextChain(keras.Layer):
    """Strings -> preprocessor -> encoder -> one ``[batch, features]`` output.

    Args:
        preprocessor: the text preprocessor: a handle or path (loaded as a frozen
            ``KerasLayer``), or a ``KerasLayer``. It takes ``tf.string [batch]`` and
            returns a dict of tensors.
        encoder: the encoder: a handle or path (loaded as ``KerasLayer``), or a layer
            whose inputs are named (``input_specs``).
        output_key: the encoder output to return when it returns a dict. None picks
            ``"pooled_output"`` when there is one, and logs that choice once.
        trainable: whether the encoder trains (the preprocessor never does).
        matched: what matching decided, as :meth:`get_config` saves it (``feeds``,
            ``mask_name``, ``seq_length``; ``output_key`` is then the key chosen). A
            ``.keras`` reload passes it, so the parts are not asked for their specs
            before the archive's copies of their models arrive. None (the default)
            matches the parts now.

    Call arguments:
        inputs: ``tf.string`` sentences, ``[batch]``.
        training: passed to the encoder.

    Returns:
        The chosen encoder output.

    Raises:
        SpecMismatchError: an encoder input the preprocessor does not give (the message
            lists both sides' names and specs).
        SignatureError: an ``output_key`` the encoder does not return, or a dict output
            without ``"pooled_output"`` and no ``output_key`` (the keys are listed).

    Example:
        >>> chain = TextChain("/models/preprocess", "/models/encoder")  # doctest: +SKIP
        >>> chain(["hello world", ""]).shape  # doctest: +SKIP
        TensorShape([2, 768])
    """

    _text_specs: tuple[TensorInfo, ...]
    feeds: tuple[str, ...]
    output_key: str | None
    mask_name: str | None
    seq_length: int | None

    def __init__(
        self,
        preprocessor: Any,
        encoder: Any,
        output_key: str | None = None,
        trainable: bool = False,
        *,
        matched: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(trainable=trainable, **kwargs)
        self.preprocessor = whole_output_layer(preprocessor, trainable=False, what="preprocess")
        self.preprocessor.trainable = False
        self.encoder = whole_output_layer(encoder, trainable=trainable)
        if matched is None:
            self._match(output_key)
        else:
            self._restore(matched, output_key)

    def _match(self, output_key: str | None) -> None:
        """Match the preprocessor's outputs to the encoder's inputs; choose the output."""
        self._text_specs = tuple(self.preprocessor.input_specs)
        text = self._text_specs[0]
        symbolic = keras.KerasTensor(text.shape, dtype=text.dtype)
        tokens = self.preprocessor.compute_output_spec(symbolic)
        if not isinstance(tokens, Mapping):
            tokens = {"output": tokens}
        self.feeds = match_by_name(
            output_infos(tokens),
            getattr(self.encoder, "input_specs", None) or (),
            producer=f"the preprocessor {_handle(self.preprocessor)!r}",
            consumer=f"the encoder {_handle(self.encoder)!r}",
        )
        outputs = self.encoder.compute_output_spec({n: tokens[n] for n in self.feeds})
        self.output_key = self._choose(outputs, output_key)
        self.mask_name = next((n for n in _MASK_NAMES if n in tokens), None)
        width = tokens[self.mask_name].shape[-1] if self.mask_name else None
        self.seq_length = int(width) if width is not None else None

    def _restore(self, matched: Mapping[str, Any], output_key: str | None) -> None:
        """Take what matching decided from a saved config; the parts are not touched."""
        saved = matched if isinstance(matched, Mapping) else {}
        feeds, mask, width = (saved.get(k) for k in ("feeds", "mask_name", "seq_length"))
        inputs = _specs_from_config(saved.get("inputs"))
        if (
            inputs is None
            or not isinstance(feeds, list)
            or not feeds
            or not all(isinstance(n, str) for n in feeds)
            or not isinstance(mask, str | None)
            or not (width is None or (type(width) is int and width > 0))
            or not isinstance(output_key, str | None)
        ):
            raise ValueError(
                "Expected a TextChain config whose 'matched' holds inputs (a list of "
                "{name, dtype, shape}), feeds (a list of names), mask_name (a name or "
                "null) and seq_length (a positive int or null), beside output_key (a name "
                f"or null). Received: matched={matched!r}, "
                f"output_key={output_key!r}. The file was changed or is not a hublayer "
                "TextChain; save the model again."
            )
        self._text_specs = inputs
        self.feeds = tuple(feeds)
        self.output_key = output_key
        self.mask_name = mask
        self.seq_length = width

    def _choose(self, outputs: Any, output_key: str | None) -> str | None:
        if not isinstance(outputs, Mapping):
            if output_key is not None:
                raise SignatureError(
                    "Expected an encoder that returns a dict to pick output_key from. "
                    f"Received: output_key={output_key!r} for the encoder "
                    f"{_handle(self.encoder)!r}, which returns one tensor. Drop output_key.",
                    name=output_key,
                )
            return None
        keys = sorted(outputs)
        if output_key is None and DEFAULT_OUTPUT in outputs:
            _note_once(
                f"The encoder {_handle(self.encoder)!r} returns {keys}: using output "
                f"{DEFAULT_OUTPUT!r} (TF Hub's BERT convention); pass output_key= to choose "
                "another."
            )
            return DEFAULT_OUTPUT
        if output_key not in outputs:
            said = "no output_key" if output_key is None else f"output_key={output_key!r}"
            raise SignatureError(
                "Expected output_key to name one of the encoder's outputs. Received: "
                f"{said} for the encoder {_handle(self.encoder)!r}, whose outputs are {keys}.",
                name=output_key,
                expected=keys,
                fix=Fix(f"Pass output_key= one of {keys}.", f"Pass --output-key one of {keys}."),
            )
        return output_key

    # ----------------------------------------------------------------- parts
    def tokenize(self, inputs: Any) -> dict[str, Any]:
        """The preprocessor's outputs for ``inputs`` (every one, by name)."""
        tokens = self.preprocessor(inputs)
        return dict(tokens) if isinstance(tokens, Mapping) else {"output": tokens}

    def encode(self, tokens: Mapping[str, Any], training: Any = None) -> Any:
        """The chosen encoder output for the preprocessor's ``tokens``."""
        outputs = self.encoder({n: tokens[n] for n in self.feeds}, training=training)
        return outputs if self.output_key is None else outputs[self.output_key]

    def call(self, inputs: Any, training: Any = None) -> Any:
        return self.encode(self.tokenize(inputs), training=training)

    def compute_output_spec(self, inputs: Any, training: Any = None) -> Any:
        """The chosen output's spec from the parts' declared specs; nothing runs or loads.

        A ``.keras`` reload rebuilds the model symbolically before the archive's copies
        of the parts' models arrive: tracing :meth:`call` would load the originals.
        """
        tokens = self.preprocessor.compute_output_spec(inputs)
        if not isinstance(tokens, Mapping):
            tokens = {"output": tokens}
        outputs = self.encoder.compute_output_spec({n: tokens[n] for n in self.feeds})
        return outputs if self.output_key is None else outputs[self.output_key]

    def build(self, input_shape: Any) -> None:
        self.built = True

    # ------------------------------------------------------------- the model
    @property
    def input_specs(self) -> tuple[TensorInfo, ...]:
        """The chain's input: the preprocessor's (``string [batch]``), as matched.

        Kept, not asked of the preprocessor: Keras reads every property while a
        ``.keras`` file loads, before the preprocessor's model arrives.
        """
        return self._text_specs

    @property
    def trainable(self) -> bool:
        """Whether the encoder trains; the preprocessor stays frozen."""
        return bool(self._trainable)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        encoder = self.__dict__.get("encoder")
        if encoder is not None:
            encoder.trainable = bool(value)

    def unfreeze(
        self, patterns: Sequence[str] | str | None = None, *, last_n: int | None = None
    ) -> None:
        """Train the encoder, all of it or a selection (see ``KerasLayer.unfreeze``)."""
        self._trainable = True
        self.encoder.unfreeze(patterns, last_n=last_n)

    @property
    def variable_paths(self) -> tuple[str, ...]:
        """Paths of :attr:`weights`, in order: the preprocessor's (prefixed
        ``preprocess/``, usually none), then the encoder's."""
        before = tuple(f"preprocess/{p}" for p in getattr(self.preprocessor, "variable_paths", ()))
        return before + tuple(getattr(self.encoder, "variable_paths", ()))

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            preprocessor=keras.saving.serialize_keras_object(self.preprocessor),
            encoder=keras.saving.serialize_keras_object(self.encoder),
            output_key=self.output_key,
            matched={
                "inputs": [
                    {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}
                    for t in self._text_specs
                ],
                "feeds": list(self.feeds),
                "mask_name": self.mask_name,
                "seq_length": self.seq_length,
            },
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextChain:
        """Rebuild from :meth:`get_config` without asking the parts for their models.

        The parts wait for the ``.keras`` archive's copies (``load_assets``), so what
        matching decided comes from the config. A config without it (a file written
        before it was saved) matches again, which reads the parts' original handles.
        """
        config = dict(config)
        preprocessor = keras.saving.deserialize_keras_object(config.pop("preprocessor"))
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        return cls(preprocessor, encoder, **config)


def _specs_from_config(value: Any) -> tuple[TensorInfo, ...] | None:
    """``[{name, dtype, shape}, ...]`` (as ``get_config`` writes them) as TensorInfo;
    None when ``value`` is not that."""
    if not isinstance(value, list) or not value:
        return None
    specs = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        name, dtype, shape = item.get("name"), item.get("dtype"), item.get("shape")
        if not (isinstance(name, str) and isinstance(dtype, str) and isinstance(shape, list)):
            return None
        if not all(d is None or type(d) is int for d in shape):
            return None
        specs.append(TensorInfo(name, dtype, tuple(shape)))
    return tuple(specs)


class Truncation:
    """Counts the sentences that filled every position of the preprocessor's sequence.

    A sentence longer than the sequence is cut at its end, so each one cut is among
    those counted (one that fits exactly is counted too: the mask cannot tell them
    apart). :meth:`report` says it once, when there were any.

    Example:
        >>> count = Truncation(chain)  # doctest: +SKIP
        >>> count.add(chain.tokenize(batch))  # doctest: +SKIP
        >>> count.report("embed")  # doctest: +SKIP
    """

    def __init__(self, chain: TextChain) -> None:
        self.mask = chain.mask_name
        self.seq_length = chain.seq_length
        self.filled = 0
        self.total = 0

    def count(self, tokens: Mapping[str, Any]) -> Any:
        """How many rows of ``tokens`` fill every position (a scalar tensor)."""
        if self.mask is None:
            return keras.ops.zeros((), dtype="int32")
        last = keras.ops.cast(tokens[self.mask][:, -1] > 0, "int32")
        return keras.ops.sum(last)

    def add(self, filled: Any, total: int) -> None:
        """Add a batch's count (from :meth:`count`) and its size."""
        self.filled += int(keras.ops.convert_to_numpy(filled))
        self.total += int(total)

    def report(self, what: str) -> str | None:
        """Log, once, how many sentences may have been cut; returns the sentence."""
        if not self.filled:
            return None
        message = (
            f"{what}: {self.filled:,} of {self.total:,} sentence(s) filled all "
            f"{self.seq_length} positions of the preprocessor's sequence; the longer ones "
            "were truncated there (the preprocessor's sequence length decides it)."
        )
        _note_once(message)
        return message
