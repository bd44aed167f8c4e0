"""Floor-area capacity: households, per-center loads, 2SFCA and enhanced 2SFCA.

A center that is near but too small does not serve. This module turns the
audit's residents into households (population / household size), gives every
center its catchment load, and gives every demand unit the floor area it can
reach per 100 households by the two-step floating catchment area method:

1. each center ``j`` with floor area ``S_j`` divides it among the households
   within its catchment, weighted by distance decay:
   ``R_j = S_j / sum_i w(t_ij) H_i``;
2. each unit ``i`` adds up the ratios of the centers within its catchment:
   ``A_i = sum_j w(t_ij) R_j`` (m² per household; ×100 in the outputs).

Plain 2SFCA (Luo & Wang 2003) has ``w = 1`` inside the catchment; enhanced
2SFCA (Luo & Qi 2009) has step weights per band or a Gaussian. The formulas and
the ``<=`` catchment edge are those of pysal/access (``two_stage_fca``,
``enhanced_two_stage_fca``); tests/test_capacity.py checks the numbers against
that package on the same travel-time matrix.

The walking search is one bounded per-center search through
:func:`coverage.reach.pairs_within_m`; everything after it is sparse sums, so
:func:`fca_core` works on plain arrays and is tested on hand-made pairs.

Centers without a floor area are never taken as zero or as infinite: they
neither offer floor area nor take households in step 1, and a unit that has
one of them in its catchment gets ``NaN`` (unknown) instead of a number that
would be too low. Their ids are reported (:attr:`CapacityResult.centers_without_floor_area`).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from coverage.audit import AuditParams, AuditResult
from coverage.centers import CENTER_ID, FLOOR_AREA_M2
from coverage.demand import POPULATION
from coverage.errors import InputError
from coverage.names import HOUSEHOLDS as HOUSEHOLDS  # re-exported: a capacity column
from coverage.names import threshold_key
from coverage.network import WalkNetwork, speed_ms
from coverage.progress import ProgressFn
from coverage.reach import MINUTES_TO_NEAREST, NEAREST_CENTER_ID, pairs_within_m, require_snapped
from coverage.standards import (
    DEFAULT_HOUSEHOLD_SIZE,
    DEFAULT_M2_PER_100_HOUSEHOLDS,
    ComplianceParams,
    check_household_size,
    check_m2_per_100_households,
    unit_households,
)

logger = logging.getLogger(__name__)

#: m² of community service floor area per 100 households: 住房和城乡建设部办公厅、民政部办公厅
#: 《关于开展完整社区建设试点工作的通知》(2022): "每百户居民拥有综合服务设施面积不低于30平方米"
#: (the figure is defined once, in `coverage.standards`, with the household size of the 2020
#: census; the notice's number and annex were not verified). See docs/STANDARDS.md.
DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS = DEFAULT_M2_PER_100_HOUSEHOLDS
#: Step weights of the three travel-time bands of Luo & Qi (2009), Health & Place 15(4),
#: 1100-1107 (also pysal/access's default ``step_fn({10: 1, 20: 0.68, 30: 0.22})``).
LUO_QI_WEIGHTS = (1.0, 0.68, 0.22)

#: Output columns of demand units.
M2_PER_100_HOUSEHOLDS = "m2_per_100_households"
M2_2SFCA = "m2_per_100_households_2sfca"
M2_E2SFCA = "m2_per_100_households_e2sfca"
MEETS_STANDARD = "meets_capacity_standard"
#: Output columns of centers.
HOUSEHOLDS_NEAREST = "households_nearest"
HOUSEHOLDS_WITHIN = "households_within"
SUPPLY_M2_PER_100 = "supply_m2_per_100_households"
REQUIRED_M2 = "required_floor_area_m2"
HAS_FLOOR_AREA = "has_floor_area"

DecayKind = Literal["none", "step", "gaussian"]
_KINDS = ("none", "step", "gaussian")


@dataclass(frozen=True)
class Decay:
    """Distance-decay weights ``w(t)`` of a floating catchment, ``t`` in walking minutes.

    Parameters
    ----------
    kind
        ``"none"``: ``w = 1`` inside the catchment (plain 2SFCA). ``"step"``:
        ``w = weight`` of the first band whose upper edge is ``>= t`` (0 beyond
        the last; pysal/access's ``step_fn``). ``"gaussian"``:
        ``w = exp(-t² / (2 σ²))`` inside the catchment (pysal/access's ``gaussian``).
    steps_min
        Step bands as ``(upper_edge_min, weight)``, increasing edges, weights >= 0.
        Empty with ``kind="step"``: Luo & Qi's three bands on thirds of the catchment.
    sigma_min
        Width of the Gaussian in minutes; ``None``: half the catchment.
    """

    kind: DecayKind = "none"
    steps_min: tuple[tuple[float, float], ...] = ()
    sigma_min: float | None = None

    def __post_init__(self) -> None:
        """Validate the kind, the bands and the width."""
        if self.kind not in _KINDS:
            msg = f"`decay` must be one of {', '.join(_KINDS)}; got {self.kind!r}."
            raise InputError(msg)
        steps = tuple((float(e), float(w)) for e, w in self.steps_min)
        edges = [e for e, _ in steps]
        if any(not math.isfinite(e) or e <= 0 for e in edges) or edges != sorted(set(edges)):
            msg = f"step decay bands need increasing positive upper edges in minutes, e.g. 5=1,10=0.68,15=0.22; got {self.steps_min!r}."
            raise InputError(msg)
        if any(not math.isfinite(w) or w < 0 for _, w in steps):
            msg = f"step decay weights must be finite and >= 0; got {self.steps_min!r}."
            raise InputError(msg)
        if steps and self.kind != "step":
            msg = f"`steps_min` only applies to the step decay; got kind {self.kind!r}."
            raise InputError(msg)
        if self.sigma_min is not None and not (
            math.isfinite(self.sigma_min) and self.sigma_min > 0
        ):
            msg = f"the Gaussian width `sigma_min` must be a positive number of minutes; got {self.sigma_min!r}."
            raise InputError(msg)
        object.__setattr__(self, "steps_min", steps)

    @classmethod
    def parse(cls, text: str) -> Decay:
        """Read ``none``, ``step``, ``step:5=1,10=0.68,15=0.22``, ``gaussian`` or ``gaussian:SIGMA_MIN``."""
        kind, _, rest = str(text).strip().lower().partition(":")
        if kind not in _KINDS:
            msg = f"`--decay` must be none, step[:MIN=W,...] or gaussian[:SIGMA_MIN]; got {text!r}."
            raise InputError(msg)
        rest = rest.strip()
        if kind == "step" and rest:
            bands: list[tuple[float, float]] = []
            for item in rest.split(","):
                edge, eq, weight = item.partition("=")
                try:
                    bands.append((float(edge), float(weight)))
                except ValueError as exc:
                    msg = f"`--decay step:` takes MIN=WEIGHT pairs, e.g. step:5=1,10=0.68,15=0.22; got {item!r}."
                    raise InputError(msg) from exc
                if not eq:
                    msg = f"`--decay step:` takes MIN=WEIGHT pairs; got {item!r}."
                    raise InputError(msg)
            return cls("step", tuple(bands))
        if kind == "gaussian" and rest:
            try:
                return cls("gaussian", sigma_min=float(rest))
            except ValueError as exc:
                msg = f"`--decay gaussian:` takes the width in minutes, e.g. gaussian:7.5; got {rest!r}."
                raise InputError(msg) from exc
        if rest:
            msg = f"`--decay none` takes no value; got {text!r}."
            raise InputError(msg)
        return cls(kind)  # type: ignore[arg-type]

    def catchment_min(self, default_min: float) -> float:
        """Return the catchment: the last step edge, else ``default_min`` (the largest threshold)."""
        return self.steps_min[-1][0] if self.steps_min else float(default_min)

    def bands(self, catchment_min: float) -> tuple[tuple[float, float], ...]:
        """Return the step bands in force (Luo & Qi's thirds of the catchment when none are given)."""
        if self.steps_min:
            return self.steps_min
        return tuple(
            (catchment_min * (i + 1) / len(LUO_QI_WEIGHTS), w) for i, w in enumerate(LUO_QI_WEIGHTS)
        )

    def sigma(self, catchment_min: float) -> float:
        """Return the Gaussian width in minutes (half the catchment unless given)."""
        return float(self.sigma_min) if self.sigma_min is not None else catchment_min / 2.0

    def weights(self, minutes: NDArray[np.float64], catchment_min: float) -> NDArray[np.float64]:
        """Return ``w(t)`` for each travel time; 0 beyond ``catchment_min``."""
        t = np.asarray(minutes, dtype=np.float64)
        inside = t <= catchment_min
        if self.kind == "none":
            w = np.ones_like(t)
        elif self.kind == "gaussian":
            s = self.sigma(catchment_min)
            w = np.exp(-t * t / (2.0 * s**2))
        else:
            bands = self.bands(catchment_min)
            edges = np.array([e for e, _ in bands])
            values = np.array([v for _, v in bands] + [0.0])
            w = values[np.searchsorted(edges, t, side="left")]
        return np.where(inside, w, 0.0)

    def describe(self, catchment_min: float) -> dict[str, Any]:
        """Return the decay as written to summary.json."""
        out: dict[str, Any] = {"kind": self.kind, "catchment_min": catchment_min}
        if self.kind == "step":
            out["steps"] = {threshold_key(e): w for e, w in self.bands(catchment_min)}
        if self.kind == "gaussian":
            out["sigma_min"] = self.sigma(catchment_min)
        return out


@dataclass(frozen=True)
class CapacityParams:
    """Parameters of the capacity audit, validated on creation.

    Parameters
    ----------
    household_size
        Persons per household (default: the 2020 census, :data:`DEFAULT_HOUSEHOLD_SIZE`).
    standard_m2_per_100_households
        Floor area per 100 households a unit must reach to meet the standard
        (default :data:`DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS`).
    decay
        Decay of the headline column ``m2_per_100_households`` (default: none,
        plain 2SFCA with the largest audited threshold as catchment).
    enhanced
        Decay of the ``m2_per_100_households_e2sfca`` column (default: Luo & Qi's
        step weights on thirds of the catchment).
    catchment_min
        Catchment in minutes; ``None``: the audit's largest threshold (or the
        decay's last step edge).
    """

    household_size: float = DEFAULT_HOUSEHOLD_SIZE
    standard_m2_per_100_households: float = DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS
    decay: Decay = field(default_factory=Decay)
    enhanced: Decay = field(default_factory=lambda: Decay("step"))
    catchment_min: float | None = None

    def __post_init__(self) -> None:
        """Validate the numbers."""
        hs = check_household_size(self.household_size)
        st = check_m2_per_100_households(self.standard_m2_per_100_households)
        c = self.catchment_min
        if c is not None and not (math.isfinite(c) and 0 < c <= 120):
            msg = f"`catchment_min` must be in (0, 120] minutes; got {c!r}."
            raise InputError(msg)
        for name in ("decay", "enhanced"):
            if not isinstance(getattr(self, name), Decay):
                msg = f"`{name}` must be a Decay; got {type(getattr(self, name)).__name__}."
                raise InputError(msg)
        object.__setattr__(self, "household_size", hs)
        object.__setattr__(self, "standard_m2_per_100_households", st)


# --- the matrix core --------------------------------------------------------------------


@dataclass(frozen=True)
class Fca:
    """A floating-catchment result on arrays (no geography).

    ``m2_per_household`` per unit (``NaN`` when a center without floor area lies
    in its catchment), ``supply_m2_per_household`` per center (``R_j``; ``NaN``
    without a floor area; 0 when no household lies in its catchment) and
    ``weighted_households`` per center (the step-1 denominator).
    """

    m2_per_household: NDArray[np.float64]
    supply_m2_per_household: NDArray[np.float64]
    weighted_households: NDArray[np.float64]


def fca_core(
    source: NDArray[np.int64],
    point: NDArray[np.int64],
    minutes: NDArray[np.float64],
    *,
    households: NDArray[np.float64],
    floor_area_m2: NDArray[np.float64],
    decay: Decay,
    catchment_min: float,
) -> Fca:
    """Return the two-step floating catchment ratios of (center, unit, minutes) pairs.

    Parameters
    ----------
    source, point, minutes
        One row per (center, unit) pair: indices and walking minutes; pairs
        beyond ``catchment_min`` are ignored.
    households
        Households per unit.
    floor_area_m2
        Floor area per center; ``NaN`` when unknown.
    decay
        The weights ``w(t)``.
    catchment_min
        Largest travel time of the catchment (inclusive).

    Returns
    -------
    Fca
        Per unit ``A_i`` and per center ``R_j`` in m² per household.
    """
    h = np.asarray(households, dtype=np.float64)
    s = np.asarray(floor_area_m2, dtype=np.float64)
    w = decay.weights(np.asarray(minutes, dtype=np.float64), catchment_min)
    keep = w > 0
    src, pt, w = np.asarray(source)[keep], np.asarray(point)[keep], w[keep]
    known_center = np.isfinite(s)
    known = known_center[src]
    demand_j = np.bincount(src[known], weights=w[known] * h[pt[known]], minlength=s.size).astype(
        np.float64
    )
    ratio = np.zeros(s.size)
    np.divide(s, demand_j, out=ratio, where=known_center & (demand_j > 0))
    ratio[~known_center] = np.nan
    a = np.bincount(pt[known], weights=w[known] * ratio[src[known]], minlength=h.size).astype(
        np.float64
    )
    unknown_units = np.unique(pt[~known])
    a[unknown_units] = np.nan
    return Fca(a, ratio, demand_j)


# --- the geographic wrapper -------------------------------------------------------------


@dataclass(frozen=True)
class CapacityResult:
    """The capacity audit (see docs/CAPACITY.md).

    ``demand``: the audit's demand frame plus ``households``,
    ``m2_per_100_households`` (the chosen decay), ``m2_per_100_households_2sfca``,
    ``m2_per_100_households_e2sfca``, ``meets_capacity_standard`` (None when
    unknown). ``centers``: the audit's centers plus ``floor_area_m2``,
    ``has_floor_area``, ``households_nearest``, ``households_within``,
    ``supply_m2_per_100_households``, ``required_floor_area_m2``.
    """

    params: CapacityParams
    catchment_min: float
    demand: gpd.GeoDataFrame
    centers: gpd.GeoDataFrame
    households_total: float
    share_meeting_standard: float
    share_unknown: float
    centers_without_floor_area: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """Return the ``capacity`` section of summary.json."""
        p = self.params
        return {
            "households": self.households_total,
            "household_size": p.household_size,
            "standard_m2_per_100_households": p.standard_m2_per_100_households,
            "share_meeting_standard": self.share_meeting_standard,
            "share_unknown": self.share_unknown,
            "catchment_min": self.catchment_min,
            "decay": p.decay.describe(p.decay.catchment_min(self.catchment_min)),
            "enhanced_decay": p.enhanced.describe(p.enhanced.catchment_min(self.catchment_min)),
            "floor_area_m2": float(np.nansum(self.centers[FLOOR_AREA_M2].to_numpy(float))),
            "centers_with_floor_area": int(self.centers[HAS_FLOOR_AREA].sum()),
            "centers_without_floor_area": len(self.centers_without_floor_area),
            "centers_without_floor_area_ids": list(self.centers_without_floor_area),
        }


def floor_areas(centers: gpd.GeoDataFrame) -> NDArray[np.float64]:
    """Return the floor area per center (``NaN`` when unknown), refusing negative values.

    Raises
    ------
    InputError
        The centers have no ``floor_area_m2`` column, or one is negative.
    """
    if FLOOR_AREA_M2 not in centers.columns:
        msg = f"the centers have no {FLOOR_AREA_M2!r} column, so their capacity is unknown; give a centers file with floor areas in m² (its column with --capacity-column NAME)."
        raise InputError(msg)
    s: NDArray[np.float64] = np.array(
        centers[FLOOR_AREA_M2].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
    )
    bad = np.isfinite(s) & (s < 0) | np.isinf(s)
    if bad.any():
        ids = centers[CENTER_ID].to_numpy(dtype=object)[bad][:5].tolist()
        msg = f"floor areas must be finite and >= 0 m²; check the centers {ids}."
        raise InputError(msg)
    return s


def _pairs_minutes(
    net: WalkNetwork,
    audit: AuditResult,
    catchment_min: float,
    progress: ProgressFn | None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Return every (center, unit) pair within ``catchment_min`` and its walking minutes."""
    ms = speed_ms(audit.params.speed_kmh)
    src = require_snapped(net, audit.centers, "centers")
    pts = require_snapped(net, audit.demand, "demand")
    pairs = pairs_within_m(net, src, pts, limit_m=catchment_min * 60.0 * ms, progress=progress)
    minutes = pairs.dist_m / ms / 60.0
    ok = minutes <= catchment_min
    return pairs.source[ok], pairs.point[ok], minutes[ok]


def capacity_audit(
    net: WalkNetwork,
    audit: AuditResult,
    params: CapacityParams | None = None,
    *,
    progress: ProgressFn | None = None,
) -> CapacityResult:
    """Audit floor-area capacity on top of ``audit`` (same centers, demand and speed).

    Parameters
    ----------
    net
        The walking network of the audit.
    audit
        The coverage audit; its centers carry ``floor_area_m2`` (``NaN`` when unknown).
    params
        Capacity parameters (defaults: 2.62 persons per household, 30 m² per 100
        households, plain 2SFCA on the largest threshold).
    progress
        ``progress(fraction, message)`` of the walking search.

    Returns
    -------
    CapacityResult
        Demand with ``households``, ``m2_per_100_households``,
        ``m2_per_100_households_2sfca``, ``m2_per_100_households_e2sfca``,
        ``meets_capacity_standard``; centers with ``floor_area_m2``,
        ``has_floor_area``, ``households_nearest``, ``households_within``,
        ``supply_m2_per_100_households``, ``required_floor_area_m2``.

    Raises
    ------
    InputError
        The centers carry no floor-area column, or a negative floor area.
    """
    params = params or CapacityParams()
    s = floor_areas(audit.centers)
    default_c = params.catchment_min or audit.params.max_threshold_min
    catchments = [d.catchment_min(default_c) for d in (params.decay, params.enhanced)]
    widest = max(default_c, *catchments)
    src, pt, minutes = _pairs_minutes(net, audit, widest, progress)
    # a census's households win over population / household size (standards.unit_households)
    h = unit_households(audit.demand, params.household_size)

    def run(decay: Decay, catchment: float) -> Fca:
        return fca_core(
            src, pt, minutes, households=h, floor_area_m2=s, decay=decay, catchment_min=catchment
        )

    plain = run(Decay(), default_c)
    enhanced = run(params.enhanced, catchments[1])
    chosen = run(params.decay, catchments[0]) if params.decay.kind != "none" else plain
    out_d = audit.demand.copy()
    out_d[HOUSEHOLDS] = h
    out_d[M2_PER_100_HOUSEHOLDS] = 100.0 * chosen.m2_per_household
    out_d[M2_2SFCA] = 100.0 * plain.m2_per_household
    out_d[M2_E2SFCA] = 100.0 * enhanced.m2_per_household
    value = out_d[M2_PER_100_HOUSEHOLDS].to_numpy(np.float64)
    known = np.isfinite(value)
    meets = known & (value >= params.standard_m2_per_100_households - 1e-9)
    out_d[MEETS_STANDARD] = np.array(
        [bool(m) if k else None for m, k in zip(meets, known, strict=True)], dtype=object
    )
    out_c = _center_loads(audit, params, s, h, (src, pt, minutes), default_c, plain)
    pop = audit.demand[POPULATION].to_numpy(np.float64)
    total = float(pop.sum())
    missing = tuple(str(x) for x in audit.centers[CENTER_ID].to_numpy(object)[~np.isfinite(s)])
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(s)} centers have no floor area ({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}); units within their catchment get no 2SFCA value (unknown, not zero).",
            stacklevel=2,
        )
    result = CapacityResult(
        params=params,
        catchment_min=float(default_c),
        demand=out_d,
        centers=out_c,
        households_total=float(h.sum()),
        share_meeting_standard=float(pop[meets].sum() / total) if total > 0 else 0.0,
        share_unknown=float(pop[~known].sum() / total) if total > 0 else 0.0,
        centers_without_floor_area=missing,
    )
    logger.info(
        "capacity: %.0f households, %.1f%% meet %.0f m² per 100 households (%.1f%% unknown)",
        result.households_total,
        100 * result.share_meeting_standard,
        params.standard_m2_per_100_households,
        100 * result.share_unknown,
    )
    return result


def households_nearest(audit: AuditResult, households: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return per center the households of the units it is nearest to, within the largest threshold.

    The units counted are those of the audit's ``population_nearest`` (nearest
    center, walking minutes within the largest threshold); their households are
    :func:`coverage.standards.unit_households` (a census's where known, else
    population / household size), so without a census this is
    ``population_nearest / household_size`` and with one the census's own count.
    """
    n = len(audit.centers)
    minutes = audit.demand[MINUTES_TO_NEAREST].to_numpy(dtype=np.float64, na_value=np.nan)
    idx = pd.Index(audit.centers[CENTER_ID]).get_indexer(audit.demand[NEAREST_CENTER_ID])
    ok = (idx >= 0) & (minutes <= audit.params.max_threshold_min)
    return np.bincount(idx[ok], weights=households[ok], minlength=n).astype(np.float64)


def _center_loads(
    audit: AuditResult,
    params: CapacityParams,
    s: NDArray[np.float64],
    h: NDArray[np.float64],
    pairs: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    catchment_min: float,
    plain: Fca,
) -> gpd.GeoDataFrame:
    """Return the centers with their floor area, households nearest and within, and supply ratio."""
    src, pt, minutes = pairs
    out = audit.centers.copy()
    inside = minutes <= catchment_min
    within = np.bincount(src[inside], weights=h[pt[inside]], minlength=s.size)
    out[FLOOR_AREA_M2] = s
    out[HAS_FLOOR_AREA] = np.isfinite(s)
    out[HOUSEHOLDS_NEAREST] = households_nearest(audit, h)
    out[HOUSEHOLDS_WITHIN] = within
    out[SUPPLY_M2_PER_100] = 100.0 * plain.supply_m2_per_household
    out[REQUIRED_M2] = within * params.standard_m2_per_100_households / 100.0
    return out


def compliance_params(params: AuditParams, cp: CapacityParams | None) -> ComplianceParams:
    """Return the compliance tables' parameters: the audit's, at the capacity audit's household size.

    With a capacity audit the tables also have the floor area within reach, at its
    household size and floor-area standard.
    """
    if cp is None:
        return params.compliance
    return replace(
        params.compliance,
        household_size=cp.household_size,
        m2_per_100_households=cp.standard_m2_per_100_households,
    )
