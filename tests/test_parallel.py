"""coverage.parallel: thread count from the environment or the usable CPUs."""

from __future__ import annotations

import logging

import pytest

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
