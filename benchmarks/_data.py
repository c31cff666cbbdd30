"""Synthetic inputs, generated deterministically and cached under ``benchmarks/.data/``.

Each data set is a folder named after what it holds and a hash of its parameters. It is
built in a temp folder unique to the process and renamed into place, with a
``.complete`` file that records the parameters, so an interrupted build is never used.
Records are written with TensorFlow's own writer, so no contender gets data it wrote.

Layout::

    benchmarks/.data/
    ├── jpeg-<hash>/           images-00000-of-00008.tfrecord ...  (image: JPEG, label: int64)
    ├── tabular-<hash>/        tabular-00000-of-00008.tfrecord ... (x: float[10], n, label)
    ├── blobs-<hash>/          blobs-00000-of-00008.tfrecord ...   (payload: bytes, label)
    ├── archive-<hash>/        model.tar.gz (a SavedModel with a large asset)
    └── model-<hash>/          saved_model/ (the factory model) and model.tar.gz

Example:
    >>> d = tabular_records(1_000, shards=2)
    >>> len(d.files), d.count
    (2, 1000)
"""

from __future__ import annotations

import colorsys
import functools
import gzip
import hashlib
import inspect
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import require

__all__ = [
    "DATA_DIR",
    "Records",
    "archive",
    "blob_records",
    "cached",
    "factory_model",
    "image_batch",
    "jpeg_records",
    "local_ray",
    "tabular_records",
    "tar_gz",
]

DATA_DIR = Path(__file__).resolve().parent / ".data"


@dataclass(frozen=True)
class Records:
    """A set of TFRecord shards.

    Args:
        files: the shard paths, sorted.
        count: records in all shards.
        nbytes: bytes on disk in all shards.
    """

    files: tuple[str, ...]
    count: int
    nbytes: int


def cached(kind: str, params: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """The folder for ``kind`` with ``params``, built by ``build(folder)`` when missing.

    Args:
        kind: a short name that starts the folder name.
        params: everything the content depends on (JSON-able).
        build: fills the (empty, temporary) folder it is given.

    Returns:
        The completed folder.
    """
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    final = DATA_DIR / f"{kind}-{key}"
    if (final / ".complete").exists():
        return final
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = DATA_DIR / f".{kind}-{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    print(f"[data] generating {kind} {params} (once; cached in {final})", flush=True)
    build(tmp)
    (tmp / ".complete").write_text(json.dumps(params, sort_keys=True) + "\n")
    try:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _records_in(folder: Path, count: int) -> Records:
    files = tuple(sorted(str(p) for p in folder.glob("*.tfrecord")))
    return Records(files, count, sum(os.path.getsize(f) for f in files))


def _write_shards(
    folder: Path, stem: str, count: int, shards: int, make: Callable[[int], bytes]
) -> None:
    import tensorflow as tf

    per = -(-count // shards)
    for shard in range(shards):
        path = folder / f"{stem}-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for i in range(shard * per, min(count, (shard + 1) * per)):
                writer.write(make(i))


@functools.cache
def _texture(size: int, seed: int) -> np.ndarray:
    """Fine noise shared by all images (each takes a window at its own offset)."""
    rng = np.random.default_rng([seed, 2**31])
    return rng.normal(0, 12, size=(2 * size, 2 * size, 3)).round().astype(np.int16)


def _jpeg(i: int, size: int, classes: int, seed: int) -> tuple[bytes, int]:
    """A photo-like JPEG whose colours depend on its label, so a classifier can learn it."""
    from PIL import Image

    rng = np.random.default_rng([seed, i])
    label = i % classes
    base = 40 + 175 * np.array(colorsys.hsv_to_rgb(label / classes, 0.8, 0.9))
    base = base + rng.normal(0, 15)  # brightness varies from image to image
    coarse = rng.normal(base, 25, size=(8, 8, 3)).clip(0, 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    dy, dx = rng.integers(0, size, size=2)
    texture = _texture(size, seed)[dy : dy + size, dx : dx + size]
    pixels = (img.astype(np.int16) + texture).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue(), label


def jpeg_records(
    count: int, *, size: int = 256, classes: int = 10, shards: int = 8, seed: int = 0
) -> Records:
    """``count`` JPEG examples at ``size`` px: features ``image`` (bytes) and ``label`` (int64)."""
    params = {"count": count, "size": size, "classes": classes, "shards": shards, "seed": seed}
    params["generator"] = 2  # bump when _jpeg changes, so cached sets are rebuilt

    def build(folder: Path) -> None:
        import tensorflow as tf

        def make(i: int) -> bytes:
            data, label = _jpeg(i, size, classes, seed)
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            return bytes(example.SerializeToString())

        _write_shards(folder, "images", count, shards, make)

    return _records_in(cached("jpeg", params, build), count)


def tabular_records(count: int, *, shards: int = 8, seed: int = 1) -> Records:
    """``count`` small examples: ``x`` (10 floats), ``n`` (int64) and ``label`` (int64)."""
    params = {"count": count, "shards": shards, "seed": seed}

    def build(folder: Path) -> None:
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        xs = rng.normal(size=(count, 10)).astype(np.float32)
        ns = rng.integers(0, 1000, size=count)
        labels = (xs[:, 0] + xs[:, 1] > 0).astype(np.int64)
        example = tf.train.Example()
        feature = example.features.feature

        def make(i: int) -> bytes:
            feature["x"].float_list.value[:] = xs[i].tolist()
            feature["n"].int64_list.value[:] = [int(ns[i])]
            feature["label"].int64_list.value[:] = [int(labels[i])]
            return bytes(example.SerializeToString())

        _write_shards(folder, "tabular", count, shards, make)

    return _records_in(cached("tabular", params, build), count)


def blob_records(total_mb: int, *, record_kb: int = 64, shards: int = 8, seed: int = 2) -> Records:
    """About ``total_mb`` MiB of examples with a ``payload`` (bytes), ``label`` and ``x``."""
    count = total_mb * 1024 // record_kb
    params = {"total_mb": total_mb, "record_kb": record_kb, "shards": shards, "seed": seed}

    def build(folder: Path) -> None:
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        pool = rng.bytes(record_kb * 1024 + 4096)

        def make(i: int) -> bytes:
            start = i % 4096
            feature = {
                "payload": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[pool[start : start + record_kb * 1024]])
                ),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 10])),
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i)] * 4)),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            return bytes(example.SerializeToString())

        _write_shards(folder, "blobs", count, shards, make)

    return _records_in(cached("blobs", params, build), count)


def tar_gz(source: Path, target: Path) -> None:
    """Pack ``source``'s contents into ``target``, byte-for-byte reproducibly (mtime 0)."""
    with (
        open(target, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(source.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(source)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def archive(size_mb: int, *, seed: int = 3) -> Path:
    """A ``.tar.gz`` of about ``size_mb`` MB: a small real SavedModel plus float32 assets.

    Float weights compress little, like a real model's variables. Returns the archive path.
    """
    params = {"size_mb": size_mb, "seed": seed, "layout": "savedmodel+assets"}

    def build(folder: Path) -> None:
        import tensorflow as tf

        model_dir = folder / "model"
        module = tf.Module()
        module.w = tf.Variable(tf.ones([4]))
        module.__call__ = tf.function(
            lambda x: x * module.w, input_signature=[tf.TensorSpec([None, 4], tf.float32)]
        )
        tf.saved_model.save(module, str(model_dir))
        assets = model_dir / "assets"
        assets.mkdir(exist_ok=True)
        rng = np.random.default_rng(seed)
        remaining = int(size_mb * 1e6 * 1.08)  # float32 noise gzips to about 93 %
        part = 0
        while remaining > 0:
            n = min(remaining, 32 * 2**20) // 4
            rng.standard_normal(n, dtype=np.float32).tofile(assets / f"weights-{part:03d}.bin")
            remaining -= n * 4
            part += 1
        tar_gz(model_dir, folder / "model.tar.gz")
        shutil.rmtree(model_dir)

    return cached("archive", params, build) / "model.tar.gz"


def factory_model(
    architecture: str = "mobilenet_v2", image_size: int = 224, **options: Any
) -> Path:
    """The factory model from ``hublayer.testing.image_feature_vector``, plus its archive.

    Returns the SavedModel folder; ``<folder>.tar.gz`` sits next to it.

    Raises:
        NotYet: when ``hublayer.testing.image_feature_vector`` is not built yet.
    """
    testing = require("hublayer.testing", "image_feature_vector")
    source = inspect.getsourcefile(testing.image_feature_vector) or ""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:10] if source else ""
    options = {"architecture": architecture, "image_size": image_size, **options}
    params = {"factory_source": digest, **options}

    def build(folder: Path) -> None:
        testing.image_feature_vector(str(folder / "saved_model"), **options)
        tar_gz(folder / "saved_model", folder / "saved_model.tar.gz")

    return cached("model", params, build) / "saved_model"


def image_batch(batch: int = 32, size: int = 224, *, seed: int = 4) -> np.ndarray:
    """A deterministic batch of float32 images in [0, 1], shape ``(batch, size, size, 3)``."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, size, size, 3), dtype=np.float32)


def local_ray(*modules: str) -> Any:
    """Ray on this machine with every core, started once per process (cases call it before
    their timed runs), with Ray Data's progress bars off; ``modules`` (``"ray.train"``...)
    must import too, else :class:`~benchmarks._harness.NotYet`."""
    ray = require("ray")
    for module in modules:
        require(module)
    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        require("ray.data").DataContext.get_current().enable_progress_bars = False
    return ray
