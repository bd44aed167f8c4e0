"""Station siting on the walking network: candidates, coverage sets, proposed sites.

The geographic wrapper around :mod:`coverage.optimize` (the matrix core): it
builds candidate sites on the network (:func:`candidate_sites`,
:func:`candidates_from_file`), the boolean matrix of which demand units each
reaches on foot (:func:`coverage_sets`), hands that matrix to
:func:`coverage.optimize.best_sites`, and returns the chosen sites as a
:class:`SitingResult` from :func:`propose_sites`. :class:`SitingParams` is the
one parameter class of siting.

Demand and centers frames follow the load contract (docs/ARCHITECTURE.md): in
``net.crs``, with ``population`` and the snap columns, validated and snapped
once when the city is loaded; they are not re-checked here. User-supplied
candidates and exclusion polygons are checked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.spatial import cKDTree

from coverage.capacity import DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS
from coverage.centers import CENTER_ID, FLOOR_AREA_M2, check_count
from coverage.demand import POPULATION
from coverage.errors import InputError
from coverage.names import HOUSEHOLDS
from coverage.network import DEFAULT_SPEED_KMH, WalkNetwork, speed_ms
from coverage.optimize import (
    BoolArray,
    CapacitatedModel,
    CapacitatedSelection,
    FloatArray,
    IntArray,
    SiteSelection,
    TimeBudget,
    best_capacitated_sites,
    best_sites,
)
from coverage.progress import ProgressFn, sub_progress
from coverage.reach import (
    Snapped,
    nearest_points_m,
    point_xy,
    require_snapped,
    snap_arrays,
    within_matrix,
)
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, snap_points
from coverage.standards import (
    DEFAULT_HOUSEHOLD_SIZE,
    check_household_size,
    check_m2_per_100_households,
    unit_households,
)

logger = logging.getLogger(__name__)

#: Column names of a candidates / sites GeoDataFrame.
CANDIDATE_ID = "candidate_id"
CANDIDATE_SOURCE = "source"
RANK = "rank"
MARGINAL_POPULATION = "marginal_population"
CUMULATIVE_POPULATION = "cumulative_population"
CUMULATIVE_SHARE = "cumulative_share"
#: Column names of the coverage curve.
CURVE_K = "k"
CURVE_SHARE = "share"
CURVE_POPULATION = "population_covered"

# Floating-point slack when comparing walked meters with a threshold.
_LIMIT_EPS_M = 1e-6


# --- parameters and results ---------------------------------------------------


def _finite_number(name: str, value: Any, *, what: str) -> float:
    """``value`` as a finite float, or an InputError naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, str) or not math.isfinite(number):
        msg = f"`{name}` must be {what}; got {value!r}."
        raise InputError(msg)
    return number


@dataclass(frozen=True)
class SitingParams:
    """What to optimise and how.

    Give exactly one of ``k`` (number of new stations) or ``target_share``
    (population share to reach within ``minutes``, with at most ``max_k``
    stations). ``secondary_minutes`` breaks ties between equal primary gains.
    With ``new_site_m2`` (issue 15) the siting is capacitated: a new site has one
    of those floor areas, existing centers serve up to their own floor area
    (``floor_area_m2``), ``enlarge_m2`` makes enlarging an existing center a
    candidate action, and the objective is residents within ``minutes`` *and*
    served within capacity (floor area / ``standard_m2_per_100_households`` × 100
    households of ``household_size`` persons).
    With ``exact`` and ``target_share``, a first MIP finds the fewest sites that
    reach the target (at most as many as greedy + swap needed), a second one the
    best coverage with that many. ``time_limit_s`` is the wall-time budget of one
    siting run from its start: candidates and coverage sets, then every solver call
    (LP bound, and in exact mode the MIPs; each still gets at least a second).
    """

    k: int | None = None
    target_share: float | None = None
    max_k: int = 50
    minutes: float = 15.0
    secondary_minutes: float | None = 5.0
    speed_kmh: float = DEFAULT_SPEED_KMH
    spacing_m: float = 100.0
    max_distance_m: float = 300.0
    exact: bool = False
    time_limit_s: float = 60.0
    mip_rel_gap: float = 1e-7
    swap: bool = True
    lp_bound: bool = True
    new_site_m2: tuple[float, ...] = ()
    enlarge_m2: float | None = None
    household_size: float = DEFAULT_HOUSEHOLD_SIZE
    standard_m2_per_100_households: float = DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS

    def __post_init__(self) -> None:
        """Check every field; an InputError names the first bad one."""
        self._check_capacity()
        if (self.k is None) == (self.target_share is None):
            msg = f"Give exactly one of `k` (number of new stations) or `target_share` (e.g. 0.95); got k={self.k!r}, target_share={self.target_share!r}."
            raise InputError(msg)
        if self.k is not None:
            k = _finite_number("k", self.k, what="a positive whole number of new stations")
            if isinstance(self.k, bool) or int(k) != k or k <= 0:
                msg = f"`k` must be a positive whole number of new stations; got {self.k!r}."
                raise InputError(msg)
        if self.target_share is not None:
            share = _finite_number(
                "target_share", self.target_share, what="a population share in (0, 1]"
            )
            if not 0 < share <= 1:
                msg = f"`target_share` must be a population share in (0, 1], e.g. 0.95; got {self.target_share!r}."
                raise InputError(msg)
        max_k = _finite_number("max_k", self.max_k, what="a positive whole number")
        if isinstance(self.max_k, bool) or int(max_k) != max_k or max_k <= 0:
            msg = f"`max_k` must be a positive whole number; got {self.max_k!r}."
            raise InputError(msg)
        for name in ("minutes", "spacing_m", "max_distance_m", "time_limit_s"):
            value = _finite_number(name, getattr(self, name), what="a positive number")
            if value <= 0:
                msg = f"`{name}` must be a positive number; got {getattr(self, name)!r}."
                raise InputError(msg)
        if self.secondary_minutes is not None:
            value = _finite_number(
                "secondary_minutes",
                self.secondary_minutes,
                what="a positive number of minutes or None",
            )
            if value <= 0:
                msg = f"`secondary_minutes` must be a positive number of minutes or None; got {self.secondary_minutes!r}."
                raise InputError(msg)
        gap = _finite_number("mip_rel_gap", self.mip_rel_gap, what="a number in [0, 1)")
        if not 0 <= gap < 1:
            msg = f"`mip_rel_gap` must be in [0, 1); got {self.mip_rel_gap!r}."
            raise InputError(msg)
        speed_ms(self.speed_kmh)

    def _check_capacity(self) -> None:
        """Check and normalise the capacitated fields."""
        try:
            sizes = tuple(float(a) for a in self.new_site_m2)
        except (TypeError, ValueError) as exc:
            msg = f"`new_site_m2` must be floor areas in m², e.g. (300, 600); got {self.new_site_m2!r}."
            raise InputError(msg) from exc
        if any(not math.isfinite(a) or a <= 0 for a in sizes) or len(set(sizes)) != len(sizes):
            msg = f"`new_site_m2` must be distinct positive floor areas in m²; got {self.new_site_m2!r}."
            raise InputError(msg)
        object.__setattr__(self, "new_site_m2", sizes)
        if self.enlarge_m2 is not None:
            e = _finite_number("enlarge_m2", self.enlarge_m2, what="a floor area in m²")
            if e <= 0:
                msg = f"`enlarge_m2` must be a positive floor area in m²; got {self.enlarge_m2!r}."
                raise InputError(msg)
            if not sizes:
                msg = "`enlarge_m2` needs `new_site_m2` (the floor area of a new site, --new-site-m2)."
                raise InputError(msg)
        object.__setattr__(self, "household_size", check_household_size(self.household_size))
        object.__setattr__(
            self,
            "standard_m2_per_100_households",
            check_m2_per_100_households(self.standard_m2_per_100_households),
        )

    @property
    def capacitated(self) -> bool:
        """Whether new sites have a floor area (the capacitated model)."""
        return bool(self.new_site_m2)

    def residents_per_m2(self) -> float:
        """Residents one m² serves: 100 households × household size / standard m² per 100 households."""
        return 100.0 * self.household_size / self.standard_m2_per_100_households


@dataclass(frozen=True)
class SitingResult:
    """Proposed sites and their effect.

    Attributes
    ----------
    sites
        GeoDataFrame in ``net.crs``: ``rank`` (1 = first), ``candidate_id``,
        ``marginal_population`` (newly covered within the primary threshold),
        ``cumulative_population`` and ``cumulative_share`` (covered in total,
        existing centers included), snap columns, geometry (the point on the
        walkable network).
    curve
        DataFrame ``k`` (0..K), ``share``, ``population_covered``.
    method
        ``"greedy+swap"`` or ``"exact"``.
    upper_bound_share
        A proven upper bound on the best share reachable with ``k`` sites.
    gap
        ``upper_bound_share - share_after``.
    minutes_after
        Per demand unit (same index as the demand frame): walking minutes to the
        nearest existing or proposed station; NaN when none is reachable.
    target_met
        None when ``k`` was given; otherwise whether ``target_share`` was reached
        within ``max_k`` sites (a warning is logged when it was not).
    optimal
        True when the reported solution is proven optimal (exact mode).
    min_sites_proven
        Exact mode with ``target_share`` only: True when ``k`` is proven to be the
        fewest sites reaching the target (``None`` otherwise).
    bound_kind
        Capacitated siting: the bound behind ``upper_bound_share``.
    households_basis
        Capacitated siting: ``"census"`` when the demand's ``households`` column
        (a census's) set the capacities, ``"household_size"`` otherwise.
    stopped
        True when a stop request (:func:`coverage.progress.cancellable`) cut the
        solver short: the sites are the best found until then.
    """

    params: SitingParams
    sites: gpd.GeoDataFrame
    curve: pd.DataFrame
    method: str
    k: int
    share_before: float
    share_after: float
    upper_bound_share: float
    gap: float
    minutes_after: pd.Series
    population_total: float
    n_candidates: int
    target_met: bool | None = None
    optimal: bool = False
    solver_status: str = ""
    swaps: int = 0
    min_sites_proven: bool | None = None
    bound_kind: str = ""
    households_basis: str = ""
    stopped: bool = False

    def summary(self) -> dict[str, Any]:
        """Return the ``siting`` section of ``summary.json``."""
        out: dict[str, Any] = {
            "method": self.method,
            "k": self.k,
            "share_before": self.share_before,
            "share_after": self.share_after,
            "upper_bound_share": self.upper_bound_share,
            "gap": self.gap,
        }
        if self.target_met is not None:
            out["target_share"] = self.params.target_share
            out["target_met"] = self.target_met
        return out


# --- network search -----------------------------------------------------------


def _limit_m(minutes: float, speed_kmh: float) -> float:
    if not (math.isfinite(minutes) and minutes > 0):
        msg = f"`minutes` must be a positive number; got {minutes!r}."
        raise InputError(msg)
    return float(minutes) * 60.0 * speed_ms(speed_kmh)


def _cells(
    x: FloatArray, y: FloatArray, x0: float, y0: float, size: float
) -> tuple[IntArray, IntArray]:
    return (
        np.floor((x - x0) / size).astype(np.int64),
        np.floor((y - y0) / size).astype(np.int64),
    )


def coverage_sets(
    net: WalkNetwork,
    candidates: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    minutes: float,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    progress: ProgressFn | None = None,
) -> sparse.csr_array:
    """Which demand units each candidate reaches within ``minutes`` on foot.

    Walking distance = candidate access leg + network path between the two
    snapped points (through edge ends, or along the edge when both share it) +
    demand access leg, as :func:`coverage.reach.within_matrix` finds it: the
    work grows with the area reached, not with the city.

    Parameters
    ----------
    candidates, demand
        GeoDataFrames in ``net.crs`` with the snap columns.
    minutes, speed_kmh
        The walking threshold.

    Returns
    -------
    scipy.sparse.csr_array
        Boolean, ``len(candidates) × len(demand)``, rows and columns in frame order.
    """
    limit = _limit_m(minutes, speed_kmh)
    sources = require_snapped(net, candidates, "candidates")
    points = require_snapped(net, demand, "demand")
    return _coverage_matrix(net, sources, points, limit, progress=progress)


def _coverage_matrix(
    net: WalkNetwork,
    sources: Snapped,
    points: Snapped,
    limit: float,
    *,
    progress: ProgressFn | None = None,
) -> sparse.csr_array:
    """Boolean candidates × demand matrix of the pairs within ``limit`` meters (see :func:`coverage_sets`)."""
    n_c, n_d = sources.size, points.size
    out = within_matrix(net, sources, points, limit_m=limit + _LIMIT_EPS_M, progress=progress)
    logger.info(
        "coverage sets: %d candidates × %d demand units within %.0f m, %d pairs",
        n_c,
        n_d,
        limit,
        out.nnz,
    )
    return out


# --- candidates ---------------------------------------------------------------


def _to_net_crs(gdf: gpd.GeoDataFrame, net: WalkNetwork, what: str) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{what}` must be a GeoDataFrame; got {type(gdf).__name__}."
        raise InputError(msg)
    if gdf.crs is None:
        msg = f"`{what}` has no CRS; set it (`gdf.set_crs('EPSG:4326')` for longitude/latitude)."
        raise InputError(msg)
    crs = pyproj.CRS.from_user_input(gdf.crs)
    if crs.equals(pyproj.CRS.from_user_input(net.crs)):
        return gdf
    if crs.equals(pyproj.CRS.from_epsg(4326)):
        return gdf.to_crs(net.crs)
    msg = f"`{what}` is in {crs.to_string()}; expected EPSG:4326 or the network's {net.crs}. Reproject it (`gdf.to_crs('EPSG:4326')`)."
    raise InputError(msg)


def _excluded(
    x: FloatArray, y: FloatArray, exclude: gpd.GeoDataFrame | None, net: WalkNetwork
) -> BoolArray:
    out = np.zeros(x.size, dtype=bool)
    if exclude is None or x.size == 0:
        return out
    ex = _to_net_crs(exclude, net, "exclude")
    geoms = ex.geometry.values
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    kinds = shapely.get_type_id(geoms)
    poly = (kinds == shapely.GeometryType.POLYGON) | (kinds == shapely.GeometryType.MULTIPOLYGON)
    if not poly.all():
        msg = f"`exclude` must hold Polygon or MultiPolygon geometries; got {int((~poly).sum())} others. Drop or buffer them first."
        raise InputError(msg)
    tree = shapely.STRtree(geoms)
    hits = tree.query(shapely.points(x, y), predicate="intersects")
    out[hits[0]] = True
    return out


def _candidate_frame(
    net: WalkNetwork,
    edge: IntArray,
    offset_m: FloatArray,
    access_m: FloatArray,
    ids: Sequence[str],
    source: str,
) -> gpd.GeoDataFrame:
    x, y = point_xy(net, edge, offset_m)
    return gpd.GeoDataFrame(
        {
            CANDIDATE_ID: pd.Series(list(ids), dtype=object),
            CANDIDATE_SOURCE: source,
            SNAP_EDGE: edge.astype(np.int64),
            SNAP_OFFSET_M: offset_m.astype(np.float64),
            SNAP_DISTANCE_M: access_m.astype(np.float64),
        },
        geometry=shapely.points(x, y),
        crs=net.crs,
    )


def candidate_sites(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    *,
    spacing_m: float = 100.0,
    max_distance_m: float = 300.0,
    exclude: gpd.GeoDataFrame | None = None,
    edge_points: bool = True,
) -> gpd.GeoDataFrame:
    """Candidate station sites on the walking network near residential demand.

    Network nodes (and, with ``edge_points``, points every ``spacing_m`` along
    longer edges) within ``max_distance_m`` of a demand unit, outside the
    ``exclude`` polygons, thinned deterministically so no two candidates are
    closer than ``spacing_m`` (intersections with more streets win).

    Parameters
    ----------
    demand
        Demand units in ``net.crs`` (polygons or points).
    exclude
        Polygons (EPSG:4326 or ``net.crs``) where no station may go.

    Returns
    -------
    geopandas.GeoDataFrame
        In ``net.crs``: ``candidate_id`` (``"n<i>"``), ``source`` (``"network"``),
        ``snap_edge``, ``snap_offset_m``, ``snap_distance_m`` (0), geometry (the point).
    """
    for name, value in (("spacing_m", spacing_m), ("max_distance_m", max_distance_m)):
        if not (math.isfinite(value) and value > 0):
            msg = f"`{name}` must be a positive number of meters; got {value!r}."
            raise InputError(msg)
    # Nodes: each takes an incident edge (offset 0 at u, full length at v).
    n = net.n_nodes
    node_edge = np.full(n, -1, dtype=np.int64)
    node_off = np.zeros(n, dtype=np.float64)
    ev_idx = np.arange(net.n_edges)[::-1]
    node_edge[net.edge_v[ev_idx]] = ev_idx
    node_off[net.edge_v[ev_idx]] = net.edge_length_m[ev_idx]
    eu_idx = np.arange(net.n_edges)[::-1]
    node_edge[net.edge_u[eu_idx]] = eu_idx
    node_off[net.edge_u[eu_idx]] = 0.0
    has = node_edge >= 0
    degree = np.bincount(net.edge_u, minlength=n) + np.bincount(net.edge_v, minlength=n)
    p_edge = [node_edge[has]]
    p_off = [node_off[has]]
    p_rank = [-degree[has].astype(np.float64)]
    if edge_points:
        m = np.floor(net.edge_length_m / spacing_m).astype(np.int64)
        m = np.where(net.edge_length_m > spacing_m, m, 0)
        if m.sum():
            e = np.repeat(np.arange(net.edge_length_m.size), m)
            j = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m) + 1
            p_edge.append(e.astype(np.int64))
            p_off.append(net.edge_length_m[e] * j / (m[e] + 1))
            p_rank.append(np.ones(e.size))  # after every node
    edge = np.concatenate(p_edge)
    off = np.concatenate(p_off)
    rank = np.concatenate(p_rank)
    x, y = point_xy(net, edge, off)
    dgeoms = demand.geometry.values
    dgeoms = dgeoms[~(shapely.is_missing(dgeoms) | shapely.is_empty(dgeoms))]
    near = _near_demand(x, y, dgeoms, max_distance_m)
    if not near.any():
        msg = f"No network point lies within {max_distance_m:g} m of the {len(demand)} demand units; check that demand and network cover the same area, or raise `max_distance_m`."
        raise InputError(msg)
    excl = _excluded(x, y, exclude, net)
    ok = near & ~excl
    if not ok.any():
        msg = f"All {int(near.sum())} candidate points near demand fall inside the `exclude` polygons; shrink the exclusions or pass candidates explicitly."
        raise InputError(msg)
    sel = np.flatnonzero(ok)
    keep = _thin(x[sel], y[sel], rank[sel], spacing_m)
    sel = np.sort(sel[keep])
    width = max(len(str(sel.size)), 1)
    ids = [f"n{i:0{width}d}" for i in range(sel.size)]
    out = _candidate_frame(net, edge[sel], off[sel], np.zeros(sel.size), ids, "network")
    logger.info(
        "returned %d candidate sites (spacing %.0f m, from %d points near demand, %d excluded)",
        len(out),
        spacing_m,
        int(near.sum()),
        int((near & excl).sum()),
    )
    return out


def _near_demand(
    x: FloatArray, y: FloatArray, dgeoms: NDArray[np.object_], max_distance_m: float
) -> BoolArray:
    """Which points lie within ``max_distance_m`` of a demand geometry.

    A point within ``max_distance_m`` of a unit's representative point (which lies in
    the unit) is near; one farther than ``max_distance_m`` plus the largest unit's
    diagonal from every representative point is not. Only the points in between take
    the exact (and slow) polygon distance test.
    """
    if dgeoms.size == 0 or x.size == 0:
        return np.zeros(x.size, dtype=bool)
    rep = shapely.point_on_surface(dgeoms)
    b = shapely.bounds(dgeoms)
    reach_m = float(np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]).max())
    tree = cKDTree(np.column_stack([shapely.get_x(rep), shapely.get_y(rep)]))
    d, _ = tree.query(
        np.column_stack([x, y]), k=1, distance_upper_bound=max_distance_m + reach_m + 1e-6
    )
    near = np.asarray(d <= max_distance_m, dtype=bool)
    maybe = np.flatnonzero(~near & np.isfinite(d))
    if maybe.size:
        hits = shapely.STRtree(dgeoms).query(
            shapely.points(x[maybe], y[maybe]), predicate="dwithin", distance=max_distance_m
        )
        near[maybe[hits[0]]] = True
    return near


def _thin(x: FloatArray, y: FloatArray, rank: FloatArray, spacing_m: float) -> IntArray:
    """Return the indices of points kept so that no two lie closer than ``spacing_m``.

    First one point per grid cell of side ``spacing_m / sqrt 2`` (two points in
    one cell are always too close), then a greedy pass in priority order
    (``rank``, then index) over the remaining conflicting pairs.
    """
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    cell = spacing_m / math.sqrt(2.0)
    gx, gy = _cells(x, y, float(x.min()), float(y.min()), cell)
    order = np.lexsort((np.arange(x.size), rank, gy, gx))
    first = np.ones(order.size, dtype=bool)
    first[1:] = (gx[order][1:] != gx[order][:-1]) | (gy[order][1:] != gy[order][:-1])
    pre = order[first]
    pre = pre[np.lexsort((pre, rank[pre]))]  # priority order
    tree = cKDTree(np.column_stack([x[pre], y[pre]]))
    pairs = tree.query_pairs(r=spacing_m * (1 - 1e-9), output_type="ndarray")
    if pairs.size == 0:
        return pre
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])
    b = np.concatenate([pairs[:, 1], pairs[:, 0]])
    nb = sparse.csr_array((np.ones(a.size, dtype=np.int8), (a, b)), shape=(pre.size, pre.size))
    removed = np.zeros(pre.size, dtype=bool)
    kept: list[int] = []
    indptr, indices = nb.indptr, nb.indices
    for i in range(pre.size):  # pre is already in priority order
        if removed[i]:
            continue
        kept.append(i)
        removed[indices[indptr[i] : indptr[i + 1]]] = True
    return pre[np.asarray(kept, dtype=np.int64)]


def candidates_from_file(
    net: WalkNetwork,
    gdf: gpd.GeoDataFrame,
    *,
    id_column: str | None = None,
    max_snap_m: float = 500.0,
    exclude: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Candidate sites from a user's points (already read, EPSG:4326 or ``net.crs``).

    Each point is snapped to the nearest walkable edge; its straight-line access
    leg counts in the walking time. The returned geometry is the snapped point.

    Parameters
    ----------
    id_column
        Column holding unique candidate ids (default: ``candidate_id`` or
        ``id`` when present, else ``"f<row>"``).
    max_snap_m
        Points farther than this from any walkable street are refused.

    Returns
    -------
    geopandas.GeoDataFrame
        Same columns as :func:`candidate_sites` with ``source="file"``.

    Raises
    ------
    InputError
        No usable points; points off the walking network; all points excluded.
    """
    check_count(len(gdf), "candidate sites", "the candidates file")
    g = _to_net_crs(gdf, net, "candidates")
    geoms = g.geometry.values
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    usable &= shapely.get_type_id(geoms) == shapely.GeometryType.POINT
    if not usable.any():
        msg = f"The candidates file has no usable Point geometries ({len(g)} rows); give one point per candidate site (lon/lat in EPSG:4326)."
        raise InputError(msg)
    dropped = int((~usable).sum())
    if dropped:
        logger.warning("ignored %d candidate rows without a usable point", dropped)
    g = g[usable]
    col = id_column
    if col is None:
        col = next((c for c in (CANDIDATE_ID, "id") if c in g.columns), None)
    elif col not in g.columns:
        msg = (
            f"`id_column` {col!r} is not a column of the candidates; columns are {list(g.columns)}."
        )
        raise InputError(msg)
    ids = [str(v) for v in g[col]] if col is not None else [f"f{i}" for i in np.flatnonzero(usable)]
    if len(set(ids)) != len(ids):
        msg = (
            f"Candidate ids in column {col!r} are not unique; make them unique or drop `id_column`."
        )
        raise InputError(msg)
    px = shapely.get_x(g.geometry.values).astype(np.float64)
    py = shapely.get_y(g.geometry.values).astype(np.float64)
    snap = snap_points(net, px, py)
    far = snap.distance_m > max_snap_m
    if far.any():
        bad = [ids[i] for i in np.flatnonzero(far)[:5]]
        msg = f"{int(far.sum())} candidates lie more than {max_snap_m:g} m from the walking network (e.g. {bad}), so they are not reachable on it; remove them, check their coordinates (WGS-84 expected), or raise `max_snap_m`."
        raise InputError(msg)
    excl = _excluded(snap.x, snap.y, exclude, net)
    if excl.all():
        msg = f"All {len(ids)} candidates fall inside the `exclude` polygons; nothing is left to choose from."
        raise InputError(msg)
    keep = np.flatnonzero(~excl)
    out = _candidate_frame(
        net,
        snap.edge[keep],
        snap.offset_m[keep],
        snap.distance_m[keep],
        [ids[i] for i in keep],
        "file",
    )
    logger.info("returned %d candidate sites from file (%d excluded)", len(out), int(excl.sum()))
    return out


# --- geographic wrapper -------------------------------------------------------


def _snapped(gdf: gpd.GeoDataFrame, what: str) -> Snapped:
    """Return the snap columns of ``gdf`` as the search takes them."""
    return Snapped(*snap_arrays(gdf, what))


def _population(demand: gpd.GeoDataFrame) -> tuple[FloatArray, float]:
    """People per demand unit and in all; refuses a demand with nobody to cover."""
    w = demand[POPULATION].to_numpy(dtype=np.float64)
    total = float(w.sum())
    if total <= 0:
        msg = "`demand` has zero total population; nothing to cover. Check the population model."
        raise InputError(msg)
    return w, total


def _open_centers(centers: gpd.GeoDataFrame, closed: Sequence[str]) -> gpd.GeoDataFrame:
    """``centers`` without those whose ``center_id`` is in ``closed`` (all must exist)."""
    if not closed:
        return centers
    if CENTER_ID not in centers.columns:
        msg = f"`closed` names centers by `{CENTER_ID}`, but `centers` has no such column."
        raise InputError(msg)
    unknown = sorted(set(closed) - set(centers[CENTER_ID].astype(str)))
    if unknown:
        msg = (
            f"`closed` names unknown center ids {unknown[:5]}; use values of `centers.{CENTER_ID}`."
        )
        raise InputError(msg)
    return centers[~centers[CENTER_ID].astype(str).isin(set(closed))]


def _existing(
    centers: gpd.GeoDataFrame | BoolArray | None, n_demand: int, closed: Sequence[str]
) -> tuple[Snapped, BoolArray | None]:
    """Return the open existing centers as sources, or the caller's ``covered0`` array."""
    if centers is None:
        return Snapped.empty(), None
    if isinstance(centers, gpd.GeoDataFrame):
        if len(centers) == 0:
            return Snapped.empty(), None
        return _snapped(_open_centers(centers, closed), "centers"), None
    covered0 = np.asarray(centers, dtype=bool)
    if covered0.shape != (n_demand,):
        msg = f"`centers` as a covered0 array needs one boolean per demand unit ({n_demand}); got shape {covered0.shape}."
        raise InputError(msg)
    return Snapped.empty(), covered0


def _existing_coverage(
    net: WalkNetwork,
    sources: Snapped,
    dem: Snapped,
    limit_m: float,
    tie_limit_m: float | None,
) -> tuple[BoolArray, BoolArray]:
    """Demand the existing centers reach within the primary and the tie-break limit."""
    dist0, _ = nearest_points_m(net, sources, dem)
    covered0: BoolArray = dist0 <= limit_m + _LIMIT_EPS_M
    tie0: BoolArray = dist0 <= (tie_limit_m or 0.0) + _LIMIT_EPS_M
    return covered0, tie0


def _drop_excluded(
    net: WalkNetwork, cands: gpd.GeoDataFrame, exclude: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Snapped candidates outside the ``exclude`` polygons (some must remain)."""
    excl = _excluded(
        shapely.get_x(cands.geometry.values).astype(np.float64),
        shapely.get_y(cands.geometry.values).astype(np.float64),
        exclude,
        net,
    )
    if excl.all():
        msg = f"All {len(cands)} candidates fall inside the `exclude` polygons; nothing is left to choose from."
        raise InputError(msg)
    return cands[~excl]


def _siting_candidates(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    params: SitingParams,
    candidates: gpd.GeoDataFrame | None,
    exclude: gpd.GeoDataFrame | None,
) -> gpd.GeoDataFrame:
    """Return the candidates to choose from: generated, or the caller's (snapped if need be)."""
    if candidates is None:
        cands = candidate_sites(
            net,
            demand,
            spacing_m=params.spacing_m,
            max_distance_m=params.max_distance_m,
            exclude=exclude,
        )
    else:
        cands = _to_net_crs(candidates, net, "candidates")
        if cands is not candidates or not all(
            c in cands.columns for c in (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M, CANDIDATE_ID)
        ):
            cands = candidates_from_file(net, cands, exclude=exclude)
        elif exclude is not None:
            cands = _drop_excluded(net, cands, exclude)
        cands = cands.reset_index(drop=True)
    if len(cands) == 0:
        msg = "No candidate sites to choose from; pass candidates or widen `max_distance_m`."
        raise InputError(msg)
    return cands


def _sites_frame(
    net: WalkNetwork, cands: gpd.GeoDataFrame, at: Snapped, sel: SiteSelection
) -> gpd.GeoDataFrame:
    """Return the chosen sites in rank order (``at``: their snap arrays, in that order)."""
    x, y = point_xy(net, at.edge, at.offset_m)
    cum = sel.cumulative_population
    return gpd.GeoDataFrame(
        {
            RANK: np.arange(1, sel.chosen.size + 1, dtype=np.int64),
            CANDIDATE_ID: cands[CANDIDATE_ID].to_numpy()[sel.chosen],
            MARGINAL_POPULATION: sel.marginal_population,
            CUMULATIVE_POPULATION: cum,
            CUMULATIVE_SHARE: cum / sel.population_total,
            SNAP_EDGE: at.edge,
            SNAP_OFFSET_M: at.offset_m,
            SNAP_DISTANCE_M: at.access_m,
        },
        geometry=shapely.points(x, y),
        crs=net.crs,
    )


def _curve(sel: SiteSelection) -> pd.DataFrame:
    """Covered share and population after 0, 1, …, K sites."""
    pop = np.concatenate([[sel.population_before], sel.cumulative_population])
    return pd.DataFrame(
        {
            CURVE_K: np.arange(sel.chosen.size + 1, dtype=np.int64),
            CURVE_SHARE: pop / sel.population_total,
            CURVE_POPULATION: pop,
        }
    )


def _minutes_after(
    net: WalkNetwork, sources: Snapped, dem: Snapped, speed_kmh: float, index: pd.Index
) -> pd.Series:
    """Return walking minutes from each demand unit to the nearest of ``sources`` (NaN: none)."""
    dist, _ = nearest_points_m(net, sources, dem)
    ms = speed_ms(speed_kmh)
    return pd.Series(
        np.where(np.isfinite(dist), dist / ms / 60.0, np.nan), index=index, name="minutes_after"
    )


def _result(
    params: SitingParams,
    sel: SiteSelection,
    sites: gpd.GeoDataFrame,
    minutes_after: pd.Series,
    n_candidates: int,
) -> SitingResult:
    total = sel.population_total
    share_after = sel.population_after / total
    ub_share = min(1.0, sel.bound_population / total)
    return SitingResult(
        params=params,
        sites=sites,
        curve=_curve(sel),
        method=sel.method,
        k=sel.k,
        share_before=sel.population_before / total,
        share_after=share_after,
        upper_bound_share=ub_share,
        gap=max(0.0, ub_share - share_after),
        minutes_after=minutes_after,
        population_total=total,
        n_candidates=n_candidates,
        target_met=sel.target_met,
        optimal=sel.optimal,
        solver_status=sel.status,
        swaps=sel.swaps,
        min_sites_proven=sel.min_sites_proven,
        bound_kind=sel.bound_kind,
        stopped=sel.stopped,
    )


@dataclass(frozen=True)
class SitingSets:
    """The candidates and their coverage sets at one siting threshold: what another ``k`` reuses.

    Built by :func:`siting_sets`; :func:`propose_sites_with` takes them instead of searching
    again. They depend on the network, the demand, the candidates (or their spacing and
    distance), the exclusions, the walking limits and nothing else: not on ``k``, a target
    share, the existing centers or the solver. ``key`` (:func:`siting_sets_key`) names
    the parameters they were built with; the caller keys them by its inputs too.
    """

    key: tuple[float, float | None, float, float, int]
    candidates: gpd.GeoDataFrame
    cover: sparse.csr_array
    tie_cover: sparse.csr_array | None


def siting_sets_key(
    params: SitingParams, n_demand: int
) -> tuple[float, float | None, float, float, int]:
    """Return what :class:`SitingSets` depend on in `params`, and the number of demand units.

    The primary and tie-break limits in meters (minutes at the walking speed), the
    candidates' spacing and greatest distance from demand, and ``n_demand``.
    """
    limit2 = (
        _limit_m(params.secondary_minutes, params.speed_kmh)
        if params.secondary_minutes is not None
        else None
    )
    return (
        _limit_m(params.minutes, params.speed_kmh),
        limit2,
        float(params.spacing_m),
        float(params.max_distance_m),
        int(n_demand),
    )


def siting_sets(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    params: SitingParams,
    *,
    candidates: gpd.GeoDataFrame | None = None,
    exclude: gpd.GeoDataFrame | None = None,
    progress: ProgressFn | None = None,
) -> SitingSets:
    """Return the candidates of :func:`propose_sites` and their coverage sets, for reuse.

    Parameters are those of :func:`propose_sites` (same meaning). The sets are those
    :func:`propose_sites` builds itself when it is given none.

    Returns
    -------
    SitingSets
        ``candidates`` (``candidate_id``, ``source``, snap columns, geometry), ``cover``
        (boolean candidates × demand within ``params.minutes``) and ``tie_cover`` (within
        ``params.secondary_minutes``, ``None`` without one).
    """
    key = siting_sets_key(params, len(demand))
    limit, limit2 = key[0], key[1]
    dem = _snapped(demand, "demand")
    cands = _siting_candidates(net, demand, params, candidates, exclude)
    at = _snapped(cands, "candidates")
    cover = _coverage_matrix(net, at, dem, limit, progress=sub_progress(progress, 0.0, 0.6))
    tie_cover = (
        _coverage_matrix(net, at, dem, limit2, progress=sub_progress(progress, 0.6, 1.0))
        if limit2 is not None
        else None
    )
    return SitingSets(key=key, candidates=cands, cover=cover, tie_cover=tie_cover)


def _checked_sets(sets: SitingSets, params: SitingParams, n_demand: int) -> SitingSets:
    """Return `sets` when they were built for `params` and `n_demand` units; else refuse."""
    want = siting_sets_key(params, n_demand)
    if params.capacitated or sets.key != want:
        msg = (
            "`sets` were built for other siting parameters (limits, spacing, demand: "
            f"{sets.key}); these need {want}"
            + (" and a capacitated siting builds its own" if params.capacitated else "")
            + ". Build them with `siting_sets(net, demand, params)` for these parameters."
        )
        raise InputError(msg)
    return sets


def propose_sites(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    centers: gpd.GeoDataFrame | NDArray[np.bool_] | None = None,
    *,
    params: SitingParams,
    candidates: gpd.GeoDataFrame | None = None,
    exclude: gpd.GeoDataFrame | None = None,
    closed: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> SitingResult:
    """Propose new station sites that cover the most residents within ``params.minutes``.

    Steps: existing coverage (one nearest-center search), candidates, coverage
    sets at ``params.minutes`` and ``params.secondary_minutes`` (the tie-break),
    :func:`coverage.optimize.best_sites` on those matrices, then the sites, the
    coverage curve and the minutes to the nearest station afterwards.

    Parameters
    ----------
    net
        The walking network.
    demand
        Demand units (the demand contract: ``net.crs``, ``population``, snap columns).
    centers
        Existing centers (the centers contract: ``net.crs``, ``center_id``, snap
        columns); their coverage counts as already covered. Or a boolean array
        ``covered0`` (one per demand unit, primary threshold); then
        ``minutes_after`` counts the proposed sites only. ``None``: no existing
        centers.
    params
        What to optimise (:class:`SitingParams`).
    candidates
        Candidate sites (from :func:`candidate_sites` or
        :func:`candidates_from_file`, or points to snap as
        :func:`candidates_from_file` does); default: :func:`candidate_sites` with
        ``params.spacing_m`` and ``params.max_distance_m``.
    exclude
        Polygons where no station may go (EPSG:4326 or ``net.crs``).
    closed
        ``center_id`` values of existing centers to treat as closed.
    progress
        ``progress(fraction, message)``.

    Returns
    -------
    SitingResult
        ``sites`` (``rank``, ``candidate_id``, ``marginal_population``,
        ``cumulative_population``, ``cumulative_share``, geometry), ``curve``
        (``k``, ``share``, ``population_covered``), ``method``, ``k``,
        ``share_before``, ``share_after``, ``upper_bound_share``, ``gap``,
        ``minutes_after`` (Series, demand index).
    """
    if not isinstance(params, SitingParams):
        msg = f"`params` must be a SitingParams; got {type(params).__name__}."
        raise InputError(msg)
    if params.capacitated:
        return _propose_capacitated(
            net,
            demand,
            centers,
            params=params,
            candidates=candidates,
            exclude=exclude,
            closed=closed,
            progress=progress,
        )

    def sets_of(sub: ProgressFn | None) -> SitingSets:
        return siting_sets(
            net, demand, params, candidates=candidates, exclude=exclude, progress=sub
        )

    return _propose(net, demand, centers, params, closed, progress, sets_of)


def propose_sites_with(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    centers: gpd.GeoDataFrame | NDArray[np.bool_] | None = None,
    *,
    params: SitingParams,
    sets: SitingSets,
    closed: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> SitingResult:
    """Return :func:`propose_sites` on the candidates and coverage sets of an earlier run.

    `sets` (:func:`siting_sets`) must come from the same network, demand, candidates and
    exclusions; they are checked against `params` (limits, spacing, number of demand
    units) and the search is not run again: another ``k``, target share or set of
    existing centers costs the solver only. Not for a capacitated siting.

    Returns
    -------
    SitingResult
        As :func:`propose_sites`, equal to it on the same inputs.
    """
    if not isinstance(params, SitingParams):
        msg = f"`params` must be a SitingParams; got {type(params).__name__}."
        raise InputError(msg)
    checked = _checked_sets(sets, params, len(demand))
    return _propose(net, demand, centers, params, closed, progress, lambda _: checked)


def _propose(  # the uncapacitated core of propose_sites and propose_sites_with
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    centers: gpd.GeoDataFrame | NDArray[np.bool_] | None,
    params: SitingParams,
    closed: Sequence[str],
    progress: ProgressFn | None,
    sets_of: Callable[[ProgressFn | None], SitingSets],
) -> SitingResult:
    budget = TimeBudget.start(params.time_limit_s)  # candidates and coverage sets count
    w, _ = _population(demand)
    dem = _snapped(demand, "demand")
    limit = _limit_m(params.minutes, params.speed_kmh)
    limit2 = (
        _limit_m(params.secondary_minutes, params.speed_kmh)
        if params.secondary_minutes is not None
        else None
    )
    sources, covered0 = _existing(centers, len(demand), closed)
    if covered0 is None:
        covered0, tie0 = _existing_coverage(net, sources, dem, limit, limit2)
    else:
        tie0 = np.zeros_like(covered0)
    if progress:
        progress(0.05, "existing coverage")
    sets = sets_of(sub_progress(progress, 0.05, 0.7))
    cands, cover, tie_cover = sets.candidates, sets.cover, sets.tie_cover
    at = _snapped(cands, "candidates")
    sel = best_sites(
        cover,
        w,
        params,
        covered0=covered0,
        tie_cover=tie_cover,
        tie_covered0=tie0,
        progress=sub_progress(progress, 0.7, 0.9),
        budget=budget,
    )
    sites = _sites_frame(net, cands, at.take(sel.chosen), sel)
    if progress:
        progress(0.9, "minutes after")
    minutes_after = _minutes_after(
        net, sources.plus(at.take(sel.chosen)), dem, params.speed_kmh, demand.index
    )
    result = _result(params, sel, sites, minutes_after, len(cands))
    if progress:
        progress(1.0, "sites proposed")
    logger.info(
        "proposed %d sites (%s): share %.4f → %.4f, bound %.4f, gap %.4f",
        result.k,
        result.method,
        result.share_before,
        result.share_after,
        result.upper_bound_share,
        result.gap,
    )
    return result


# --- capacitated siting (issue 15) -------------------------------------------------------

#: Columns of capacitated sites: ``action`` (``"new"`` or ``"enlarge"``), the floor area
#: added, and the center enlarged.
ACTION = "action"
ADDED_FLOOR_AREA_M2 = "added_floor_area_m2"
ENLARGED_CENTER_ID = "enlarged_center_id"


def _existing_floor_areas(centers: gpd.GeoDataFrame) -> FloatArray:
    """Return the floor areas of the existing centers, refusing unknown ones (never 0 or ∞)."""
    if FLOOR_AREA_M2 not in centers.columns:
        msg = f"capacitated siting needs the existing centers' floor areas: the centers have no {FLOOR_AREA_M2!r} column (--capacity-column NAME)."
        raise InputError(msg)
    s = np.array(centers[FLOOR_AREA_M2].to_numpy(dtype=np.float64, na_value=np.nan))
    bad = ~(np.isfinite(s) & (s >= 0))
    if bad.any():
        ids = centers[CENTER_ID].to_numpy(dtype=object)[bad]
        msg = f"capacitated siting needs every existing center's floor area; {bad.sum()} have none (e.g. {', '.join(map(str, ids[:5]))}). Fill them in the centers file, or close those centers (--close)."
        raise InputError(msg)
    return s


def _capacity_per_m2(
    params: SitingParams, demand: gpd.GeoDataFrame, w: FloatArray
) -> tuple[float, FloatArray | None]:
    """Return what one m² serves and the load per resident of each unit.

    Without a ``households`` column (a census's): residents per m² (100 households
    of ``household_size`` persons per ``standard_m2_per_100_households``), no load.
    With one, the capacity is in households (100 per standard), and each unit's
    residents use its households per resident (:func:`coverage.standards.unit_households`:
    the census households where known, else population / household size), as the
    capacity audit counts them.
    """
    if HOUSEHOLDS not in demand.columns:
        return params.residents_per_m2(), None
    hh = unit_households(demand, params.household_size)
    load = np.divide(hh, w, out=np.full(w.size, 1.0 / params.household_size), where=w > 0)
    return 100.0 / params.standard_m2_per_100_households, load


def _capacitated_model(
    params: SitingParams,
    cover_existing: sparse.csr_array,
    cover: sparse.csr_array,
    demand: gpd.GeoDataFrame,
    floor_m2: FloatArray,
) -> CapacitatedModel:
    """Stack existing centers, one block of candidates per size, and the enlargements."""
    w, _ = _population(demand)
    per_m2, load = _capacity_per_m2(params, demand, w)
    n_e, n_c = cover_existing.shape[0], cover.shape[0]
    blocks = [cover_existing] + [cover] * len(params.new_site_m2)
    cap = [floor_m2 * per_m2] + [np.full(n_c, a * per_m2) for a in params.new_site_m2]
    location = [np.tile(np.arange(n_c), len(params.new_site_m2))]
    if params.enlarge_m2 is not None and n_e:
        blocks.append(cover_existing)
        cap.append(np.full(n_e, float(params.enlarge_m2) * per_m2))
        location.append(n_c + np.arange(n_e))
    return CapacitatedModel(
        sparse.csr_array(sparse.vstack(blocks, format="csr")),
        w,
        np.concatenate(cap),
        n_e,
        np.concatenate(location).astype(np.int64),
        load,
    )


def _capacitated_sites(
    net: WalkNetwork,
    params: SitingParams,
    cands: gpd.GeoDataFrame,
    at: Snapped,
    open_centers: gpd.GeoDataFrame,
    sel: CapacitatedSelection,
) -> tuple[gpd.GeoDataFrame, Snapped]:
    """Return the chosen actions as sites in rank order, and the snap arrays of the new ones."""
    n_c = len(cands)
    n_new = n_c * len(params.new_site_m2)
    a = sel.chosen
    is_new = a < n_new
    cand = np.where(is_new, a % max(n_c, 1), 0)
    center = np.where(is_new, 0, a - n_new)
    src = _snapped(open_centers, "centers") if len(open_centers) else Snapped.empty()
    edge = np.where(is_new, at.edge[cand], src.edge[center] if src.size else 0)
    offset = np.where(is_new, at.offset_m[cand], src.offset_m[center] if src.size else 0.0)
    access = np.where(is_new, at.access_m[cand], src.access_m[center] if src.size else 0.0)
    sizes = np.asarray(params.new_site_m2)
    added = np.where(
        is_new, sizes[np.minimum(a // max(n_c, 1), sizes.size - 1)], params.enlarge_m2 or 0.0
    )
    x, y = point_xy(net, edge.astype(np.int64), offset.astype(np.float64))
    cum = sel.cumulative_population
    ids = (
        open_centers[CENTER_ID].to_numpy(dtype=object) if len(open_centers) else np.empty(0, object)
    )
    frame = gpd.GeoDataFrame(
        {
            RANK: np.arange(1, a.size + 1, dtype=np.int64),
            CANDIDATE_ID: np.where(is_new, cands[CANDIDATE_ID].to_numpy(dtype=object)[cand], None),
            ACTION: np.where(is_new, "new", "enlarge").astype(object),
            ADDED_FLOOR_AREA_M2: added.astype(np.float64),
            ENLARGED_CENTER_ID: np.array(
                [None if new else ids[c] for new, c in zip(is_new, center, strict=True)],
                dtype=object,
            ),
            MARGINAL_POPULATION: sel.marginal_population,
            CUMULATIVE_POPULATION: cum,
            CUMULATIVE_SHARE: cum / sel.population_total,
            SNAP_EDGE: edge.astype(np.int64),
            SNAP_OFFSET_M: offset.astype(np.float64),
            SNAP_DISTANCE_M: access.astype(np.float64),
        },
        geometry=shapely.points(x, y),
        crs=net.crs,
    )
    return frame, at.take(cand[is_new])


def _propose_capacitated(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    centers: gpd.GeoDataFrame | NDArray[np.bool_] | None,
    *,
    params: SitingParams,
    candidates: gpd.GeoDataFrame | None,
    exclude: gpd.GeoDataFrame | None,
    closed: Sequence[str],
    progress: ProgressFn | None,
) -> SitingResult:
    """Capacitated siting: residents within ``params.minutes`` and served within floor area."""
    if centers is not None and not isinstance(centers, gpd.GeoDataFrame):
        msg = "capacitated siting needs the existing centers as a GeoDataFrame with floor areas, not a covered0 array."
        raise InputError(msg)
    budget = TimeBudget.start(params.time_limit_s)
    _population(demand)  # refuse a demand with nobody before any search
    dem = _snapped(demand, "demand")
    limit = _limit_m(params.minutes, params.speed_kmh)
    open_centers = (
        _open_centers(centers, closed)
        if centers is not None and len(centers)
        else gpd.GeoDataFrame({CENTER_ID: []}, geometry=[], crs=net.crs)
    )
    floor_m2 = _existing_floor_areas(open_centers) if len(open_centers) else np.zeros(0)
    sources = _snapped(open_centers, "centers") if len(open_centers) else Snapped.empty()
    cover_e = (
        _coverage_matrix(net, sources, dem, limit)
        if sources.size
        else sparse.csr_array((0, len(demand)), dtype=bool)
    )
    if progress:
        progress(0.05, "existing coverage")
    cands = _siting_candidates(net, demand, params, candidates, exclude)
    at = _snapped(cands, "candidates")
    cover = _coverage_matrix(net, at, dem, limit, progress=sub_progress(progress, 0.05, 0.6))
    model = _capacitated_model(params, cover_e, cover, demand, floor_m2)
    if progress:
        progress(0.6, "capacitated greedy")
    sel = best_capacitated_sites(model, params, budget=budget)
    sites, new_at = _capacitated_sites(net, params, cands, at, open_centers, sel)
    minutes_after = _minutes_after(net, sources.plus(new_at), dem, params.speed_kmh, demand.index)
    basis = "census" if HOUSEHOLDS in demand.columns else "household_size"
    result = replace(_result(params, sel, sites, minutes_after, len(cands)), households_basis=basis)
    if progress:
        progress(1.0, "sites proposed")
    logger.info(
        "proposed %d capacitated actions (%s): served %.4f → %.4f, bound %.4f (%s)",
        result.k,
        result.method,
        result.share_before,
        result.share_after,
        result.upper_bound_share,
        sel.bound_kind,
    )
    return result
