"""The local recipe of ``fit_classifier``: a pretrained model and TFRecords in, a classifier out.

The order of work, and why:

1. Check the arguments; load the backbone (with ``preprocess=``, the text chain:
   preprocessor then encoder, strings in); read its input spec and feature size.
2. Build every split's pipeline from the data's schema and the model's spec. A mismatch
   (image size, dtype, text, a missing label, images where text is wanted) raises here,
   before anything runs.
3. Feature extraction, and the first phase of fine-tuning, need the frozen backbone's
   outputs: compute them once into the embedding cache (or load them from it). The
   cache keys on the model and, with ``preprocess=``, on the preprocessor's content.
4. Train the head on the features; in ``fine_tune`` mode, then unfreeze and train the
   whole model at a lower learning rate. Both phases stop early on the monitored
   metric, keep the best weights, and checkpoint every epoch so a rerun resumes.
5. Score every split, then write the model, SavedModel, metrics, history, plots and
   report into ``out_dir``.

:func:`run_fit` runs it in this process; ``fit_classifier`` (``_fit``) decides the
engine, and a Ray fine-tuning worker (``_ray_finetune``) calls :func:`run_fit` too.

Example:
    >>> result = run_fit(FitArgs(**arguments))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import keras

from hublayer import config, records
from hublayer._specs import RANGE_ASSUMED, assumed_range, with_range
from hublayer.train._backbone import (
    ModelLike,
    feature_dim,
    fingerprint_model,
    input_spec,
    load_backbone,
)
from hublayer.train._backbone import unfreeze as unfreeze_backbone
from hublayer.train._callbacks import Checkpoints
from hublayer.train._data import (
    Classes,
    Source,
    check_writable,
    naming_bad_images,
)
from hublayer.train._embeddings import Embeddings, embed
from hublayer.train._model import HeadLike, assemble, build_head, describe_head
from hublayer.train._phases import Run, fine_tune, train_head
from hublayer.train._progress import Mode as ProgressMode
from hublayer.train._progress import progress_mode
from hublayer.train._ray_features import cluster_embedding, cluster_metrics
from hublayer.train._report import write_outputs
from hublayer.train._result import MODES, Mode, TrainResult
from hublayer.train._run_engine import run_engine
from hublayer.train._summary import columns, metrics_of, score_splits, settings_of

__all__ = ["FitArgs", "run_fit"]


@dataclass(frozen=True)
class FitArgs:
    """``fit_classifier``'s arguments, less the engine's; see its docstring for each."""

    model: ModelLike
    train: records.Files
    validation: records.Files | None
    test: records.Files | None
    label: str
    mode: Mode
    epochs: int
    batch_size: int
    learning_rate: float
    head: HeadLike
    out_dir: str | os.PathLike[str] | None
    fine_tune_epochs: int | None
    fine_tune_learning_rate: float | None
    unfreeze: int | Literal["all"]
    train_batch_norm: bool
    dropout: float
    monitor: str | None
    patience: int
    seed: int
    num_classes: int | None
    embedding_cache: bool | str | os.PathLike[str]
    resume: bool
    pipeline: Mapping[str, Any] | None
    progress: bool | None
    callbacks: Sequence[keras.callbacks.Callback]
    rescore: bool
    input_range: tuple[float, float] | None
    preprocess: str | os.PathLike[str] | keras.Layer | None = None
    output_key: str | None = None


def _check(
    mode: str,
    epochs: int,
    fine_tune_epochs: int,
    batch_size: int,
    rates: Sequence[float],
    patience: int,
    unfreeze_blocks: int | str,
    dropout: float,
) -> int | None:
    if mode not in MODES:
        raise ValueError(f"Expected mode to be one of {list(MODES)}. Received: mode={mode!r}.")
    for name, value, low in (
        ("epochs", epochs, 1),
        ("fine_tune_epochs", fine_tune_epochs, 0),
        ("batch_size", batch_size, 1),
        ("patience", patience, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(
                f"Expected {name} to be an integer >= {low}. Received: {name}={value!r}."
            )
    for rate in rates:
        if not rate > 0:
            raise ValueError(f"Expected learning rates > 0. Received: learning_rate={rate!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout!r}.")
    if unfreeze_blocks == "all":
        return None
    if isinstance(unfreeze_blocks, int) and not isinstance(unfreeze_blocks, bool):
        return unfreeze_blocks
    raise ValueError(
        "Expected unfreeze to be 'all' or a number of blocks counted from the output. "
        f"Received: unfreeze={unfreeze_blocks!r}."
    )


def _monitor(monitor: str | None, validated: bool) -> str:
    if monitor is None:
        return "val_accuracy" if validated else "loss"
    logged = ["loss", "accuracy"] + (["val_loss", "val_accuracy"] if validated else [])
    if monitor not in logged:
        raise ValueError(
            f"Expected monitor to be one of {logged}. Received: monitor={monitor!r}."
            + ("" if validated else " Pass validation= to monitor validation metrics.")
        )
    return monitor


def run_fit(args: FitArgs) -> TrainResult:
    """Run the recipe in this process (see the module docstring).

    Raises:
        As ``fit_classifier``.
    """
    started = time.perf_counter()
    ft_epochs = args.epochs if args.fine_tune_epochs is None else args.fine_tune_epochs
    ft_rate = (
        args.learning_rate / 10
        if args.fine_tune_learning_rate is None
        else args.fine_tune_learning_rate
    )
    blocks = _check(
        args.mode,
        args.epochs,
        ft_epochs,
        args.batch_size,
        (args.learning_rate, ft_rate),
        args.patience,
        args.unfreeze,
        args.dropout,
    )
    fine_tuning = args.mode == "fine_tune" and ft_epochs > 0
    monitor = _monitor(args.monitor, args.validation is not None)
    if args.out_dir is not None:  # an unwritable output fails now, not after the embeddings
        check_writable(args.out_dir, what="the training output", flag="--out", argument="out_dir=")
    show = progress_mode(args.progress)
    timings: dict[str, float] = {}
    keras.utils.set_random_seed(args.seed)

    backbone = load_backbone(
        args.model,
        trainable=args.mode == "fine_tune",
        preprocess=args.preprocess,
        output_key=args.output_key,
    )
    spec = input_spec(backbone)
    if args.input_range is not None:
        spec = with_range(spec, args.input_range)
    elif spec.value_range is None:
        spec = assumed_range(spec)  # a Keras backbone: TF Hub's convention, as records uses
    dim = feature_dim(backbone, spec)
    options = dict(args.pipeline or {})
    files = tuple(records.expand_files(args.train, role="train"))
    sources = {"train": Source("train", files, spec, args.label, options)}
    if args.validation is not None:
        files = tuple(records.expand_files(args.validation, role="validation"))
        sources["validation"] = Source("validation", files, spec, args.label, options)
    if args.test is not None:
        files = tuple(records.expand_files(args.test, role="test"))
        sources["test"] = Source("test", files, spec, args.label, options)
    for source in sources.values():  # a data/model mismatch raises here, before any work
        source.dataset(batch_size=args.batch_size, shuffle=False)
    model_fingerprint = fingerprint_model(backbone)
    if fine_tuning:  # a backbone that cannot fine-tune fails now, not after phase 1
        unfreeze_backbone(backbone, blocks)
        backbone.trainable = False
    timings["load_s"] = time.perf_counter() - started

    # After fine-tuning, the test split is scored through the tuned backbone: its frozen
    # features would go unused.
    to_embed = {n: s for n, s in sources.items() if not (fine_tuning and n == "test")}
    with naming_bad_images([f for source in to_embed.values() for f in source.files]):
        embedded = _embed_all(
            backbone, to_embed, model_fingerprint, args.embedding_cache, args.batch_size, show
        )
    timings["embeddings_s"] = sum(e.seconds for e in embedded.values())
    raw = {n: embedded[n].labels if n in embedded else s.labels() for n, s in sources.items()}
    others = [v for name, v in raw.items() if name != "train"]
    classes = Classes.from_labels(
        raw["train"], others, args.num_classes, names=sources["train"].label_names
    )
    labels = {name: classes.encode(values, split=name) for name, values in raw.items()}

    head_layer = build_head(args.head, num_classes=len(classes.names), dropout=args.dropout)
    parts = assemble(
        backbone, spec, head=head_layer, dim=dim, train_batch_norm=args.train_batch_norm
    )
    run_id = _fingerprint(
        model_fingerprint,
        *(s.fingerprint() for s in sources.values()),
        args.mode,
        args.batch_size,
        args.learning_rate,
        ft_rate,
        describe_head(args.head),
        args.dropout,
        args.seed,
        args.unfreeze,
        args.train_batch_norm,
        monitor,
        classes.names,
        bool(embedded),
    )
    every_file = [f for source in sources.values() for f in source.files]
    with (
        tempfile.TemporaryDirectory(prefix="hublayer-checkpoints-") as scratch,
        naming_bad_images(every_file),  # a bad image met while training names its record
    ):
        resumable = args.out_dir is not None
        directory = (
            Path(args.out_dir) / "checkpoints" if args.out_dir is not None else Path(scratch)
        )
        store = Checkpoints(directory, run_id, resume=args.resume and resumable)
        run = Run(
            parts,
            sources,
            embedded,
            labels,
            classes,
            store,
            batch_size=args.batch_size,
            seed=args.seed,
            monitor=monitor,
            patience=args.patience,
            progress=show,
            callbacks=tuple(args.callbacks),
        )
        tick = time.perf_counter()
        head_state = train_head(run, epochs=args.epochs, learning_rate=args.learning_rate)
        timings["head_s"] = time.perf_counter() - tick
        trained_variables = 0
        if fine_tuning:
            tick = time.perf_counter()
            _, trained_variables = fine_tune(
                run,
                head_state,
                start=head_state.next_epoch,  # epochs number on from where it stopped
                epochs=ft_epochs,
                learning_rate=ft_rate,
                blocks=blocks,
            )
            timings["fine_tune_s"] = time.perf_counter() - tick

        tick = time.perf_counter()
        scores = score_splits(run, fine_tuned=fine_tuning, rescore_train=args.rescore)
        timings["evaluate_s"] = time.perf_counter() - tick
        history = columns(store.history)
        metrics = metrics_of(
            run, scores, timings, mode=args.mode, trained_variables=trained_variables
        )
        metrics.update(run_engine())  # "engine": "local" or "ray", "workers"
        metrics.update(cluster_metrics())  # feature extraction on Ray: its actors, their pass
        used = None if spec.value_range is None else list(spec.value_range)
        origin = spec.range_source or RANGE_ASSUMED
        metrics["run"]["input_range"] = used and {"range": used, "source": origin}
        paths: dict[str, Path] = {}
        if args.out_dir is not None:
            settings = settings_of(
                args.model,
                run,
                spec,
                options,
                mode=args.mode,
                epochs=args.epochs,
                fine_tune_epochs=ft_epochs,
                learning_rate=args.learning_rate,
                fine_tune_learning_rate=ft_rate,
                unfreeze=args.unfreeze,
                train_batch_norm=args.train_batch_norm,
                preprocess=_described(args.preprocess),
                output_key=args.output_key,
            )
            timings["total_s"] = time.perf_counter() - started
            paths = write_outputs(
                Path(args.out_dir),
                model=parts.classifier,
                history=history,
                metrics=metrics,
                settings=settings,
            )
        store.clear()
    timings["total_s"] = time.perf_counter() - started
    return TrainResult(parts.classifier, history, metrics, paths, classes.names)


def _embed_all(
    backbone: keras.Layer,
    sources: dict[str, Source],
    model_fingerprint: str,
    embedding_cache: bool | str | os.PathLike[str],
    batch_size: int,
    progress: ProgressMode,
) -> dict[str, Embeddings]:
    on_ray = cluster_embedding()  # engine="ray": the missing splits in one pass on actors
    if on_ray is not None:
        return on_ray(backbone, sources, model_fingerprint, embedding_cache, batch_size, progress)
    if embedding_cache is False:
        return {}
    root = (
        config.cache_dir() / "embeddings"
        if embedding_cache is True
        else Path(os.fspath(embedding_cache))
    )
    return {
        name: embed(
            backbone,
            source,
            model_fingerprint=model_fingerprint,
            root=root,
            batch_size=batch_size,
            progress=progress,
        )
        for name, source in sources.items()
    }


def _described(preprocess: Any) -> str | None:
    """The preprocessor as ``config.json`` records it: its handle."""
    if preprocess is None:
        return None
    return str(os.fspath(getattr(preprocess, "handle", preprocess)))


def _fingerprint(*parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()
