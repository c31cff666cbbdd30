"""The import graph of ``src/hublayer`` follows DESIGN.md's floors.

Read from the source with ``ast`` (every ``import`` statement, lazy ones inside functions
included), so a new violation fails here before it closes a circle at run time:

- a package imports only packages on a lower floor, never one on its own floor or above;
- across packages, only a package's ``__init__`` is imported, never a private ``_module``;
- nothing in the library imports ``hublayer.testing``;
- a module imported by name (``importlib.import_module("hublayer.models")``, a string
  constant the ``import`` statements do not show) obeys the same rules, unless the edge
  is listed, with its reason, in :data:`BY_NAME_UPWARD`.

The floors, top down::

    __main__                                      9
    cli                                           8
    demo (the application ``hublayer demo`` runs) 7
    train, embed                                  6
    zoo                                           5
    layers                                        4
    models, cache (a facade of handles)           3
    handles, records                              2
    config, _specs, _backend, _keras_registration, _ray, _proto_classes,
    _foreign_tf, _foreign_keras, _foreign_tf2jax (adapters of private APIs) 1
    errors, _version, _lazy, _foreign              0
"""

from __future__ import annotations

import ast
import re
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
    "_proto_classes": 1,
    "_foreign_tf": 1,
    "_foreign_keras": 1,
    "_foreign_tf2jax": 1,
    "errors": 0,
    "_version": 0,
    "_lazy": 0,
    "_foreign": 0,
}
# The top-level facade (lazy public API) and the test helpers may import anything.
EXEMPT = {"__init__", "testing"}

#: The only upward imports allowed, all by name and late (at call time, never when the
#: importer is imported), each with why no lower floor can do the job. (importer, imported).
BY_NAME_UPWARD: dict[tuple[str, str], str] = {
    ("hublayer._keras_registration", "hublayer.layers"): (
        "`import hublayer` must register hublayer's Keras classes for load_model without "
        "importing Keras itself; the layers are imported once Keras is, by an import hook"
    ),
    ("hublayer.records._text_preprocess", "hublayer.models"): (
        "records.dataset(preprocess=HANDLE) is public API (#20); loading a handle safely "
        "(scan, op libraries, then TensorFlow) is models' job, done only when a handle "
        "string is passed"
    ),
}


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


def by_name_imports(path: Path, package: str, root: Path = SRC.parent) -> list[tuple[int, str]]:
    """The ``hublayer`` modules a file imports by name, with the line naming each.

    A file that calls ``import_module`` (or ``lazy_names``) imports what its string
    constants name: the call's literal argument, and module-level constants and tables
    (``_LOADER = "hublayer.models"``, ``COMMANDS = {...}``), as :func:`file_edges` counts
    them. Only strings naming a real module under ``root`` count (not ``".keras"``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if not {_called(node) for node in ast.walk(tree) if isinstance(node, ast.Call)} & (
        _BY_NAME_CALLS
    ):
        return []
    found: list[tuple[int, str]] = []
    for constant in _named_modules(tree):
        text = str(constant.value)
        module = _absolute(text.lstrip("."), len(text) - len(text.lstrip(".")), package)
        if _file_of(module, root) is not None:
            found.append((constant.lineno, module))
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
        named = by_name_imports(path, _package(path))
        for line, target in _imports(path, _package(path)) + named:
            dst_unit = _unit(target)
            where = f"{path.relative_to(SRC.parent)}:{line}"
            allowed = (line, target) in named and (importer, target) in BY_NAME_UPWARD
            if dst_unit == src_unit or allowed:
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


def test_the_checker_sees_imports_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib\n"
        '_LOADER = "hublayer.models"\n'
        '_SUFFIX = ".keras"\n'
        "def f():\n"
        '    importlib.import_module("hublayer.cli._app")\n'
        "    return importlib.import_module(_LOADER)\n"
    )
    assert by_name_imports(bad, "hublayer.records") == [
        (2, "hublayer.models"),
        (5, "hublayer.cli._app"),
    ]
    (tmp_path / "plain.py").write_text('_LOADER = "hublayer.models"\n')  # no import by name
    assert by_name_imports(tmp_path / "plain.py", "hublayer.records") == []


def test_every_allowed_upward_import_by_name_is_still_made() -> None:
    """The allowlist holds what the source does, no more: a removed edge leaves it."""
    made = {
        (_module_name(path), target)
        for path in SRC.rglob("*.py")
        for _, target in by_name_imports(path, _package(path))
    }
    stale = sorted(set(BY_NAME_UPWARD) - made)
    assert not stale, f"BY_NAME_UPWARD lists imports the source no longer makes: {stale}"


@pytest.mark.parametrize("module", sorted(u for u in FLOORS if not u.startswith("__")))
def test_every_floor_names_a_real_module(module: str) -> None:
    assert (SRC / module).is_dir() or (SRC / f"{module}.py").exists() or module in {"demo", "embed"}


# ---------------------------------------------------------------- file level: no cycles
# A cycle between two files of one package is as real as one between packages: whichever
# is imported first sees the other half-initialised. The graph below has one node per
# file of src/hublayer and an edge per import that runs (lazy ones inside functions
# included; `if TYPE_CHECKING:` blocks never run, so they are left out).

#: Files whose string constants name modules they import by name (``import_module``,
#: ``lazy_names`` tables such as ``_LAZY = {"load": "._load"}``, command tables).
_BY_NAME_CALLS = {"import_module", "lazy_names"}
_MODULE_NAME = re.compile(r"(hublayer|\.+[A-Za-z_]\w*)(\.[A-Za-z_]\w*)*")
#: The most lines a module of src/ may have (DESIGN.md: past it, a module holds two concerns).
MAX_LINES = 400


def _file_of(module: str, root: Path) -> Path | None:
    """The file that runs when ``module`` is imported (a package's ``__init__.py``)."""
    if module.split(".")[0] != "hublayer":
        return None
    base = root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _absolute(module: str | None, level: int, package: str) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if not level:
        return module or ""
    parts = package.split(".")
    parts = parts[: len(parts) - level + 1]
    return ".".join([*parts, *([module] if module else [])])


def _named_modules(tree: ast.Module) -> list[ast.Constant]:
    """The string constants that may name a module imported by name: the arguments of
    ``import_module(...)`` and the contents of module-level tables and constants
    (``_LAZY = {...}``, ``COMMANDS = {...}``, ``_MODULE = "..."``), not calls such as
    ``logging.getLogger("hublayer.models")``."""
    holders: list[ast.AST] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Dict | ast.Tuple | ast.List | ast.Constant)
    ]
    holders += [
        arg
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _called(node) == "import_module"
        for arg in node.args[:1]
    ]
    return [
        node
        for holder in holders
        for node in ast.walk(holder)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _MODULE_NAME.fullmatch(node.value)
    ]


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def file_edges(path: Path, root: Path) -> list[tuple[int, Path]]:
    """The files of ``root/hublayer`` that ``path`` imports at run time, each with its line.

    ``import a.b.c`` runs ``c``; ``from a.b import c`` runs the file ``a/b/c.py`` when ``c``
    is a submodule, else ``a/b/__init__.py`` (a name it exports); relative imports are
    resolved. Files that import by name (``importlib.import_module``, ``lazy_names``) add
    an edge for each string constant that names a module (``"hublayer.cli._train"``, or
    ``"._load"`` relative to the package).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = ".".join(path.relative_to(root).with_suffix("").parts)
    package = name.removesuffix(".__init__") if path.name == "__init__.py" else name
    package = package if path.name == "__init__.py" else package.rsplit(".", 1)[0]
    nodes = _run_time_nodes(tree)
    edges: list[tuple[int, Path | None]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            edges += [(node.lineno, _file_of(alias.name, root)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            for alias in node.names:
                sub = _file_of(f"{base}.{alias.name}", root)
                edges.append((node.lineno, sub or _file_of(base, root)))
    if {_called(node) for node in nodes if isinstance(node, ast.Call)} & _BY_NAME_CALLS:
        for constant in _named_modules(tree):
            text = str(constant.value)
            module = _absolute(text.lstrip("."), len(text) - len(text.lstrip(".")), package)
            edges.append((constant.lineno, _file_of(module, root)))
    return sorted({(line, file) for line, file in edges if file is not None and file != path})


def import_cycles(root: Path) -> list[str]:
    """Each cycle among the files of ``root/hublayer``, as ``a.py:3 -> b.py:9 -> a.py``."""
    files = sorted((root / "hublayer").rglob("*.py"))
    graph = {file: file_edges(file, root) for file in files}
    cycles: list[str] = []
    for component in _strong_components(graph):
        if len(component) > 1:
            cycles.append(_one_cycle(component, graph, root))
    return cycles


def _strong_components(graph: dict[Path, list[tuple[int, Path]]]) -> list[list[Path]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    components: list[list[Path]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                target = child[1]
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph.get(target, []))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[Path] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _one_cycle(component: list[Path], graph: dict[Path, list[tuple[int, Path]]], root: Path) -> str:
    """A shortest cycle through the first file of ``component``, with the import lines."""
    inside = set(component)
    start = component[0]
    came: dict[Path, tuple[Path, int]] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for line, target in graph[node]:
            if target not in inside or target in came:
                continue
            came[target] = (node, line)
            queue.append(target)
        if start in came:
            break
    steps: list[str] = []
    node = start
    while True:
        before, line = came[node]
        steps.append(f"{before.relative_to(root)}:{line}")
        node = before
        if node == start:
            break
    others = len(component) - len(steps)
    more = f" (and {others} more files in this cycle)" if others > 0 else ""
    return " -> ".join([*reversed(steps), str(start.relative_to(root))]) + more


def test_no_import_cycle_between_files() -> None:
    cycles = import_cycles(SRC.parent)
    assert not cycles, (
        f"{len(cycles)} import cycle(s) between files (each `file:line` imports the next; "
        "move what both halves need into a module neither imports back):\n" + "\n".join(cycles)
    )


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        file = tmp_path / "hublayer" / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return tmp_path


def test_the_cycle_checker_sees_lazy_relative_and_by_name_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "pkg/__init__.py": (
                "from typing import TYPE_CHECKING\n"
                "from hublayer._lazy import lazy_names\n"
                "if TYPE_CHECKING:\n"
                "    from hublayer.pkg._c import c\n"
                '_LAZY = {"b": "._b"}\n'
                "__getattr__, __dir__ = lazy_names(__name__, _LAZY, [])\n"
            ),
            "pkg/_a.py": "def f():\n    from ._b import g\n",
            "pkg/_b.py": "import hublayer.pkg._a\n",
            "pkg/_c.py": "from hublayer.pkg import b\n",
            "pkg/_d.py": "from hublayer.pkg import _c\n",
        },
    )
    package = root / "hublayer" / "pkg"
    assert file_edges(package / "_a.py", root) == [(2, package / "_b.py")]
    assert file_edges(package / "_c.py", root) == [(1, package / "__init__.py")]
    assert file_edges(package / "_d.py", root) == [(1, package / "_c.py")]
    # The TYPE_CHECKING import never runs; the lazy table's entry does.
    assert file_edges(package / "__init__.py", root) == [(5, package / "_b.py")]
    cycles = import_cycles(root)
    assert cycles == ["hublayer/pkg/_a.py:2 -> hublayer/pkg/_b.py:1 -> hublayer/pkg/_a.py"]


def test_the_cycle_checker_passes_a_tree_without_cycles(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"__init__.py": "", "pkg/__init__.py": "from ._a import f\n", "pkg/_a.py": "import os\n"},
    )
    assert import_cycles(root) == []


def test_no_module_in_src_is_over_400_lines() -> None:
    lengths = {
        str(path.relative_to(SRC.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(SRC.rglob("*.py"))
    }
    over = sorted((n, name) for name, n in lengths.items() if n > MAX_LINES)
    assert not over, (
        f"{len(over)} module(s) over {MAX_LINES} lines; split each by concern:\n"
        + "\n".join(f"{name}: {n} lines" for n, name in reversed(over))
    )
