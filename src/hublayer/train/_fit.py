"""``fit_classifier``: a pretrained model and TFRecord files in, a trained classifier out.

The order of work, and why:

1. Check the arguments; load the backbone; read its input spec and feature size.
2. Build every split's pipeline from the data's schema and the model's spec. A mismatch
   (image size, dtype, text, a missing label) raises here, before anything runs.
3. Feature extraction, and the first phase of fine-tuning, need the frozen backbone's
   outputs: compute them once into the embedding cache (or load them from it).
4. Train the head on the features; in ``fine_tune`` mode, then unfreeze and train the
   whole model at a lower learning rate. Both phases stop early on the monitored
   metric, keep the best weights, and checkpoint every epoch so a rerun resumes.
5. Score every split, then write the model, SavedModel, metrics, history, plots and
   report into ``out_dir``.

Example:
    >>> result = fit_classifier(  # doctest: +SKIP
    ...     "/models/efficientnet_lite0", "data/train-*.tfrecord",
    ...     validation="data/val-*.tfrecord", epochs=10, out_dir="runs/digits")
    >>> result.metrics["splits"]["validation"]["accuracy"]  # doctest: +SKIP
    0.973
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import keras

from hublayer import config, records
from hublayer._ray import check_engine
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
from hublayer.train._ray import fit_on_ray, run_engine
from hublayer.train._ray_features import cluster_embedding, cluster_metrics, features_on_ray
from hublayer.train._report import write_outputs
from hublayer.train._summary import columns, metrics_of, score_splits, settings_of

__all__ = ["Mode", "TrainResult", "fit_classifier"]

#: The two recipes.
Mode = Literal["feature_extraction", "fine_tune"]
_MODES = ("feature_extraction", "fine_tune")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`fit_classifier` produced.

    Attributes:
        model: the trained Keras model, input to class probabilities.
        history: one list per column of ``history.csv`` (``epoch``, ``phase``, ``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``).
        metrics: the content of ``metrics.json``: per-split scores, the confusion
            matrix, timings and how the run went.
        paths: what was written, by name (``"model"``, ``"saved_model"``, ``"metrics"``,
            ``"history"``, ``"curves"``, ``"confusion"``, ``"report"``, ``"config"``).
        class_names: class index to name.
    """

    model: keras.Model
    history: dict[str, list[Any]]
    metrics: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()


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
    if mode not in _MODES:
        raise ValueError(f"Expected mode to be one of {list(_MODES)}. Received: mode={mode!r}.")
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


def fit_classifier(
    model: ModelLike,
    train: records.Files,
    *,
    validation: records.Files | None = None,
    test: records.Files | None = None,
    label: str = "label",
    mode: Mode = "feature_extraction",
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    head: HeadLike = None,
    out_dir: str | os.PathLike[str] | None = None,
    fine_tune_epochs: int | None = None,
    fine_tune_learning_rate: float | None = None,
    unfreeze: int | Literal["all"] = "all",
    train_batch_norm: bool = False,
    dropout: float = 0.2,
    monitor: str | None = None,
    patience: int = 3,
    seed: int = 0,
    num_classes: int | None = None,
    embedding_cache: bool | str | os.PathLike[str] = True,
    resume: bool = True,
    pipeline: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    rescore: bool = True,
    input_range: tuple[float, float] | None = None,
    engine: str = "local",
    num_workers: int | None = None,
    address: str | None = None,
) -> TrainResult:
    """Train a classifier on a pretrained model from TFRecord files.

    Args:
        model: a model handle or path (loaded as ``hublayer.KerasLayer``), or a built
            Keras layer with one input and a ``[batch, features]`` output.
        train: the training TFRecords: a file, glob, folder, URL (``gs://``...), or a
            list of them, as ``records.expand_files`` reads them.
        validation: validation TFRecords; early stopping watches ``val_accuracy`` then.
        test: held-out TFRecords, scored with the final model (never used to train or
            to stop); their score shows in ``metrics.json`` and ``report.md``.
        label: the feature holding the class (integers ``0..n-1``, or strings).
        mode: ``"feature_extraction"`` (frozen backbone, head only) or ``"fine_tune"``
            (head first, then the backbone at a lower learning rate).
        epochs: head epochs (phase 1 in fine-tune mode).
        batch_size: examples per batch.
        learning_rate: Adam's learning rate for the head.
        head: None for dropout and a softmax layer; hidden sizes such as ``[256]``; a
            ``keras.Layer`` outputting probabilities; or ``f(num_classes) -> keras.Layer``.
        out_dir: where to write the outputs and checkpoints; None writes nothing.
        fine_tune_epochs: phase 2 epochs (default ``epochs``); fine-tune mode only.
        fine_tune_learning_rate: phase 2 learning rate (default ``learning_rate / 10``).
        unfreeze: ``"all"``, or how many of the backbone's last blocks to train.
        train_batch_norm: run the backbone in training mode while fine-tuning
            (BatchNorm statistics update); off by default.
        dropout: dropout rate in the default heads.
        monitor: the value early stopping watches (default ``"val_accuracy"`` with
            validation data, else ``"loss"``).
        patience: epochs without improvement before a phase stops.
        seed: seeds weights, shuffling and dropout; a rerun gives the same model.
        num_classes: the number of classes, when integer labels do not show them all.
        embedding_cache: True caches embeddings under the hublayer cache folder, a path
            caches them there, False runs the backbone on every batch of every epoch.
        resume: continue from the checkpoint in ``out_dir`` after an interruption.
        pipeline: extra keyword arguments for ``hublayer.records.dataset`` (e.g.
            ``image=``, ``text=``), applied to every split.
        progress: True draws progress bars, False shows nothing; None (default) draws
            bars when ``$HUBLAYER_PROGRESS`` or a terminal says so, and otherwise prints a
            line per epoch and per tenth of each embedding pass on stderr, for logs.
        callbacks: more Keras callbacks for every phase.
        rescore: after fine-tuning, score the train split again with the final model
            (another pass of the backbone over it). False reports the train loss and
            accuracy logged at the best epoch instead; validation and test are scored.
        input_range: ``(low, high)`` the model's images take, such as ``(-1, 1)``. By
            default the range the model declares, else TF Hub's convention ``(0, 1)``,
            which is assumed: check the model's documentation. The range used is in
            ``metrics["run"]["input_range"]``.
        engine: ``"local"`` (this process) or ``"ray"``. Feature extraction on Ray
            embeds on Ray Data actors, each record once, into the embedding cache a
            local run uses; the head trains once and each split is scored once, here,
            and the outputs are a local run's (``metrics["cluster"]`` adds the records
            and seconds of each actor). Fine-tuning on Ray runs on Ray Train's
            ``TensorflowTrainer`` under ``MultiWorkerMirroredStrategy``: each global batch
            of ``batch_size`` is split among the workers, gradients summed, so N workers
            reach the weights one worker would; rank 0 writes ``out_dir`` (a folder every
            worker reaches; a temp folder when None) and ``metrics["distributed"]`` counts
            the examples each worker computed. Needs ``pip install "hublayer[ray]"``.
        num_workers: Ray workers. Default for fine-tuning: one per 2 CPUs of the cluster,
            at most one per 4 GiB of its memory, at least 1 (each worker holds the model
            twice, with its gradients and optimizer state). Default for feature
            extraction: one embedding actor per 2 CPUs, at most one per 2 GiB of memory,
            at least 1 (each actor holds the model).
        address: the Ray cluster to join; None starts a local Ray.

    Returns:
        A :class:`TrainResult`.

    Raises:
        SpecMismatchError: the data cannot feed the model (raised before training).
        SchemaError, RecordError: a missing label or input feature; unreadable files.
        TrainingError: no examples, fewer than two classes, a backbone without trainable
            variables in fine-tune mode, or a monitor the logs do not have.
        ValueError: an argument out of range.

    Example:
        >>> result = fit_classifier(  # doctest: +SKIP
        ...     "hub/mobilenet_v2", "train-*.tfrecord", validation="val-*.tfrecord",
        ...     mode="fine_tune", epochs=5, fine_tune_epochs=2, out_dir="run")
        >>> result.paths["report"]  # doctest: +SKIP
        PosixPath('run/report.md')
    """
    if check_engine(engine) == "ray":
        arguments = {
            k: v for k, v in locals().items() if k not in ("engine", "num_workers", "address")
        }
        if mode == "feature_extraction":  # the backbone pass on Ray actors, the rest here
            with features_on_ray(model, num_workers=num_workers, address=address):
                return fit_classifier(**arguments)
        result: TrainResult = fit_on_ray(arguments, num_workers=num_workers, address=address)
        return result
    started = time.perf_counter()
    ft_epochs = epochs if fine_tune_epochs is None else fine_tune_epochs
    ft_rate = learning_rate / 10 if fine_tune_learning_rate is None else fine_tune_learning_rate
    blocks = _check(
        mode, epochs, ft_epochs, batch_size, (learning_rate, ft_rate), patience, unfreeze, dropout
    )
    fine_tuning = mode == "fine_tune" and ft_epochs > 0
    monitor = _monitor(monitor, validation is not None)
    if out_dir is not None:  # an unwritable output fails now, not after the embeddings
        check_writable(out_dir, what="the training output", flag="--out", argument="out_dir=")
    show = progress_mode(progress)
    timings: dict[str, float] = {}
    keras.utils.set_random_seed(seed)

    backbone = load_backbone(model, trainable=mode == "fine_tune")
    spec = input_spec(backbone)
    if input_range is not None:
        spec = with_range(spec, input_range)
    elif spec.value_range is None:
        spec = assumed_range(spec)  # a Keras backbone: TF Hub's convention, as records uses
    dim = feature_dim(backbone, spec)
    options = dict(pipeline or {})
    files = tuple(records.expand_files(train, role="train"))
    sources = {"train": Source("train", files, spec, label, options)}
    if validation is not None:
        files = tuple(records.expand_files(validation, role="validation"))
        sources["validation"] = Source("validation", files, spec, label, options)
    if test is not None:
        files = tuple(records.expand_files(test, role="test"))
        sources["test"] = Source("test", files, spec, label, options)
    for source in sources.values():  # a data/model mismatch raises here, before any work
        source.dataset(batch_size=batch_size, shuffle=False)
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
            backbone, to_embed, model_fingerprint, embedding_cache, batch_size, show
        )
    timings["embeddings_s"] = sum(e.seconds for e in embedded.values())
    raw = {n: embedded[n].labels if n in embedded else s.labels() for n, s in sources.items()}
    others = [v for name, v in raw.items() if name != "train"]
    classes = Classes.from_labels(
        raw["train"], others, num_classes, names=sources["train"].label_names
    )
    labels = {name: classes.encode(values, split=name) for name, values in raw.items()}

    head_layer = build_head(head, num_classes=len(classes.names), dropout=dropout)
    parts = assemble(backbone, spec, head=head_layer, dim=dim, train_batch_norm=train_batch_norm)
    run_id = _fingerprint(
        model_fingerprint,
        *(s.fingerprint() for s in sources.values()),
        mode,
        batch_size,
        learning_rate,
        ft_rate,
        describe_head(head),
        dropout,
        seed,
        unfreeze,
        train_batch_norm,
        monitor,
        classes.names,
        bool(embedded),
    )
    every_file = [f for source in sources.values() for f in source.files]
    with (
        tempfile.TemporaryDirectory(prefix="hublayer-checkpoints-") as scratch,
        naming_bad_images(every_file),  # a bad image met while training names its record
    ):
        resumable = out_dir is not None
        directory = Path(out_dir) / "checkpoints" if out_dir is not None else Path(scratch)
        store = Checkpoints(directory, run_id, resume=resume and resumable)
        run = Run(
            parts,
            sources,
            embedded,
            labels,
            classes,
            store,
            batch_size=batch_size,
            seed=seed,
            monitor=monitor,
            patience=patience,
            progress=show,
            callbacks=tuple(callbacks),
        )
        tick = time.perf_counter()
        head_state = train_head(run, epochs=epochs, learning_rate=learning_rate)
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
        scores = score_splits(run, fine_tuned=fine_tuning, rescore_train=rescore)
        timings["evaluate_s"] = time.perf_counter() - tick
        history = columns(store.history)
        metrics = metrics_of(run, scores, timings, mode=mode, trained_variables=trained_variables)
        metrics.update(run_engine())  # "engine": "local" or "ray", "workers"
        metrics.update(cluster_metrics())  # feature extraction on Ray: its actors, their pass
        used = None if spec.value_range is None else list(spec.value_range)
        origin = spec.range_source or RANGE_ASSUMED
        metrics["run"]["input_range"] = used and {"range": used, "source": origin}
        paths: dict[str, Path] = {}
        if out_dir is not None:
            settings = settings_of(
                model,
                run,
                spec,
                options,
                mode=mode,
                epochs=epochs,
                fine_tune_epochs=ft_epochs,
                learning_rate=learning_rate,
                fine_tune_learning_rate=ft_rate,
                unfreeze=unfreeze,
                train_batch_norm=train_batch_norm,
            )
            timings["total_s"] = time.perf_counter() - started
            paths = write_outputs(
                Path(out_dir),
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


def _fingerprint(*parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()
