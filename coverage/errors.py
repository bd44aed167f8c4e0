"""Exceptions: one root, :class:`PlannerError`, that callers can catch.

Every subclass also inherits the builtin it resembles, so code that catches
``ValueError`` or ``MemoryError`` keeps working. A message says what was
expected, what arrived, and how to fix it.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Root of every error raised on purpose by Coverage Planner."""


class InputError(PlannerError, ValueError):
    """A file, parameter or upload that cannot be used as given."""


class ResourceLimitError(InputError):
    """Work refused because the input would exceed a memory, size or time budget.

    A subclass of :class:`InputError`: the fix is a smaller input or a larger
    budget, and the CLI reports it with exit code 2 like any other bad input.
    """


class SolverError(PlannerError, RuntimeError):
    """An optimisation model that could not be solved (infeasible, solver failure)."""
