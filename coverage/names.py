"""Output names built from a threshold: the one place that spells ``"5"``, ``covered_5``...

A threshold in minutes is keyed by its shortest decimal form (``5.0`` → ``"5"``,
``7.5`` → ``"7.5"``). Summary keys, per-unit columns, per-center columns and
per-level share columns are all built here, so the audit, the export, the
batch and the app cannot spell one differently.
"""

from __future__ import annotations


def threshold_key(minutes: float) -> str:
    """Return the key of a threshold in outputs: ``5.0`` → ``"5"``, ``7.5`` → ``"7.5"``."""
    return f"{float(minutes):g}"


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
