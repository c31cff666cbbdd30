"""``hublayer inspect HANDLE``: print what :func:`hublayer.inspect` finds, as tables or JSON."""

from __future__ import annotations

import json

import click

from hublayer._specs import TensorInfo
from hublayer.cli._table import table

__all__ = ["inspect"]


def _size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _dims(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


def _ranges(specs: tuple[TensorInfo, ...]) -> str:
    """``"inputs: (0, 1), assumed: TF Hub convention"`` for each image input."""
    shown = [f"{t.name}: {t.describe_range()}" for t in specs if t.value_range is not None]
    return "; ".join(shown) or "-"


def render(info: object) -> str:
    """The human-readable report for a ``ModelInfo``."""
    from hublayer.models import ModelInfo

    if not isinstance(info, ModelInfo):  # pragma: no cover - programming error
        raise TypeError(f"Expected a ModelInfo. Received: {type(info).__name__}.")
    call = "none"
    if info.has_call:
        call = (
            "__call__(inputs, training=False)" if info.call_takes_training else "__call__(inputs)"
        )
    summary = [
        ["handle", info.handle],
        ["path", info.path],
        ["format", info.format],
        ["call", call],
        ["entry point", info.entry_point or "-"],
        ["variables", f"{info.num_variables} ({info.num_trainable_variables} trainable)"],
        ["parameters", f"{info.num_parameters:,} ({info.num_trainable_parameters:,} trainable)"],
        ["regularization losses", str(info.num_regularization_losses)],
        ["size on disk", _size(info.size_bytes)],
        ["tags", ", ".join("{" + ", ".join(t) + "}" for t in info.tags) or "-"],
        ["fine-tunable", "yes" if info.fine_tunable else "no"],
        ["input range", _ranges(info.input_specs)],
    ]
    parts = [table([[k, v] for k, v in summary], ["property", "value"])]
    rows = [
        ["__call__", direction, t.name, t.dtype, _dims(t.shape)]
        for direction, specs in (("in", info.input_specs), ("out", info.output_specs))
        for t in specs
        if info.entry_point == "__call__"
    ]
    rows += [
        [s.name, direction, t.name, t.dtype, _dims(t.shape)]
        for s in info.signatures
        for direction, specs in (("in", s.inputs), ("out", s.outputs))
        for t in specs
    ]
    if rows:
        parts.append(table(rows, ["function", "in/out", "name", "dtype", "shape"]))
    parts.append(f"Use it as:\n  {info.keras_layer_code()}")
    return "\n\n".join(parts)


@click.command("inspect")
@click.argument("handle")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    help="Meta-graph tag of a TF1 SavedModel (repeat for several; default: TF Hub's choice).",
)
def inspect(handle: str, as_json: bool, tags: tuple[str, ...]) -> None:
    """Describe a model: signatures, input/output specs, variables, size.

    HANDLE is anything hublayer.resolve accepts: a tfhub.dev or Kaggle handle, an
    archive URL, gs://, s3://, hf://, or a local SavedModel folder or .keras file.

    \b
    Examples:
      hublayer inspect ./my_saved_model
      hublayer inspect https://tfhub.dev/google/nnlm-en-dim128/2 --json
    """
    from hublayer.models import inspect as inspect_model

    info = inspect_model(handle, tags=tags or None)
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
    else:
        click.echo(render(info))
