"""Test helpers, public so users can test their own code against them.

- Model factory (``_models.py``): small SavedModels built the way TF Hub publishes them,
  each in about a second, plus a ``.keras`` file and tfhub.dev-style archives.
- ``signature_model`` (``_signature_models.py``): signature-only SavedModels as Keras 3
  ``export()``, ``tf.saved_model.save(signatures=...)``, ``serve``/``serve_train`` modules
  and onnx2tf (constants, a batch of exactly 1) write them.
- ``image_records`` (``_records.py``): labelled PNG/JPEG TFRecords a small model can learn.
- ``unsafe_model`` (``_unsafe_models.py``): SavedModels that write, read, list or print to
  files from each place an op can hide, to test a scanner against.
- ``scan_corpus`` (``_scan_corpus.py``): a held-out scanner corpus, harmful models from
  published op lists (TensorAbuse, modelscan, ``saved_model_cli``) in many hiding places
  and tricks, each provable harmful under plain TF (``CorpusModel.prove``, ``prove_all``),
  and every clean model we can build.
- ``FileServer`` (``_server.py``): a real HTTP server on 127.0.0.1 that serves files and
  can be told to misbehave (errors, dropped connections, truncated bodies, slow bytes,
  redirects, Range on or off), and counts requests.

Names load lazily: importing ``hublayer.testing`` does not import TensorFlow.
"""

from __future__ import annotations

from hublayer._lazy import lazy_names

__all__: list[str] = [
    "CorpusModel",
    "FileServer",
    "HarmProof",
    "UNSAFE_FAMILIES",
    "UNSAFE_PLACES",
    "archive",
    "bert_encoder",
    "image_classifier",
    "image_feature_vector",
    "image_records",
    "keras_file",
    "plant_secret",
    "prove_all",
    "scan_corpus",
    "signature_model",
    "text_embedding",
    "tf1_saved_model",
    "unsafe_model",
]

# name -> private module that defines it; each module's owner adds its names here.
_LAZY: dict[str, str] = {
    "FileServer": "._server",
    "archive": "._archive",
    "bert_encoder": "._text_models",
    "image_classifier": "._models",
    "image_feature_vector": "._models",
    "image_records": "._records",
    "keras_file": "._models",
    "signature_model": "._signature_models",
    "text_embedding": "._text_models",
    "tf1_saved_model": "._tf1_models",
    "UNSAFE_FAMILIES": "._unsafe_models",
    "UNSAFE_PLACES": "._unsafe_models",
    "unsafe_model": "._unsafe_models",
    "CorpusModel": "._scan_corpus_model",
    "HarmProof": "._scan_corpus_model",
    "plant_secret": "._scan_corpus_secret",
    "prove_all": "._scan_corpus",
    "scan_corpus": "._scan_corpus",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
