"""``hublayer scan PATH_OR_HANDLE...``: judge models' ops without running them (no TensorFlow).

Exit status: 0 when every model is safe, 1 when any has a high-severity finding, 2 on a
usage error or a model that cannot be scanned (missing path, no SavedModel, download
failure, a damaged saved_model.pb or a .keras file that is no zip), so a script can
gate on it::

    hublayer scan ./model && python serve.py
"""

from __future__ import annotations

import json
from typing import Any

import click

from hublayer.errors import HublayerError

__all__ = ["scan"]

EXIT_SAFE, EXIT_UNSAFE, EXIT_ERROR = 0, 1, 2


@click.command("scan")
@click.argument("targets", nargs=-1, required=True, metavar="PATH_OR_HANDLE...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one report per model.")
@click.pass_context
def scan(ctx: click.Context, targets: tuple[str, ...], as_json: bool) -> None:
    """Scan models for ops that touch files, the network or Python, without running them.

    Every graph and every function in saved_model.pb is walked (loop bodies, branches,
    tf.data functions, nested calls), not only the signatures; .keras files are checked
    for Lambda layers and foreign modules, and the SavedModels they embed are scanned.
    TensorFlow is not imported. Exit status: 0 safe, 1 a high-severity finding, 2 a
    usage error or a model that cannot be scanned.

    \b
    Examples:
      hublayer scan ./my_saved_model
      hublayer scan model.keras https://tfhub.dev/google/nnlm-en-dim128/2 --json
    """
    from hublayer.models import scan as scan_model

    reports: list[dict[str, Any]] = []
    status = EXIT_SAFE
    for target in targets:
        try:
            report = scan_model(target)
        except HublayerError as error:
            click.echo(f"Error: {target}: {error.cli_message()}", err=True)
            reports.append({"path": target, "safe": None, "error": error.cli_message()})
            status = EXIT_ERROR
            continue
        if not report.safe and status == EXIT_SAFE:
            status = EXIT_UNSAFE
        if as_json:
            reports.append({"target": target, **report.to_dict()})
        else:
            click.echo(str(report))
    if as_json:
        click.echo(json.dumps(reports, indent=2))
    ctx.exit(status)
