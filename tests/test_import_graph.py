"""The import graph of ``src/hublayer`` follows DESIGN.md's floors.

Read from the source with ``ast`` (every ``import`` statement, lazy ones inside functions
included), so a new violation fails here before it closes a circle at run time:

- a package imports only packages on a lower floor, never one on its own floor or above;
- across packages, only a package's ``__init__`` is imported, never a private ``_module``;
- nothing in the library imports ``hublayer.testing``.

The floors, top down::

    __main__                                      9
    cli                                           8
    demo (the application ``hublayer demo`` runs) 7
    train, embed                                  6
    zoo                                           5
    layers                                        4
    models, cache (a facade of handles)           3
    handles, records                              2
    config, _specs, _backend, _keras_registration, _ray 1
    errors, _version, _lazy                       0
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hublayer"

FLOORS: dict[str, int] = {
    "__main__": 9,
    "cli": 8,
    "demo": 7,
    "train": 6,
    "embed": 6,
    "zoo": 5,
    "layers": 4,
    "models": 3,
    "cache": 3,
    "handles": 2,
    "records": 2,
    "config": 1,
    "_specs": 1,
    "_backend": 1,
    "_keras_registration": 1,
    "_ray": 1,
    "errors": 0,
    "_version": 0,
    "_lazy": 0,
}
# The top-level facade (lazy public API) and the test helpers may import anything.
EXEMPT = {"__init__", "testing"}


def _unit(module: str) -> str:
    """``hublayer.records._reader`` -> ``records``; ``hublayer.config`` -> ``config``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 2:
        parts.pop()
    return ".".join(parts)


def _package(path: Path) -> str:
    """The package a relative import in ``path`` starts from."""
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """Every ``hublayer.*`` module that the file at ``path`` imports, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("hublayer")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            if name == "hublayer":
                # `from hublayer import config, records` imports those modules.
                found += [(node.lineno, f"hublayer.{a.name}") for a in node.names]
            elif name.startswith("hublayer"):
                found.append((node.lineno, name))
                # `from hublayer.pkg import _private` imports a private module too.
                found += [
                    (node.lineno, f"{name}.{a.name}")
                    for a in node.names
                    if a.name.startswith("_")
                    and (SRC.parent / name.replace(".", "/") / f"{a.name}.py").exists()
                ]
    return found


def violations() -> list[str]:
    """Each import that breaks a rule above, as ``file:line: what``."""
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        importer = _module_name(path)
        src_unit = _unit(importer)
        if src_unit in EXEMPT:
            continue
        assert src_unit in FLOORS, f"{path}: add the new package {src_unit!r} to FLOORS"
        for line, target in _imports(path, _package(path)):
            dst_unit = _unit(target)
            where = f"{path.relative_to(SRC.parent)}:{line}"
            if dst_unit == src_unit:
                continue
            if dst_unit == "testing":
                found.append(f"{where}: the library imports hublayer.testing ({target})")
                continue
            if dst_unit == "__init__":
                found.append(f"{where}: imports the top-level facade `hublayer` ({target})")
                continue
            if FLOORS[dst_unit] >= FLOORS[src_unit]:
                found.append(
                    f"{where}: {src_unit} (floor {FLOORS[src_unit]}) imports {target} "
                    f"(floor {FLOORS[dst_unit]}): only lower floors may be imported"
                )
            private = [p for p in target.split(".")[2:] if p.startswith("_")]
            if private and FLOORS[dst_unit] > 1:
                found.append(f"{where}: imports the private module {target}; use its package")
    return found


def test_import_graph_has_no_upward_arrow_no_circle_and_no_private_import() -> None:
    found = violations()
    assert not found, "import rules broken:\n" + "\n".join(found)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from hublayer import config\n"
        "def f():\n"
        "    from hublayer.cli._app import main\n"
        "    import hublayer.testing\n"
        "    from .._fit import fit\n"
    )
    found = _imports(bad, "hublayer.train")
    assert (1, "hublayer.config") in found
    assert (3, "hublayer.cli._app") in found
    assert (4, "hublayer.testing") in found
    assert (5, "hublayer._fit") in found


@pytest.mark.parametrize("module", sorted(u for u in FLOORS if not u.startswith("__")))
def test_every_floor_names_a_real_module(module: str) -> None:
    assert (SRC / module).is_dir() or (SRC / f"{module}.py").exists() or module in {"demo", "embed"}
