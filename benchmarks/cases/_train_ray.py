"""Case ``train_ray``: feature extraction with ``engine="ray"`` against ``engine="local"`` (#19).

Both contenders run :func:`hublayer.train.fit_classifier` in feature-extraction mode on
the same JPEG shards and the MobileNetV2-sized factory model at 224 px, with few epochs,
so the backbone pass over every image dominates. Each run starts from an empty embedding
cache (emptied before it, untimed), so each computes every embedding:

- **local**: one process; tf.data feeds the backbone.
- **ray, 2 actors**: the backbone pass on 2 Ray Data actors (each loads the model; the
  actors' start is inside the timed run, as in a user's run); the head trains once and
  each split is scored once in the driver. Ray itself is started once, untimed.

From the Ray run's own record (``metrics["cluster"]``: records, start-up and embedding
seconds per actor, the pass's wall time) the case computes what the same run would take
on 16 cores and on 4 nodes of 16 cores, under stated assumptions (see
:func:`_projection`); nothing of it is typed by hand.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._data import factory_model, jpeg_records, local_ray
from benchmarks._harness import CaseResult, CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._suites import Suite

__all__ = ["CASES"]

LOCAL = "fit_classifier, engine=local"
RAY = "fit_classifier, engine=ray, 2 actors"
ACTORS, EPOCHS, BATCH, SIZE, SHARDS, VAL_SHARDS, SEED = 2, 3, 32, 224, 10, 2, 0


def _fit(
    model: str, train: Sequence[str], validation: Sequence[str], cache: str, **engine: Any
) -> Callable[[], Any]:
    train_api = require("hublayer.train", "fit_classifier")
    if engine.get("engine") == "ray":
        local_ray()

    def run() -> dict[str, Any]:
        result = train_api.fit_classifier(
            model,
            list(train),
            validation=list(validation),
            epochs=EPOCHS,
            patience=EPOCHS,
            batch_size=BATCH,
            seed=SEED,
            embedding_cache=cache,
            progress=False,
            **engine,
        )
        metrics = result.metrics
        out: dict[str, Any] = {
            "val_accuracy": round(float(metrics["splits"]["validation"]["accuracy"]), 4),
            "embeddings_s": round(float(metrics["timings"]["embeddings_s"]), 2),
            "total_s": round(float(metrics["timings"]["total_s"]), 2),
        }
        cluster = metrics.get("cluster")
        if cluster:
            per_actor = cluster["records_per_actor"]
            names = sorted(per_actor, key=lambda n: -per_actor[n])
            for i, name in enumerate(names, 1):
                out[f"actor {i} records"] = per_actor[name]
                out[f"actor {i} start-up s"] = cluster["startup_s"][name]
                out[f"actor {i} embedding s"] = round(cluster["compute_s"][name], 2)
            out["pass_s"] = cluster["wall_s"]
            out["threads per actor"] = cluster["threads_per_actor"]
        return out

    return run


def _projection(result: CaseResult, batches: int, records: int) -> str | None:
    """What the Ray run would take on 16 cores and on 4 nodes of 16 cores.

    Measured, from the last Ray run: each actor's start-up (from the start of the pass
    until it was ready) and its embedding seconds; the cores it had (the run's cores
    over its actors); the pass's wall time; the run's total. Assumed: the work of a
    record costs the same core-seconds with more cores (an actor of 2 threads on 2 cores
    as fast per core as the measured ones), actors start in parallel in the measured
    start-up, and the driver's own work (loading, labels, the head, scoring, export:
    the run's total less the pass) stays as measured.
    """
    ray, local = result.contender(RAY), result.contender(LOCAL)
    if ray is None or ray.stats is None or local is None or local.stats is None:
        return None
    extras = ray.extras
    actors = [i for i in range(1, ACTORS + 1) if f"actor {i} records" in extras]
    if not actors:
        return None
    cores_per_actor = (result.cpus or 2) / ACTORS
    startup = max(float(extras[f"actor {i} start-up s"]) for i in actors)
    embedding = [float(extras[f"actor {i} embedding s"]) for i in actors]
    core_s = sum(embedding) * cores_per_actor / records  # core-seconds per record
    per_batch = sum(embedding) / batches
    driver = float(extras["total_s"]) - float(extras["pass_s"])
    split = ", ".join(f"actor {i}: {int(extras[f'actor {i} records']):,} records" for i in actors)
    lines = [
        f"Per-actor split of the last Ray run: {split} (of {records:,}); start-up up to "
        f"{startup:.1f} s (process, TensorFlow and model load, from the start of the pass); "
        f"{per_batch * 1000:.0f} ms per batch of {BATCH} per actor "
        f"({cores_per_actor:g} core(s) each), {core_s * 1000:.1f} core-ms per record; the "
        f"pass took {float(extras['pass_s']):.1f} s of the run's {float(extras['total_s']):.1f} s.",
    ]
    local_s = local.stats.median
    for label, cores in (("16 cores (8 actors)", 16), ("4 nodes of 16 cores (32 actors)", 64)):
        projected = driver + startup + records * core_s / cores
        lines.append(
            f"Projected from these figures, {label}: {projected:.1f} s per run "
            f"({local_s / projected:.1f}x the local run measured here on {result.cpus} "
            "cores); assumed: the same core-seconds per record, actors starting in parallel "
            "in the measured start-up, the driver's part unchanged."
        )
    return " ".join(lines)


def train_ray(suite: Suite) -> Plan:
    require("ray")
    require("hublayer.train", "fit_classifier")
    count = suite.pick(6_400, 20_000)
    data = jpeg_records(count, shards=SHARDS, seed=7)
    model = str(factory_model(image_size=SIZE))
    fit_files, val_files = data.files[:-VAL_SHARDS], data.files[-VAL_SHARDS:]
    root = tempfile.mkdtemp(prefix="hublayer-bench-train-ray-")
    caches = {LOCAL: f"{root}/local", RAY: f"{root}/ray"}
    n_train = count * (SHARDS - VAL_SHARDS) // SHARDS
    batches = -(-n_train // BATCH) + -(-(count - n_train) // BATCH)

    def emptied(name: str) -> Callable[[], None]:
        return lambda: shutil.rmtree(caches[name], ignore_errors=True)

    def cleanup() -> None:
        shutil.rmtree(root, ignore_errors=True)
        ray = require("ray")
        if ray.is_initialized():
            ray.shutdown()

    return Plan(
        [
            InProcess(
                LOCAL,
                lambda: _fit(model, fit_files, val_files, caches[LOCAL]),
                before=emptied(LOCAL),
                role="peer",
                items=count,
            ),
            InProcess(
                RAY,
                lambda: _fit(
                    model, fit_files, val_files, caches[RAY], engine="ray", num_workers=ACTORS
                ),
                before=emptied(RAY),
                items=count,
            ),
        ],
        [Ratio(RAY, LOCAL, "speed", ">= 0.8")],
        warmup=0,  # a run is minutes of work; the first includes compiling, for both
        reps=3,
        min_reps=2,
        budget_s=suite.pick(420.0, 1800.0),
        notes=[
            f"{n_train:,} training and {count - n_train:,} validation JPEGs (256 px, 10 "
            f"classes, {SHARDS} shards) resized to {SIZE} px for the MobileNetV2-sized "
            f"factory model; feature extraction, {EPOCHS} epochs, batch {BATCH}, seed {SEED}; "
            "the embedding cache is emptied before each run (untimed), so every run embeds "
            "every image. The Ray run's actors start inside it; Ray itself is started once "
            "before the runs, using every core.",
            lambda r: _projection(r, batches, count),
        ],
        cleanup=[cleanup],
    )


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        "train_ray",
        "Feature extraction on Ray (2 actors) against engine=local, MobileNetV2-sized, 224 px",
        train_ray,
        timeout_s=(2400.0, 3600.0),
        issue="#19",
    ),
)
