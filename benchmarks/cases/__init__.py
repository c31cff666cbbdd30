"""Every case, in the order of the issue and of the table.

1. ``forward``, 2. ``finetune``, 3. ``load`` (``_layers.py``), ``finetune_step``
(``_step.py``, #22); 4. ``resolve``,
``download``, ``construct`` (``_cache.py``), ``pin``, ``pin_download`` (``_pin.py``);
5. ``images``, ``tabular``, ``framing``,
``inspect`` (``_records.py``), ``source`` (``_source.py``, #23); 6. ``train``
(``_train.py``); 7. ``jax`` (``_jax.py``);
8. ``demo`` (``_demo.py``); 9. ``scale`` (``_scale.py``); 10. ``scan_detect``,
``scan_cost`` (``_scan.py``); 11. ``train_ray`` (``_train_ray.py``),
``train_ray_finetune`` (``_train_ray_finetune.py``), ``embed_ray`` (``_embed_ray.py``);
12. ``text_embed`` (``_text.py``).

Importing this package is light: TensorFlow is imported by a case when it runs.
"""

from __future__ import annotations

from benchmarks._harness import CaseSpec
from benchmarks.cases import (
    _cache,
    _demo,
    _embed_ray,
    _jax,
    _layers,
    _pin,
    _records,
    _scale,
    _scan,
    _source,
    _step,
    _text,
    _train,
    _train_ray,
    _train_ray_finetune,
)

__all__ = ["CASES"]

CASES: tuple[CaseSpec, ...] = (
    *_layers.CASES,
    *_step.CASES,
    *_cache.CASES,
    *_pin.CASES,
    *_records.CASES,
    *_source.CASES,
    *_train.CASES,
    *_jax.CASES,
    *_demo.CASES,
    *_scale.CASES,
    *_train_ray.CASES,
    *_train_ray_finetune.CASES,
    *_embed_ray.CASES,
    *_scan.CASES,
    *_text.CASES,
)
