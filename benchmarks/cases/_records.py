"""Case 5, records: image and tabular pipelines, raw framing, and inspect (``_inspect.py``).

Every image pipeline yields the same batches: float32 images in [0, 1] at 224 px (decoded
from 256 px JPEGs and resized) and int64 labels, 32 a batch. Every tabular pipeline yields
``x`` (float32, 10), ``n`` and ``label`` (int64), 1024 a batch. A run is one pass over all
the shards, consumed in Python (the tabular case loops passes until a run lasts 2 s).
Each pipeline is built once, untimed; runs iterate it. CPU µs per example is the
harness's column (process CPU time of a run over its examples). Every figure a note
quotes (cores, output differences, record counts) is computed in this run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks._data import Records, jpeg_records, tabular_records
from benchmarks._env import cpu_count
from benchmarks._harness import (
    CaseResult,
    CaseSpec,
    Contender,
    InProcess,
    Plan,
    Ratio,
    require,
)
from benchmarks._subprocess import Worker
from benchmarks._suites import Suite
from benchmarks.cases import _inspect

__all__ = ["CASES"]

IMAGE_SIZE = 224
IMAGE_BATCH = 32
TABULAR_BATCH = 1024
CROP = "records.dataset, center crop"
PLAIN = "plain tf.data (fastest peer)"
_DIFF_BATCHES = 4  # batches compared between records.dataset and the usual style


def _count_batches(ds: Iterable[Any], key: Callable[[Any], Any]) -> dict[str, Any]:
    """Consume ``ds``; report the examples seen (the same for every contender)."""
    n = 0
    for batch in ds:
        n += int(key(batch).shape[0])
    return {"examples": n}


def _cores(result: CaseResult, *names: str) -> str | None:
    """ "name used X cores" for each contender measured, from the cores column."""
    parts = []
    for name in names:
        c = result.contender(name)
        if c is not None and c.stats is not None and c.stats.cores is not None:
            parts.append(f"{name} {c.stats.cores:.2f}")
    return (
        "Cores used (CPU time over wall time, median): " + ", ".join(parts) + "." if parts else None
    )


# ---------------------------------------------------------------- images


def _image_features() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }


def _decode_resize(data: Any) -> Any:
    import tensorflow as tf

    image = tf.io.decode_jpeg(data, channels=3)
    image = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE])
    return image / 255.0


def _usual_images(records: Records) -> Callable[[], Any]:
    """The style of most tutorials: map(parse_single_example) without parallelism, batch."""
    import tensorflow as tf

    features = _image_features()

    def parse(serialized: Any) -> Any:
        ex = tf.io.parse_single_example(serialized, features)
        return _decode_resize(ex["image"]), ex["label"]

    ds = tf.data.TFRecordDataset(list(records.files)).map(parse).batch(IMAGE_BATCH)
    return lambda: _count_batches(ds, lambda b: b[1])


def _best_images(records: Records) -> Callable[[], Any]:
    """The tf.data guide, hand-tuned: parallel decode, nondeterministic order, prefetch."""
    import tensorflow as tf

    features = _image_features()

    def parse(serialized: Any) -> Any:
        ex = tf.io.parse_single_example(serialized, features)
        return _decode_resize(ex["image"]), ex["label"]

    ds = (
        tf.data.TFRecordDataset(list(records.files), buffer_size=8 << 20)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .batch(IMAGE_BATCH)
        .prefetch(tf.data.AUTOTUNE)
    )
    return lambda: _count_batches(ds, lambda b: b[1])


def _ours_images(records: Records, crop: str = "none") -> Callable[[], Any]:
    records_api = require("hublayer.records", "dataset")
    image = {"feature": "image", "size": IMAGE_SIZE, "channels": 3, "crop": crop}
    ds = records_api.dataset(
        list(records.files),
        batch_size=IMAGE_BATCH,
        label="label",
        image=image,
        shuffle=False,
        deterministic=False,
    )
    extras: dict[str, Any] = {}
    if crop == "none":
        diff, compared = _difference(records, records_api, image)
        extras["max abs difference"], extras["images compared"] = diff, compared
    return lambda: {**_count_batches(ds, lambda b: b[1]), **extras}


def _difference(records: Records, records_api: Any, image: dict[str, Any]) -> tuple[float, int]:
    """Max abs difference between our batches and the usual style's, in file order,
    and the number of images compared."""
    import numpy as np
    import tensorflow as tf

    files = list(records.files)
    ours = records_api.dataset(
        files, batch_size=IMAGE_BATCH, label="label", image=image, shuffle=False, deterministic=True
    )
    features = _image_features()

    def parse(serialized: Any) -> Any:
        ex = tf.io.parse_single_example(serialized, features)
        return _decode_resize(ex["image"]), ex["label"]

    usual = tf.data.TFRecordDataset(files).map(parse).batch(IMAGE_BATCH)
    worst, compared = 0.0, 0
    for (a, la), (b, lb) in zip(ours.take(_DIFF_BATCHES), usual.take(_DIFF_BATCHES), strict=True):
        if not np.array_equal(la.numpy(), lb.numpy()):
            raise AssertionError("records.dataset and the usual style disagree on labels")
        a = a["image"] if isinstance(a, dict) else a  # features, without for_model
        worst = max(worst, float(np.max(np.abs(a.numpy() - b.numpy()))))
        compared += int(la.shape[0])
    return worst, compared


def _difference_note(result: CaseResult) -> str | None:
    ours = result.contender("records.dataset")
    if ours is None or "max abs difference" not in ours.extras:
        return None
    diff = ours.extras["max abs difference"]
    return (
        f"records.dataset against the usual style, the first {ours.extras['images compared']} "
        f"images in file order, computed in this run: max abs difference {diff:.1g}, "
        "labels equal."
    )


def images(suite: Suite) -> Plan:
    data = jpeg_records(suite.images)
    kw: dict[str, Any] = {"items": data.count, "nbytes": data.nbytes}
    contenders: list[Contender] = [
        InProcess("records.dataset", lambda: _ours_images(data), **kw),
        InProcess("usual style", lambda: _usual_images(data), role="peer", **kw),
        InProcess("tf.data best practice", lambda: _best_images(data), role="peer", **kw),
        InProcess(CROP, lambda: _ours_images(data, "center"), **kw),
    ]
    return Plan(
        contenders,
        [
            Ratio("records.dataset", "usual style", "speed", ">= 2"),
            Ratio("records.dataset", "tf.data best practice", "speed", ">= 1.0"),
            Ratio(CROP, "usual style", "speed"),
        ],
        warmup=1,
        reps=suite.pick(5, 7),
        min_reps=5,  # 5 pairs at least, for an interval that means something
        budget_s=suite.pick(90.0, math.inf),
        notes=[
            f"{data.count:,} JPEG examples at 256 px (issue: 20,000"
            + ("; the quick suite uses fewer)" if data.count < 20_000 else ")")
            + f", {data.nbytes / 1e6:.0f} MB in {len(data.files)} shards; decoded and resized "
            f"to {IMAGE_SIZE}, batches of {IMAGE_BATCH}, one pass per run.",
            f"{cpu_count()} CPU cores available to every contender; the cores column is what each "
            "used: a speed-up at equal cores comes from less CPU per image.",
            "usual style: TFRecordDataset → map(parse_single_example + decode_jpeg + resize to "
            "224 + /255) → batch. Best practice: the same map with num_parallel_calls=AUTOTUNE, "
            "deterministic=False, then batch and prefetch(AUTOTUNE). records.dataset: "
            "shuffle=False, deterministic=False, image resized to 224 (crop='none'), "
            "label='label'. These three yield the same float32 [32, 224, 224, 3] batches in "
            "[0, 1]. The center-crop variant decodes only the central 87.5 % of each JPEG "
            "(decode_and_crop_jpeg, no resize from 256 to 224): less work for the same output "
            "shape, so it is shown for scale, without a target.",
            _difference_note,
            lambda r: _cores(r, "records.dataset", "usual style", "tf.data best practice"),
        ],
    )


# ---------------------------------------------------------------- tabular


def _tabular_features() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "x": tf.io.FixedLenFeature([10], tf.float32),
        "n": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }


def _best_tabular(records: Records) -> Callable[[], Any]:
    """Batch first, then one vectorized parse_example per batch, in parallel, prefetched."""
    import tensorflow as tf

    features = _tabular_features()
    ds = (
        tf.data.TFRecordDataset(list(records.files), buffer_size=8 << 20)
        .batch(TABULAR_BATCH)
        .map(
            lambda b: tf.io.parse_example(b, features),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    return lambda: _count_batches(ds, lambda b: b["label"])


def _plain_tabular(records: Records) -> Callable[[], Any]:
    """The fastest pipeline measured: batch, then parse_example, nothing else."""
    import tensorflow as tf

    features = _tabular_features()
    ds = (
        tf.data.TFRecordDataset(list(records.files))
        .batch(TABULAR_BATCH)
        .map(lambda b: tf.io.parse_example(b, features))
    )
    return lambda: _count_batches(ds, lambda b: b["label"])


def _ours_tabular(records: Records) -> Callable[[], Any]:
    records_api = require("hublayer.records", "dataset")
    ds = records_api.dataset(
        list(records.files),
        batch_size=TABULAR_BATCH,
        label="label",
        shuffle=False,
        deterministic=False,
    )
    return lambda: _count_batches(ds, lambda b: b[1])


def tabular(suite: Suite) -> Plan:
    data = tabular_records(suite.tabular)
    kw: dict[str, Any] = {"items": data.count, "nbytes": data.nbytes, "min_seconds": 2.0}
    return Plan(
        [
            InProcess("records.dataset", lambda: _ours_tabular(data), **kw),
            InProcess(PLAIN, lambda: _plain_tabular(data), role="peer", **kw),
            InProcess("tf.data best practice", lambda: _best_tabular(data), role="peer", **kw),
        ],
        [
            Ratio("records.dataset", PLAIN, "speed", ">= 1.0"),
            Ratio("records.dataset", "tf.data best practice", "speed", ">= 1.0"),
        ],
        warmup=1,
        reps=suite.pick(7, 9),
        notes=[
            f"{data.count:,} examples (issue: 1,000,000"
            + ("; the quick suite uses fewer)" if data.count < 1_000_000 else ")")
            + f": x float[10], n int64, label int64; {data.nbytes / 1e6:.0f} MB in "
            f"{len(data.files)} shards; batches of {TABULAR_BATCH}. A run loops whole passes "
            "until it has lasted 2 s and reports the time per pass ('passes' in the notes "
            "column).",
            f"{PLAIN}: TFRecordDataset(files) → batch → map(parse_example), no options: the "
            "fastest pipeline a user could write that we know of. Best practice: the same with "
            "buffer_size=8 MB, map(AUTOTUNE, deterministic=False) and prefetch(AUTOTUNE). "
            "records.dataset: shuffle=False, deterministic=False, label='label' (it also "
            "splits the label off the features, which the peers do not).",
            lambda r: _cores(r, "records.dataset", PLAIN, "tf.data best practice"),
        ],
    )


# ---------------------------------------------------------------- raw framing


def framing(suite: Suite) -> Plan:
    data = tabular_records(suite.tabular)
    kw: dict[str, Any] = {"items": data.count, "nbytes": data.nbytes}
    files = {"files": list(data.files)}
    ours, package = "hublayer reader + CRC", "tfrecord package (no CRC)"
    return Plan(
        [
            Worker(ours, "benchmarks.cases._readers:count_hublayer", files, **kw),
            Worker(
                package,
                "benchmarks.cases._readers:count_tfrecord_package",
                files,
                role="peer",
                **kw,
            ),
            InProcess(
                "tf.data.TFRecordDataset", lambda: _inspect.count_tf_data(data), role="peer", **kw
            ),
        ],
        [
            Ratio(ours, package, "speed"),
            Ratio(ours, "tf.data.TFRecordDataset", "speed"),
        ],
        warmup=1,
        reps=suite.pick(5, 7),
        notes=[
            f"Count every record of the tabular shards ({data.count:,} records, "
            f"{data.nbytes / 1e6:.0f} MB, {len(data.files)} files). The two readers without TF "
            "run in their own process, which never imports TensorFlow (the tfrecord package's "
            "example.proto clashes with TF's in one process); tf.data batches the raw records "
            "by 8192 and adds up the batch sizes (it checks CRCs).",
        ],
    )


CASES = (
    CaseSpec("images", "Image pipeline: JPEG records to 224 px batches", images, issue="#5"),
    CaseSpec("tabular", "Tabular pipeline: small examples into batches", tabular, issue="#5"),
    CaseSpec("framing", "Raw framing: count records without TensorFlow", framing, issue="#5"),
    CaseSpec("inspect", "records inspect on 1 GB of shards", _inspect.inspect, issue="#5"),
)
