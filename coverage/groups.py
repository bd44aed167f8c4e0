"""Coverage per population group (e.g. ``60岁及以上``, ``0-14岁``), each at its own walking speed.

A population file may carry group columns next to the total; :mod:`coverage.demand`
spreads them over the demand units like the total and keeps them as
``population_<group>`` columns. Walking distances in meters do not depend on
the speed, so a group's minutes are the audit's minutes scaled by
``audit speed / group speed``: no new search is needed.

Default speeds: the audit's, except for groups whose name says they are older
residents (``60岁及以上``, ``65岁及以上``, ``60+``, ``老年``...), who walk at
:data:`OLDER_SPEED_KMH`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from coverage.audit import AuditResult
from coverage.errors import InputError
from coverage.names import GROUP_PREFIX as GROUP_PREFIX  # re-exported: the group columns
from coverage.names import threshold_key
from coverage.reach import MINUTES_TO_NEAREST

logger = logging.getLogger(__name__)

#: 3.3 km/h ≈ 0.92 m/s: the 15th-percentile walking speed of pedestrians older than 60
#: (3.03 ft/s) measured at signalised crossings in TCRP Report 112 / NCHRP Report 562
#: (Fitzpatrick et al., 2006); see docs/CAPACITY.md.
OLDER_SPEED_KMH = 3.3
#: Group names taken as older residents (default speed :data:`OLDER_SPEED_KMH`).
OLDER_PATTERN = re.compile(
    r"(6[05]|70|80)\s*(岁及以上|岁以上|\+|岁\+)|老年|elderly|older|aged", re.I
)


def group_column(name: str) -> str:
    """Return the demand column of group ``name``: ``population_<name>``."""
    return f"{GROUP_PREFIX}{name}"


def group_names(demand: pd.DataFrame) -> list[str]:
    """Return the groups a demand frame carries (its ``population_<group>`` columns)."""
    return [str(c)[len(GROUP_PREFIX) :] for c in demand.columns if str(c).startswith(GROUP_PREFIX)]


@dataclass(frozen=True)
class GroupParams:
    """Walking speed per population group, validated on creation.

    Parameters
    ----------
    speeds_kmh
        ``{group: km/h}``; groups not named here walk at the audit's speed, or at
        :data:`OLDER_SPEED_KMH` when their name marks older residents.
    """

    speeds_kmh: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate the speeds."""
        speeds: dict[str, float] = {}
        for name, v in dict(self.speeds_kmh).items():
            try:
                f = float(v)
            except (TypeError, ValueError) as exc:
                msg = f"the walking speed of group {name!r} must be km/h; got {v!r}."
                raise InputError(msg) from exc
            if not (math.isfinite(f) and 0 < f <= 30):
                msg = f"the walking speed of group {name!r} must be in (0, 30] km/h; got {v!r}."
                raise InputError(msg)
            speeds[str(name)] = f
        object.__setattr__(self, "speeds_kmh", speeds)

    def speed_of(self, group: str, audit_speed_kmh: float) -> float:
        """Return the walking speed of ``group`` in km/h."""
        if group in self.speeds_kmh:
            return float(self.speeds_kmh[group])
        if OLDER_PATTERN.search(group):
            return OLDER_SPEED_KMH
        return float(audit_speed_kmh)


def group_coverage(audit: AuditResult, params: GroupParams | None = None) -> pd.DataFrame:
    """Return the coverage of every population group at every audited threshold.

    Parameters
    ----------
    audit
        The audit; its demand carries ``population_<group>`` columns.
    params
        Speeds per group.

    Returns
    -------
    pandas.DataFrame
        One row per group and threshold: ``group``, ``speed_kmh``, ``minutes``
        (the threshold), ``population`` (the group's total), ``population_covered``,
        ``share``. Empty (with these columns) when the demand has no groups.
    """
    params = params or GroupParams()
    demand = audit.demand
    speed = float(audit.params.speed_kmh)
    minutes = demand[MINUTES_TO_NEAREST].to_numpy(np.float64)
    minutes = np.where(np.isnan(minutes), np.inf, minutes)
    rows: list[dict[str, Any]] = []
    unknown = sorted(set(params.speeds_kmh) - set(group_names(demand)))
    if unknown:
        msg = f"walking speeds were given for groups the population has not: {unknown}; its groups are {group_names(demand) or 'none'} (population file columns named with --population-groups)."
        raise InputError(msg)
    for name in group_names(demand):
        pop = demand[group_column(name)].to_numpy(np.float64)
        total = float(pop.sum())
        v = params.speed_of(name, speed)
        own = minutes * (speed / v)  # same meters, another speed
        for t in audit.params.thresholds_min:
            covered = float(pop[own <= t].sum())
            rows.append(
                {
                    "group": name,
                    "speed_kmh": v,
                    "minutes": float(t),
                    "population": total,
                    "population_covered": covered,
                    "share": covered / total if total > 0 else 0.0,
                }
            )
    cols = ["group", "speed_kmh", "minutes", "population", "population_covered", "share"]
    return pd.DataFrame(rows, columns=cols)


def groups_block(table: pd.DataFrame) -> dict[str, Any]:
    """Return the ``groups`` section of summary.json: per group its speed, population and coverage."""
    out: dict[str, Any] = {}
    for name, rows in table.groupby("group", sort=False):
        out[str(name)] = {
            "speed_kmh": float(rows["speed_kmh"].iloc[0]),
            "population": float(rows["population"].iloc[0]),
            "coverage": {
                threshold_key(r.minutes): {
                    "population_covered": float(r.population_covered),
                    "share": float(r.share),
                }
                for r in rows.itertuples()
            },
        }
    return out
