"""``python -m hublayer`` runs the command-line interface."""

import sys

from hublayer.cli import main

if __name__ == "__main__":
    sys.exit(main())
