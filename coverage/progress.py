"""Progress reporting: the one callback type and the one way to map a step onto a range.

Long steps accept ``progress(fraction, message)`` with ``fraction`` in 0..1.
A step inside a larger run reports through :func:`sub_progress`, which maps
its own 0..1 onto ``lo..hi`` of the whole run. The library never prints; the
CLI turns the callback into a progress bar, the app into ``st.progress``.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(fraction, message)``: ``fraction`` in 0..1 of the whole job.
ProgressFn = Callable[[float, str], None]


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
