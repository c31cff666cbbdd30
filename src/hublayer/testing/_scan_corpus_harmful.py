"""The harmful half of the scan corpus: each payload in several hiding places, then the
tricks (:mod:`._scan_corpus_tricks`).

Example:
    >>> from hublayer.testing._scan_corpus_ops import PLACES
    >>> _places("ReadFile", 0)[:2]
    ('call', 'signature')
"""

from __future__ import annotations

from pathlib import Path

from hublayer.testing._scan_corpus_build import corpus_model, op_model
from hublayer.testing._scan_corpus_model import CorpusModel
from hublayer.testing._scan_corpus_ops import PAYLOADS
from hublayer.testing._scan_corpus_payload import PLACES, Payload, Targets
from hublayer.testing._scan_corpus_tricks import TRICK_NAMES, build_tricks

__all__ = ["TRICK_NAMES", "build_harmful", "harmful_names", "op_plan"]

#: The ops in all three published lists go in every place; the others in two.
_EVERY_PLACE = ("ReadFile", "WriteFile", "PrintV2")


def _places(op: str, index: int) -> tuple[str, ...]:
    if op in _EVERY_PLACE:
        return PLACES
    others = PLACES[1:]
    return (
        (PLACES[0], others[index % len(others)])
        if index % 2 == 0
        else (
            others[index % len(others)],
            others[(index + 2) % len(others)],
        )
    )


def op_plan() -> list[tuple[str, Payload, str]]:
    """(name, payload, place) of every op model, in build order."""
    return [
        (f"{payload.op}--{place}", payload, place)
        for index, payload in enumerate(PAYLOADS.values())
        for place in _places(payload.op, index)
    ]


def harmful_names() -> list[str]:
    """The names of every harmful model ``build_harmful`` makes (without building)."""
    return [name for name, _, _ in op_plan()] + list(TRICK_NAMES)


def build_harmful(
    folder: Path, secret: Path, victims: Path, wanted: set[str] | None
) -> list[CorpusModel]:
    """Every op in its places, then the tricks; built, not proven."""

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    folder.mkdir(parents=True, exist_ok=True)
    built = []
    for name, payload, place in op_plan():
        if not want(name):
            continue
        targets = Targets(str(secret), str(victims / name))
        op_model(folder / name, payload, place, targets)
        built.append(corpus_model(name, folder / name, payload, place, targets, secret))
    return built + build_tricks(folder, secret, victims, want)
