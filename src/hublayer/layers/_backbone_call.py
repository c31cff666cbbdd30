"""``BackboneCall``: a backbone called in a fixed mode, whatever the outer model is told.

The trap it closes: in a Keras 3 functional model, ``backbone(inputs, training=False)``
is *not* sticky. ``Model.fit`` passes ``training=True`` to every layer whose ``call``
takes a ``training`` argument, so BatchNorm statistics drift during fine-tuning.
``BackboneCall`` decides the mode itself.

``train.fit_classifier`` wraps every backbone in it, so each ``model.keras`` it writes
names ``hublayer>BackboneCall``. The class lives here, in ``hublayer.layers``, because
that is what ``import hublayer`` registers with Keras (``_keras_registration``): a
fresh process loads such a file after ``import hublayer, keras`` alone. Files written
when the class lived in ``hublayer.train._backbone`` load too, since Keras looks a
class up by its registered name first.

Example:
    >>> import keras
    >>> from hublayer.layers import BackboneCall
    >>> inputs = keras.Input((4,))
    >>> features = BackboneCall(keras.layers.Dense(3))(inputs)
    >>> tuple(features.shape)
    (None, 3)
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["BackboneCall"]


@keras.saving.register_keras_serializable(package="hublayer", name="BackboneCall")
class BackboneCall(keras.Layer):
    """Calls a backbone in a fixed mode, whatever ``training`` the outer model gets.

    Args:
        backbone: the layer to call.
        train_batch_norm: if True, ``training=True`` reaches the backbone while the
            outer model trains (BatchNorm statistics update, dropout is on). If False
            (the default) the backbone always runs in inference mode, which is what
            fine-tuning a pretrained model wants.

    Call arguments:
        inputs: the backbone's input.
        training: the outer model's training flag.

    Example:
        >>> import keras
        >>> call = BackboneCall(keras.layers.Dropout(0.5))
        >>> ones = keras.ops.ones((2, 4))
        >>> bool(keras.ops.all(call(ones, training=True) == ones))  # dropout stays off
        True
    """

    def __init__(
        self, backbone: keras.Layer, *, train_batch_norm: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.train_batch_norm = bool(train_batch_norm)

    def build(self, input_shape: Any) -> None:
        if not self.backbone.built:
            self.backbone.build(input_shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        mode = bool(self.train_batch_norm and training is True)
        return self.backbone(inputs, training=mode)

    def compute_output_spec(self, inputs: Any, training: bool | None = None) -> Any:
        """The backbone's output spec. A ``.keras`` reload asks for it before the
        archive's model files arrive; tracing :meth:`call` would load the originals."""
        return self.backbone.compute_output_spec(inputs)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        config["train_batch_norm"] = self.train_batch_norm
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BackboneCall:
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        return cls(backbone, **config)
