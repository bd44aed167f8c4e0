"""How many threads the library's GEOS-heavy steps may use.

Shapely releases the GIL inside GEOS, so unions and overlays run in threads. The count is
the CPUs this process may run on (its affinity mask), at most :data:`MAX_THREADS`, or the
``COVERAGE_PLANNER_THREADS`` environment variable when it is set (a batch worker sharing
the machine with others sets it to its share of the cores).
"""

from __future__ import annotations

import logging
import os

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
