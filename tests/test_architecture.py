"""The layering of docs/conventions.md, checked on the source: lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "attnpotts"

#: third-party modules a sub-package must not import (module-level or inside functions)
FORBIDDEN_THIRD_PARTY = {
    "alignment": {"torch", "dask", "distributed", "matplotlib"},
    "evaluation": {"torch", "dask", "distributed", "matplotlib"},
    "theory": {"torch", "dask", "distributed", "matplotlib"},
    "potts": {"dask", "distributed", "matplotlib"},
    "sampling": {"dask", "distributed", "matplotlib"},
    "models": {"dask", "distributed", "matplotlib"},
    "inference": {"dask", "distributed", "matplotlib"},
    "training": {"dask", "distributed", "matplotlib"},
}
#: attnpotts sub-packages a sub-package must not import
FORBIDDEN_INTERNAL = {
    "potts": {"sampling", "models", "inference", "training", "experiments", "cli", "reports"},
    "alignment": {"models", "inference", "training", "experiments", "cli", "reports", "sampling"},
    "evaluation": {"models", "inference", "training", "experiments", "cli", "reports", "sampling"},
    "theory": {"models", "inference", "training", "experiments", "cli", "reports", "sampling"},
    "sampling": {"models", "inference", "training", "experiments", "cli", "reports"},
    "models": {"inference", "training", "experiments", "cli", "reports"},
    "inference": {"experiments", "cli", "reports"},
    "training": {"experiments", "cli", "reports"},
    "experiments": {"cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    rel_parts = path.relative_to(PKG).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module)
            elif node.level > 0:
                base = list(rel_parts[: len(rel_parts) - (node.level - 1)])
                mod = ".".join(["attnpotts", *base, *([node.module] if node.module else [])])
                found.add(mod)
                if not node.module:
                    found.update(f"attnpotts.{'.'.join([*base, a.name])}" for a in node.names)
    return found


def _subpackages() -> list[str]:
    return sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())


@pytest.mark.parametrize("sub", sorted(set(FORBIDDEN_THIRD_PARTY) | set(FORBIDDEN_INTERNAL)))
def test_layering(sub: str) -> None:
    folder = PKG / sub
    if not folder.exists():
        pytest.skip(f"attnpotts.{sub} does not exist yet")
    bad: list[str] = []
    for path in folder.rglob("*.py"):
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top in FORBIDDEN_THIRD_PARTY.get(sub, set()):
                bad.append(f"{path.relative_to(PKG)} imports {mod}")
            if top == "attnpotts" and len(mod.split(".")) > 1:
                target = mod.split(".")[1]
                if target in FORBIDDEN_INTERNAL.get(sub, set()):
                    bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_only_plotting_and_reports_import_matplotlib() -> None:
    bad = []
    for path in PKG.rglob("*.py"):
        sub = path.relative_to(PKG).parts[0]
        if sub in {"plotting", "reports"}:
            continue
        if any(m.split(".")[0] == "matplotlib" for m in _imports(path)):
            bad.append(str(path.relative_to(PKG)))
    assert not bad, f"matplotlib imported outside plotting/: {bad}"


def test_subpackages_declare_public_api() -> None:
    for sub in _subpackages():
        init = (PKG / sub / "__init__.py").read_text()
        assert "__all__" in init, f"attnpotts.{sub}.__init__ must define __all__"
