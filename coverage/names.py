"""Output names built from a threshold: the one place that spells ``"5"``, ``covered_5``...

A threshold in minutes is keyed by its shortest decimal form (``5.0`` → ``"5"``,
``7.5`` → ``"7.5"``). Summary keys, per-unit columns, per-center columns and
per-level share columns are all built here, so the audit, the export, the
batch and the app cannot spell one differently.
"""

from __future__ import annotations

from collections.abc import Iterable

from coverage.errors import InputError


def threshold_key(minutes: float) -> str:
    """Return the key of a threshold in outputs: ``5.0`` → ``"5"``, ``7.5`` → ``"7.5"``."""
    return f"{float(minutes):g}"


def check_threshold_keys(thresholds_min: Iterable[float]) -> None:
    """Refuse thresholds whose output keys clash (``5`` and ``5.0000000001`` are both ``"5"``).

    Raises
    ------
    InputError
        Two thresholds share a key; the message names them and the key.
    """
    seen: dict[str, float] = {}
    for t in thresholds_min:
        key = threshold_key(t)
        if key in seen and float(seen[key]) != float(t):
            msg = f"thresholds {seen[key]!r} and {float(t)!r} minutes would both be written as {key!r} (outputs keep 6 significant digits); give thresholds that differ in their first 6 digits, e.g. 5,15."
            raise InputError(msg)
        seen.setdefault(key, float(t))


def covered_column(minutes: float) -> str:
    """Return the per-unit boolean column of a threshold, e.g. ``covered_15``."""
    return f"covered_{threshold_key(minutes)}"


def within_column(minutes: float) -> str:
    """Return the per-center population column of a threshold, e.g. ``population_within_5``."""
    return f"population_within_{threshold_key(minutes)}"


def share_column(minutes: float) -> str:
    """Return the share column of a threshold, e.g. ``share_15``."""
    return f"share_{threshold_key(minutes)}"


def uncovered_column(minutes: float) -> str:
    """Return the column of the residents not covered within a threshold, e.g. ``uncovered_population_15``."""
    return f"uncovered_population_{threshold_key(minutes)}"
