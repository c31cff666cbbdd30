"""Case ``scale``: Ray Data reads and batch embedding on Ray, against their peers (#14).

Three comparisons in one run, on a local Ray started by the case (all cores):

- **Read.** ``records.ray_dataset`` (hublayer's reader in Ray read tasks, every CRC
  checked) against ``ray.data.read_tfrecords`` (Python per record, no CRC check) on the
  same tabular shards, both consumed with ``iter_batches``.
- **Embed on Ray.** ``hublayer.embed(engine="ray")`` with 1 and 2 model actors against
  ``engine="local"`` (tf.data) on the same JPEG shards and model. Each run writes every
  output shard again (the output folder is emptied before it, untimed), and includes
  the actors' start and model load, as a user's run does.
- **Embed against the plain loop** a user writes: ``TFRecordDataset`` -> parse, decode,
  resize, /255 -> ``KerasLayer`` -> ``tf.train.Example`` -> ``TFRecordWriter``. Every
  embed contender loads the model inside its timed run.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._data import factory_model, jpeg_records, local_ray, tabular_records
from benchmarks._harness import CaseResult, CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._suites import Suite

__all__ = ["CASES"]

OURS_READ = "read: records.ray_dataset (CRC checked)"
RAY_READ = "read: ray.data.read_tfrecords (no CRC check)"
LOCAL = "embed: engine=local (tf.data)"
RAY_1 = "embed: engine=ray, 1 worker"
RAY_2 = "embed: engine=ray, 2 workers"
PLAIN = "embed: plain loop (tf.data -> KerasLayer -> TFRecordWriter)"
BATCH = 64


def _consume(dataset: Any) -> dict[str, Any]:
    rows = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        rows += len(batch["label"])
    return {"rows": rows}


def _read_ours(files: tuple[str, ...]) -> Callable[[], Any]:
    records = require("hublayer.records", "ray_dataset")
    local_ray()
    schema = records.inspect(list(files))
    return lambda: _consume(records.ray_dataset(list(files), schema))


def _read_ray(files: tuple[str, ...]) -> Callable[[], Any]:
    ray = local_ray()
    return lambda: _consume(ray.data.read_tfrecords(list(files)))


def _embed(model: str, files: tuple[str, ...], out: Path, **options: Any) -> Callable[[], Any]:
    embed = require("hublayer.embed", "embed").embed
    if options.get("engine") == "ray":
        local_ray()

    def run() -> dict[str, Any]:
        result = embed(model, list(files), out, keep=["label"], batch_size=BATCH, **options)
        return {"rows": result.rows, "seconds": result.seconds}

    return run


def _plain_loop(model: str, files: tuple[str, ...], out: Path, size: int) -> Callable[[], Any]:
    """What a user writes without hublayer.embed (one output per input shard, too)."""
    import numpy as np
    import tensorflow as tf

    layers = require("hublayer.layers", "KerasLayer")
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(serialized: Any) -> Any:
        example = tf.io.parse_single_example(serialized, spec)
        image = tf.io.decode_jpeg(example["image"], channels=3)
        image = tf.image.resize(tf.cast(image, tf.float32), [size, size]) / 255.0
        return image, example["label"]

    def run() -> dict[str, Any]:
        layer = layers.KerasLayer(model)  # loaded in the run, as hublayer.embed does
        rows = 0
        for name in files:
            data = tf.data.TFRecordDataset(name).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            data = data.batch(BATCH).prefetch(tf.data.AUTOTUNE)
            with tf.io.TFRecordWriter(str(out / Path(name).name)) as writer:
                for images, labels in data:
                    embeddings = np.asarray(layer(images))
                    for vector, label in zip(embeddings, labels.numpy(), strict=True):
                        feature = {
                            "label": tf.train.Feature(
                                int64_list=tf.train.Int64List(value=[int(label)])
                            ),
                            "embedding": tf.train.Feature(
                                float_list=tf.train.FloatList(value=vector.ravel())
                            ),
                        }
                        example = tf.train.Example(features=tf.train.Features(feature=feature))
                        writer.write(example.SerializeToString())
                    rows += len(embeddings)
        return {"rows": rows}

    return run


def _empty(folder: Path) -> Callable[[], None]:
    def clear() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    return clear


def _overhead(result: CaseResult, images: int) -> str | None:
    local, two = result.contender(LOCAL), result.contender(RAY_2)
    if local is None or two is None or local.stats is None or two.stats is None:
        return None
    batches = math.ceil(images / BATCH)
    extra = two.stats.median - local.stats.median
    one = result.contender(RAY_1)
    scaling = ""
    if one is not None and one.stats is not None:
        scaling = f"; 1 worker -> 2 workers: {one.stats.median / two.stats.median:.2f}x"
    return (
        f"Ray overhead against local, 2 workers: {extra:+.2f} s per run, "
        f"{1000 * extra / batches:+.1f} ms per batch of {BATCH} ({batches} batches, "
        f"actor start and model load included){scaling}."
    )


def scale_case(suite: Suite) -> Plan:
    require("ray")
    require("hublayer.records", "ray_dataset")
    require("hublayer.embed", "embed")
    tabular = tabular_records(suite.pick(20_000, 100_000))
    size = suite.pick(64, 160)
    images = jpeg_records(suite.pick(512, 2048), size=suite.pick(96, 192), shards=4)
    model = str(factory_model(image_size=size))
    scratch = Path(tempfile.mkdtemp(prefix="hublayer-bench-scale-"))
    outs = {name: scratch / str(i) for i, name in enumerate((LOCAL, RAY_1, RAY_2, PLAIN))}
    for folder in outs.values():
        folder.mkdir()

    def cleanup() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        ray = require("ray")
        if ray.is_initialized():
            ray.shutdown()

    def embed_contender(name: str, role: str = "ours", **options: Any) -> InProcess:
        return InProcess(
            name,
            lambda: _embed(model, images.files, outs[name], **options),
            before=_empty(outs[name]),
            role=role,
            items=images.count,
        )

    return Plan(
        [
            InProcess(OURS_READ, lambda: _read_ours(tabular.files), items=tabular.count),
            InProcess(RAY_READ, lambda: _read_ray(tabular.files), role="peer", items=tabular.count),
            embed_contender(LOCAL, role="peer", engine="local"),
            embed_contender(RAY_1, engine="ray", num_workers=1),
            embed_contender(RAY_2, engine="ray", num_workers=2),
            InProcess(
                PLAIN,
                lambda: _plain_loop(model, images.files, outs[PLAIN], size),
                before=_empty(outs[PLAIN]),
                role="peer",
                items=images.count,
            ),
        ],
        [
            Ratio(OURS_READ, RAY_READ, "speed", ">= 20"),
            Ratio(RAY_2, LOCAL, "speed", ">= 0.7"),
            Ratio(RAY_1, LOCAL, "speed", ""),
            Ratio(LOCAL, PLAIN, "speed", ">= 1.0"),
        ],
        warmup=1,
        reps=suite.pick(3, 5),
        budget_s=suite.pick(240.0, 1500.0),
        notes=[
            f"Read: {tabular.count:,} tabular examples in {len(tabular.files)} shards, "
            "every column decoded, consumed with iter_batches on a local Ray using every "
            "core. Embed: "
            f"{images.count:,} JPEG examples in {len(images.files)} shards, the "
            f"MobileNetV2-sized factory model at {size} px, batch {BATCH}, label kept; the "
            "output folder is emptied before each run (untimed).",
            lambda r: _overhead(r, images.count),
            "Expected on 16 cores (not measured here): reads scale with read tasks, one "
            "per shard or byte range; embedding scales with actors until the model's own "
            "threads saturate the cores, so 8 actors of 2 threads should beat one "
            "tf.data process, whose single model call leaves cores idle between batches.",
        ],
        cleanup=[cleanup],
    )


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        "scale",
        "Ray: ray_dataset against read_tfrecords; embed on Ray (1, 2 workers) against "
        "local and the plain loop",
        scale_case,
        timeout_s=(900.0, 3600.0),
        issue="#14",
    ),
)
