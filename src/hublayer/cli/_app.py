"""The root ``hublayer`` group, its lazy command table and its error handling."""

from __future__ import annotations

import importlib

import click

from hublayer._version import __version__
from hublayer.cli._quiet import quiet_tensorflow
from hublayer.errors import HublayerError

# command name -> (module, attribute, one-line help shown by `hublayer --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "cache": ("hublayer.cli._cache", "cache", "List, verify, remove and prune cache entries."),
    "demo": ("hublayer.cli._demo", "demo", "Run the whole path offline on a real model and data."),
    "embed": ("hublayer.cli._embed", "embed", "Embed a dataset with a model, here or on Ray."),
    "evaluate": ("hublayer.cli._train", "evaluate", "Evaluate a trained classifier on TFRecords."),
    "fetch": ("hublayer.cli._fetch", "fetch", "Download a model handle into the cache."),
    "inspect": ("hublayer.cli._inspect", "inspect", "Describe a model: signatures, specs, sizes."),
    "lock": ("hublayer.cli._pin", "lock", "Pin handles to their content in a lock file."),
    "pin": ("hublayer.cli._pin", "pin", "Print handles pinned to their content (@sha256:...)."),
    "predict": ("hublayer.cli._train", "predict", "Predict with a trained classifier."),
    "records": ("hublayer.cli._records", "records", "Inspect and convert TFRecord files."),
    "scan": ("hublayer.cli._scan", "scan", "Check a model for unsafe ops without running it."),
    "train": ("hublayer.cli._train", "train", "Train a classifier on a pretrained model."),
}


class _LazyGroup(click.Group):
    """A group whose commands are imported the first time they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - programming error
                raise TypeError(f"{module_name}.{attribute} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        # A hublayer error reaches a CLI user as one line (no traceback), exit status 1,
        # its fix worded with the flag rather than the Python argument.
        try:
            return super().invoke(ctx)
        except HublayerError as error:
            raise click.ClickException(error.cli_message()) from error

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so `--help` imports no command module.
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", prog_name="hublayer", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Pretrained models as Keras 3 layers, fed from TFRecord files.

    \b
    Examples:
      hublayer --version
      hublayer COMMAND --help
    """


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status.

    Hublayer errors print their message (no traceback) and give status 1; usage errors 2.

    Example:
        >>> main(["--version"])
        hublayer 0.1.0
        0
    """
    try:
        with quiet_tensorflow():  # TensorFlow's start-up notices stay out of the output
            result = cli.main(args=argv, prog_name="hublayer", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return int(stop.exit_code)
    except click.ClickException as usage:
        usage.show()
        return int(usage.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except HublayerError as error:
        click.echo(f"Error: {error.cli_message()}", err=True)
        return 1
    return result if isinstance(result, int) else 0
