"""The coverage audit: who can walk to a service center within each threshold.

:func:`audit` runs, through :mod:`coverage.reach`, one multi-source search for
the minutes to the nearest center and bounded per-center searches for the
per-center statistics; it summarises coverage per threshold and per level of
service and the uncovered residential areas, adds the service areas of
:mod:`coverage.isochrones`, and returns one frozen :class:`AuditResult`.
Its inputs are the frames as loaded (validated and snapped once, by
:mod:`coverage.centers` and :mod:`coverage.demand`); the entry only checks
that contract.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from coverage.centers import CENTER_ID, LEVEL
from coverage.demand import POPULATION
from coverage.errors import InputError
from coverage.isochrones import (
    ALL_CENTERS,
    DEFAULT_CORRIDOR_M,
    DEFAULT_MIN_HOLE_AREA_M2,
    MINUTES_FROM,
    MINUTES_TO,
    AreaSpec,
    area_sets_and_bands,
    check_thresholds,
    distance_spec,
    minute_spec,
)
from coverage.names import (
    MAX_THRESHOLD_MIN,
    METERS_UNIT,
    MINUTES_UNIT,
    Unit,
    check_threshold_keys,
    covered_column,
    level_covered_column,
    share_column,
    threshold_key,
    within_column,
)
from coverage.network import DEFAULT_SPEED_KMH, WalkNetwork, speed_ms
from coverage.osmcache import derived_key, derived_path, load_frame, save_frame
from coverage.outcache import geometry_digest
from coverage.parallel import worker_threads
from coverage.progress import ProgressFn
from coverage.reach import (
    MINUTES_TO_NEAREST,
    NEAREST_CENTER_ID,
    Snapped,
    center_ids,
    nearest_frame,
    nearest_points_m,
    pairs_within_m,
    require_snapped,
)
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M
from coverage.standards import (
    DEFAULT_HOUSEHOLD_SIZE,
    MAX_DISTANCE_M,
    ComplianceParams,
    Standard,
    resolve_standard,
)

logger = logging.getLogger(__name__)

#: Output columns (and ``minutes_to_nearest``, ``nearest_center_id`` from :mod:`coverage.reach`;
#: ``covered_<t>``, ``population_within_<t>`` and ``share_<t>`` per threshold).
POPULATION_NEAREST = "population_nearest"
MINUTES = "minutes"
#: Network walking meters to the nearest center, access legs included (NaN when unreachable).
METERS_TO_NEAREST = "meters_to_nearest"
#: Columns of distance service areas and bands (``meters``, ``meters_from``, ``meters_to``).
METERS = "meters"
METERS_FROM = "meters_from"
METERS_TO = "meters_to"
AREA_M2 = "area_m2"
#: Above this many centers the audit builds only the union service area per
#: threshold unless asked for per-center polygons (see :func:`audit`).
PER_CENTER_POLYGONS_MAX = 200


@dataclass(frozen=True)
class AuditParams:
    """Parameters of an audit, validated on creation.

    Parameters
    ----------
    speed_kmh
        Walking speed, in (0, 30] km/h.
    thresholds_min
        Strictly increasing positive minutes, at most 120 (e.g. ``(5, 15)``).
    corridor_m
        Half-width of the street corridor of service-area polygons.
    level_thresholds_min
        Minutes that apply to each level of service, e.g.
        ``{"community": 5, "street": 15}``; ``None`` skips per-level standards.
    min_hole_area_m2
        Holes of service areas smaller than this are filled.
    thresholds_m
        Network walking distances, strictly increasing, at most
        :data:`~coverage.standards.MAX_DISTANCE_M` (e.g. ``(300, 500, 1000)``),
        answered by the same search as the minutes and independent of the speed;
        keyed ``"300m"`` in outputs.
    standard
        A :class:`~coverage.standards.Standard` (or a preset key such as
        ``"gb50180"``): each level it judges is audited by its own centers
        against its own threshold. Exclusive with ``level_thresholds_min``.
    household_size
        Persons per household for the compliance table (default 2.62, 2020 census).
    compliance_target
        Share of residents an area must have within the standard; ``None``: the
        standard's own target, else :data:`~coverage.standards.DEFAULT_COMPLIANCE_TARGET`.
    """

    speed_kmh: float = DEFAULT_SPEED_KMH
    thresholds_min: tuple[float, ...] = (5.0, 15.0)
    corridor_m: float = DEFAULT_CORRIDOR_M
    level_thresholds_min: Mapping[str, float] | None = None
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2
    thresholds_m: tuple[float, ...] = ()
    standard: Standard | None = None
    household_size: float = DEFAULT_HOUSEHOLD_SIZE
    compliance_target: float | None = None

    def __post_init__(self) -> None:
        """Validate the parameters and normalise thresholds and level standards."""
        speed_ms(self.speed_kmh)  # raises InputError with a helpful message
        try:
            ts = tuple(float(t) for t in self.thresholds_min)
        except (TypeError, ValueError) as exc:
            msg = f"`thresholds_min` must be a sequence of minutes, e.g. (5, 15); got {self.thresholds_min!r}."
            raise InputError(msg) from exc
        ts = check_thresholds(ts)
        if ts[-1] > MAX_THRESHOLD_MIN:
            msg = f"`thresholds_min` must be at most {MAX_THRESHOLD_MIN:g} minutes; got {ts}. Walking audits beyond two hours are not meaningful."
            raise InputError(msg)
        check_threshold_keys(ts)  # one output key per threshold
        object.__setattr__(self, "thresholds_min", ts)
        if not math.isfinite(self.corridor_m) or self.corridor_m <= 0:
            msg = f"`corridor_m` must be a positive width in meters (default {DEFAULT_CORRIDOR_M:g}); got {self.corridor_m!r}."
            raise InputError(msg)
        if not math.isfinite(self.min_hole_area_m2) or self.min_hole_area_m2 < 0:
            msg = f"`min_hole_area_m2` must be >= 0; got {self.min_hole_area_m2!r}."
            raise InputError(msg)
        if self.level_thresholds_min is not None:
            levels: dict[str, float] = {}
            for level, t in dict(self.level_thresholds_min).items():
                if not isinstance(level, str) or not level:
                    msg = f"`level_thresholds_min` keys must be level names such as 'community'; got {level!r}."
                    raise InputError(msg)
                try:
                    tf = float(t)
                except (TypeError, ValueError) as exc:
                    msg = f"`level_thresholds_min[{level!r}]` must be minutes; got {t!r}."
                    raise InputError(msg) from exc
                if not math.isfinite(tf) or tf <= 0 or tf > MAX_THRESHOLD_MIN:
                    msg = f"`level_thresholds_min[{level!r}]` must be in (0, {MAX_THRESHOLD_MIN:g}] minutes; got {t!r}."
                    raise InputError(msg)
                levels[level] = tf
            # a plain dict (not MappingProxyType) so params pickle for Dask and st.cache_data
            object.__setattr__(self, "level_thresholds_min", levels)
        object.__setattr__(self, "thresholds_m", _distances(self.thresholds_m))
        self._check_standard()

    def _check_standard(self) -> None:
        """Validate the standard and the compliance parameters."""
        standard = self.standard
        if isinstance(standard, Mapping):
            standard = Standard.from_dict(standard)
        elif isinstance(standard, str):
            standard = resolve_standard(standard)
        if standard is not None and not isinstance(standard, Standard):
            msg = f"`standard` must be a Standard, a preset key (gb50180, tdt1062) or None; got {type(standard).__name__}."
            raise InputError(msg)
        if standard is not None and self.level_thresholds_min is not None:
            msg = "Give either `level_thresholds_min` (--level-minutes) or `standard` (--standard), not both."
            raise InputError(msg)
        object.__setattr__(self, "standard", standard)
        ComplianceParams(household_size=self.household_size, target_share=self.compliance_target)

    @property
    def max_threshold_min(self) -> float:
        """The largest threshold, in minutes."""
        return float(self.thresholds_min[-1])

    @property
    def compliance(self) -> ComplianceParams:
        """The compliance table's parameters (household size, target share)."""
        return ComplianceParams(
            household_size=self.household_size, target_share=self.compliance_target
        )

    def limit_m(self) -> float:
        """Return the longest walk any threshold needs, in meters."""
        longest = self.max_threshold_min * 60.0 * speed_ms(self.speed_kmh)
        return max([longest, *self.thresholds_m])


def _distances(values: Any) -> tuple[float, ...]:
    """Return distance thresholds as strictly increasing meters in (0, MAX_DISTANCE_M]."""
    try:
        ds = tuple(float(d) for d in values or ())
    except (TypeError, ValueError) as exc:
        msg = f"`thresholds_m` must be a sequence of meters, e.g. (300, 500, 1000); got {values!r}."
        raise InputError(msg) from exc
    if any(not math.isfinite(d) or d <= 0 or d > MAX_DISTANCE_M for d in ds):
        msg = f"`thresholds_m` must be positive meters, at most {MAX_DISTANCE_M:g}; got {ds}."
        raise InputError(msg)
    if any(b <= a for a, b in itertools.pairwise(ds)):
        msg = f"`thresholds_m` must be strictly increasing, e.g. (300, 500, 1000); got {ds}."
        raise InputError(msg)
    check_threshold_keys(ds, METERS_UNIT)
    return ds


@dataclass(frozen=True)
class CoverageStats:
    """Coverage at one threshold."""

    population_covered: float
    share: float
    units_covered: int


@dataclass(frozen=True)
class AuditResult:
    """Everything an audit produces (see docs/ARCHITECTURE.md).

    ``demand``: the demand frame plus ``minutes_to_nearest`` (NaN when no center
    is reachable), ``nearest_center_id`` (None then) and ``covered_<t>`` per
    threshold. ``centers``: the centers frame plus ``population_nearest`` and
    ``population_within_<t>``. ``coverage``: per threshold key (``"5"``,
    ``"15"``). ``coverage_by_level``: one row per level and ``"all"``.
    ``service_areas``: ``center_id`` (``"all"`` for the union), ``minutes``,
    geometry. ``bands``: ``minutes_from``, ``minutes_to``, geometry.
    ``uncovered``: ``minutes``, ``population``, ``area_m2``, geometry.
    With distance thresholds, ``demand`` also has ``covered_<d>m``,
    ``coverage`` the keys ``"<d>m"``, ``distance_areas`` (``center_id``,
    ``meters``, geometry) and ``distance_bands`` (``meters_from``,
    ``meters_to``, geometry). With a standard, ``demand`` has
    ``covered_level_<level>`` per judged level and ``standard_table`` one row
    per judged level (see :func:`audit`).
    """

    params: AuditParams
    demand: gpd.GeoDataFrame
    centers: gpd.GeoDataFrame
    coverage: Mapping[str, CoverageStats]
    coverage_by_level: pd.DataFrame
    service_areas: gpd.GeoDataFrame
    uncovered: gpd.GeoDataFrame
    population_total: float
    bands: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    timings_s: Mapping[str, float] = field(default_factory=dict)
    standard_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    distance_areas: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    distance_bands: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    distance_uncovered: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)


class _Steps:
    """Progress reporting and timings for the audit's steps."""

    def __init__(self, progress: ProgressFn | None, weights: Mapping[str, float]) -> None:
        self.progress = progress
        total = sum(weights.values())
        self.start: dict[str, float] = {}
        acc = 0.0
        for name, w in weights.items():
            self.start[name] = acc / total
            acc += w
        self.weights = {k: v / total for k, v in weights.items()}
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._name = ""

    def begin(self, name: str, message: str) -> None:
        self._finish()
        self._name = name
        self._t0 = time.perf_counter()
        if self.progress:
            self.progress(self.start[name], message)

    def sub(self, name: str) -> ProgressFn | None:
        if self.progress is None:
            return None
        outer = self.progress
        start, weight = self.start[name], self.weights[name]

        def inner(fraction: float, message: str) -> None:
            outer(start + weight * min(max(fraction, 0.0), 1.0), message)

        return inner

    def _finish(self) -> None:
        if self._name:
            self.timings[self._name] = time.perf_counter() - self._t0

    def done(self) -> None:
        self._finish()
        self._name = ""
        if self.progress:
            self.progress(1.0, "audit done")


_LINESTRING = shapely.GeometryType.LINESTRING
#: Groups of touching units up to this size are unioned in padded rows (see _group_unions).
_ROW_UNION_MAX = 64


def _dissolve_touching(
    geoms: NDArray[np.object_],
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Return the connected parts of the union of ``geoms``, and the part each input lies in.

    Same parts as ``get_parts(union_all(geoms))`` (line parts dropped), but only
    geometries that touch or overlap are unioned, group by group: most demand
    units touch few others, so this is ~10x faster than one union of everything.
    Units that lie in no polygonal part (lines) get ``-1``.
    """
    n = geoms.size
    tree = shapely.STRtree(geoms)
    workers = worker_threads()
    chunks = np.array_split(np.arange(n), workers)
    # the tree queries release the GIL too: one chunk of units per thread
    with ThreadPoolExecutor(workers) as pool:
        hits = list(pool.map(lambda ch: tree.query(geoms[ch], predicate="intersects"), chunks))
    i = np.concatenate([ch[h[0]] for ch, h in zip(chunks, hits, strict=True)])
    j = np.concatenate([h[1] for h in hits])
    pair = i < j
    graph = sparse.csr_array((np.ones(int(pair.sum())), (i[pair], j[pair])), shape=(n, n))
    n_groups, group = connected_components(graph, directed=False)
    size = np.bincount(group, minlength=n_groups)
    alone = size[group] == 1
    polygonal = np.isin(
        shapely.get_type_id(geoms),
        [shapely.GeometryType.POLYGON, shapely.GeometryType.POINT],
    )
    part_of = np.full(n, -1, dtype=np.int64)
    parts: list[NDArray[np.object_]] = []
    count = 0
    # a lone valid polygon (or point) is its own part
    simple = np.flatnonzero(alone & polygonal)
    parts.append(geoms[simple])
    part_of[simple] = np.arange(simple.size)
    count += simple.size
    rest = np.flatnonzero(~(alone & polygonal))
    if rest.size:
        order = rest[np.argsort(group[rest], kind="stable")]
        _, start, counts = np.unique(group[order], return_index=True, return_counts=True)
        merged = _group_unions(geoms, order, start, counts)
        mparts, which = shapely.get_parts(merged, return_index=True)
        keep = shapely.get_type_id(mparts) != _LINESTRING
        mparts, which = np.asarray(mparts[keep], dtype=object), which[keep]
        n_parts = np.bincount(which, minlength=counts.size)
        first = count + np.concatenate([[0], np.cumsum(n_parts)[:-1]])
        member_group = np.repeat(np.arange(counts.size), counts)  # aligned with `order`
        one = n_parts[member_group] == 1
        part_of[order[one]] = first[member_group[one]]
        # a group whose union falls apart (units touching at a corner): nearest part
        for g in np.flatnonzero(n_parts > 1):
            members = order[start[g] : start[g] + counts[g]]
            own = mparts[first[g] - count : first[g] - count + n_parts[g]]
            reps = shapely.point_on_surface(geoms[members])
            near = shapely.STRtree(own).query_nearest(reps, all_matches=False)
            part_of[members[near[0]]] = first[g] + near[1]
        parts.append(mparts)
        count += mparts.size
    return np.concatenate(parts) if parts else np.empty(0, dtype=object), part_of


def _group_unions(
    geoms: NDArray[np.object_],
    order: NDArray[np.int64],
    start: NDArray[np.int64],
    counts: NDArray[np.int64],
) -> NDArray[np.object_]:
    """Return the union of each group ``geoms[order[start[g] : start[g] + counts[g]]]``.

    Groups of up to ``_ROW_UNION_MAX`` members are padded with None into rows of equal
    length and unioned a whole array at a time (``union_all(axis=1)``), so tens of
    thousands of small groups cost one call each batch rather than one Python round
    trip each; batches run in threads (GEOS releases the GIL).
    """
    out = np.empty(counts.size, dtype=object)
    jobs: list[tuple[NDArray[np.int64], NDArray[np.object_]]] = []
    width = 1
    while width <= _ROW_UNION_MAX:
        sel = np.flatnonzero((counts <= width) & (counts > width // 2))
        if sel.size:
            rows = np.full((sel.size, width), None, dtype=object)
            col = np.arange(width)
            for c in range(width):
                has = counts[sel] > c
                rows[has, c] = geoms[order[start[sel[has]] + col[c]]]
            jobs += [(sel[k::2], rows[k::2]) for k in range(2)]
        width *= 2
    for g in np.flatnonzero(counts > _ROW_UNION_MAX):
        jobs.append((np.array([g]), geoms[order[start[g] : start[g] + counts[g]]][None, :]))

    def run(job: tuple[NDArray[np.int64], NDArray[np.object_]]) -> None:
        sel, rows = job
        if sel.size:
            out[sel] = shapely.union_all(rows, axis=1)

    with ThreadPoolExecutor(worker_threads()) as pool:
        list(pool.map(run, jobs))
    return out


def _uncovered_areas(
    demand: gpd.GeoDataFrame, covered: NDArray[np.bool_], minutes: float, pop: NDArray[np.float64]
) -> pd.DataFrame:
    """Dissolve uncovered units into connected areas with their population (largest first).

    Columns ``minutes``, ``population``, ``area_m2`` and ``geometry`` (shapely objects).
    """
    idx = np.flatnonzero(~covered)
    polys: NDArray[np.object_] = np.empty(0, dtype=object)
    part_pop = np.empty(0, dtype=np.float64)
    if idx.size:
        geoms = np.asarray(demand.geometry.values[idx], dtype=object)
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = shapely.make_valid(geoms[bad])
        polys, part_of = _dissolve_touching(geoms)
        ok = part_of >= 0
        part_pop = np.asarray(
            np.bincount(part_of[ok], weights=pop[idx][ok], minlength=polys.size), dtype=np.float64
        )
    order = np.argsort(-part_pop, kind="stable")
    return pd.DataFrame(
        {
            MINUTES: np.full(order.size, float(minutes)),
            POPULATION: part_pop[order].astype(np.float64),
            AREA_M2: np.asarray(shapely.area(polys), dtype=np.float64)[order],
            "geometry": polys[order],
        }
    )


# --- the audit's steps ---------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """The audit's frames (as given) and their arrays, checked once at the entry."""

    centers: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    src: Snapped
    pts: Snapped
    ids: NDArray[np.object_]
    pop: NDArray[np.float64]
    total: float


def _frame(
    net: WalkNetwork, gdf: Any, what: str, needs: str, empty_hint: str | None = None
) -> Snapped:
    """Check one input frame: a snapped GeoDataFrame in ``net.crs`` with the column ``needs``."""
    if isinstance(gdf, gpd.GeoDataFrame):
        if len(gdf) == 0 and empty_hint is not None:
            msg = f"`{what}` is empty: an audit needs at least one row. {empty_hint}"
            raise InputError(msg)
        if needs not in gdf.columns:
            msg = f"`{what}` lacks the column(s) {[needs]}; build it with coverage.{what} (see docs/ARCHITECTURE.md)."
            raise InputError(msg)
    return require_snapped(net, gdf, what)


def _inputs(net: WalkNetwork, centers: Any, demand: Any) -> _Inputs:
    """Check the audit's inputs against their contract (see docs/ARCHITECTURE.md).

    No centers is a real scenario (a new district, every station closed):
    nobody is covered. No demand is not.
    """
    src = _frame(net, centers, "centers", CENTER_ID)
    pts = _frame(
        net,
        demand,
        "demand",
        POPULATION,
        empty_hint="The area has no residential buildings or landuse; check the extract or supply a population file.",
    )
    ids = center_ids(centers)
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids).loc[lambda s: s.duplicated()].unique()[:5].tolist()
        msg = (
            f"`centers.center_id` must be unique; duplicated: {dup}. Deduplicate the centers first."
        )
        raise InputError(msg)
    pop = demand[POPULATION].to_numpy(dtype=np.float64)
    if not np.isfinite(pop).all() or (pop < 0).any():
        msg = "`demand.population` must be finite and >= 0; fix or drop the rows with missing or negative population."
        raise InputError(msg)
    total = float(pop.sum())
    if total <= 0:
        warnings.warn(
            "The demand units have a total population of 0; every share is reported as 0.",
            stacklevel=3,
        )
    return _Inputs(centers, demand, src, pts, ids, pop, total)


@dataclass(frozen=True)
class _Nearest:
    """Minutes to the nearest center per demand unit (``inf`` when unreached) and that center."""

    minutes: NDArray[np.float64]
    source: NDArray[np.int64]
    meters: NDArray[np.float64]


def _nearest(net: WalkNetwork, inp: _Inputs, params: AuditParams) -> _Nearest:
    """Run one multi-source search: minutes to the nearest center for every unit."""
    dist_m, src = nearest_points_m(net, inp.src, inp.pts)
    if inp.src.size and not np.isfinite(dist_m).any():
        msg = (
            f"None of the {inp.pts.size} demand units can reach any of the {inp.src.size} centers "
            "on the walking network. Check that centers and residents lie in the area of the OSM "
            "extract (same city, same coordinate system)."
        )
        raise InputError(msg)
    return _Nearest(dist_m / speed_ms(params.speed_kmh) / 60.0, src, dist_m)


def _coverage(
    inp: _Inputs, nearest: _Nearest, params: AuditParams
) -> tuple[gpd.GeoDataFrame, dict[str, CoverageStats]]:
    """Return the demand frame with the nearest center and coverage flags, and the coverage per threshold."""
    out = inp.demand.copy()
    frame = nearest_frame(nearest.minutes, nearest.source, inp.ids, index=inp.demand.index)
    out[MINUTES_TO_NEAREST] = frame[MINUTES_TO_NEAREST]
    out[NEAREST_CENTER_ID] = frame[NEAREST_CENTER_ID]
    out[METERS_TO_NEAREST] = np.where(np.isfinite(nearest.meters), nearest.meters, np.nan)
    coverage: dict[str, CoverageStats] = {}
    limits: list[tuple[float, NDArray[np.float64], Unit]] = [
        (t, nearest.minutes, MINUTES_UNIT) for t in params.thresholds_min
    ] + [(d, nearest.meters, METERS_UNIT) for d in params.thresholds_m]
    for t, value, unit in limits:
        ok = value <= t
        out[covered_column(t, unit)] = ok
        covered_pop = float(inp.pop[ok].sum())
        coverage[threshold_key(t, unit)] = CoverageStats(
            population_covered=covered_pop,
            share=covered_pop / inp.total if inp.total > 0 else 0.0,
            units_covered=int(ok.sum()),
        )
    return out, coverage


def _per_center(
    net: WalkNetwork,
    inp: _Inputs,
    nearest: _Nearest,
    params: AuditParams,
    progress: ProgressFn | None,
) -> gpd.GeoDataFrame:
    """Return the centers frame with the population nearest to and within each threshold of each."""
    ms = speed_ms(params.speed_kmh)
    pairs = pairs_within_m(net, inp.src, inp.pts, limit_m=params.limit_m(), progress=progress)
    out = inp.centers.copy()
    n = inp.src.size
    within_max = nearest.minutes <= params.max_threshold_min
    out[POPULATION_NEAREST] = np.bincount(
        nearest.source[within_max], weights=inp.pop[within_max], minlength=n
    )
    m_pair = pairs.dist_m / ms / 60.0
    for t in params.thresholds_min:
        ok = m_pair <= t
        out[within_column(t)] = np.bincount(
            pairs.source[ok], weights=inp.pop[pairs.point[ok]], minlength=n
        )
    for d in params.thresholds_m:
        ok = pairs.dist_m <= d
        out[within_column(d, METERS_UNIT)] = np.bincount(
            pairs.source[ok], weights=inp.pop[pairs.point[ok]], minlength=n
        )
    return out


def _levels_column(centers: gpd.GeoDataFrame) -> NDArray[np.object_]:
    """Return the centers' ``level`` values (None everywhere when the column is absent)."""
    if LEVEL in centers:
        return np.asarray(centers[LEVEL].to_numpy(dtype=object), dtype=object)
    return np.full(len(centers), None, dtype=object)


def _level_meters(
    net: WalkNetwork, inp: _Inputs, levels_col: NDArray[np.object_], level: str
) -> NDArray[np.float64]:
    """Return the meters from each demand unit to the nearest center of ``level`` (inf when none)."""
    sel = np.flatnonzero(levels_col == level)
    if sel.size == 0:
        return np.full(inp.pts.size, np.inf)
    d, _ = nearest_points_m(net, inp.src.take(sel), inp.pts)
    return d


def _table_levels(params: AuditParams, levels_col: NDArray[np.object_]) -> list[str]:
    """Return the levels of the per-level table: the standard's, else those the centers carry."""
    if params.level_thresholds_min is not None:
        return list(params.level_thresholds_min)
    return sorted({str(x) for x in levels_col if x is not None and x == x})


def _level_dists(
    net: WalkNetwork, inp: _Inputs, params: AuditParams, levels_col: NDArray[np.object_]
) -> dict[str, NDArray[np.float64]]:
    """Return, per level the audit reports, the meters to that level's nearest center: one search each."""
    levels = _table_levels(params, levels_col)
    if params.standard is not None:
        levels += [lv for lv, _ in params.standard.judged() if lv not in levels]
    return {lv: _level_meters(net, inp, levels_col, lv) for lv in levels}


def _level_table(
    inp: _Inputs,
    params: AuditParams,
    nearest: _Nearest,
    dists: Mapping[str, NDArray[np.float64]],
    levels_col: NDArray[np.object_],
) -> pd.DataFrame:
    """Return the coverage per level of service (and ``"all"``), with the level standards if given."""
    ms = speed_ms(params.speed_kmh)
    pop, total = inp.pop, inp.total
    standard = params.level_thresholds_min
    rows: list[dict[str, Any]] = []
    any_standard = np.zeros(inp.pts.size, dtype=bool)

    def share(mask: NDArray[np.bool_]) -> float:
        return float(pop[mask].sum() / total) if total > 0 else 0.0

    def shares(row: dict[str, Any], meters: NDArray[np.float64]) -> None:
        for t in params.thresholds_min:
            row[share_column(t)] = share(meters / ms / 60.0 <= t)
        for d in params.thresholds_m:
            row[share_column(d, METERS_UNIT)] = share(meters <= d)

    for level in _table_levels(params, levels_col):
        meters = dists[level]
        row: dict[str, Any] = {"level": level, "centers": int((levels_col == level).sum())}
        if standard is not None:
            ok = meters / ms / 60.0 <= float(standard[level])
            any_standard |= ok
            row.update(
                {MINUTES: float(standard[level]), "population_covered": float(pop[ok].sum())}
            )
            row["share"] = share(ok)
        else:
            row.update({MINUTES: np.nan, "population_covered": np.nan, "share": np.nan})
        shares(row, meters)
        rows.append(row)
    row = {"level": ALL_CENTERS, "centers": len(inp.centers), MINUTES: np.nan}
    if standard is not None:
        row.update(
            {"population_covered": float(pop[any_standard].sum()), "share": share(any_standard)}
        )
    else:
        row.update({"population_covered": np.nan, "share": np.nan})
    shares(row, nearest.meters)
    rows.append(row)
    columns = ["level", "centers", MINUTES, "population_covered", "share"]
    columns += [share_column(t) for t in params.thresholds_min]
    columns += [share_column(d, METERS_UNIT) for d in params.thresholds_m]
    return pd.DataFrame(rows, columns=columns)


#: Columns of :attr:`AuditResult.standard_table`.
STANDARD_COLUMNS = (
    "level",
    "circle",
    "name",
    "threshold_min",
    "threshold_m",
    "source",
    "centers",
    "population_covered",
    "share",
    "units_covered",
)


def _standard_table(
    inp: _Inputs,
    params: AuditParams,
    dists: Mapping[str, NDArray[np.float64]],
    levels_col: NDArray[np.object_],
) -> tuple[pd.DataFrame, dict[str, NDArray[np.bool_]]]:
    """Judge each level of the standard by its own centers and threshold; never mix levels.

    Returns the table (:data:`STANDARD_COLUMNS`) and, per judged level, the
    ``covered_level_<level>`` flags of the demand units.
    """
    flags: dict[str, NDArray[np.bool_]] = {}
    if params.standard is None:
        return pd.DataFrame(columns=list(STANDARD_COLUMNS)), flags
    ms = speed_ms(params.speed_kmh)
    rows: list[dict[str, Any]] = []
    for level, circle in params.standard.judged():
        ok = circle.within(dists[level], ms)
        flags[level_covered_column(level)] = ok
        covered = float(inp.pop[ok].sum())
        rows.append(
            {
                "level": level,
                "circle": circle.key,
                "name": circle.name,
                "threshold_min": np.nan if circle.minutes is None else circle.minutes,
                "threshold_m": np.nan if circle.meters is None else circle.meters,
                "source": circle.source,
                "centers": int((levels_col == level).sum()),
                "population_covered": covered,
                "share": covered / inp.total if inp.total > 0 else 0.0,
                "units_covered": int(ok.sum()),
            }
        )
    return pd.DataFrame(rows, columns=list(STANDARD_COLUMNS)), flags


def _uncovered(
    net: WalkNetwork, inp: _Inputs, nearest: _Nearest, params: AuditParams
) -> gpd.GeoDataFrame:
    """Return the uncovered residential areas per threshold."""
    parts = [
        _uncovered_areas(inp.demand, nearest.minutes <= t, t, inp.pop)
        for t in params.thresholds_min
    ]
    return _uncovered_frame(net, parts, MINUTES)


def _uncovered_m(
    net: WalkNetwork, inp: _Inputs, nearest: _Nearest, params: AuditParams
) -> gpd.GeoDataFrame:
    """Return the uncovered residential areas per distance threshold (``meters`` column)."""
    parts = [
        _uncovered_areas(inp.demand, nearest.meters <= d, d, inp.pop).rename(
            columns={MINUTES: METERS}
        )
        for d in params.thresholds_m
    ]
    return _uncovered_frame(net, parts, METERS)


def _uncovered_frame(net: WalkNetwork, parts: list[pd.DataFrame], by: str) -> gpd.GeoDataFrame:
    """One frame of the thresholds' uncovered areas, in order (no rows: object columns, as ever)."""
    columns = [by, POPULATION, AREA_M2, "geometry"]
    parts = [f for f in parts if len(f)]
    if not parts:
        return gpd.GeoDataFrame([], columns=columns, geometry="geometry", crs=net.crs)
    frame = pd.concat(parts, ignore_index=True)[columns]
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=net.crs)


#: Bump when the uncovered areas change (``_uncovered_areas``), so cached ones are not reused.
UNCOVERED_CACHE_VERSION = "1"


def _uncovered_frames(
    net: WalkNetwork,
    inp: _Inputs,
    nearest: _Nearest,
    params: AuditParams,
    cache_dir: Path | None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the uncovered areas per minute and per distance threshold, from the cache when kept.

    They depend only on the demand units (geometry and population) and on which
    units each threshold covers, so the key holds those (the units' WKB, their
    population, one bit per unit and threshold): a re-run of the same scenario
    reads them (1.4-2.1 s of dissolving at 100k nodes), any other coverage builds them.
    """
    path = _uncovered_file(net, inp, nearest, params, cache_dir)
    if path is not None:
        minute, meter = load_frame(path[0]), load_frame(path[1])
        if minute is not None and meter is not None and minute.crs == meter.crs == net.crs:
            logger.info("loaded uncovered areas from the cache (%s)", path[0].name)
            return minute, meter
    frames = _uncovered(net, inp, nearest, params), _uncovered_m(net, inp, nearest, params)
    if path is not None:
        try:
            for frame, f in zip(frames, path, strict=True):
                save_frame(frame, f)
        except OSError as exc:
            logger.warning("could not write the uncovered-area cache %s: %s", path[0], exc)
    return frames


def _uncovered_file(
    net: WalkNetwork,
    inp: _Inputs,
    nearest: _Nearest,
    params: AuditParams,
    cache_dir: Path | None,
) -> tuple[Path, Path] | None:
    """Cache files of the uncovered areas of this coverage (``None``: no cache, or not keyable)."""
    if cache_dir is None or not net.source_sha256:
        return None
    digest = hashlib.sha256()
    digest.update(geometry_digest(inp.demand.geometry.values))
    digest.update(np.ascontiguousarray(inp.pop).tobytes())
    for t in params.thresholds_min:
        digest.update(np.packbits(nearest.minutes <= t).tobytes())
    for d in params.thresholds_m:
        digest.update(np.packbits(nearest.meters <= d).tobytes())
    spec_key = {
        "network": [net.source_sha256, net.n_nodes, net.n_edges],
        "crs": str(net.crs),
        "demand_and_coverage": digest.hexdigest(),
        "thresholds_min": [float(t) for t in params.thresholds_min],
        "thresholds_m": [float(d) for d in params.thresholds_m],
        "version": UNCOVERED_CACHE_VERSION,
    }
    key = derived_key(net.source_sha256, "uncovered", spec_key)
    return derived_path(cache_dir, "uncovered", key), derived_path(cache_dir, "uncovered_m", key)


_Frames = tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]


def _polygons(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    params: AuditParams,
    per_center: bool,
    progress: ProgressFn | None,
    cache_dir: Path | None = None,
) -> tuple[_Frames, _Frames]:
    """Return the service areas and bands of the minutes and of the distances.

    Both sets come from one walking search (:func:`~coverage.isochrones.area_sets_and_bands`):
    a distance ``D`` is the budget ``D`` meters, as a minute ``T`` is ``T`` × speed.
    Each set is read from ``cache_dir`` when an identical run left it (under its own
    key), and only the missing ones are built. Without distance thresholds the
    distance frames are empty.
    """
    specs = [
        minute_spec(
            params.thresholds_min, params.speed_kmh, params.corridor_m, params.min_hole_area_m2
        )
    ]
    if params.thresholds_m:
        specs.append(
            distance_spec(
                params.thresholds_m,
                params.corridor_m,
                params.min_hole_area_m2,
                (METERS, METERS_FROM, METERS_TO),
            )
        )
    files = [_polygon_files(net, centers, params, per_center, cache_dir, spec) for spec in specs]
    cached = [_cached_polygons(f, net) for f in files]
    missing = [spec for spec, frames in zip(specs, cached, strict=True) if frames is None]
    built = iter(
        area_sets_and_bands(net, centers, missing, per_center=per_center, progress=progress)
        if missing
        else []
    )
    out: list[_Frames] = []
    for f, frames in zip(files, cached, strict=True):
        if frames is None:
            frames = next(built)
            _save_polygons(f, frames)
        out.append(frames)
    return out[0], out[1] if len(out) > 1 else _no_distance_polygons(net)


def _cached_polygons(files: tuple[Path, Path] | None, net: WalkNetwork) -> _Frames | None:
    """Return the areas and bands cached in ``files`` (``None``: not cached, or unreadable)."""
    if files is None:
        return None
    areas, bands = load_frame(files[0]), load_frame(files[1])
    if areas is None or bands is None or areas.crs != net.crs:
        return None
    logger.info("loaded service areas and bands from the cache (%s)", files[0].name)
    return areas, bands


def _save_polygons(files: tuple[Path, Path] | None, frames: _Frames) -> None:
    """Keep ``frames`` in the cache ``files`` (a failed write only warns)."""
    if files is None:
        return
    try:
        save_frame(frames[0], files[0]) and save_frame(frames[1], files[1])
    except OSError as exc:
        logger.warning("could not write the service-area cache %s: %s", files[0], exc)


#: Bump when the service-area polygons change (isochrones.py), so cached ones are not reused.
POLYGON_CACHE_VERSION = "1"


def _polygon_files(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    params: AuditParams,
    per_center: bool,
    cache_dir: Path | None,
    spec: AreaSpec,
) -> tuple[Path, Path] | None:
    """Cache files of these centers' polygons of ``spec`` on ``net`` (``None``: no cache, or not keyable).

    The key holds the network file's hash and size, every center's id, level,
    snap columns and location, and the parameters the polygons depend on. Minute
    areas (``areas-``/``bands-`` files) depend on the thresholds and the speed;
    distance areas (``distance_areas-``/``distance_bands-``, their own kind, so
    the two never share a file) on the meters only: a walk of 500 m is the
    same at any speed.
    """
    if cache_dir is None or not net.source_sha256:
        return None
    digest = hashlib.sha256()
    for col in (CENTER_ID, LEVEL):
        values = centers[col].tolist() if col in centers.columns else []
        digest.update(repr(values).encode())
    for col in (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M):
        digest.update(np.ascontiguousarray(centers[col].to_numpy()).tobytes())
    digest.update(b"".join(shapely.to_wkb(np.asarray(centers.geometry.values, dtype=object))))
    spec_key: dict[str, Any] = {
        "network": [net.source_sha256, net.n_nodes, net.n_edges],
        "centers": digest.hexdigest(),
    }
    if spec.columns[0] == METERS:
        kinds = ("distance_areas", "distance_bands")
        spec_key["thresholds_m"] = list(spec.thresholds)
    else:
        kinds = ("areas", "bands")
        spec_key["thresholds_min"] = list(params.thresholds_min)
        spec_key["speed_kmh"] = params.speed_kmh
    spec_key |= {
        "corridor_m": params.corridor_m,
        "min_hole_area_m2": params.min_hole_area_m2,
        "per_center": per_center,
        "version": POLYGON_CACHE_VERSION,
    }
    key = derived_key(net.source_sha256, kinds[0], spec_key)
    return derived_path(cache_dir, kinds[0], key), derived_path(cache_dir, kinds[1], key)


def _no_distance_polygons(net: WalkNetwork) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return empty distance service areas and bands, with their columns."""
    return _empty_polygons(net, METERS, METERS_FROM, METERS_TO)


def _no_polygons(net: WalkNetwork) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return empty service areas and bands, with their columns."""
    return _empty_polygons(net, MINUTES, MINUTES_FROM, MINUTES_TO)


def _empty_polygons(
    net: WalkNetwork, value: str, lower: str, upper: str
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    areas = gpd.GeoDataFrame(
        {CENTER_ID: pd.Series(dtype=object), value: pd.Series(dtype=float)},
        geometry=gpd.GeoSeries([], crs=net.crs),
        crs=net.crs,
    )
    bands = gpd.GeoDataFrame(
        {lower: pd.Series(dtype=float), upper: pd.Series(dtype=float)},
        geometry=gpd.GeoSeries([], crs=net.crs),
        crs=net.crs,
    )
    return areas, bands


def audit(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    params: AuditParams | None = None,
    *,
    with_polygons: bool = True,
    per_center_polygons: bool | None = None,
    progress: ProgressFn | None = None,
    polygon_cache_dir: Path | None = None,
) -> AuditResult:
    """Audit walking access from ``demand`` to ``centers`` on ``net``.

    Parameters
    ----------
    net
        The walking network.
    centers
        Centers frame (``center_id``, ``level``, snap columns) in ``net.crs``,
        as :mod:`coverage.centers` loads it.
    demand
        Demand frame (``demand_id``, ``population``, snap columns) in
        ``net.crs``, as :mod:`coverage.demand` loads it.
    params
        Audit parameters (defaults: 4.5 km/h, 5 and 15 minutes).
    with_polygons
        Also build service-area polygons and bands (the slowest step).
    per_center_polygons
        With ``with_polygons``, also build one service area per center and
        threshold (not only the union per threshold). ``None`` (default) does so
        up to :data:`PER_CENTER_POLYGONS_MAX` centers: a city with thousands of
        centers needs only the unions for its report and map, and one center's
        area can be built when asked for (``isochrones.service_areas`` on that
        center's row). Per-center statistics are always computed.
    progress
        Called with ``(fraction, message)`` as the audit advances.
    polygon_cache_dir
        Keep the service areas and bands in this folder (:mod:`coverage.osmcache`
        format) and reuse them when the same network, centers and parameters come
        again (a re-run of the same command). ``None`` (default): no cache.

    Returns
    -------
    AuditResult
        ``demand`` gains ``minutes_to_nearest``, ``nearest_center_id``,
        ``covered_<t>``; ``centers`` gains ``population_nearest``,
        ``population_within_<t>``; ``coverage`` per threshold
        (``population_covered``, ``share``, ``units_covered``);
        ``coverage_by_level`` (``level``, ``centers``, ``minutes``,
        ``population_covered``, ``share``, ``share_<t>``); ``service_areas``
        (``center_id``, ``minutes``, geometry); ``bands`` (``minutes_from``,
        ``minutes_to``, geometry); ``uncovered`` (``minutes``, ``population``,
        ``area_m2``, geometry). Always ``demand.meters_to_nearest`` (network
        meters, access legs included, NaN when unreachable). With
        ``params.thresholds_m``: ``demand.covered_<d>m``, ``centers.population_within_<d>m``,
        ``coverage["<d>m"]``, ``share_<d>m`` per level, ``distance_areas``
        (``center_id``, ``meters``, geometry), ``distance_bands``
        (``meters_from``, ``meters_to``, geometry) and ``distance_uncovered``
        (``meters``, ``population``, ``area_m2``, geometry). With ``params.standard``:
        ``demand.covered_level_<level>`` per judged level and ``standard_table``
        (``level``, ``circle``, ``name``, ``threshold_min``, ``threshold_m``,
        ``source``, ``centers``, ``population_covered``, ``share``,
        ``units_covered``), each level judged only by its own centers.

    Raises
    ------
    InputError
        Empty demand, a CRS mismatch, missing columns (snap columns included),
        or no demand unit that can reach any of the (non-empty) centers. An
        empty centers frame is valid: nobody is covered.
    """
    build = _Build(_checked(params), with_polygons, per_center_polygons, uncovered=True)
    return _audit(net, centers, demand, build, progress, polygon_cache_dir)


def audit_numbers(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    params: AuditParams | None = None,
    *,
    progress: ProgressFn | None = None,
) -> AuditResult:
    """Audit as :func:`audit` does, without building any polygon: numbers and tables only.

    The result equals ``audit(..., with_polygons=False)`` except that ``uncovered`` and
    ``distance_uncovered`` are empty frames (with their columns): dissolving the
    uncovered units is most of a numbers-only audit (2.4 of 4.1 s at 300k nodes). For
    the app's headline numbers, drawn before the map; the map's run builds the areas.
    """
    build = _Build(_checked(params), polygons=False, per_center=None, uncovered=False)
    return _audit(net, centers, demand, build, progress, None)


@dataclass(frozen=True)
class _Build:
    """What one audit builds: its parameters, and which polygons."""

    params: AuditParams
    polygons: bool
    per_center: bool | None
    uncovered: bool


def _checked(params: AuditParams | None) -> AuditParams:
    if params is None:
        return AuditParams()
    if not isinstance(params, AuditParams):
        msg = f"`params` must be an AuditParams; got {type(params).__name__}."
        raise InputError(msg)
    return params


def _audit(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    build: _Build,
    progress: ProgressFn | None,
    polygon_cache_dir: Path | None,
) -> AuditResult:
    """Run the audit's steps (:func:`audit`)."""
    params, with_polygons, per_center_polygons = build.params, build.polygons, build.per_center
    steps = _Steps(
        progress,
        {
            "search": 1,
            "per_center": 2,
            "levels": 1,
            "uncovered": 2 if build.uncovered else 0.001,
            "polygons": 10 if with_polygons else 0.001,
        },
    )
    inp = _inputs(net, centers, demand)
    steps.begin("search", "minutes to the nearest center")
    nearest = _nearest(net, inp, params)
    out_demand, coverage = _coverage(inp, nearest, params)
    steps.begin("per_center", "per-center reach")
    out_centers = _per_center(net, inp, nearest, params, steps.sub("per_center"))
    steps.begin("levels", "coverage by level")
    levels_col = _levels_column(inp.centers)
    dists = _level_dists(net, inp, params, levels_col)
    by_level = _level_table(inp, params, nearest, dists, levels_col)
    by_standard, flags = _standard_table(inp, params, dists, levels_col)
    for col, ok in flags.items():
        out_demand[col] = ok
    steps.begin("uncovered", "uncovered areas")
    if build.uncovered:
        uncovered, uncovered_m = _uncovered_frames(net, inp, nearest, params, polygon_cache_dir)
    else:
        uncovered, uncovered_m = (
            _uncovered_frame(net, [], MINUTES),
            _uncovered_frame(net, [], METERS),
        )
    if with_polygons:
        steps.begin("polygons", "service areas")
        if per_center_polygons is None:
            per_center_polygons = inp.src.size <= PER_CENTER_POLYGONS_MAX
        (areas, bands), (d_areas, d_bands) = _polygons(
            net,
            inp.centers,
            params,
            bool(per_center_polygons),
            steps.sub("polygons"),
            polygon_cache_dir,
        )
    else:
        areas, bands = _no_polygons(net)
        d_areas, d_bands = _no_distance_polygons(net)
    steps.done()
    logger.info(
        "audited %d demand units (population %.0f) against %d centers: %s",
        inp.pts.size,
        inp.total,
        inp.src.size,
        ", ".join(
            f"{k}{'' if k.endswith('m') else ' min'} {v.share:.1%}" for k, v in coverage.items()
        ),
    )
    return AuditResult(
        params=params,
        demand=out_demand,
        centers=out_centers,
        coverage=coverage,
        coverage_by_level=by_level,
        service_areas=areas,
        uncovered=uncovered,
        population_total=inp.total,
        bands=bands,
        timings_s=dict(steps.timings),
        standard_table=by_standard,
        distance_areas=d_areas,
        distance_bands=d_bands,
        distance_uncovered=uncovered_m,
    )
