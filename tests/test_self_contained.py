"""The repository stands alone: no document, docstring, comment or test points outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Sources, documents and scripts (benchmark *results* are generated data, not checked here).
CHECKED = ["README.md", "pyproject.toml", "docs/*.md", "scripts/*", "src/**/*.py",
           "src/**/*.md", "tests/**/*.py", "benchmarks/*.py"]  # fmt: skip
#: Pointers a reader of this repository cannot follow (built from parts so this file passes).
FORBIDDEN = [
    re.compile(re.escape("SCIENCE" + ".md")),
    re.compile(re.escape("DESIGN" + ".md")),
    re.compile(re.escape(".." + "/shared")),
    re.compile(re.escape("/work" + "/")),
    re.compile(r"\bissue" + r"s? #?\d+", re.IGNORECASE),
]


def test_nothing_points_outside_the_repository() -> None:
    files = sorted({p for pattern in CHECKED for p in ROOT.glob(pattern) if p.is_file()})
    assert len(files) > 100
    found = []
    for path in files:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            found += [
                f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for rx in FORBIDDEN if rx.search(line)
            ]
    assert not found, "\n".join(found)


def test_docs_links_resolve() -> None:
    """Every relative link of the README and docs/ names a file of the repository."""
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target and not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not missing, missing
