"""An ImageNet-style classifier with 1001 output logits, used as it is.

Adapted from "What is tfhub.KerasLayer?" (example 3). Mistakes in the original, fixed
here:

- The dummy image came from ``tf.random.normal``, values around [-3, 3]; TF Hub image
  models take float32 pixels in [0, 1] (``layer.input_specs`` says so), so it is drawn
  from ``tf.random.uniform``.
- The layer does not "configure itself" to an input size: the model accepts the size it
  was exported with, and a wrong size is refused with an error showing the expected spec.

Run: ``python examples/image_classifier.py``
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import tensorflow as tf

import hublayer as hub
from hublayer import testing


def main(workdir: str | Path | None = None) -> dict[str, Any]:
    """Classify one random image; return the logits and the layer."""
    workdir = Path(workdir or tempfile.mkdtemp())
    # Original: "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5"
    model_url = testing.image_classifier(
        workdir / "mobilenet_v2_100_224_classification", image_size=224, num_classes=1001
    )
    image_layer = hub.KerasLayer(model_url)  # trainable=False by default
    image = tf.random.uniform(shape=(1, 224, 224, 3), seed=0)  # pixels in [0, 1]
    output_logits = image_layer(image)  # shape (1, 1001)
    return {
        "logits": output_logits,
        "layer": image_layer,
        "top_class": int(tf.argmax(output_logits, axis=-1)[0]),
    }


if __name__ == "__main__":
    result = main()
    print("logits:", result["logits"].shape, "top class:", result["top_class"])
