"""Output names built from a threshold: the one place that spells ``"5"``, ``"300m"``, ``covered_5``...

A threshold is a time in minutes or a network walking distance in meters. A time
is keyed by its shortest decimal form (``5.0`` → ``"5"``, ``7.5`` → ``"7.5"``), a
distance by the same form with an ``m`` suffix (``300.0`` → ``"300m"``). Summary
keys, per-unit columns, per-center columns and per-level share columns are all
built here, so the audit, the export, the batch and the app cannot spell one
differently. The per-level judgement of a standard has its own column per level
(:func:`level_covered_column`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

from coverage.errors import InputError

#: Unit of a time threshold (the default everywhere).
MINUTES_UNIT: Final = "min"
#: Unit of a distance threshold; also the suffix of its key (``"300m"``).
METERS_UNIT: Final = "m"
Unit = Literal["min", "m"]
#: Households per demand unit (a census's, or the capacity audit's estimate).
HOUSEHOLDS: Final = "households"
#: Prefix of a population group's demand column (``population_60岁及以上``).
GROUP_PREFIX: Final = "population_"
#: Longest walking time any threshold, level or standard may ask for, in minutes.
MAX_THRESHOLD_MIN: Final = 120.0


def threshold_key(value: float, unit: Unit = MINUTES_UNIT) -> str:
    """Return the key of a threshold in outputs: ``5.0`` → ``"5"``; ``300.0, unit="m"`` → ``"300m"``."""
    if unit == METERS_UNIT:
        return f"{float(value):g}{METERS_UNIT}"
    if unit != MINUTES_UNIT:
        msg = f"`unit` must be {MINUTES_UNIT!r} or {METERS_UNIT!r}; got {unit!r}."
        raise InputError(msg)
    return f"{float(value):g}"


def check_threshold_keys(thresholds: Iterable[float], unit: Unit = MINUTES_UNIT) -> None:
    """Refuse thresholds whose output keys clash (``5`` and ``5.0000000001`` are both ``"5"``).

    Raises
    ------
    InputError
        Two thresholds share a key; the message names them and the key.
    """
    what = "meters" if unit == METERS_UNIT else "minutes"
    example = "300,500,1000" if unit == METERS_UNIT else "5,15"
    seen: dict[str, float] = {}
    for t in thresholds:
        key = threshold_key(t, unit)
        if key in seen and float(seen[key]) != float(t):
            msg = f"thresholds {seen[key]!r} and {float(t)!r} {what} would both be written as {key!r} (outputs keep 6 significant digits); give thresholds that differ in their first 6 digits, e.g. {example}."
            raise InputError(msg)
        seen.setdefault(key, float(t))


def covered_column(value: float, unit: Unit = MINUTES_UNIT) -> str:
    """Return the per-unit boolean column of a threshold, e.g. ``covered_15``, ``covered_300m``."""
    return f"covered_{threshold_key(value, unit)}"


def within_column(value: float, unit: Unit = MINUTES_UNIT) -> str:
    """Return the per-center population column of a threshold, e.g. ``population_within_5``."""
    return f"population_within_{threshold_key(value, unit)}"


def share_column(value: float, unit: Unit = MINUTES_UNIT) -> str:
    """Return the share column of a threshold, e.g. ``share_15``, ``share_500m``."""
    return f"share_{threshold_key(value, unit)}"


def uncovered_column(value: float, unit: Unit = MINUTES_UNIT) -> str:
    """Return the column of the residents not covered within a threshold, e.g. ``uncovered_population_15``."""
    return f"uncovered_population_{threshold_key(value, unit)}"


def level_covered_column(level: str) -> str:
    """Return the per-unit boolean column of a level judged against a standard, e.g. ``covered_level_community``."""
    return f"covered_level_{level}"
