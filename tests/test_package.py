"""Guard: `coverage` must be this project's package, never coverage.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]


def test_coverage_resolves_to_this_repo() -> None:
    assert Path(coverage.__file__).resolve().parent == ROOT / "coverage"
    assert hasattr(coverage, "PlannerError")


def test_coverage_py_is_not_installed() -> None:
    # coverage.py installs `coverage.cmdline`; our package has no such module.
    assert importlib.util.find_spec("coverage.cmdline") is None
