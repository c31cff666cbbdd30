"""``hublayer train``, ``hublayer predict`` and ``hublayer evaluate``.

Thin wrappers over :mod:`hublayer.train`: parse the flags, call the API, print a summary.
The progress bars come from the API (on a terminal, or with ``--progress``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from hublayer.cli._notes import show_notes
from hublayer.cli._range_option import input_range_option, parse_input_range
from hublayer.cli._ray_options import ray_options
from hublayer.cli._table import table
from hublayer.cli._text_options import output_key_option, preprocess_option

__all__ = ["evaluate", "predict", "train"]


def _unfreeze(value: str) -> int | str:
    if value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"expected 'all' or a number of blocks, received {value!r}", param_hint="--unfreeze"
        ) from None


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _confusion(matrix: list[list[int]], classes: list[str]) -> str:
    header = ["true \\ predicted", *classes]
    rows = [[name, *map(str, row)] for name, row in zip(classes, matrix, strict=True)]
    return table(rows, header, numeric=True)


@click.command("train")
@click.option("--model", "model", required=True, help="Model handle or path (feature vector).")
@click.option(
    "--train",
    "train_files",
    required=True,
    multiple=True,
    help="Training TFRecords (file, glob, folder or URL).",
)
@click.option(
    "--val", "val_files", multiple=True, help="Validation TFRecords (file, glob, folder or URL)."
)
@click.option(
    "--test",
    "test_files",
    multiple=True,
    help=(
        "Held-out TFRecords (file, glob, folder or URL), scored into the report; never "
        "used to train or stop."
    ),
)
@click.option("--label", default="label", show_default=True, help="Feature holding the class.")
@click.option(
    "--image", "image_feature", help="Feature holding the images [default: the only one]."
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    help="Resize images to this square size [default: the model's input size].",
)
@click.option("--text", "text_feature", help="Feature holding the text [default: the only one].")
@preprocess_option
@output_key_option
@input_range_option
@click.option(
    "--mode",
    type=click.Choice(["feature_extraction", "fine_tune"]),
    default="feature_extraction",
    show_default=True,
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Head epochs (phase 1 of fine_tune).",
)
@click.option(
    "--fine-tune-epochs",
    type=click.IntRange(min=0),
    help="Phase 2 epochs in fine_tune mode [default: --epochs].",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--learning-rate", "--lr", type=float, default=1e-3, show_default=True)
@click.option(
    "--fine-tune-learning-rate",
    type=float,
    help="Phase 2 learning rate [default: --learning-rate / 10].",
)
@click.option(
    "--unfreeze",
    default="all",
    show_default=True,
    help="'all', or how many of the backbone's last blocks to fine-tune.",
)
@click.option(
    "--hidden",
    type=click.IntRange(min=1),
    multiple=True,
    help="Hidden layer size of the head (repeat for more layers).",
)
@click.option(
    "--dropout", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.2, show_default=True
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Epochs without improvement before early stopping.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("hublayer-run"),
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Do not cache embeddings: run the backbone on every batch of every epoch.",
)
@click.option(
    "--embeddings-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to cache embeddings [default: <cache dir>/embeddings].",
)
@click.option("--restart", is_flag=True, help="Ignore a checkpoint in --out and start over.")
@ray_options(
    engine="ray: feature_extraction embeds on Ray Data actors; fine_tune trains on Ray "
    'Train workers, each global batch split among them (pip install "hublayer[ray]").',
    workers="Ray workers with --engine ray [default for fine_tune: one per 2 CPUs, at "
    "most one per 4 GiB of memory; for feature_extraction: one embedding actor per 2 CPUs, "
    "at most one per 2 GiB: each worker holds the model].",
    address="Ray cluster to join with --engine ray [default: a local Ray].",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars [default: on a terminal]."
)
def train(
    model: str,
    train_files: tuple[str, ...],
    val_files: tuple[str, ...],
    test_files: tuple[str, ...],
    label: str,
    image_feature: str | None,
    image_size: int | None,
    text_feature: str | None,
    preprocess: str | None,
    output_key: str | None,
    input_range: str | None,
    mode: str,
    epochs: int,
    fine_tune_epochs: int | None,
    batch_size: int,
    learning_rate: float,
    fine_tune_learning_rate: float | None,
    unfreeze: str,
    hidden: tuple[int, ...],
    dropout: float,
    patience: int,
    seed: int,
    out_dir: Path,
    no_cache: bool,
    embeddings_dir: Path | None,
    restart: bool,
    engine: str,
    workers: int | None,
    address: str | None,
    progress: bool | None,
) -> None:
    """Train a classifier on a pretrained model from TFRecord files.

    Feature extraction computes the frozen model's embeddings once (cached, so a
    rerun skips them) and trains a head; fine_tune then trains the model too, at a
    lower learning rate. Rerunning after an interruption resumes from the last epoch.

    \b
    Examples:
      hublayer train --model ./efficientnet_lite0 --train 'data/train-*.tfrecord' \\
          --val 'data/val-*.tfrecord' --test 'data/test-*.tfrecord' --out runs/digits
      hublayer train --model ./efficientnet_lite0 --train 'data/train-*' \\
          --val 'data/val-*' --mode fine_tune --epochs 5 --fine-tune-epochs 2
      hublayer train --model ./efficientnet_lite0 --train 'data/train-*' \\
          --val 'data/val-*' --out runs/b --engine ray --workers 2
      hublayer train --model ./bert_encoder --preprocess ./bert_preprocess \\
          --train 'reviews/train-*' --text review --out runs/reviews
    """
    from hublayer.train import fit_classifier

    show_notes()

    cache: bool | Path = False if no_cache else (embeddings_dir or True)
    image = {"feature": image_feature, "size": image_size}
    pipeline: dict[str, Any] = {"text": text_feature} if text_feature else {}
    if any(value is not None for value in image.values()):
        pipeline["image"] = {k: v for k, v in image.items() if v is not None}
    result = fit_classifier(
        model,
        list(train_files),
        validation=list(val_files) or None,
        test=list(test_files) or None,
        label=label,
        mode=mode,  # type: ignore[arg-type]
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        fine_tune_learning_rate=fine_tune_learning_rate,
        unfreeze=_unfreeze(unfreeze),  # type: ignore[arg-type]
        head=list(hidden),
        dropout=dropout,
        patience=patience,
        seed=seed,
        out_dir=out_dir,
        embedding_cache=cache,
        resume=not restart,
        progress=progress,
        pipeline=pipeline,
        input_range=parse_input_range(input_range),
        preprocess=preprocess,
        output_key=output_key,
        engine=engine,
        num_workers=workers,
        address=address,
    )
    metrics = result.metrics
    rows = [
        [name, str(s["examples"]), _number(s["accuracy"]), _number(s["loss"])]
        for name, s in metrics["splits"].items()
    ]
    click.echo(table(rows, ["split", "examples", "accuracy", "loss"], numeric=True))
    click.echo("")
    run = metrics["run"]
    for name, phase in run["phases"].items():
        note = ", stopped early" if phase["stopped_early"] else ""
        click.echo(
            f"{name}: {phase['epochs_trained']} epochs, best epoch {phase['best_epoch']} "
            f"({run['monitor']} {_number(phase['best'])}){note}"
        )
    cache_state = run["embedding_cache"]
    if isinstance(cache_state, dict):
        cache_state = ", ".join(f"{k} {v}" for k, v in cache_state.items())
    click.echo(f"embedding cache: {cache_state}" + ("; resumed" if run["resumed"] else ""))
    shown = ", ".join(result.class_names[:12]) + (", ..." if len(result.class_names) > 12 else "")
    click.echo(f"classes: {len(result.class_names)} ({shown})")
    timings = ", ".join(
        f"{k.removesuffix('_s')} {v:.1f}s" for k, v in metrics["timings"].items() if k != "total_s"
    )
    click.echo(f"time: {metrics['timings']['total_s']:.1f}s ({timings})")
    click.echo(f"report: {result.paths['report']}")
    used = metrics["run"].get("input_range")
    if used:
        low, high = used["range"]
        click.echo(
            f"input range: ({low:g}, {high:g}), {used['source']} (set it with --input-range)"
        )


# Options shared by `predict` and `evaluate`.
_TRAINED_MODEL = click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The --out folder of `hublayer train`.",
)
_BATCH_SIZE = click.option(
    "--batch-size", type=click.IntRange(min=1), default=64, show_default=True
)


@click.command("predict")
@_TRAINED_MODEL
@click.option(
    "--data",
    "data_files",
    required=True,
    multiple=True,
    help="TFRecords (file, glob, folder or URL).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="CSV to write ('-' for stdout).",
)
@_BATCH_SIZE
def predict(model_dir: Path, data_files: tuple[str, ...], output: str, batch_size: int) -> None:
    """Predict the class of every record with a trained classifier.

    Writes one CSV row per record: index, prediction, confidence, the true label when
    the records have it (empty for a record without one), and every class probability.
    The accuracy is scored on the records that have a label, and says how many.

    \b
    Examples:
      hublayer predict --model runs/digits --data 'data/new-*.tfrecord' --output preds.csv
      hublayer predict --model runs/digits --data data/one.tfrecord | head
    """
    from hublayer.train import predict as predict_records

    show_notes()

    to_stdout = output == "-"
    result = predict_records(
        model_dir,
        list(data_files),
        batch_size=batch_size,
        output=None if to_stdout else output,
    )
    if to_stdout:
        result.to_csv(sys.stdout)
    total = len(result.probabilities)
    summary = f"predicted {total} records"
    if result.accuracy is not None and result.labelled == total:
        summary += f"; accuracy {result.accuracy:.4f} against their labels"
    elif result.accuracy is not None:
        summary += (
            f"; accuracy {result.accuracy:.4f} against the {result.labelled} labelled ones"
            f" ({total - result.labelled} have no label)"
        )
    if not to_stdout:
        summary += f"; wrote {output}"
    click.echo(summary, err=to_stdout)


@click.command("evaluate")
@_TRAINED_MODEL
@click.option(
    "--data",
    "data_files",
    required=True,
    multiple=True,
    help="Labelled TFRecords (file, glob, folder or URL).",
)
@click.option("--label", help="Label feature [default: the one used in training].")
@_BATCH_SIZE
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the scores as JSON.",
)
def evaluate(
    model_dir: Path,
    data_files: tuple[str, ...],
    label: str | None,
    batch_size: int,
    output: Path | None,
) -> None:
    """Score a trained classifier on labelled records: accuracy, loss, confusion matrix.

    \b
    Examples:
      hublayer evaluate --model runs/digits --data 'data/test-*.tfrecord'
      hublayer evaluate --model runs/digits --data 'data/test-*' --output test.json
    """
    from hublayer.train import evaluate as evaluate_records

    show_notes()

    scores = evaluate_records(
        model_dir, list(data_files), label=label, batch_size=batch_size, output=output
    )
    click.echo(
        table(
            [[str(scores["examples"]), _number(scores["accuracy"]), _number(scores["loss"])]],
            ["examples", "accuracy", "loss"],
            numeric=True,
        )
    )
    click.echo("")
    click.echo(_confusion(scores["confusion_matrix"], scores["classes"]))
    if output is not None:
        click.echo(f"wrote {output}")
