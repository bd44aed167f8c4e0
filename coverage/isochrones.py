"""Walking-distance searches from service centers, and service areas that follow the streets.

One multi-source Dijkstra (``scipy.sparse.csgraph.dijkstra(min_only=True)``)
answers "how far is the nearest center" for every node of the network. Each
source is a point *on an edge* (see :func:`coverage.network.snap_points`): it
becomes a virtual node joined to the edge's two ends by
``access + offset`` and ``access + (length − offset)``, so node distances are
exact. Points (demand units) on edges then take the better of their edge's two
ends, or a source on their own edge.

Service areas are built from the reached streets — whole edges and the
reached part of partly reached edges — buffered by a corridor width and
unioned, never from a convex hull.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from coverage.centers import CENTER_ID
from coverage.errors import InputError
from coverage.network import WalkNetwork, speed_ms
from coverage.parallel import worker_threads
from coverage.progress import ProgressFn
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M

logger = logging.getLogger(__name__)

#: Output columns.
MINUTES = "minutes"
MINUTES_TO_NEAREST = "minutes_to_nearest"
NEAREST_CENTER_ID = "nearest_center_id"
MINUTES_FROM = "minutes_from"
MINUTES_TO = "minutes_to"
ALL_CENTERS = "all"

DEFAULT_CORRIDOR_M = 25.0
DEFAULT_MIN_HOLE_AREA_M2 = 1000.0
#: Quarter-circle segments of corridor buffers: 4 is visually smooth at 25 m and ~2× faster than 8.
_QUAD_SEGS = 4
#: Above this many street pieces a service area is unioned tile by tile (see _tiled_areas).
_TILED_UNION_MIN = 20_000
#: Tile side (1–4 km cost the same at 100k nodes).
_TILE_M = 2000.0
#: Seam vertices are rounded to this grid along the seam, so neighbouring tiles match.
_TILE_GRID_M = 0.001
#: Lines within this many corridor widths of a tile may touch it (a hair more than one).
_SEAM_MARGIN = 1.01
#: Parts of a band smaller than this are numerical slivers between two areas' shared edges.
_SLIVER_M2 = 0.01


# --- the search ----------------------------------------------------------------


@dataclass(frozen=True)
class NodeReach:
    """Distance from each network node to its nearest source.

    ``dist_m[i]`` is ``inf`` and ``source[i]`` is ``-1`` when node ``i`` is not
    reached (disconnected, or farther than the search limit).
    """

    dist_m: NDArray[np.float64]
    source: NDArray[np.int64]
    limit_m: float = float("inf")


@dataclass(frozen=True)
class SourceReach:
    """Per-source bounded reach, as a ragged array.

    Source ``j`` reaches nodes ``node[indptr[j]:indptr[j+1]]`` at distances
    ``dist_m[indptr[j]:indptr[j+1]]`` (meters, ``<= limit_m``).
    """

    indptr: NDArray[np.int64]
    node: NDArray[np.int64]
    dist_m: NDArray[np.float64]
    limit_m: float

    def __len__(self) -> int:
        return int(self.indptr.size - 1)

    def of(self, j: int, n_nodes: int) -> NodeReach:
        """The reach of source ``j`` alone, as dense per-node arrays of length ``n_nodes``."""
        a, b = self.indptr[j], self.indptr[j + 1]
        dist = np.full(n_nodes, np.inf)
        src = np.full(n_nodes, -1, dtype=np.int64)
        dist[self.node[a:b]] = self.dist_m[a:b]
        src[self.node[a:b]] = j
        return NodeReach(dist, src, self.limit_m)


class _Graph:
    """Search structures derived once per network: CSR adjacency, node ↔ edge index."""

    def __init__(self, net: WalkNetwork) -> None:
        adj = net.adjacency()
        # int32 is what csgraph works in; converting once here saves a copy per search
        self.indptr = adj.indptr.astype(np.int32)
        self.indices = adj.indices.astype(np.int32)
        self.data = adj.data.astype(np.float64)
        self.n = net.n_nodes
        # node -> incident edges (CSR), for finding edges touched by a reach
        ends = np.concatenate([net.edge_u, net.edge_v])
        eids = np.concatenate([np.arange(net.n_edges), np.arange(net.n_edges)])
        order = np.argsort(ends, kind="stable")
        self.node_edges = eids[order]
        self.node_edges_ptr = np.searchsorted(ends[order], np.arange(self.n + 1)).astype(np.int64)
        self._tree: cKDTree | None = None
        self._xy = net.node_xy

    @property
    def tree(self) -> cKDTree:
        if self._tree is None:
            self._tree = cKDTree(self._xy)
        return self._tree


_GRAPHS: dict[int, tuple[weakref.ref[WalkNetwork], _Graph]] = {}


def _graph(net: WalkNetwork) -> _Graph:
    """Search structures of ``net``, built on first use and dropped with ``net``."""
    key = id(net)
    hit = _GRAPHS.get(key)
    if hit is not None and hit[0]() is net:
        return hit[1]
    g = _Graph(net)
    _GRAPHS[key] = (weakref.ref(net), g)
    weakref.finalize(net, _GRAPHS.pop, key, None)
    return g


def _as_sources(
    net: WalkNetwork, edge: ArrayLike, offset_m: ArrayLike, access_m: ArrayLike, what: str
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    e = np.asarray(edge)
    off = np.asarray(offset_m, dtype=np.float64)
    acc = np.asarray(access_m, dtype=np.float64)
    if not (e.shape == off.shape == acc.shape) or e.ndim != 1:
        msg = f"`{what}` edge, offset and access arrays must be 1-D and of equal length; got shapes {e.shape}, {off.shape}, {acc.shape}."
        raise InputError(msg)
    if e.size and (not np.issubdtype(e.dtype, np.integer) or e.min() < 0 or e.max() >= net.n_edges):
        msg = f"`{what}` edge indices must be integers in [0, {net.n_edges}); snap the points to this network first (`coverage.network.snap_frame(net, gdf)`)."
        raise InputError(msg)
    if (
        not (np.isfinite(off).all() and np.isfinite(acc).all())
        or (off < 0).any()
        or (acc < 0).any()
    ):
        msg = f"`{what}` offsets and access distances must be finite and >= 0; snap the points with `coverage.network.snap_frame`."
        raise InputError(msg)
    e = e.astype(np.int64)
    off = np.minimum(off, net.edge_length_m[e]) if e.size else off
    return e, off, acc


def _augmented(
    g: _Graph,
    net: WalkNetwork,
    edge: NDArray[np.int64],
    off: NDArray[np.float64],
    acc: NDArray[np.float64],
) -> sparse.csr_array:
    """The adjacency plus one virtual node per source, with arcs to its edge's two ends."""
    k = edge.size
    length = net.edge_length_m[edge]
    nnz = g.indices.size
    indptr = np.concatenate([g.indptr, nnz + 2 * np.arange(1, k + 1, dtype=np.int32)])
    targets = np.column_stack([net.edge_u[edge], net.edge_v[edge]]).ravel().astype(np.int32)
    weights = np.column_stack([acc + off, acc + (length - off)]).ravel()
    n = g.n + k
    return sparse.csr_array(
        (np.concatenate([g.data, weights]), np.concatenate([g.indices, targets]), indptr),
        shape=(n, n),
    )


def nearest_source_m(
    net: WalkNetwork,
    edge: ArrayLike,
    offset_m: ArrayLike,
    access_m: ArrayLike,
    *,
    limit_m: float = float("inf"),
) -> NodeReach:
    """Walking distance from every node to the nearest of several sources on edges.

    One multi-source Dijkstra on the network augmented with one virtual node per
    source.

    Parameters
    ----------
    net
        The walking network.
    edge, offset_m, access_m
        Per source: edge index, offset along the edge from its ``u`` end, and
        straight-line access distance (the snap columns of a centers frame).
    limit_m
        Stop the search at this distance; farther nodes count as unreached.

    Returns
    -------
    NodeReach
        ``dist_m`` (per node, ``inf`` when unreached) and ``source`` (per node,
        index of the nearest source, ``-1`` when unreached).
    """
    e, off, acc = _as_sources(net, edge, offset_m, access_m, "sources")
    n = net.n_nodes
    if e.size == 0:
        return NodeReach(np.full(n, np.inf), np.full(n, -1, dtype=np.int64), float(limit_m))
    g = _graph(net)
    A = _augmented(g, net, e, off, acc)
    dist, _, src = dijkstra(
        A,
        directed=True,
        indices=np.arange(n, n + e.size),
        min_only=True,
        return_predecessors=True,
        limit=limit_m,
    )
    dist = np.asarray(dist[:n], dtype=np.float64)
    source = np.asarray(src[:n], dtype=np.int64) - n
    source[~np.isfinite(dist)] = -1
    return NodeReach(dist, source, float(limit_m))


def points_reach_m(
    net: WalkNetwork,
    reach: NodeReach,
    edge: ArrayLike,
    offset_m: ArrayLike,
    access_m: ArrayLike,
    src_edge: ArrayLike,
    src_offset_m: ArrayLike,
    src_access_m: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Walking distance from points on edges to their nearest source.

    A point at ``offset`` on edge ``(u, v)`` with access ``a`` is at
    ``a + min(dist[u] + offset, dist[v] + length − offset)``, or
    ``a + |offset − src_offset| + src_access`` from a source on the same edge.

    Parameters
    ----------
    net
        The walking network.
    reach
        Result of :func:`nearest_source_m` for the sources below.
    edge, offset_m, access_m
        The points' snap columns.
    src_edge, src_offset_m, src_access_m
        The sources' snap columns, as passed to :func:`nearest_source_m`.

    Returns
    -------
    tuple of arrays
        ``dist_m`` per point (``inf`` when no source is within ``reach.limit_m``)
        and ``source`` per point (source index, ``-1`` when unreached).
    """
    e, off, acc = _as_sources(net, edge, offset_m, access_m, "points")
    se, soff, sacc = _as_sources(net, src_edge, src_offset_m, src_access_m, "sources")
    u, v = net.edge_u[e], net.edge_v[e]
    length = net.edge_length_m[e]
    du = reach.dist_m[u] + off
    dv = reach.dist_m[v] + (length - off)
    via_v = dv < du
    best = np.where(via_v, dv, du)
    source = np.where(via_v, reach.source[v], reach.source[u]).astype(np.int64)
    if se.size and e.size:
        pi, sj = _same_edge_pairs(e, se)
        if pi.size:
            d = np.abs(off[pi] - soff[sj]) + sacc[sj]
            order = np.lexsort((d, pi))
            pi, sj, d = pi[order], sj[order], d[order]
            first = np.ones(pi.size, dtype=bool)
            first[1:] = pi[1:] != pi[:-1]
            pi, sj, d = pi[first], sj[first], d[first]
            better = d < best[pi]
            best[pi[better]] = d[better]
            source[pi[better]] = sj[better]
    dist = best + acc
    out = ~(dist <= reach.limit_m)
    dist[out] = np.inf
    source[out] = -1
    return dist, source


def _same_edge_pairs(
    point_edge: NDArray[np.int64], src_edge: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All (point, source) index pairs that lie on the same edge."""
    order = np.argsort(src_edge, kind="stable")
    se = src_edge[order]
    lo = np.searchsorted(se, point_edge, side="left")
    hi = np.searchsorted(se, point_edge, side="right")
    counts = hi - lo
    pi = np.repeat(np.arange(point_edge.size), counts)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    sj = order[np.arange(pi.size) + starts]
    return pi.astype(np.int64), sj.astype(np.int64)


def reach_per_source_m(
    net: WalkNetwork,
    edge: ArrayLike,
    offset_m: ArrayLike,
    access_m: ArrayLike,
    *,
    limit_m: float,
    progress: ProgressFn | None = None,
) -> SourceReach:
    """Bounded reach of each source on its own (not only where it is the nearest).

    Every walk of at most ``limit_m`` from a source stays within ``limit_m`` of
    its snapped point in a straight line, so each source is searched on the
    subgraph of nodes within that disk: exact, and cheap for many sources on a
    large network.

    Parameters
    ----------
    net
        The walking network.
    edge, offset_m, access_m
        Per source: the snap columns.
    limit_m
        Largest distance of interest (finite).
    progress
        Called with ``(fraction, message)``.

    Returns
    -------
    SourceReach
        Ragged per-source arrays of reached nodes and their distances.
    """
    if not np.isfinite(limit_m) or limit_m < 0:
        msg = f"`limit_m` must be a finite distance >= 0; got {limit_m!r}."
        raise InputError(msg)
    e, off, acc = _as_sources(net, edge, offset_m, access_m, "sources")
    g = _graph(net)
    # snapped point of each source
    pts = shapely.line_interpolate_point(net.edge_geometry[e], off) if e.size else np.empty(0)
    sx, sy = shapely.get_x(pts), shapely.get_y(pts)
    nodes_out: list[NDArray[np.int64]] = []
    dist_out: list[NDArray[np.float64]] = []
    counts = np.zeros(e.size, dtype=np.int64)
    full = sparse.csr_array((g.data, g.indices, g.indptr), shape=(g.n, g.n))
    step = max(1, e.size // 20)
    for j in range(e.size):
        r = limit_m - acc[j]
        if r < 0:
            nodes_out.append(np.empty(0, dtype=np.int64))
            dist_out.append(np.empty(0, dtype=np.float64))
            continue
        local = np.asarray(g.tree.query_ball_point((sx[j], sy[j]), r + 1e-6), dtype=np.int64)
        ends = np.array([net.edge_u[e[j]], net.edge_v[e[j]]])
        local = np.union1d(local, ends)
        sub = full[local][:, local]
        pos = np.searchsorted(local, ends)
        length = net.edge_length_m[e[j]]
        m = local.size
        indptr = np.concatenate([sub.indptr, [sub.indptr[-1] + 2]])
        A = sparse.csr_array(
            (
                np.concatenate([sub.data, [acc[j] + off[j], acc[j] + length - off[j]]]),
                np.concatenate([sub.indices, pos]),
                indptr,
            ),
            shape=(m + 1, m + 1),
        )
        d = dijkstra(A, directed=True, indices=m, limit=limit_m)[:m]
        ok = np.isfinite(d)
        nodes_out.append(local[ok])
        dist_out.append(np.asarray(d[ok], dtype=np.float64))
        counts[j] = int(ok.sum())
        if progress and j % step == 0:
            progress(j / e.size, f"per-center reach {j}/{e.size}")
    indptr_out = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SourceReach(
        indptr=indptr_out,
        node=np.concatenate(nodes_out) if nodes_out else np.empty(0, dtype=np.int64),
        dist_m=np.concatenate(dist_out) if dist_out else np.empty(0, dtype=np.float64),
        limit_m=float(limit_m),
    )


def points_within_m(
    net: WalkNetwork,
    per_source: SourceReach,
    edge: ArrayLike,
    offset_m: ArrayLike,
    access_m: ArrayLike,
    src_edge: ArrayLike,
    src_offset_m: ArrayLike,
    src_access_m: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """All (source, point) pairs within ``per_source.limit_m`` of each other.

    Parameters
    ----------
    net
        The walking network.
    per_source
        Result of :func:`reach_per_source_m` for the sources below.
    edge, offset_m, access_m
        The points' snap columns.
    src_edge, src_offset_m, src_access_m
        The sources' snap columns.

    Returns
    -------
    tuple of arrays
        ``source``, ``point`` (indices) and ``dist_m`` of every pair within the limit.
    """
    e, off, acc = _as_sources(net, edge, offset_m, access_m, "points")
    se, soff, sacc = _as_sources(net, src_edge, src_offset_m, src_access_m, "sources")
    g = _graph(net)
    # edge -> points on it (CSR)
    order = np.argsort(e, kind="stable")
    pe_ptr = np.searchsorted(e[order], np.arange(net.n_edges + 1))
    scratch = np.full(net.n_nodes, np.inf)
    out_s: list[NDArray[np.int64]] = []
    out_p: list[NDArray[np.int64]] = []
    out_d: list[NDArray[np.float64]] = []
    for j in range(len(per_source)):
        a, b = per_source.indptr[j], per_source.indptr[j + 1]
        nodes = per_source.node[a:b]
        scratch[nodes] = per_source.dist_m[a:b]
        if nodes.size:
            starts, stops = g.node_edges_ptr[nodes], g.node_edges_ptr[nodes + 1]
            edges = np.unique(
                np.concatenate(
                    [g.node_edges[s:t] for s, t in zip(starts, stops, strict=True)]
                    + [se[j : j + 1]]
                )
            )
        else:
            edges = se[j : j + 1]
        pts = np.concatenate([order[pe_ptr[x] : pe_ptr[x + 1]] for x in edges])
        if pts.size:
            pe = e[pts]
            d = np.minimum(
                scratch[net.edge_u[pe]] + off[pts],
                scratch[net.edge_v[pe]] + net.edge_length_m[pe] - off[pts],
            )
            same = pe == se[j]
            d[same] = np.minimum(d[same], np.abs(off[pts[same]] - soff[j]) + sacc[j])
            d = d + acc[pts]
            ok = d <= per_source.limit_m
            out_s.append(np.full(int(ok.sum()), j, dtype=np.int64))
            out_p.append(pts[ok].astype(np.int64))
            out_d.append(d[ok])
        scratch[nodes] = np.inf
    if not out_s:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(out_s), np.concatenate(out_p), np.concatenate(out_d)


# --- frames --------------------------------------------------------------------


def _snap_cols(gdf: Any, what: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    missing = [c for c in (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M) if c not in gdf.columns]
    if missing:
        msg = f"`{what}` lacks the snap columns {missing}; snap it to the network first with `coverage.network.snap_frame(net, {what})`."
        raise InputError(msg)
    return (
        gdf[SNAP_EDGE].to_numpy(),
        gdf[SNAP_OFFSET_M].to_numpy(dtype=np.float64),
        gdf[SNAP_DISTANCE_M].to_numpy(dtype=np.float64),
    )


def check_crs(net: WalkNetwork, gdf: Any, what: str) -> None:
    import pyproj

    if gdf.crs is None or not pyproj.CRS.from_user_input(gdf.crs).equals(
        pyproj.CRS.from_user_input(net.crs)
    ):
        msg = f"`{what}` is in {gdf.crs}, the network in {net.crs}; project it first (`{what}.to_crs(net.crs)`)."
        raise InputError(msg)


def minutes_to_nearest(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    speed_kmh: float,
    limit_min: float = float("inf"),
) -> pd.DataFrame:
    """Walking minutes from each demand unit to its nearest center.

    Parameters
    ----------
    net
        The walking network.
    centers
        Centers frame (``center_id`` and snap columns), in ``net.crs``.
    demand
        Demand frame (snap columns), in ``net.crs``.
    speed_kmh
        Walking speed.
    limit_min
        Search no farther than this many minutes; farther units count as unreached.

    Returns
    -------
    pandas.DataFrame
        Same index as ``demand``; columns ``minutes_to_nearest`` (NaN when no
        center is reachable) and ``nearest_center_id`` (None when unreachable).
    """
    ms = speed_ms(speed_kmh)
    check_crs(net, centers, "centers")
    check_crs(net, demand, "demand")
    se, so, sa = _snap_cols(centers, "centers")
    pe, po, pa = _snap_cols(demand, "demand")
    limit_m = limit_min * 60.0 * ms
    reach = nearest_source_m(net, se, so, sa, limit_m=limit_m)
    dist, src = points_reach_m(net, reach, pe, po, pa, se, so, sa)
    minutes = dist / ms / 60.0
    minutes[~np.isfinite(minutes)] = np.nan
    ids = (
        centers[CENTER_ID].to_numpy(dtype=object)
        if CENTER_ID in centers
        else np.arange(len(centers)).astype(str).astype(object)
    )
    nearest = np.full(src.size, None, dtype=object)
    nearest[src >= 0] = ids[src[src >= 0]]
    # an explicit object Series keeps None (pandas 3 would infer str and turn None into NaN)
    return pd.DataFrame(
        {
            MINUTES_TO_NEAREST: minutes,
            NEAREST_CENTER_ID: pd.Series(nearest, dtype=object, index=demand.index),
        },
        index=demand.index,
    )


# --- polygons ------------------------------------------------------------------


def _substrings(
    geoms: NDArray[np.object_], start_m: NDArray[np.float64], end_m: NDArray[np.float64]
) -> NDArray[np.object_]:
    """The parts of ``geoms[i]`` between ``start_m[i]`` and ``end_m[i]`` along the line.

    Vectorised ``shapely.ops.substring`` for ``0 <= start < end <= length``: the
    interpolated end points plus the vertices strictly between them.
    """
    if geoms.size == 0:
        return np.empty(0, dtype=object)
    coords, which = shapely.get_coordinates(geoms, return_index=True)
    seg = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    seg[which[1:] != which[:-1]] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    first = np.searchsorted(which, np.arange(geoms.size))
    along = cum - cum[first][which]
    inner = (along > start_m[which]) & (along < end_m[which])
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(geoms, start_m))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(geoms, end_m))
    idx = np.arange(geoms.size)
    g = np.concatenate([idx, which[inner], idx])
    key = np.concatenate([np.full(idx.size, -np.inf), along[inner], np.full(idx.size, np.inf)])
    xy = np.concatenate([p0, coords[inner], p1])
    order = np.lexsort((key, g))
    counts = np.bincount(g, minlength=geoms.size)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, xy[order], (offsets,))
    return np.asarray(out, dtype=object)


def _reached_lines(
    net: WalkNetwork,
    dist_m: NDArray[np.float64],
    budget_m: float,
    src_edge: NDArray[np.int64],
    src_offset_m: NDArray[np.float64],
    src_access_m: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Edges fully within ``budget_m`` (indices) and line pieces of partly reached edges."""
    du, dv = dist_m[net.edge_u], dist_m[net.edge_v]
    length = net.edge_length_m
    a = budget_m - du  # reach into the edge from u
    b = budget_m - dv  # reach into the edge from v
    full = (a >= length) | (b >= length) | ((a >= 0) & (b >= 0) & (a + b >= length))
    full_idx = np.flatnonzero(full)
    partial = ~full & ((a > 0) | (b > 0))
    from_u = np.flatnonzero(partial & (a > 0))
    from_v = np.flatnonzero(partial & (b > 0))
    # own edges of sources: interval around the snapped point
    r = budget_m - src_access_m
    live = (r >= 0) & ~full[src_edge]
    se, so, rr = src_edge[live], src_offset_m[live], r[live]
    lo = np.maximum(0.0, so - rr)
    hi = np.minimum(length[se], so + rr)
    ok = hi > lo
    edges = np.concatenate([from_u, from_v, se[ok]])
    starts = np.concatenate([np.zeros(from_u.size), length[from_v] - b[from_v], lo[ok]])
    ends = np.concatenate([a[from_u], length[from_v], hi[ok]])
    pieces = _substrings(net.edge_geometry[edges], starts, ends)
    return full_idx, pieces


_Box = tuple[float, float, float, float]
_POLYGON = shapely.GeometryType.POLYGON


def _reach_lines(
    net: WalkNetwork,
    dist_m: NDArray[np.float64],
    budget_m: float,
    src_edge: NDArray[np.int64],
    src_offset_m: NDArray[np.float64],
    src_access_m: NDArray[np.float64],
    extra: NDArray[np.object_],
) -> NDArray[np.object_]:
    """Every line of an area: whole reached edges, reached pieces, then ``extra`` (access legs)."""
    full_idx, pieces = _reached_lines(net, dist_m, budget_m, src_edge, src_offset_m, src_access_m)
    return np.concatenate([net.edge_geometry[full_idx], pieces, extra])


def _polygon(
    lines: Sequence[Any] | NDArray[np.object_],
    *,
    corridor_m: float,
    min_hole_area_m2: float,
) -> shapely.Geometry:
    arr = np.asarray(lines, dtype=object)
    if arr.size == 0:
        return shapely.Polygon()
    if arr.size > _TILED_UNION_MIN:
        areas, _ = _tiled_areas(
            [arr], corridor_m=corridor_m, min_hole_area_m2=min_hole_area_m2, with_bands=False
        )
        return areas[0]
    merged = shapely.union_all(shapely.buffer(arr, corridor_m, quad_segs=_QUAD_SEGS))
    return _fill_small_holes(merged, min_hole_area_m2)


def _polygon_parts(geom: shapely.Geometry | NDArray[np.object_]) -> NDArray[np.object_]:
    """The Polygon parts of a geometry (or of an array of geometries)."""
    parts: NDArray[np.object_] = np.asarray(shapely.get_parts(geom), dtype=object)
    out: NDArray[np.object_] = parts[shapely.get_type_id(parts) == _POLYGON]
    return out


def _rings(
    parts: NDArray[np.object_],
) -> tuple[NDArray[np.object_], NDArray[np.int64], NDArray[np.bool_]]:
    """Rings of Polygons: the rings, the part each belongs to, and whether it is the shell."""
    rings, idx = shapely.get_rings(parts, return_index=True)
    shell = np.ones(idx.size, dtype=bool)
    shell[1:] = idx[1:] != idx[:-1]
    return np.asarray(rings, dtype=object), idx.astype(np.int64), shell


def _from_rings(rings: NDArray[np.object_], idx: NDArray[np.int64]) -> shapely.Geometry:
    """Polygon or MultiPolygon from rings grouped by ``idx`` (increasing; shell first)."""
    if rings.size == 0:
        return shapely.Polygon()
    _, idx = np.unique(idx, return_inverse=True)
    polys = shapely.polygons(rings, indices=idx)
    return polys[0] if polys.size == 1 else shapely.multipolygons(polys)


def _fill_small_holes(geom: shapely.Geometry, min_hole_area_m2: float) -> shapely.Geometry:
    """Drop interior rings smaller than ``min_hole_area_m2`` (slivers between corridors)."""
    if geom.is_empty or min_hole_area_m2 <= 0:
        return geom
    rings, idx, shell = _rings(_polygon_parts(geom))
    keep = shell | (shapely.area(shapely.polygons(rings)) >= min_hole_area_m2)
    return _from_rings(rings[keep], idx[keep])


def _tile_boxes(bounds: NDArray[np.float64], tile_m: float) -> list[_Box]:
    # nan* skips the bounds of empty geometries
    x0, y0 = math.floor(np.nanmin(bounds[:, 0])), math.floor(np.nanmin(bounds[:, 1]))
    x1, y1 = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
    xs = np.arange(x0, x1 + tile_m, tile_m)
    ys = np.arange(y0, y1 + tile_m, tile_m)
    return [
        (float(a), float(b), float(a + tile_m), float(b + tile_m)) for a in xs[:-1] for b in ys[:-1]
    ]


def _seam_rounded(geom: shapely.Geometry, box: _Box) -> shapely.Geometry:
    """``geom`` (cut to ``box``) with its vertices on the box edges rounded along the edge.

    Two neighbouring tiles compute the same seam crossing from the same buffer
    segment but may differ in the last bits; rounding the free coordinate to
    ``_TILE_GRID_M`` makes their seams identical (a coverage).
    """
    xy = shapely.get_coordinates(geom)
    on_x = (xy[:, 0] == box[0]) | (xy[:, 0] == box[2])
    on_y = (xy[:, 1] == box[1]) | (xy[:, 1] == box[3])
    if not (on_x.any() or on_y.any()):
        return geom
    xy[on_x, 1] = np.round(xy[on_x, 1] / _TILE_GRID_M) * _TILE_GRID_M
    xy[on_y, 0] = np.round(xy[on_y, 0] / _TILE_GRID_M) * _TILE_GRID_M
    return shapely.set_coordinates(geom, xy)


def _tile_piece(
    lines: NDArray[np.object_],
    tree: shapely.STRtree,
    box: _Box,
    corridor_m: float,
    min_hole_area_m2: float,
) -> shapely.Geometry | None:
    """The corridors of ``lines`` inside ``box``, unioned; holes under ``min_hole_area_m2`` filled.

    Buffers crossing the box edge are cut before the union, so the seam crossings come
    from the buffers themselves (the same on both sides of a seam) and not from the
    noding of the union; holes strictly inside the tile are holes of the whole union.
    """
    r = corridor_m * _SEAM_MARGIN
    idx = tree.query(shapely.box(box[0] - r, box[1] - r, box[2] + r, box[3] + r))
    if idx.size == 0:
        return None
    buffers = shapely.buffer(lines[idx], corridor_m, quad_segs=_QUAD_SEGS)
    b = shapely.bounds(buffers).reshape(-1, 4)
    inner = (b[:, 0] > box[0]) & (b[:, 1] > box[1]) & (b[:, 2] < box[2]) & (b[:, 3] < box[3])
    cut = shapely.clip_by_rect(buffers[~inner], *box)
    merged = shapely.union_all(np.concatenate([buffers[inner], cut]))
    piece = _fill_small_holes(_seam_rounded(merged, box), min_hole_area_m2)
    return None if piece.is_empty else piece


def _join_tiles(
    pieces: Sequence[shapely.Geometry], min_hole_area_m2: float
) -> tuple[shapely.Geometry, NDArray[np.object_]]:
    """Join tile pieces whose seams match; also return the small holes that cross seams.

    The holes strictly inside a tile are set aside, the shells are joined by a
    coverage union (linear in the seam vertices), and the holes are put back into
    the part that contains them: the city-wide result has one hole per block, and
    those never need to be noded again. Holes of the joined result (they cross a
    seam) smaller than ``min_hole_area_m2`` are filled and returned as polygons.
    """
    parts = _polygon_parts(np.asarray(pieces, dtype=object))
    if parts.size == 0:
        return shapely.Polygon(), np.empty(0, dtype=object)
    rings, _, shell = _rings(parts)
    shells = shapely.polygons(rings[shell])
    holes = rings[~shell]
    try:
        joined: shapely.Geometry | None = shapely.coverage_union_all(shells)
    except shapely.errors.GEOSException:
        joined = None
    expected = float(shapely.area(shells).sum())
    if joined is None or abs(float(joined.area) - expected) > 1e-9 * max(expected, 1.0):
        # a seam that did not join: overlay the tile pieces (slower, still right)
        logger.info("tiled union: pieces do not form a coverage; overlaying the tiles")
        joined = shapely.union_all(shells)
    jparts = _polygon_parts(joined)
    jrings, jidx, jshell = _rings(jparts)
    small = ~jshell & (shapely.area(shapely.polygons(jrings)) < min_hole_area_m2)
    seam_holes = np.asarray(shapely.polygons(jrings[small]), dtype=object)
    keep = ~small
    jrings, jidx, jshell = jrings[keep], jidx[keep], jshell[keep]
    if holes.size:
        # the part each set-aside hole lies in: the only candidate by bounding box, or
        # the one that contains a vertex of the hole (islands inside seam holes)
        corner = shapely.get_point(holes, 0)
        qi, qj = shapely.STRtree(jparts).query(corner)
        n_cand = np.bincount(qi, minlength=holes.size)
        many = n_cand[qi] > 1
        if many.any():
            shapely.prepare(jparts[np.unique(qj[many])])
            hit = shapely.intersects(jparts[qj[many]], corner[qi[many]])
            ok = ~many
            ok[np.flatnonzero(many)[hit]] = True
            qi, qj = qi[ok], qj[ok]
        first = np.unique(qi, return_index=True)[1]
        qi, qj = qi[first], qj[first]
        jrings = np.concatenate([jrings, holes[qi]])
        jidx = np.concatenate([jidx, qj])
        jshell = np.concatenate([jshell, np.zeros(qi.size, dtype=bool)])
    order = np.lexsort((~jshell, jidx))
    return _from_rings(jrings[order], jidx[order]), seam_holes


def _tiled_areas(
    line_sets: Sequence[NDArray[np.object_]],
    *,
    corridor_m: float,
    min_hole_area_m2: float,
    with_bands: bool,
) -> tuple[list[shapely.Geometry], list[shapely.Geometry]]:
    """Nested service areas (one per line set, smallest first) and the bands between them.

    For a city: each tile (``_TILE_M``) unions the corridor buffers that touch it, cut
    to the tile, for every line set, and takes the difference of consecutive areas
    (a band) while the pieces are small; tiles run in threads (GEOS releases the
    GIL). Tiles are then joined per area and per band (:func:`_join_tiles`). Equal to
    the plain union up to the 1 mm rounding of seam vertices. ``bands[0]`` is the
    first area; ``bands`` is empty unless ``with_bands``.
    """
    sets = [np.asarray(x, dtype=object) for x in line_sets]
    trees = [shapely.STRtree(x) for x in sets]
    bounds = np.concatenate([shapely.bounds(x).reshape(-1, 4) for x in sets])
    r = corridor_m * _SEAM_MARGIN
    boxes = _tile_boxes(bounds + np.array([-r, -r, r, r]), _TILE_M)

    def tile(box: _Box) -> tuple[list[shapely.Geometry | None], list[shapely.Geometry | None]]:
        pieces = [
            _tile_piece(x, tree, box, corridor_m, min_hole_area_m2)
            for x, tree in zip(sets, trees, strict=True)
        ]
        bands = [_band(lo, hi, box) for lo, hi in itertools.pairwise(pieces)] if with_bands else []
        return pieces, bands

    def join(k: int) -> tuple[shapely.Geometry, NDArray[np.object_]]:
        return _join_tiles([p[k] for p, _ in per_tile if p[k] is not None], min_hole_area_m2)

    with ThreadPoolExecutor(worker_threads()) as pool:
        per_tile = list(pool.map(tile, boxes))
        joined = list(pool.map(join, range(len(sets))))
        areas = [a for a, _ in joined]
        if not with_bands:
            return areas, []
        seam_holes = [h for _, h in joined]
        hole_trees = [shapely.STRtree(h) for h in seam_holes]

        def band_piece(k: int, t: int) -> shapely.Geometry | None:
            """Band ``k`` in tile ``t``, with the filled seam holes of both areas."""
            box, (pieces, tile_bands) = boxes[t], per_tile[t]
            lo = _with_holes(pieces[k - 1], seam_holes[k - 1], hole_trees[k - 1], box)
            hi = _with_holes(pieces[k], seam_holes[k], hole_trees[k], box)
            if lo is pieces[k - 1] and hi is pieces[k]:
                return tile_bands[k - 1]
            return _band(lo, hi, box)

        bands = [areas[0]]
        for k in range(1, len(sets)):
            band_pieces = list(pool.map(band_piece, itertools.repeat(k), range(len(boxes))))
            bands.append(_join_tiles([b for b in band_pieces if b is not None], 0.0)[0])
    return areas, bands


def _band(
    lo: shapely.Geometry | None, hi: shapely.Geometry | None, box: _Box
) -> shapely.Geometry | None:
    """``hi`` minus ``lo`` inside one tile (``None`` when empty)."""
    if hi is None:
        return None
    if lo is None:
        return hi
    parts = _polygon_parts(_seam_rounded(shapely.difference(hi, lo), box))
    # the two areas share corridor edges noded slightly differently: drop the slivers
    parts = parts[shapely.area(parts) > _SLIVER_M2]
    if parts.size == 0:
        return None
    return parts[0] if parts.size == 1 else shapely.multipolygons(parts)


def _with_holes(
    piece: shapely.Geometry | None,
    holes: NDArray[np.object_],
    tree: shapely.STRtree,
    box: _Box,
) -> shapely.Geometry | None:
    """``piece`` with the filled seam holes that reach into its tile (``piece`` itself if none)."""
    if piece is None or holes.size == 0:
        return piece
    idx = tree.query(shapely.box(*box))
    if idx.size == 0:
        return piece
    cut = shapely.clip_by_rect(holes[idx], *box)
    return _seam_rounded(shapely.union_all(np.concatenate([[piece], cut])), box)


def reach_polygon(
    net: WalkNetwork,
    reach: NodeReach,
    budget_m: float,
    src_edge: ArrayLike,
    src_offset_m: ArrayLike,
    src_access_m: ArrayLike,
    *,
    corridor_m: float = DEFAULT_CORRIDOR_M,
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2,
    access_lines: Sequence[Any] = (),
) -> shapely.Geometry:
    """The area within ``budget_m`` of the sources along the streets.

    Whole reached edges, plus the reached part of partly reached edges (from
    either end, and around each source on its own edge), buffered by
    ``corridor_m`` and unioned; holes smaller than ``min_hole_area_m2`` are filled.

    Parameters
    ----------
    net
        The walking network.
    reach
        Node distances from the sources (with a limit of at least ``budget_m``).
    budget_m
        Walking distance of the area.
    src_edge, src_offset_m, src_access_m
        The sources' snap columns.
    corridor_m
        Half-width of the street corridor.
    min_hole_area_m2
        Holes smaller than this are filled.
    access_lines
        Extra lines (e.g. access legs) to include.

    Returns
    -------
    shapely.Geometry
        A Polygon or MultiPolygon in ``net.crs`` (empty when nothing is reached).
    """
    if corridor_m <= 0:
        msg = f"`corridor_m` must be > 0 meters; got {corridor_m!r}. The default is {DEFAULT_CORRIDOR_M}."
        raise InputError(msg)
    if budget_m > reach.limit_m:
        msg = f"`budget_m` ({budget_m}) exceeds the search limit ({reach.limit_m}); search with a larger `limit_m`."
        raise InputError(msg)
    se, so, sa = _as_sources(net, src_edge, src_offset_m, src_access_m, "sources")
    extra = np.empty(len(access_lines), dtype=object)
    extra[:] = list(access_lines)
    lines = _reach_lines(net, reach.dist_m, budget_m, se, so, sa, extra)
    return _polygon(lines, corridor_m=corridor_m, min_hole_area_m2=min_hole_area_m2)


def _access_legs(net: WalkNetwork, centers: gpd.GeoDataFrame) -> NDArray[np.object_]:
    """Straight lines from each center to where it joins the network."""
    e = centers[SNAP_EDGE].to_numpy().astype(np.int64)
    on = shapely.line_interpolate_point(
        net.edge_geometry[e], centers[SNAP_OFFSET_M].to_numpy(dtype=np.float64)
    )
    own = shapely.point_on_surface(centers.geometry.values)
    legs = shapely.linestrings(
        np.stack(
            [
                np.column_stack([shapely.get_x(own), shapely.get_y(own)]),
                np.column_stack([shapely.get_x(on), shapely.get_y(on)]),
            ],
            axis=1,
        )
    )
    return np.asarray(legs, dtype=object)


def service_areas(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    speed_kmh: float,
    corridor_m: float = DEFAULT_CORRIDOR_M,
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2,
    per_center: bool = True,
    per_source: SourceReach | None = None,
    progress: ProgressFn | None = None,
) -> gpd.GeoDataFrame:
    """Service areas that follow the streets, per center and threshold, and their union.

    Parameters
    ----------
    net
        The walking network.
    centers
        Centers frame (``center_id`` and snap columns), in ``net.crs``.
    minutes
        Thresholds, e.g. ``(5, 15)``.
    speed_kmh
        Walking speed.
    corridor_m
        Half-width of the street corridor around reached streets.
    min_hole_area_m2
        Holes smaller than this (slivers between corridors) are filled.
    per_center
        Also return one area per center and threshold (not only the union).
    per_source
        Precomputed :func:`reach_per_source_m` of ``centers`` with a limit of at
        least the largest threshold (saves the per-center searches).
    progress
        Called with ``(fraction, message)``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``center_id`` (``"all"`` for the union), ``minutes``, geometry
        (Polygon/MultiPolygon in ``net.crs``); the union rows come first.
    """
    return _areas_and_bands(
        net,
        centers,
        minutes=minutes,
        speed_kmh=speed_kmh,
        corridor_m=corridor_m,
        min_hole_area_m2=min_hole_area_m2,
        per_center=per_center,
        per_source=per_source,
        progress=progress,
        with_bands=False,
    )[0]


def service_areas_and_bands(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    speed_kmh: float,
    corridor_m: float = DEFAULT_CORRIDOR_M,
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2,
    per_center: bool = True,
    per_source: SourceReach | None = None,
    progress: ProgressFn | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Service areas (as :func:`service_areas`) and the bands of their union (as :func:`service_bands`).

    At city scale the bands are cut tile by tile with the areas, far cheaper than
    one difference of two city-wide polygons with a hole per block. Parameters
    are those of :func:`service_areas`.

    Returns
    -------
    tuple of geopandas.GeoDataFrame
        The service areas (as :func:`service_areas`) and the bands
        (``minutes_from``, ``minutes_to``, geometry; one row per threshold).
        The areas have columns ``center_id`` (``"all"`` for the union), ``minutes``, geometry
        (Polygon/MultiPolygon in ``net.crs``); the union rows come first.
    """
    return _areas_and_bands(
        net,
        centers,
        minutes=minutes,
        speed_kmh=speed_kmh,
        corridor_m=corridor_m,
        min_hole_area_m2=min_hole_area_m2,
        per_center=per_center,
        per_source=per_source,
        progress=progress,
        with_bands=True,
    )


def _areas_and_bands(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    speed_kmh: float,
    corridor_m: float,
    min_hole_area_m2: float,
    per_center: bool,
    per_source: SourceReach | None,
    progress: ProgressFn | None,
    with_bands: bool,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    ms = speed_ms(speed_kmh)
    ts = check_thresholds(minutes)
    if corridor_m <= 0:
        msg = f"`corridor_m` must be > 0 meters; got {corridor_m!r}. The default is {DEFAULT_CORRIDOR_M}."
        raise InputError(msg)
    check_crs(net, centers, "centers")
    se, so, sa = _snap_cols(centers, "centers")
    se = se.astype(np.int64)
    ids = (
        centers[CENTER_ID].astype(str).to_numpy()
        if CENTER_ID in centers
        else np.arange(len(centers)).astype(str)
    )
    budgets = [t * 60.0 * ms for t in ts]
    legs = _access_legs(net, centers) if len(centers) else np.empty(0, dtype=object)
    rows: list[dict[str, Any]] = []
    reach = nearest_source_m(net, se, so, sa, limit_m=budgets[-1])
    line_sets = []
    for bm in budgets:
        line_sets.append(_reach_lines(net, reach.dist_m, bm, se, so, sa, legs[sa <= bm]))
    if line_sets[-1].size > _TILED_UNION_MIN:
        unions, band_geoms = _tiled_areas(
            line_sets,
            corridor_m=corridor_m,
            min_hole_area_m2=min_hole_area_m2,
            with_bands=with_bands,
        )
    else:
        unions = [
            _polygon(lines, corridor_m=corridor_m, min_hole_area_m2=min_hole_area_m2)
            for lines in line_sets
        ]
        band_geoms = _differences(unions) if with_bands else []
    for t, geom in zip(ts, unions, strict=True):
        rows.append({CENTER_ID: ALL_CENTERS, MINUTES: t, "geometry": geom})
    if per_center and len(centers):
        if (
            per_source is None
            or per_source.limit_m < budgets[-1]
            or len(per_source) != len(centers)
        ):
            per_source = reach_per_source_m(net, se, so, sa, limit_m=budgets[-1])
        for j in range(len(centers)):
            rj = per_source.of(j, net.n_nodes)
            for t, bm in zip(ts, budgets, strict=True):
                geom = reach_polygon(
                    net,
                    rj,
                    bm,
                    se[j : j + 1],
                    so[j : j + 1],
                    sa[j : j + 1],
                    corridor_m=corridor_m,
                    min_hole_area_m2=min_hole_area_m2,
                    access_lines=[legs[j]] if sa[j] <= bm else [],
                )
                rows.append({CENTER_ID: ids[j], MINUTES: t, "geometry": geom})
            if progress:
                progress((j + 1) / len(centers), f"service areas {j + 1}/{len(centers)}")
    out = gpd.GeoDataFrame(
        rows, geometry="geometry", crs=net.crs, columns=[CENTER_ID, MINUTES, "geometry"]
    )
    logger.info("returned %d service areas for %d centers", len(out), len(centers))
    bands = gpd.GeoDataFrame(
        {
            MINUTES_FROM: [0.0, *ts[:-1]][: len(band_geoms)],
            MINUTES_TO: list(ts[: len(band_geoms)]),
        },
        geometry=gpd.GeoSeries(band_geoms, crs=net.crs),
        crs=net.crs,
    )
    return out, bands


def service_bands(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Non-overlapping bands (0–5, 5–15, …) of the union service areas.

    Parameters
    ----------
    areas
        Output of :func:`service_areas` (its ``"all"`` rows are used).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``minutes_from``, ``minutes_to``, geometry; one row per threshold.
    """
    union = areas[areas[CENTER_ID] == ALL_CENTERS].sort_values(MINUTES)
    ts = [float(t) for t in union[MINUTES]]
    return gpd.GeoDataFrame(
        {MINUTES_FROM: [0.0, *ts][: len(ts)], MINUTES_TO: ts},
        geometry=gpd.GeoSeries(_differences(list(union.geometry)), crs=areas.crs),
        crs=areas.crs,
    )


def _differences(areas: Sequence[shapely.Geometry]) -> list[shapely.Geometry]:
    """Each of nested ``areas`` minus the one before it (the first as is)."""
    out = []
    prev = shapely.Polygon()
    for g in areas:
        out.append(shapely.difference(g, prev) if not prev.is_empty else g)
        prev = g
    return out


def check_thresholds(minutes: Sequence[float]) -> tuple[float, ...]:
    ts = tuple(float(t) for t in minutes)
    if not ts:
        msg = "`minutes` must list at least one threshold, e.g. (5, 15)."
        raise InputError(msg)
    if any(not np.isfinite(t) or t <= 0 for t in ts):
        msg = f"Thresholds must be positive minutes, e.g. (5, 15); got {ts}."
        raise InputError(msg)
    if any(b <= a for a, b in itertools.pairwise(ts)):
        msg = f"Thresholds must be strictly increasing, e.g. (5, 15); got {ts}. Sort them and drop duplicates."
        raise InputError(msg)
    return ts
