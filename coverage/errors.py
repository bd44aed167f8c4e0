"""Exceptions: one root, :class:`PlannerError`, that callers can catch.

Every subclass also inherits the builtin it resembles, so code that catches
``ValueError`` or ``MemoryError`` keeps working. A message says what was
expected, what arrived, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping


class PlannerError(Exception):
    """Root of every error raised on purpose by Coverage Planner.

    Parameters
    ----------
    *args
        The message (English, for logs and the CLI).
    code
        Optional stable id of the message (e.g. ``"file.empty"``): a user interface shows
        its own translation of it (the app looks up ``app.err.<code>`` in
        :mod:`coverage.i18n`) instead of the English message.
    params
        Values for that translation's placeholders (e.g. ``{"name": "centers.csv"}``).
    """

    def __init__(
        self, *args: object, code: str | None = None, params: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(*args)
        self.code = code
        self.params: dict[str, object] = dict(params or {})


class InputError(PlannerError, ValueError):
    """A file, parameter or upload that cannot be used as given."""


class ResourceLimitError(InputError):
    """Work refused because the input would exceed a memory, size or time budget.

    A subclass of :class:`InputError`: the fix is a smaller input or a larger
    budget, and the CLI reports it with exit code 2 like any other bad input.
    """


class SolverError(PlannerError, RuntimeError):
    """An optimisation model that could not be solved (infeasible, solver failure)."""


class PlannerWarning(UserWarning):
    """A recoverable oddity the planner should see (``warnings.warn(PlannerWarning(...))``).

    Like :class:`PlannerError` it may carry a ``code`` and ``params`` so that a user
    interface shows its own translation (the app looks up ``app.warn.<code>``).
    """

    def __init__(
        self, *args: object, code: str | None = None, params: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(*args)
        self.code = code
        self.params: dict[str, object] = dict(params or {})
