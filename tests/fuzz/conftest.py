"""The fuzz suite's counts by input kind (fixture ``fuzz_counts``), printed at the end of the run."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.attnpotts_fuzz_counts = Counter()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def fuzz_counts(request: pytest.FixtureRequest) -> Counter[tuple[str, str]]:
    """(input kind, "clean error" | "accepted") -> number of cases."""
    return request.config.attnpotts_fuzz_counts  # type: ignore[attr-defined,no-any-return]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counts: Counter[tuple[str, str]] = getattr(config, "attnpotts_fuzz_counts", Counter())
    if not counts:
        return
    tr = terminalreporter
    tr.section("fuzz cases by input kind")
    tr.write_line(f"{'input kind':<30}{'tried':>8}{'clean error':>13}{'accepted':>10}")
    clean_all = ok_all = 0
    for kind in sorted({k for k, _ in counts}):
        clean, ok = counts[(kind, "clean error")], counts[(kind, "accepted")]
        clean_all, ok_all = clean_all + clean, ok_all + ok
        tr.write_line(f"{kind:<30}{clean + ok:>8}{clean:>13}{ok:>10}")
    tr.write_line(f"{'total':<30}{clean_all + ok_all:>8}{clean_all:>13}{ok_all:>10}")
    tr.write_line("tracebacks, hangs and accepted inputs that break a stated rule fail the tests")
