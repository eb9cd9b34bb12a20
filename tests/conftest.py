"""Suite-wide fixtures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from attnpotts.threads import THREAD_VARS


def _numba_pool_size() -> int | None:
    """numba's running thread count, or none before its pool starts (asking would start it)."""
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not getattr(parallel, "_is_initialized", False):
        return None
    import numba

    return int(numba.get_num_threads())


@pytest.fixture(autouse=True)
def _threads_left_as_found() -> Iterator[None]:
    """Each test leaves torch's and numba's thread counts and the thread variables as it found
    them, so no result depends on which tests ran before (the count fixes the order of parallel sums).

    It also fails a test that changes ``NUMBA_NUM_THREADS`` while numba is loaded: numba rereads it
    at every compile and raises once its pool runs with another size. That only shows where the core
    count differs from the new value (a 16-core machine, not this 2-core one), so it is checked here.
    """
    env = {v: os.environ.get(v) for v in THREAD_VARS}
    numba_before = "numba" in sys.modules
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else 0
    numba_threads = _numba_pool_size()
    yield
    changed = os.environ.get("NUMBA_NUM_THREADS") != env["NUMBA_NUM_THREADS"]
    numba_after = "numba" in sys.modules
    for var, value in env.items():
        if var == "NUMBA_NUM_THREADS" and numba_after:
            continue  # what numba read when it loaded; putting the old value back would break it
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    if torch is not None:
        torch.set_num_threads(torch_threads)
    if _numba_pool_size() is not None:  # running now: back to its count before, or its full size
        import numba

        numba.set_num_threads(numba_threads or int(numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    if numba_before and changed:
        pytest.fail("the test changed NUMBA_NUM_THREADS after numba was loaded; numba's next compile "
                    "raises on a machine whose core count differs from the new value. Size the threads "
                    "with attnpotts.threads.set_threads, which leaves the variable alone then")


@pytest.fixture
def dask_distributed() -> None:
    """Skips the test that uses it where the optional extra ``attnpotts[dask]`` is not installed
    (``@pytest.mark.usefixtures("dask_distributed")``)."""
    pytest.importorskip("distributed", reason="the optional extra attnpotts[dask]")
