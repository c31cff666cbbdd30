"""Case ``train_ray_finetune``: fine-tuning with ``engine="ray"`` against ``engine="local"`` (#19).

Both contenders run :func:`hublayer.train.fit_classifier` with ``mode="fine_tune"`` on
the same JPEG shards (:func:`benchmarks._data.jpeg_records`, 256 px, 10 classes) and the
MobileNetV2-sized factory model (2.3M parameters) at a small image size, so that one run
takes a minute or two on 2 cores:

- quick suite: 768 JPEGs in 6 shards, 640 to train and 128 to validate, at 96 px;
  full suite: 1,536 in 6 shards (1,280 and 256) at 128 px;
- 1 head epoch, then 2 fine-tuning epochs of the whole backbone; batch 32, seed 0,
  the default head (dropout 0.2), ``rescore=False`` (the train split is not scored
  again after fine-tuning).

Each run starts from an empty embedding cache and an empty output folder (both emptied
before it, untimed), so each embeds every image for the head phase, trains, and writes
the same outputs; neither resumes from the other's checkpoints.

- **local**: one process.
- **ray, 2 workers**: Ray Train starts 2 workers under MultiWorkerMirroredStrategy; each
  reads every global batch and computes half of it, gradients are all-reduced (see
  ``hublayer.train._ray_finetune``). The workers' start is inside the timed run, as in
  a user's run; Ray itself is started once, untimed, using every core.

The figure is the speed of the Ray run over the local one. The issue sets no target for
fine-tuning; ``>= 0.5`` (the Ray run no slower than twice the local one on the same
cores) is a goal this case chose. The notes give the per-worker split of the examples
(``metrics["distributed"]["examples_per_worker"]``) and the validation accuracy of both.
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

LOCAL = "fit_classifier fine_tune, engine=local"
RAY = "fit_classifier fine_tune, engine=ray, 2 workers"
WORKERS, HEAD_EPOCHS, FT_EPOCHS, BATCH, SHARDS, VAL_SHARDS, SEED = 2, 1, 2, 32, 6, 1, 0
PHASES = ("head", "fine_tune")


def _fit(
    model: str,
    train: Sequence[str],
    validation: Sequence[str],
    cache: str,
    out_dir: str,
    **engine: Any,
) -> Callable[[], Any]:
    train_api = require("hublayer.train", "fit_classifier")
    if engine.get("engine") == "ray":
        local_ray("ray.train.tensorflow")

    def run() -> dict[str, Any]:
        result = train_api.fit_classifier(
            model,
            list(train),
            validation=list(validation),
            mode="fine_tune",
            epochs=HEAD_EPOCHS,
            fine_tune_epochs=FT_EPOCHS,
            patience=HEAD_EPOCHS + FT_EPOCHS,
            batch_size=BATCH,
            seed=SEED,
            embedding_cache=cache,
            out_dir=out_dir,
            rescore=False,
            progress=False,
            **engine,
        )
        metrics = result.metrics
        timings = metrics["timings"]
        out: dict[str, Any] = {
            "val_accuracy": round(float(metrics["splits"]["validation"]["accuracy"]), 4),
            "embeddings_s": round(float(timings.get("embeddings_s", 0.0)), 2),
            "head_s": round(float(timings.get("head_s", 0.0)), 2),
            "fine_tune_s": round(float(timings.get("fine_tune_s", 0.0)), 2),
            "total_s": round(float(timings["total_s"]), 2),
            "workers": int(metrics.get("workers", 1)),
        }
        shares = (metrics.get("distributed") or {}).get("examples_per_worker") or {}
        for phase in PHASES:
            for rank, examples in enumerate(shares.get(phase, ())):
                out[f"worker {rank} {phase} examples"] = int(examples)
        return out

    return run


def _split(result: CaseResult, n_train: int) -> str | None:
    """The per-worker split of the examples of the last Ray run, from its metrics."""
    ray = result.contender(RAY)
    if ray is None or ray.stats is None:
        return None
    extras = ray.extras
    parts = []
    for phase in PHASES:
        shares = [
            int(extras[f"worker {rank} {phase} examples"])
            for rank in range(WORKERS)
            if f"worker {rank} {phase} examples" in extras
        ]
        if shares:
            each = " / ".join(f"{v:,}" for v in shares)
            parts.append(f"{phase}: {each} (of {sum(shares):,})")
    if not parts:
        return "The Ray run's metrics have no per-worker split (metrics['distributed'])."
    epochs = {"head": HEAD_EPOCHS, "fine_tune": FT_EPOCHS}
    expected = ", ".join(f"{p} {epochs[p] * n_train:,}" for p in PHASES)
    return (
        "Per-worker split of the training examples in the last Ray run (worker 0 / worker 1, "
        f"from metrics['distributed']['examples_per_worker']): {'; '.join(parts)}; "
        f"{n_train:,} training examples an epoch make {expected} in all. "
        f"Phase seconds of that run: head {float(extras['head_s']):.1f}, fine-tune "
        f"{float(extras['fine_tune_s']):.1f}, embeddings {float(extras['embeddings_s']):.1f}, "
        f"of {float(extras['total_s']):.1f} s in fit_classifier (the rest of the timed run: "
        "Ray Train's start and its workers' TensorFlow and model load)."
    )


def _accuracy(result: CaseResult) -> str | None:
    """The validation accuracy of every run of both contenders."""
    parts = []
    for name, label in ((LOCAL, "local"), (RAY, "ray, 2 workers")):
        contender = result.contender(name)
        if contender is None:
            continue
        values = [s.extras["val_accuracy"] for s in contender.samples if "val_accuracy" in s.extras]
        if values:
            parts.append(f"{label} {', '.join(f'{float(v):.3f}' for v in values)}")
    if not parts:
        return None
    return "Validation accuracy, run by run: " + "; ".join(parts) + "."


def train_ray_finetune(suite: Suite) -> Plan:
    require("ray")
    require("ray.train.tensorflow")
    require("hublayer.train", "fit_classifier")
    count = suite.pick(768, 1_536)
    size = suite.pick(96, 128)
    data = jpeg_records(count, shards=SHARDS, seed=7)
    model = str(factory_model(image_size=size))
    fit_files, val_files = data.files[:-VAL_SHARDS], data.files[-VAL_SHARDS:]
    n_train = count * (SHARDS - VAL_SHARDS) // SHARDS
    root = tempfile.mkdtemp(prefix="hublayer-bench-train-ray-ft-")
    folders = {
        LOCAL: (f"{root}/local-cache", f"{root}/local-out"),
        RAY: (f"{root}/ray-cache", f"{root}/ray-out"),
    }

    def emptied(name: str) -> Callable[[], None]:
        def empty() -> None:
            for folder in folders[name]:
                shutil.rmtree(folder, ignore_errors=True)

        return empty

    def cleanup() -> None:
        shutil.rmtree(root, ignore_errors=True)
        ray = require("ray")
        if ray.is_initialized():
            ray.shutdown()

    return Plan(
        [
            InProcess(
                LOCAL,
                lambda: _fit(model, fit_files, val_files, *folders[LOCAL]),
                before=emptied(LOCAL),
                role="peer",
                items=n_train,
            ),
            InProcess(
                RAY,
                lambda: _fit(
                    model, fit_files, val_files, *folders[RAY], engine="ray", num_workers=WORKERS
                ),
                before=emptied(RAY),
                items=n_train,
            ),
        ],
        [Ratio(RAY, LOCAL, "speed", ">= 0.5")],
        warmup=0,  # a run is minutes of work; the first includes tracing, for both
        reps=3,
        min_reps=2,
        budget_s=suite.pick(600.0, 1800.0),
        notes=[
            f"{n_train:,} training and {count - n_train:,} validation JPEGs (256 px, 10 "
            f"classes, {SHARDS} shards) resized to {size} px for the MobileNetV2-sized "
            f"factory model; fine-tune mode: {HEAD_EPOCHS} head epoch, then {FT_EPOCHS} "
            f"epochs of the whole backbone; batch {BATCH}, seed {SEED}, rescore=False. The "
            "embedding cache and the output folder are emptied before each run (untimed). "
            "The Ray run's workers start inside it; Ray itself is started once before the "
            "runs, using every core. The target >= 0.5 is this case's own goal (the issue "
            "sets none for fine-tuning): the Ray run no slower than twice the local one.",
            lambda r: _split(r, n_train),
            _accuracy,
        ],
        cleanup=[cleanup],
    )


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        "train_ray_finetune",
        "Fine-tuning on Ray (2 workers) against engine=local, MobileNetV2-sized, 96 px (full: 128)",
        train_ray_finetune,
        timeout_s=(1800.0, 3600.0),
        issue="#19",
    ),
)
