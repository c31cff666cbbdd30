"""The ``hublayer`` command line: argument parsing, progress and exit codes only.

Each command lives in its own private module and calls the public API; commands are
imported only when invoked, so ``hublayer --help`` and ``--version`` stay fast.

Exit codes: 0 success, 1 a hublayer error (message on stderr, no traceback),
2 a usage error, 130 interrupted.

Example:
    $ hublayer --version
    hublayer 0.1.0
"""

from hublayer.cli._app import main

__all__ = ["main"]
