"""``--preprocess`` and ``--output-key``: a text model's preprocessor and the output to
use, one definition for ``train`` and ``embed``.

Example:
    >>> preprocess_option.__name__, output_key_option.__name__
    ('decorator', 'decorator')
"""

from __future__ import annotations

import click

__all__ = ["output_key_option", "preprocess_option"]

#: A text preprocessor in front of the model (TF Hub's ``bert_en_uncased_preprocess``).
preprocess_option = click.option(
    "--preprocess",
    metavar="HANDLE",
    help="Text preprocessor (handle or path) in front of the model: the records' string "
    "feature goes in raw, its outputs feed the model's inputs by name.",
)

#: Which output of a model that returns a dict to use.
output_key_option = click.option(
    "--output-key",
    help="Output of a model that returns a dict [default: pooled_output with "
    "--preprocess, when the model has it].",
)
