"""``fit_classifier``: a pretrained model and TFRecord files in, a trained classifier out.

This module is the public entry point: the arguments and where the run happens. The
recipe itself is ``_fit_local.run_fit`` (its docstring says the order of work); on
``engine="ray"``, feature extraction runs it here with the backbone pass on Ray actors
(``_ray_features``), and fine-tuning runs it on every Ray Train worker (``_ray``).

Example:
    >>> result = fit_classifier(  # doctest: +SKIP
    ...     "/models/efficientnet_lite0", "data/train-*.tfrecord",
    ...     validation="data/val-*.tfrecord", epochs=10, out_dir="runs/digits")
    >>> result.metrics["splits"]["validation"]["accuracy"]  # doctest: +SKIP
    0.973
    >>> text = fit_classifier(  # doctest: +SKIP
    ...     "/models/bert_encoder", "reviews/train-*.tfrecord",
    ...     preprocess="/models/bert_preprocess", out_dir="runs/reviews")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import keras

from hublayer import records
from hublayer._ray import check_engine
from hublayer.train._backbone import ModelLike
from hublayer.train._fit_local import FitArgs, run_fit
from hublayer.train._model import HeadLike
from hublayer.train._ray import fit_on_ray
from hublayer.train._ray_features import features_on_ray
from hublayer.train._result import Mode, TrainResult

__all__ = ["Mode", "TrainResult", "fit_classifier"]


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
    preprocess: str | os.PathLike[str] | keras.Layer | None = None,
    output_key: str | None = None,
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
        preprocess: a text preprocessor (a handle or path, loaded as a frozen
            ``KerasLayer``, or one) that turns raw strings into the model's inputs, as
            TF Hub's BERT preprocessors do. Its outputs feed ``model``'s inputs by name;
            the string feature of the records (``pipeline={"text": ...}``, else the only
            one) goes in raw, and the saved ``model.keras`` takes raw strings. The
            embedding cache keys on the preprocessor's content too. An empty string
            embeds like ``[CLS] [SEP]``; sentences that fill the preprocessor's sequence
            (the longer ones are truncated) are counted and logged once.
        output_key: the model output to train on when it returns a dict; with
            ``preprocess=`` and none given, ``"pooled_output"`` (TF Hub's BERT
            convention, logged once).
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
        SpecMismatchError: the data cannot feed the model, a preprocessor whose
            outputs do not fit the model's inputs (both listed), or a text feature that
            holds images (raised before training).
        SchemaError, RecordError: a missing label or input feature; unreadable files.
        SignatureError: an ``output_key`` the model does not return.
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
    arguments = {k: v for k, v in locals().items() if k not in ("engine", "num_workers", "address")}
    if check_engine(engine) == "local":
        return run_fit(FitArgs(**arguments))
    if preprocess is not None:
        raise ValueError(
            "Expected engine='local' with preprocess=: the text chain runs in this process. "
            f"Received: engine={engine!r}, preprocess={preprocess!r}. Pass engine='local'."
        )
    if mode == "feature_extraction" and output_key is not None:
        raise ValueError(
            "Expected engine='local' with output_key= in feature extraction: the Ray "
            f"actors embed with the model's own output. Received: output_key={output_key!r}. "
            "Pass engine='local', or mode='fine_tune'."
        )
    if mode == "feature_extraction":  # the backbone pass on Ray actors, the rest here
        with features_on_ray(model, num_workers=num_workers, address=address):
            return run_fit(FitArgs(**arguments))
    result: TrainResult = fit_on_ray(arguments, num_workers=num_workers, address=address)
    return result
