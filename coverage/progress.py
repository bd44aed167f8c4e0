"""Progress reporting: the one callback type and the one way to map a step onto a range.

Long steps accept ``progress(fraction, message)`` with ``fraction`` in 0..1.
A step inside a larger run reports through :func:`sub_progress`, which maps
its own 0..1 onto ``lo..hi`` of the whole run. The library never prints; the
CLI turns the callback into a progress bar, the app into ``st.progress``; when
stderr is no terminal (a log file, a pipe, a batch job), the CLI uses
:class:`ProgressLog`, which turns it into a log line per step and every few
seconds.

A run can also be stopped: inside ``with cancellable(check):`` the solver steps poll
``check()`` (:func:`cancel_requested`) and, once it is true, return their best answer
so far, flagged as stopped, instead of running to their time limit.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger(__name__)

#: ``progress(fraction, message)``: ``fraction`` in 0..1 of the whole job.
ProgressFn = Callable[[float, str], None]
#: ``check()``: True once the run should stop and return what it has.
CancelFn = Callable[[], bool]

_CANCEL: ContextVar[CancelFn | None] = ContextVar("coverage_cancel", default=None)


@contextmanager
def cancellable(check: CancelFn) -> Iterator[None]:
    """Let the long solver steps inside the block poll ``check`` and stop early when it is true.

    A context variable rather than one more argument through every layer: the pipeline,
    the siting and the optimizer keep their signatures, and the scope ends with the block.

    Parameters
    ----------
    check
        Called from the calling thread, a few times a second while a solver runs; must be
        cheap and must not raise.
    """
    token = _CANCEL.set(check)
    try:
        yield
    finally:
        _CANCEL.reset(token)


def cancel_check() -> CancelFn | None:
    """Return the ``check`` of the innermost :func:`cancellable` block, or None outside one."""
    return _CANCEL.get()


def cancel_requested() -> bool:
    """Return whether the innermost :func:`cancellable` block asks the run to stop."""
    check = _CANCEL.get()
    return bool(check is not None and check())


def sub_progress(progress: ProgressFn | None, lo: float, hi: float) -> ProgressFn | None:
    """Return a callback mapping a step's 0..1 onto ``lo..hi`` of ``progress``.

    Parameters
    ----------
    progress
        The whole run's callback; ``None`` gives ``None`` (nothing to report).
    lo, hi
        The step's share of the whole run, ``0 <= lo <= hi <= 1``.

    Returns
    -------
    callable or None
        ``report(fraction, message)`` for the step; fractions are clipped to 0..1.
    """
    if progress is None:
        return None
    outer = progress

    def report(fraction: float, message: str) -> None:
        f = min(max(float(fraction), 0.0), 1.0)
        outer(lo + (hi - lo) * f, message)

    return report


#: Seconds of silence before the first progress line (short runs print none);
#: the environment variable :data:`LOG_DELAY_ENV` overrides it (0: from the start).
LOG_DELAY_S = 10.0
LOG_DELAY_ENV = "COVERAGE_PLANNER_PROGRESS_DELAY_S"
#: Most seconds between two progress lines while a step is still running.
LOG_INTERVAL_S = 5.0


class ProgressLog:
    """A :data:`ProgressFn` that reports through :mod:`logging` (INFO), for a stderr that is no terminal.

    A line is logged when a new step starts and, within one step, at most every
    ``interval_s``; a step that reports nothing for ``interval_s`` (one long
    OSM read) still gets a line that often from a background heartbeat. Nothing
    is logged during the first ``delay_s``, so quick runs (and quick refusals)
    print no progress at all. Use it as a context manager: the heartbeat stops
    on exit.

    Parameters
    ----------
    log
        Where the lines go; default this module's logger, ``coverage.progress``.
    delay_s
        Seconds before the first line; default :data:`LOG_DELAY_ENV` if set, else
        :data:`LOG_DELAY_S`.
    interval_s
        Most seconds between two lines.
    clock
        Monotonic clock in seconds (tests pass a fake one).
    heartbeat
        Start the background heartbeat (off for tests with a fake clock).
    """

    def __init__(
        self,
        log: logging.Logger | None = None,
        *,
        delay_s: float | None = None,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: bool = True,
    ) -> None:
        self._log = logger if log is None else log
        self._delay_s = _delay_from_env() if delay_s is None else float(delay_s)
        self._interval_s = float(interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._start_s = clock()
        self._last_s = -math.inf
        self._fraction = 0.0
        self._message = ""
        self._logged_message: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name="progress-log", daemon=True)
            self._thread.start()

    def __call__(self, fraction: float, message: str) -> None:
        """Record ``(fraction, message)``; log it if it is a new step or the interval has passed."""
        with self._lock:
            self._fraction = min(max(float(fraction), 0.0), 1.0)
            self._message = message
            self._maybe_log(self._clock())

    def _maybe_log(self, now: float) -> None:
        if now - self._start_s < self._delay_s or not self._message:
            return
        if self._message != self._logged_message or now - self._last_s >= self._interval_s:
            self._last_s = now
            self._logged_message = self._message
            self._log.info(
                "%3.0f%% %s (%.0f s)", 100 * self._fraction, self._message, now - self._start_s
            )

    def tick(self) -> None:
        """Log the current step again if the interval has passed (what the heartbeat calls)."""
        with self._lock:
            self._maybe_log(self._clock())

    def _beat(self) -> None:
        step = min(self._interval_s, max(self._delay_s, 0.05)) / 2
        while not self._stop.wait(step):
            self.tick()

    def close(self) -> None:
        """Stop the heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ProgressLog:
        """Return self; the heartbeat runs until the block ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the heartbeat."""
        self.close()


def _delay_from_env() -> float:
    raw = os.environ.get(LOG_DELAY_ENV, "").strip()
    try:
        value = float(raw) if raw else LOG_DELAY_S
    except ValueError:
        return LOG_DELAY_S
    return value if math.isfinite(value) and value >= 0 else LOG_DELAY_S
