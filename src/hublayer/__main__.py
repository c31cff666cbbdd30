"""``python -m hublayer`` runs the command-line interface."""

from hublayer.cli import main

if __name__ == "__main__":
    main()
