"""coverage.parallel: thread count from the environment or the usable CPUs."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pytest
import shapely

from coverage import parallel


def test_env_sets_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, "3")
    assert parallel.worker_threads() == 3


@pytest.mark.parametrize("bad", ["0", "-2", "many", "1.5"])
def test_bad_env_is_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    monkeypatch.delenv(parallel.THREADS_ENV, raising=False)
    default = parallel.worker_threads()
    monkeypatch.setenv(parallel.THREADS_ENV, bad)
    with caplog.at_level(logging.WARNING, logger="coverage.parallel"):
        assert parallel.worker_threads() == default
    assert parallel.THREADS_ENV in caplog.text


def test_default_is_the_usable_cpus_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv(parallel.THREADS_ENV, raising=False)
    n = parallel.worker_threads()
    assert 1 <= n <= parallel.MAX_THREADS
    assert n == min(len(os.sched_getaffinity(0)), parallel.MAX_THREADS)


def _squares_and_discs(n: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, size=(n, 2))
    squares = shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + 30, xy[:, 1] + 30)
    discs = shapely.buffer(shapely.points(xy + 20), rng.uniform(5, 25, size=n))
    return squares, discs


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_elementwise_in_threads_gives_one_calls_answer_in_order(
    monkeypatch: pytest.MonkeyPatch, threads: str
) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, threads)
    squares, discs = _squares_and_discs(1001)
    seen: set[int] = set()

    def intersection(a: Any, b: Any) -> Any:
        seen.add(threading.get_ident())
        return shapely.intersection(a, b)

    got = parallel.elementwise_in_threads(intersection, squares, discs, min_elements=10)
    want = shapely.intersection(squares, discs)
    assert got.shape == want.shape
    assert shapely.to_wkb(got).tolist() == shapely.to_wkb(want).tolist()
    assert len(seen) == min(int(threads), 1001)  # one chunk per thread
    # 2-D input: chunks are rows
    rows = np.stack([squares[:1000:2], discs[1:1001:2]], axis=1)
    unions = parallel.elementwise_in_threads(
        lambda r: shapely.union_all(r, axis=1), rows, min_elements=10
    )
    assert (
        shapely.to_wkb(unions).tolist() == shapely.to_wkb(shapely.union_all(rows, axis=1)).tolist()
    )


def test_elementwise_in_threads_runs_in_one_call_when_small_or_threads_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    squares, _ = _squares_and_discs(50)
    calls: list[int] = []

    def area(a: Any) -> Any:
        calls.append(len(a))
        return shapely.area(a)

    np.testing.assert_array_equal(
        parallel.elementwise_in_threads(area, squares), shapely.area(squares)
    )
    assert calls == [50]  # under THREADED_MIN_ELEMENTS: one call

    class NoThreads:
        def __init__(self, *args: Any) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(parallel, "ThreadPoolExecutor", NoThreads)
    calls.clear()
    got = parallel.elementwise_in_threads(area, squares, min_elements=10)
    np.testing.assert_array_equal(got, shapely.area(squares))
    assert calls == [50]
