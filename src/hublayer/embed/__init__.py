"""Batch embedding: run a pretrained model over a dataset and write the embeddings.

``hublayer.embed(model, inputs, out_dir)`` (this package is callable) writes one output
shard per input shard, each atomically, and skips shards that a previous run finished.
It runs on this machine (``engine="local"``, hublayer's reader and parser) or on Ray
(``engine="ray"``: Ray Data reads with :func:`hublayer.records.ray_dataset`, a pool of
actors each loads the model once). The CLI is ``hublayer embed``.

Example:
    >>> import hublayer
    >>> result = hublayer.embed("models/encoder", "data/*.tfrecord", "out",  # doctest: +SKIP
    ...                         keep=["label"], engine="ray", num_workers=2)
    >>> result.rows_per_second  # doctest: +SKIP
    812.4
"""

from __future__ import annotations

import sys
import types
from typing import Any

from hublayer.embed._api import EmbedResult, embed

__all__ = ["EmbedResult", "embed"]


class _CallableModule(types.ModuleType):
    """Lets ``hublayer.embed(...)`` call :func:`embed` while ``hublayer.embed`` is a package."""

    def __call__(self, *args: Any, **kwargs: Any) -> EmbedResult:
        return embed(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
