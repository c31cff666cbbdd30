"""The root CLI: help lists every command without importing them, and exit codes hold."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hublayer.cli import main
from hublayer.cli._app import COMMANDS


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hublayer", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_every_command_and_stays_light() -> None:
    code = (
        "import sys; from hublayer.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-FREE')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in out.stdout
    assert out.stdout.strip().endswith("TF-FREE")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(name: str) -> None:
    out = _run(name, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage: hublayer" in out.stdout
    assert "Example" in out.stdout, f"`hublayer {name} --help` shows no example"


def test_hublayer_error_exits_1_with_a_message_and_no_traceback() -> None:
    out = _run("fetch", "/no/such/model/folder")
    assert out.returncode == 1
    assert "Error:" in out.stderr
    assert "Traceback" not in out.stderr


def test_usage_error_exits_2() -> None:
    out = _run("no-such-command")
    assert out.returncode == 2
    assert "No such command" in out.stderr


def test_main_returns_status_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "hublayer 0.1.0"
