"""How many threads the library's GEOS-heavy steps may use.

Shapely releases the GIL inside GEOS, so unions and overlays run in threads. The count is
the CPUs this process may run on (its affinity mask), at most :data:`MAX_THREADS`, or the
``COVERAGE_PLANNER_THREADS`` environment variable when it is set (a batch worker sharing
the machine with others sets it to its share of the cores).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

THREADS_ENV = "COVERAGE_PLANNER_THREADS"
MAX_THREADS = 4


def worker_threads() -> int:
    """Threads for one parallel step: ``COVERAGE_PLANNER_THREADS``, else the usable CPUs (≤ 4)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n >= 1:
            return n
        logger.warning("ignoring %s=%r: not a whole number >= 1", THREADS_ENV, value)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


#: Fewer elements than this are computed in the calling thread (threads would not pay).
THREADED_MIN_ELEMENTS = 20_000


def elementwise_in_threads(
    fn: Callable[..., NDArray[Any]],
    *arrays: NDArray[Any],
    min_elements: int = THREADED_MIN_ELEMENTS,
) -> NDArray[Any]:
    """Return ``fn(*arrays)`` for an element-wise shapely function, in chunks run in threads.

    The arrays are cut into :func:`worker_threads` equal chunks along the first axis and
    the results joined in order, so the answer is the one ``fn`` gives in one call, element
    for element (GEOS computes each element alone). Below ``min_elements``, or when a
    thread cannot start (a process under a tight address-space limit), one call.
    """
    n = len(arrays[0])
    threads = worker_threads()
    if n < min_elements or threads < 2:
        return fn(*arrays)
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    chunks = [tuple(a[lo:hi] for a in arrays) for lo, hi in itertools.pairwise(bounds.tolist())]
    try:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda args: fn(*args), chunks))
    except RuntimeError as exc:  # "can't start new thread"
        logger.info("%s computed in one thread: %s", getattr(fn, "__name__", "step"), exc)
        return fn(*arrays)
    return np.concatenate(parts)
