"""Case ``embed_ray``: ``hublayer.embed`` on Ray (2 workers) against ``engine="local"`` (#19).

Both contenders run :func:`hublayer.embed` on the same JPEG shards as ``train_ray``
(6,400 images at 256 px in the quick suite) through the MobileNetV2-sized factory
model at 224 px, so the backbone pass over every image dominates (unlike ``scale``,
whose 64 px run is dominated by Ray's start-up). Each run writes every output shard
again (the output folder is emptied before it, untimed) and loads the model inside it:

- **local**: one process; tf.data feeds the model.
- **ray, 2 workers**: Ray Data read tasks, 2 model actors (each loads the model; their
  start is inside the timed run, as in a user's run), the driver writes the shards.
  Ray itself is started once, untimed.

Neither :class:`hublayer.embed.EmbedResult` nor the output folder's
``.hublayer-embed.json`` (rows per shard) records which worker embedded what, so the
case measures it: during the Ray runs it swaps the engine's actor class for a subclass
that appends, per batch, its rows and seconds to a file of its own (one short line per
batch of 64), and wraps the driver's ``ShardOutput.write`` to time the writes. From
those figures the case computes what the same run would take on 16 cores and on 4
nodes of 16 cores (see :func:`_projection`); nothing of it is typed by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._data import factory_model, jpeg_records, local_ray
from benchmarks._harness import CaseResult, CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._suites import Suite

__all__ = ["CASES"]

LOCAL = "embed, engine=local"
RAY = "embed, engine=ray, 2 workers"
WORKERS, BATCH, SIZE, SHARDS, SEED = 2, 64, 224, 10, 7


def _timed_embedder(base: type, log_dir: str) -> type:
    """``base`` (the Ray engine's actor class), logging each batch to ``log_dir``.

    Defined in a function, the subclass travels to the actors by value; its base by
    reference (hublayer is installed there).
    """

    class Timed(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            began = time.perf_counter()
            super().__init__(*args, **kwargs)
            self._actor = f"{socket.gethostname()}:{os.getpid()}"
            self._log = os.path.join(log_dir, f"{os.getpid()}-{id(self)}.jsonl")
            self._line(ready=time.time(), init_s=time.perf_counter() - began)

        def _line(self, **figures: Any) -> None:
            with open(self._log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"actor": self._actor, **figures}) + "\n")

        def __call__(self, batch: Any) -> Any:
            tick = time.perf_counter()
            rows = len(next(iter(batch.values())))
            out = super().__call__(batch)
            self._line(rows=rows, seconds=time.perf_counter() - tick, end=time.time())
            return out

    return Timed


@contextmanager
def _instrumented(log_dir: Path, writes: list[float]) -> Iterator[None]:
    """The Ray engine with per-batch actor logs, and the driver's writes timed."""
    engine = require("hublayer.embed._ray_engine", "_Embedder")
    output = require("hublayer.embed._output", "ShardOutput")
    original_actor, original_write = engine._Embedder, output.ShardOutput.write

    def write(self: Any, *args: Any, **kwargs: Any) -> None:
        tick = time.perf_counter()
        original_write(self, *args, **kwargs)
        writes.append(time.perf_counter() - tick)

    engine._Embedder = _timed_embedder(original_actor, str(log_dir))
    output.ShardOutput.write = write
    try:
        yield
    finally:
        engine._Embedder = original_actor
        output.ShardOutput.write = original_write


def _split(log_dir: Path, began: float) -> dict[str, Any]:
    """Per-worker figures of one Ray run, from the actors' logs (largest share first)."""
    actors: dict[str, dict[str, float]] = {}
    for path in log_dir.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            actor = actors.setdefault(entry["actor"], {"records": 0, "batches": 0, "seconds": 0.0})
            if "ready" in entry:
                actor["startup"] = entry["ready"] - began
                actor["init"] = entry["init_s"]
            else:
                actor["records"] += entry["rows"]
                actor["batches"] += 1
                actor["seconds"] += entry["seconds"]
                actor["end"] = max(actor.get("end", 0.0), entry["end"] - began)
    out: dict[str, Any] = {}
    for i, figures in enumerate(sorted(actors.values(), key=lambda a: -a["records"]), 1):
        out[f"worker {i} records"] = int(figures["records"])
        out[f"worker {i} batches"] = int(figures["batches"])
        out[f"worker {i} start-up s"] = round(figures.get("startup", float("nan")), 2)
        out[f"worker {i} model load s"] = round(figures.get("init", float("nan")), 2)
        out[f"worker {i} embedding s"] = round(figures["seconds"], 2)
    ends = [a["end"] for a in actors.values() if "end" in a]
    if ends:
        out["last batch at s"] = round(max(ends), 2)
    return out


def _manifest_rows(out: Path) -> int:
    """Rows of every shard, as the output folder's ``.hublayer-embed.json`` records them."""
    record = json.loads((out / ".hublayer-embed.json").read_text(encoding="utf-8"))
    return sum(int(entry["rows"]) for entry in record["shards"].values())


def _embed(model: str, files: tuple[str, ...], out: Path, logs: Path | None) -> Callable[[], Any]:
    embed = require("hublayer.embed", "embed").embed
    options: dict[str, Any] = {"engine": "local"}
    if logs is not None:
        local_ray()
        options = {"engine": "ray", "num_workers": WORKERS}

    def run() -> dict[str, Any]:
        writes: list[float] = []
        began = time.time()
        if logs is None:
            result = embed(model, list(files), out, keep=["label"], batch_size=BATCH, **options)
        else:
            with _instrumented(logs, writes):
                result = embed(model, list(files), out, keep=["label"], batch_size=BATCH, **options)
        figures: dict[str, Any] = {
            "rows": result.rows,
            "workers": result.workers,
            "seconds": round(result.seconds, 2),
            "manifest rows": _manifest_rows(out),
        }
        if logs is not None:
            figures.update(_split(logs, began))
            figures["driver write s"] = round(sum(writes), 2)
        return figures

    return run


def _projection(result: CaseResult, records: int) -> str | None:
    """The per-worker split of the last Ray run, and what the run would take on 16 cores
    and on 4 nodes of 16 cores.

    Measured, in the last Ray run: each worker's records, batches and embedding seconds
    (in the actor, from the batch in to the embeddings out); its start-up (from the start
    of the ``embed`` call, which also inspects the shards and loads the model in the
    driver, until the actor had loaded the model); the time of the last batch; the
    run's wall time; the driver's seconds writing rows. Assumed: a record costs the same
    core-seconds with more cores (an actor per 2 cores, as fast per core as here, where
    each had the run's cores over its workers), actors start in parallel in the measured
    start-up, the driver's writes overlap the embedding (so the pass takes the longer of
    the two), and the time after the last batch (the last shards' commits) stays as
    measured. Ray Data's read tasks, which share the cores here, are not counted apart.
    """
    ray, local = result.contender(RAY), result.contender(LOCAL)
    if ray is None or ray.stats is None or local is None or local.stats is None:
        return None
    extras = ray.extras
    workers = [i for i in range(1, WORKERS + 1) if f"worker {i} records" in extras]
    if not workers or "last batch at s" not in extras:
        return None
    cores_per_worker = (result.cpus or 2) / WORKERS
    startup = max(float(extras[f"worker {i} start-up s"]) for i in workers)
    embedding = sum(float(extras[f"worker {i} embedding s"]) for i in workers)
    batches = sum(int(extras[f"worker {i} batches"]) for i in workers)
    core_s = embedding * cores_per_worker / records  # core-seconds per record
    writes = float(extras["driver write s"])
    tail = float(extras["seconds"]) - float(extras["last batch at s"])
    split = ", ".join(
        f"worker {i}: {int(extras[f'worker {i} records']):,} records in "
        f"{int(extras[f'worker {i} batches'])} batches, ready after "
        f"{float(extras[f'worker {i} start-up s']):.1f} s (model load in the actor "
        f"{float(extras[f'worker {i} model load s']):.1f} s)"
        for i in workers
    )
    lines = [
        f"Per-worker split of the last Ray run: {split}; of {records:,} records "
        f"(.hublayer-embed.json: {int(extras['manifest rows']):,} rows written). "
        f"{embedding / batches * 1000:.0f} ms per batch of {BATCH} per worker "
        f"({cores_per_worker:g} core(s) each), {core_s * 1000:.1f} core-ms per record; "
        f"the last batch came {float(extras['last batch at s']):.1f} s into the run of "
        f"{float(extras['seconds']):.1f} s; the driver spent {writes:.1f} s writing rows.",
    ]
    local_s = local.stats.median
    for label, cores in (("16 cores (8 workers)", 16), ("4 nodes of 16 cores (32 workers)", 64)):
        projected = startup + max(records * core_s / cores, writes) + tail
        lines.append(
            f"Projected from these figures, {label}: {projected:.1f} s per run "
            f"({local_s / projected:.1f}x the local run measured here on {result.cpus} "
            "cores); assumed: the same core-seconds per record, actors starting in "
            "parallel in the measured start-up, the driver's writes overlapping the "
            "embedding, the time after the last batch unchanged."
        )
    return " ".join(lines)


def embed_ray(suite: Suite) -> Plan:
    require("ray")
    require("hublayer.embed", "embed")
    count = suite.pick(6_400, 20_000)
    data = jpeg_records(count, shards=SHARDS, seed=SEED)  # train_ray's shards
    model = str(factory_model(image_size=SIZE))
    root = Path(tempfile.mkdtemp(prefix="hublayer-bench-embed-ray-"))
    outs = {LOCAL: root / "local", RAY: root / "ray"}
    logs = root / "actor-logs"

    def emptied(*folders: Path) -> Callable[[], None]:
        def clear() -> None:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)

        return clear

    def cleanup() -> None:
        shutil.rmtree(root, ignore_errors=True)
        ray = require("ray")
        if ray.is_initialized():
            ray.shutdown()

    return Plan(
        [
            InProcess(
                LOCAL,
                lambda: _embed(model, data.files, outs[LOCAL], None),
                before=emptied(outs[LOCAL]),
                role="peer",
                items=count,
            ),
            InProcess(
                RAY,
                lambda: _embed(model, data.files, outs[RAY], logs),
                before=emptied(outs[RAY], logs),
                items=count,
            ),
        ],
        [Ratio(RAY, LOCAL, "speed", ">= 0.8"), Ratio(RAY, LOCAL, "time", "")],
        warmup=0,  # a run is a minute or more, and loads the model afresh, for both
        reps=3,
        min_reps=2,
        budget_s=suite.pick(420.0, 1800.0),
        notes=[
            f"{count:,} JPEGs (256 px, 10 classes, {SHARDS} shards: train_ray's) embedded "
            f"at {SIZE} px by the MobileNetV2-sized factory model, batch {BATCH}, label "
            "kept, one TFRecord output per shard; the output folder is emptied before "
            "each run (untimed), and each run loads the model. The Ray run's actors start "
            "inside it; Ray itself is started once before the runs, using every core. "
            "The per-worker figures come from the case's own timing of the actors (a "
            "line per batch to a file), since neither EmbedResult nor "
            ".hublayer-embed.json records them.",
            lambda r: _projection(r, count),
        ],
        cleanup=[cleanup],
    )


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        "embed_ray",
        "hublayer.embed on Ray (2 workers) against engine=local, MobileNetV2-sized, 224 px",
        embed_ray,
        timeout_s=(2400.0, 3600.0),
        issue="#19",
    ),
)
