"""The README stays true: its two set-up commands come first, and its Python tour runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_set_up_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert first_block is not None
    assert README.index(first_block.group(0)) < README.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo: ", makefile, flags=re.MULTILINE)
    assert re.search(r"^test: ", makefile, flags=re.MULTILINE)


def test_every_cli_command_in_the_readme_exists() -> None:
    from hublayer.cli._app import COMMANDS

    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL))
    used = set(re.findall(r"^hublayer ([a-z-]+)", blocks, flags=re.MULTILINE))
    assert used
    assert used <= set(COMMANDS), used - set(COMMANDS)


@pytest.mark.slow
def test_the_python_tour_runs_as_written(tmp_path: Path) -> None:
    block = README.split("## 30-second tour", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.DOTALL)
    assert code is not None
    script = code.group(1).replace("/tmp/tour", str(tmp_path / "tour"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TensorInfo(name='inputs', dtype='float32'" in done.stdout
    assert "png 48x48x3" in done.stdout
    assert done.stdout.strip().endswith(str(tmp_path / "tour" / "run" / "report.md"))
