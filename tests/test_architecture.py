"""The layering of the package, checked on the source (docs/architecture.md).

Every unit of ``attnpotts`` (each sub-package, each top-level module and the package root) has a
declared set of units it may import. The check walks the syntax tree of every module, so imports
inside functions, ``try`` blocks and ``if TYPE_CHECKING`` count too. A new unit must be added to
:data:`ALLOWED` (and to docs/architecture.md) before its imports can pass.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "attnpotts"

#: The package root (``attnpotts/__init__.py``: the version string); importable from anywhere.
ROOT = "attnpotts"
#: Top-level modules every layer may use.
BASE = frozenset({ROOT, "errors", "random", "storage", "alphabet"})
_CORE = BASE | {"potts", "sampling", "models", "inference", "training", "theory"}
_DATA = frozenset({"alignment", "evaluation", "formats"})
_OUTPUT = frozenset({"plotting", "reports"})

#: unit -> the attnpotts units it may import (besides itself). Lower layers first.
ALLOWED: dict[str, frozenset[str]] = {
    ROOT: frozenset(),
    "errors": frozenset(),
    "random": frozenset({"errors"}),
    "storage": frozenset({ROOT, "errors", "threads"}),  # the version string, thread counts
    # CPU threads of torch, numba and BLAS (--threads; the executors' workers)
    "threads": frozenset({"errors"}),
    "alphabet": frozenset({"errors"}),
    # typed option fields: validation, flags and TOML keys from one definition
    "options": frozenset({"errors"}),
    # worker processes that die with their parent (used by the executors and the CLI)
    "processes": frozenset(),
    # progress lines and bars of long work (training, the CLI, the reproduce pipeline)
    "progress": frozenset(),
    # package attributes imported on first use (options load without torch or numba)
    "_lazy": frozenset(),
    # numerical and data cores: only the foundation
    "potts": BASE,
    "theory": BASE,
    "alignment": BASE,
    "plotting": BASE | {"processes"},  # the figure helper process ends as the commands do
    "reports": BASE | {"plotting"},
    # built on Potts models
    "sampling": BASE | {"potts", "options", "_lazy"},
    "models": BASE | {"potts"},
    # file formats of scores and Potts parameters (ours and the peer DCA tools')
    "formats": BASE | {"potts"},
    # formats: only for the names that moved there (evaluation/__init__.py forwards them)
    "evaluation": BASE | {"potts", "alignment", "formats"},
    "inference": BASE | {"potts", "models"},
    "training": BASE | {"potts", "models", "inference", "sampling", "alignment", "progress", "options",
                      "_lazy"},
    # applications
    "dca": BASE | {"potts", "models", "inference", "training", "options", "_lazy"} | _DATA | {"plotting"},
    # one library function per command (what the CLI and the reproduce tasks call)
    "workflows": _CORE | _DATA | _OUTPUT | {"dca", "progress", "options", "_lazy"},
    "experiments": _CORE | _DATA | _OUTPUT | {"dca", "processes", "progress", "options", "workflows", "_lazy",
                                              "threads"},
    "cli": _CORE | _DATA | _OUTPUT | {"dca", "experiments", "processes", "progress", "options", "workflows",
                                      "_lazy", "threads"},
    "__main__": frozenset({"attnpotts", "cli"}),  # python -m attnpotts: the command, nothing else
}

#: Third-party packages confined to the listed units.
CONFINED: dict[str, frozenset[str]] = {
    "matplotlib": frozenset({"plotting", "reports"}),
    "dask": frozenset({"experiments"}),
    "distributed": frozenset({"experiments"}),
}
#: Units that never import torch (numpy/scipy only).
NO_TORCH = frozenset(
    {
        ROOT,
        "errors",
        "storage",
        "alphabet",
        "options",
        "processes",
        "progress",
        "threads",
        "alignment",
        "evaluation",
        "formats",
        "theory",
        "plotting",
        "reports",
    }
)
#: Units that import torch only inside functions or for type checking (``import`` stays light).
LAZY_TORCH = frozenset({"random", "potts"})


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved."""

    path: Path  # the importing file
    line: int
    module: str  # dotted name as imported ("attnpotts.potts.model", "torch", ...)
    unit: str | None  # attnpotts unit it lands in, None for third-party modules
    lazy: bool  # inside a function or an ``if TYPE_CHECKING`` block


def units(root: Path) -> set[str]:
    """The units of the package at ``root``: sub-packages, top-level modules and the root."""
    subs = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    mods = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    return subs | mods | {ROOT}


def unit_of(path: Path, root: Path) -> str:
    """The unit a source file belongs to."""
    parts = path.relative_to(root).parts
    if len(parts) > 1:
        return parts[0]
    return ROOT if parts[0] == "__init__.py" else parts[0][: -len(".py")]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, lazy: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node with whether it sits inside a function or an ``if TYPE_CHECKING`` block."""
    for child in ast.iter_child_nodes(node):
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child, lazy
            for sub in child.body:
                yield sub, True
                yield from _walk(sub, True)
            for sub in child.orelse:
                yield sub, lazy
                yield from _walk(sub, lazy)
            continue
        yield child, inner
        yield from _walk(child, inner)


def imports(path: Path, root: Path) -> list[Import]:
    """All imports of one file (module level, in functions, conditional), resolved to units."""
    known = units(root)
    package = list(path.relative_to(root).parts[:-1])  # the file's package below the root
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def add(node: ast.stmt, dotted: list[str], lazy: bool) -> None:
        if dotted and dotted[0] == ROOT:
            inner = dotted[1:]
            unit = inner[0] if inner and inner[0] in known else ROOT
        else:
            unit = None
        found.append(Import(path, node.lineno, ".".join(dotted), unit, lazy))

    for node, lazy in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name.split("."), lazy)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = (node.module or "").split(".")
            else:
                up = node.level - 1
                if up > len(package):
                    raise AssertionError(f"{path}:{node.lineno}: relative import above the package")
                base = [ROOT, *package[: len(package) - up], *(node.module or "").split(".")]
                base = [b for b in base if b]
            if base == [ROOT]:  # "from attnpotts import x" / "from .. import x" at the root
                for alias in node.names:
                    add(node, [ROOT, alias.name], lazy)
            else:
                add(node, base, lazy)
    return found


def all_imports(root: Path) -> list[Import]:
    """Imports of every module of the package at ``root``."""
    return [imp for path in sorted(root.rglob("*.py")) for imp in imports(path, root)]


def violations(root: Path, allowed: Mapping[str, frozenset[str]] = ALLOWED) -> list[str]:
    """Every import that breaks :data:`ALLOWED`, :data:`CONFINED`, :data:`NO_TORCH` or
    :data:`LAZY_TORCH`, as ``"file:line: unit imports module (reason)"``."""
    bad: list[str] = []
    for imp in all_imports(root):
        src = unit_of(imp.path, root)
        where = f"{imp.path.relative_to(root)}:{imp.line}: {src} imports {imp.module}"
        top = imp.module.split(".")[0]
        if imp.unit is not None:
            if imp.unit != src and imp.unit not in allowed.get(src, frozenset()):
                bad.append(f"{where} (not in ALLOWED[{src!r}])")
        elif top in CONFINED and src not in CONFINED[top]:
            bad.append(f"{where} ({top} only in {sorted(CONFINED[top])})")
        elif top == "torch" and src in NO_TORCH:
            bad.append(f"{where} ({src} never imports torch)")
        elif top == "torch" and src in LAZY_TORCH and not imp.lazy:
            bad.append(f"{where} ({src} imports torch only inside functions)")
    return bad


def dependency_graph(root: Path) -> dict[str, set[str]]:
    """unit -> the other units it imports, from the source."""
    graph: dict[str, set[str]] = {u: set() for u in units(root)}
    for imp in all_imports(root):
        src = unit_of(imp.path, root)
        if imp.unit is not None and imp.unit != src:
            graph[src].add(imp.unit)
    return graph


def find_cycle(graph: Mapping[str, set[str] | frozenset[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the directed graph, or ``None`` (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


# --- the package itself --------------------------------------------------------------------------


def test_every_unit_is_declared() -> None:
    found = units(PKG)
    assert found == set(ALLOWED), (
        f"undeclared units {sorted(found - set(ALLOWED))}, declared but missing "
        f"{sorted(set(ALLOWED) - found)}: update ALLOWED here and docs/architecture.md"
    )
    for unit, targets in ALLOWED.items():
        assert targets <= set(ALLOWED), f"ALLOWED[{unit!r}] names unknown units"


def test_declared_layers_have_no_cycle() -> None:
    assert find_cycle(ALLOWED) is None


def test_imports_follow_the_layers() -> None:
    bad = violations(PKG)
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_no_import_cycle_between_units() -> None:
    cycle = find_cycle(dependency_graph(PKG))
    assert cycle is None, f"import cycle between units: {' -> '.join(cycle or [])}"


def test_architecture_doc_states_the_same_table() -> None:
    doc = (PKG.parents[1] / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `(\w+)`[^|]*\| ([^|]+) \|$", doc, flags=re.MULTILINE)
    stated: dict[str, frozenset[str]] = {}
    for unit, cell in rows:
        if unit not in ALLOWED:
            continue
        names = set(re.findall(r"`(\w+)`", cell))
        if cell.startswith("every unit"):
            names = set(ALLOWED) - {unit} - (names if "except" in cell else set())
        stated[unit] = frozenset(names)
    assert stated == ALLOWED, "docs/architecture.md's table differs from ALLOWED"


def test_subpackages_declare_public_api() -> None:
    for sub in sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").exists()):
        init = (PKG / sub / "__init__.py").read_text()
        assert "__all__" in init, f"attnpotts.{sub}.__init__ must define __all__"


# --- the checks fail on violations ---------------------------------------------------------------


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "attnpotts"
    for rel, text in {"__init__.py": "", "errors.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for sub in {Path(rel).parts[0] for rel in files if "/" in rel}:
        (root / sub / "__init__.py").touch()
    return root


def test_violations_are_found_at_module_level_and_inside_functions(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "cli/main.py": "",
            "training/loop.py": "",
            "potts/ok.py": "from ..errors import ValidationError\nfrom . import ok\n",
            "potts/bad.py": "def f():\n    from ..cli import main\n",
            "theory/bad.py": "import attnpotts.training.loop\nimport torch\n",
            "potts/eager.py": "import torch\n",
            "potts/lazy.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
            "def g():\n    import torch\n",
            "models/plot.py": "import matplotlib.pyplot as plt\n",
        },
    )
    bad = violations(root)
    expected = [
        "potts/bad.py:2: potts imports attnpotts.cli (not in ALLOWED['potts'])",
        "theory/bad.py:1: theory imports attnpotts.training.loop (not in ALLOWED['theory'])",
        "theory/bad.py:2: theory imports torch (theory never imports torch)",
        "potts/eager.py:1: potts imports torch (potts imports torch only inside functions)",
        "models/plot.py:1: models imports matplotlib.pyplot (matplotlib only in "
        "['plotting', 'reports'])",
    ]
    assert sorted(bad) == sorted(expected)


def test_undeclared_unit_and_cycles_are_found(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "inference/a.py": "def f():\n    from ..training import b\n",
            "training/b.py": "from ..inference import a\n",
            "newthing/c.py": "",
        },
    )
    assert "newthing" in units(root) - set(ALLOWED)
    assert any("inference imports attnpotts.training" in b for b in violations(root))
    assert find_cycle(dependency_graph(root)) == ["inference", "training", "inference"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


@pytest.mark.parametrize(
    "text,unit",
    [
        ("from .. import __version__", ROOT),
        ("from ..potts import model", "potts"),
        ("from ...attnpotts import x", None),
        ("import attnpotts", ROOT),
        ("from attnpotts import potts", "potts"),
        ("from .model import x", "potts"),
    ],
)
def test_imports_resolve_to_units(tmp_path: Path, text: str, unit: str | None) -> None:
    root = _fake_package(tmp_path, {"potts/model.py": "", "potts/x.py": text + "\n"})
    if unit is None:
        with pytest.raises(AssertionError, match="above the package"):
            imports(root / "potts" / "x.py", root)
        return
    (imp,) = imports(root / "potts" / "x.py", root)
    assert imp.unit == unit
