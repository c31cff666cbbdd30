"""Keras variables over a SavedModel's ``tf.Variable``s: shared storage, safe names, which train.

Two ways a layer gets its variables:

- **Wrapping** (a fresh load): ``tf.saved_model.load`` creates the ``tf.Variable``s and each
  gets a ``keras.Variable(initializer=tf_variable)``. On the TensorFlow backend that keeps
  the ``tf.Variable`` itself, so the SavedModel's functions and Keras optimizers update the
  same storage.
- **Loading into** (a reload from ``.keras``): Keras builds the layer, and its optimizer,
  before the SavedModel's files are available. The layer first creates placeholder Keras
  variables from :class:`VariableSlot`s, then loads the SavedModel with a variable creator
  that hands it those placeholders, so the functions capture them.

Both ways rely on the order in which ``tf.saved_model.load`` creates variables, which is fixed
by the SavedModel's files (node order). A slot records that position.

SavedModel names end in ``:0`` and contain ``/``. Keras optimizers build slot-variable names
from variable names, and ``"conv/kernel:0_momentum"`` is not a valid TensorFlow scope name
(the ``TFSMLayer`` Adam crash), so the Keras variables get :func:`keras_name` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from hublayer.errors import SignatureError

__all__ = [
    "VariableSlot",
    "creating_into",
    "describe",
    "keras_name",
    "placeholders",
    "recording_creation",
    "select_trainable",
    "sync_replicas",
    "variable_path",
    "wrap_variables",
]

_SUFFIX = re.compile(r":\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def variable_path(name: str) -> str:
    """The SavedModel name without its ``:0`` suffix: ``"block_1/conv/kernel"``."""
    return _SUFFIX.sub("", name)


def keras_name(name: str) -> str:
    """A Keras-safe variable name: no ``:0``, and ``_`` for ``/`` and other odd characters."""
    return _UNSAFE.sub("_", variable_path(name)) or "variable"


@dataclass(frozen=True)
class VariableSlot:
    """One model variable, as the layer's saved config describes it.

    Args:
        index: position among the variables ``tf.saved_model.load`` creates for the model,
            or -1 when unknown (a model object passed in already loaded).
        name: the SavedModel's name for it, ``"block_1_conv/kernel:0"``.
        shape: its shape.
        dtype: its dtype name.
        trainable: whether the model lists it in ``trainable_variables``.
        aggregation: its ``tf.VariableAggregation``, in Keras spelling (``"none"``, ``"mean"``...).
        synchronization: its ``tf.VariableSynchronization``, in Keras spelling.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    aggregation: str = "none"
    synchronization: str = "auto"

    @property
    def path(self) -> str:
        """The name without ``:0``, the one trainable patterns match against."""
        return variable_path(self.name)

    def to_config(self) -> list[Any]:
        """A JSON-ready list, compact because big models have hundreds of variables."""
        return [
            self.index,
            self.name,
            list(self.shape),
            self.dtype,
            self.trainable,
            self.aggregation,
            self.synchronization,
        ]

    @classmethod
    def from_config(cls, config: Sequence[Any]) -> VariableSlot:
        """Inverse of :meth:`to_config`."""
        index, name, shape, dtype, trainable, aggregation, synchronization = config
        return cls(
            int(index),
            str(name),
            tuple(int(d) for d in shape),
            str(dtype),
            bool(trainable),
            str(aggregation),
            str(synchronization),
        )


def _keras_spelling(enum_value: Any) -> str:
    # tf.VariableAggregation.ONLY_FIRST_REPLICA -> "only_first_replica"
    return str(getattr(enum_value, "name", enum_value)).lower()


@contextlib.contextmanager
def recording_creation() -> Iterator[list[tf.Variable]]:
    """Record, in order, every ``tf.Variable`` created inside the block.

    Example:
        >>> with recording_creation() as created:
        ...     _ = tf.Variable(1.0)
        >>> len(created)
        1
    """
    created: list[tf.Variable] = []

    def creator(next_creator: Callable[..., tf.Variable], **kwargs: Any) -> tf.Variable:
        if tf.distribute.has_strategy():
            kwargs["aggregation"] = _replica_aggregation(
                kwargs.get("dtype"), kwargs.get("aggregation")
            )
        variable = next_creator(**kwargs)
        created.append(variable)
        return variable

    with tf.variable_creator_scope(creator):
        yield created


@contextlib.contextmanager
def creating_into(targets: Mapping[int, tf.Variable], *, handle: str | None) -> Iterator[None]:
    """Hand existing variables to the loader: the n-th creation gets ``targets[n]``.

    Creations without a target are left to TensorFlow.

    Raises:
        SignatureError: a target's shape or dtype differs from what the model creates, so
            the model is not the one the layer was saved with.
    """
    counter = itertools.count()

    def creator(next_creator: Callable[..., tf.Variable], **kwargs: Any) -> tf.Variable:
        target = targets.get(next(counter))
        if target is None:
            return next_creator(**kwargs)
        shape = tf.TensorShape(kwargs.get("shape"))
        dtype = tf.as_dtype(kwargs.get("dtype") or target.dtype)
        if dtype != target.dtype or not shape.is_compatible_with(target.shape):
            raise SignatureError(
                "Expected the model to be the one this layer was saved with. Received: a "
                f"variable {kwargs.get('name')!r} of {dtype.name}{shape} where the layer "
                f"has {target.dtype.name}{target.shape}. The handle {handle!r} now names a "
                "different model: save the layer with embed_saved_model=True, or point "
                "the handle back at the original model.",
                handle=handle,
                name=kwargs.get("name"),
                expected=f"{target.dtype.name}{target.shape}",
                received=f"{dtype.name}{shape}",
            )
        return target

    with tf.variable_creator_scope(creator):
        yield


def wrap_variables(
    loaded: Any, created: Sequence[tf.Variable], captured: Sequence[tf.Variable] = ()
) -> tuple[list[keras.Variable], list[VariableSlot]]:
    """Keras variables sharing storage with ``loaded``'s variables, in TF Hub's order.

    The order is ``loaded.trainable_variables`` then the rest of ``loaded.variables``, as
    ``tensorflow_hub.KerasLayer`` has it, then any other variable the called signatures
    capture. Which variables train: those ``loaded.trainable_variables`` lists, or, for
    a signature-only model that lists none (``tf.saved_model.save`` with only
    ``signatures=``), each captured variable's own ``trainable`` flag.

    Args:
        loaded: the loaded object (or any object with ``variables`` / ``trainable_variables``).
        created: the variables in the order the loader created them (empty when unknown).
        captured: the variables the signature functions the layer calls capture.

    Returns:
        The Keras variables and their slots, in the same order.
    """
    listed = getattr(loaded, "trainable_variables", None)
    if listed is None:
        listed = [v for v in captured if v.trainable]
    trainable = _unique(listed)
    trainable_ids = {id(v) for v in trainable}
    everything = [*_unique(getattr(loaded, "variables", ()) or ()), *captured]
    others = [v for v in _unique(everything) if id(v) not in trainable_ids]
    position = {id(v): i for i, v in enumerate(created)}
    keras_vars: list[keras.Variable] = []
    slots: list[VariableSlot] = []
    for variable in [*trainable, *others]:
        index = position.get(id(variable), -1)
        slot = describe(variable.name, variable, index, trainable=id(variable) in trainable_ids)
        keras_vars.append(_keras_variable(slot, initializer=variable))
        slots.append(slot)
    return keras_vars, slots


def describe(name: str, variable: Any, index: int, *, trainable: bool) -> VariableSlot:
    """The :class:`VariableSlot` of a variable (``index``: its creation position).

    ``variable`` is a ``tf.Variable``, or the value of a Keras variable of a ``.keras``
    model on JAX (an array, which has no aggregation: Keras' defaults then).
    """
    return VariableSlot(
        index=index,
        name=name,
        shape=tuple(tf.TensorShape(variable.shape).as_list()),
        dtype=tf.as_dtype(variable.dtype).name,
        trainable=trainable,
        aggregation=_keras_spelling(getattr(variable, "aggregation", "none")),
        synchronization=_keras_spelling(getattr(variable, "synchronization", "auto")),
    )


def placeholders(slots: Sequence[VariableSlot]) -> list[keras.Variable]:
    """Keras variables shaped like ``slots``, to be filled by :func:`creating_into`."""
    return [_keras_variable(slot, initializer=_zeros) for slot in slots]


def _zeros(shape: Sequence[int], dtype: Any = None) -> tf.Tensor:
    dtype = tf.as_dtype(dtype)
    return tf.fill(shape, "") if dtype == tf.string else tf.zeros(shape, dtype)


def _replica_aggregation(dtype: Any, aggregation: Any) -> Any:
    """How a variable the model updates in its own call is kept in sync across replicas.

    A SavedModel saved outside any strategy has ``aggregation=NONE``, so under
    ``MirroredStrategy`` each replica would update its own copy of BatchNorm statistics
    (or a Dropout seed) and the copies would drift apart. Float statistics are averaged
    instead, as tf.keras's own BatchNorm does, and other state follows the first replica.
    """
    if aggregation not in (None, tf.VariableAggregation.NONE, "none"):
        return aggregation
    dtype = tf.as_dtype(dtype) if dtype is not None else tf.float32
    if dtype.is_floating:
        return tf.VariableAggregation.MEAN
    return tf.VariableAggregation.ONLY_FIRST_REPLICA


def _keras_variable(slot: VariableSlot, *, initializer: Any) -> keras.Variable:
    aggregation = slot.aggregation
    if tf.distribute.has_strategy():
        aggregation = _keras_spelling(_replica_aggregation(slot.dtype, aggregation))
    return keras.Variable(
        initializer=initializer,
        shape=slot.shape,
        dtype=slot.dtype,
        trainable=slot.trainable,
        autocast=False,
        aggregation=aggregation,
        synchronization=slot.synchronization,
        name=keras_name(slot.name),
    )


def _unique(variables: Any) -> list[tf.Variable]:
    seen: set[int] = set()
    unique = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique


def select_trainable(
    paths: Sequence[str],
    patterns: Sequence[str] | None,
    last_n: int | None,
) -> list[bool]:
    """Which variables train under partial fine-tuning.

    A variable is selected when its path matches one of ``patterns`` (``re.search``), or
    when it belongs to one of the last ``last_n`` layers. A layer is a run of variables
    whose paths share everything but the last component (``block_16_bn/gamma`` and
    ``block_16_bn/beta`` are the layer ``block_16_bn``). With neither, all are selected.

    Args:
        paths: the candidate variables' paths, in the model's order.
        patterns: regular expressions, or ``None``.
        last_n: how many of the last layers train, or ``None``.

    Returns:
        One flag per path.

    Raises:
        ValueError: a pattern that is not a valid regular expression, or a negative ``last_n``.

    Example:
        >>> select_trainable(["a/kernel", "b/kernel", "b/bias"], None, 1)
        [False, True, True]
        >>> select_trainable(["a/kernel", "b/kernel", "b/bias"], [r"bias$"], None)
        [False, False, True]
    """
    if patterns is None and last_n is None:
        return [True] * len(paths)
    selected = [False] * len(paths)
    if patterns:
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as error:
                raise ValueError(
                    "Expected trainable_patterns to hold regular expressions. Received: "
                    f"{pattern!r}, which does not compile ({error}). Fix or escape it."
                ) from None
        selected = [any(p.search(path) for p in compiled) for path in paths]
    if last_n is not None:
        if isinstance(last_n, bool) or not isinstance(last_n, int) or last_n < 0:
            raise ValueError(
                "Expected trainable_last_n to be an integer >= 0. "
                f"Received: trainable_last_n={last_n!r}."
            )
        groups = [path.rsplit("/", 1)[0] for path in paths]
        layer_order = list(dict.fromkeys(groups))
        last = set(layer_order[len(layer_order) - last_n :]) if last_n else set()
        selected = [s or g in last for s, g in zip(selected, groups, strict=True)]
    return selected


def sync_replicas(variables: Sequence[keras.Variable], outputs: Any) -> Any:
    """Average the model's own state updates across replicas, after ``outputs`` are computed.

    A SavedModel function updates BatchNorm statistics with assign ops inside the function,
    which write each replica's copy directly. Under ``MirroredStrategy`` the copies would
    drift apart; assigning each variable its local value again goes through its
    aggregation (mean for floats), which makes every replica hold the same value. Outside
    a multi-replica step this returns ``outputs`` untouched.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1 or not variables:
        return outputs
    flat = [t for t in tf.nest.flatten(outputs) if tf.is_tensor(t)]
    with tf.control_dependencies(flat):
        updates = [v.value.assign(v.value.read_value()) for v in variables]
    with tf.control_dependencies(updates):
        return tf.nest.map_structure(lambda t: tf.identity(t) if tf.is_tensor(t) else t, outputs)
