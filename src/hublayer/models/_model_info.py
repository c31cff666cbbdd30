"""What :func:`hublayer.inspect` finds, as plain data: :class:`ModelInfo`, :class:`SignatureInfo`.

Plain data (with the shared :class:`~hublayer._specs.TensorInfo`), so ``records`` can
build a pipeline from ``ModelInfo.input_specs`` and the CLI can print it, without
touching TensorFlow objects.

Example:
    >>> from hublayer._specs import TensorInfo
    >>> x = TensorInfo("x", "float32", (None, 4))
    >>> str(SignatureInfo("serving_default", (x,), (x,)))
    'serving_default(x: float32[None, 4]) -> {x: float32[None, 4]}'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hublayer._specs import TensorInfo

__all__ = ["Format", "ModelInfo", "SignatureInfo"]

Format = Literal["tf2_saved_model", "tf1_saved_model", "keras"]


@dataclass(frozen=True)
class SignatureInfo:
    """One named signature: its inputs and outputs, each a :class:`TensorInfo`."""

    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def __str__(self) -> str:
        ins = ", ".join(str(t) for t in self.inputs)
        outs = ", ".join(str(t) for t in self.outputs)
        return f"{self.name}({ins}) -> {{{outs}}}"


@dataclass(frozen=True)
class ModelInfo:
    """A typed description of a model, as :func:`inspect` finds it.

    Attributes:
        handle: the handle as given.
        path: the local folder (or ``.keras`` file) it resolved to.
        format: ``"tf2_saved_model"``, ``"tf1_saved_model"`` (signatures only) or ``"keras"``.
        signatures: the SavedModel's signatures, sorted by name (none for ``.keras``).
        has_call: whether the model is callable (a TF2 ``__call__``, or a Keras model).
        call_takes_training: whether that call accepts ``training=``.
        entry_point: what ``KerasLayer`` calls by default: ``"__call__"`` or a signature.
        input_specs: the inputs of ``entry_point`` (records builds pipelines from these).
            Image inputs (rank 4, 1/3/4 channels) carry a value range and its
            ``range_source``: the range the model declares in ``hublayer.json`` (or the
            zoo's ``hublayer_zoo.json``), else TF Hub's convention, ``(0, 1)`` for floats
            and ``(0, 255)`` for uint8, marked ``"assumed: TF Hub convention"``: a
            SavedModel does not record it, so check the model's documentation.
        output_specs: its outputs; a single unnamed output is called ``"output"``.
        num_variables / num_trainable_variables: counts of distinct variables.
        num_parameters / num_trainable_parameters: scalar values in them.
        num_regularization_losses: length of ``regularization_losses``.
        size_bytes: bytes on disk of every file of the model.
        tags: the meta-graph tag sets of a SavedModel (``[()]`` for TF1 Hub's empty set).
        keras_layer_kwargs: the ``hublayer.KerasLayer`` arguments this model needs beside
            its handle, such as ``{"signature": "default", "output_key": "default"}``.
    """

    handle: str
    path: str
    format: Format
    signatures: tuple[SignatureInfo, ...]
    has_call: bool
    call_takes_training: bool
    entry_point: str
    input_specs: tuple[TensorInfo, ...]
    output_specs: tuple[TensorInfo, ...]
    num_variables: int
    num_trainable_variables: int
    num_parameters: int
    num_trainable_parameters: int
    num_regularization_losses: int
    size_bytes: int
    tags: tuple[tuple[str, ...], ...]
    keras_layer_kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def fine_tunable(self) -> bool:
        """Whether ``KerasLayer(..., trainable=True)`` can train this model."""
        return self.has_call and self.num_trainable_variables > 0

    def signature(self, name: str) -> SignatureInfo:
        """The signature called ``name``.

        Raises:
            SignatureError: there is none; the message lists those there are.
        """
        for candidate in self.signatures:
            if candidate.name == name:
                return candidate
        from hublayer.errors import SignatureError

        available = tuple(s.name for s in self.signatures)
        raise SignatureError(
            f"Expected one of the model's signatures {list(available)}. "
            f"Received: name={name!r}. Pass one of those names.",
            handle=self.handle,
            name=name,
            available=available,
        )

    def keras_layer_code(self) -> str:
        """The ``hublayer.KerasLayer(...)`` call this model needs, as Python source."""
        args = [repr(self.handle)] + [f"{k}={v!r}" for k, v in self.keras_layer_kwargs.items()]
        return f"hublayer.KerasLayer({', '.join(args)})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: tuples become lists, shapes keep ``None``."""
        data = asdict(self)
        data["keras_layer_kwargs"] = dict(self.keras_layer_kwargs)
        data["fine_tunable"] = self.fine_tunable
        return data
