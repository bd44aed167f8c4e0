"""Walking distances on the network: every search from sources on edges to nodes or points.

A source (a center, a candidate site) and a point (a demand unit) are both
places *on an edge*, given by the snap columns (see
:func:`coverage.network.snap_frame`): the edge, the offset along it from its
``u`` end, and the straight-line access leg from the place itself to the
street. This module answers every question of the form "how far, on foot, from
these sources to those nodes or points", and nothing else does:

- :func:`nearest_source_m`: from every node to its nearest source, by one
  multi-source Dijkstra (``scipy.sparse.csgraph.dijkstra(min_only=True)``) on
  the network augmented with one virtual node per source. The virtual node is
  joined to its edge's two ends by ``access + offset`` and
  ``access + (length − offset)``, so node distances are exact.
- :func:`points_reach_m` / :func:`nearest_points_m`: from every point to its
  nearest source. A point takes the better of its edge's two ends
  (``access + dist[u] + offset`` or ``access + dist[v] + length − offset``),
  or a source on its own edge (``access + |offset − source offset| + source
  access``): the same-edge case, the only path that does not pass a node.
- :func:`reach_per_source_m` (nodes), :func:`pairs_within_m` and
  :func:`within_matrix` (points): each source on its own, bounded by
  ``limit_m``. A walk is never shorter than the straight line, so sources are grouped in square tiles and each tile runs one
  bounded Dijkstra on the subgraph of the cells around it, which holds every
  node the tile's sources can reach: exact, and the work grows with the area
  reached, not with the city. This relies on the network's contract that an
  edge is at least as long as the straight line between its ends (its length is
  its geometry's length).

The graph structures derived from a network (the CSR adjacency, the extent of
its geometry, the nodes bucketed by grid cell) are built once per network
object, kept in one cache and dropped with the network. Frames enter through
:func:`require_snapped`, the one contract check of a centers, demand or
candidates frame; the searches take :class:`Snapped` arrays.
"""

from __future__ import annotations

import hashlib
import logging
import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from coverage.centers import CENTER_ID
from coverage.errors import InputError
from coverage.network import WalkNetwork, speed_ms
from coverage.progress import ProgressFn
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, require_net_crs

logger = logging.getLogger(__name__)

#: Output columns of :func:`minutes_to_nearest` (and of the audited demand frame).
MINUTES_TO_NEAREST = "minutes_to_nearest"
NEAREST_CENTER_ID = "nearest_center_id"

#: Snap columns, in the order of :class:`Snapped`.
SNAP_COLUMNS = (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M)

#: Sources per tile the tiling aims at: enough to pay dijkstra's per-call overhead once.
_SOURCES_PER_TILE = 48.0
#: A tile is at most this many cells (of side ``limit_m``) wide.
_MAX_TILE_CELLS = 4
#: Report progress every this many tiles.
_PROGRESS_EVERY = 64

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


# --- places on edges -----------------------------------------------------------


class Snapped(NamedTuple):
    """Places on edges: per place, the edge, the offset along it and the access leg.

    The arrays of a frame's snap columns (``snap_edge``, ``snap_offset_m``,
    ``snap_distance_m``), equal in length.
    """

    edge: IntArray
    offset_m: FloatArray
    access_m: FloatArray

    def take(self, idx: ArrayLike) -> Snapped:
        """Return the places at positions ``idx``."""
        i = np.asarray(idx)
        return Snapped(self.edge[i], self.offset_m[i], self.access_m[i])

    @property
    def size(self) -> int:
        """Number of places."""
        return int(self.edge.size)

    @classmethod
    def empty(cls) -> Snapped:
        """Return no places."""
        return cls(
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.float64),
            np.empty(0, dtype=np.float64),
        )

    def plus(self, other: Snapped) -> Snapped:
        """Return these places followed by ``other``."""
        return Snapped(
            np.concatenate([self.edge, other.edge]),
            np.concatenate([self.offset_m, other.offset_m]),
            np.concatenate([self.access_m, other.access_m]),
        )


def as_snapped(
    net: WalkNetwork, edge: ArrayLike, offset_m: ArrayLike, access_m: ArrayLike, what: str
) -> Snapped:
    """Check snap arrays against ``net`` and return them as :class:`Snapped`.

    Parameters
    ----------
    net
        The walking network the places were snapped to.
    edge, offset_m, access_m
        Per place: edge index, offset along the edge from its ``u`` end, access
        leg (meters).
    what
        Name of the places in error messages.

    Returns
    -------
    Snapped
        ``edge`` as int64, offsets (clipped to the edge length) and access legs
        as float64.

    Raises
    ------
    InputError
        Unequal or non-1-D arrays, edge indices outside ``net``, negative or
        non-finite distances.
    """
    e = np.asarray(edge)
    off = np.asarray(offset_m, dtype=np.float64)
    acc = np.asarray(access_m, dtype=np.float64)
    if not (e.shape == off.shape == acc.shape) or e.ndim != 1:
        msg = f"`{what}` edge, offset and access arrays must be 1-D and of equal length; got shapes {e.shape}, {off.shape}, {acc.shape}."
        raise InputError(msg)
    if e.size and (not np.issubdtype(e.dtype, np.integer) or e.min() < 0 or e.max() >= net.n_edges):
        msg = f"`{what}` edge indices must be integers in [0, {net.n_edges}); snap the points to this network first (`coverage.network.snap_frame(net, gdf)`)."
        raise InputError(msg)
    finite = bool(np.isfinite(off).all() and np.isfinite(acc).all())
    if not finite or (off < 0).any() or (acc < 0).any():
        msg = f"`{what}` offsets and access distances must be finite and >= 0; snap the points with `coverage.network.snap_frame`."
        raise InputError(msg)
    e = e.astype(np.int64)
    off = np.minimum(off, net.edge_length_m[e]) if e.size else off
    return Snapped(e, off, acc)


def snap_arrays(gdf: pd.DataFrame, what: str) -> Snapped:
    """Return the snap columns of ``gdf`` as arrays.

    Parameters
    ----------
    gdf
        A frame with the snap columns.
    what
        Name of the frame in error messages.

    Returns
    -------
    Snapped
        ``snap_edge`` (int64), ``snap_offset_m`` and ``snap_distance_m`` (float64).

    Raises
    ------
    InputError
        A snap column is missing.
    """
    missing = [c for c in SNAP_COLUMNS if c not in gdf.columns]
    if missing:
        msg = f"`{what}` lacks the snap columns {missing}; snap it to the network first with `coverage.network.snap_frame(net, {what})`."
        raise InputError(msg)
    return Snapped(
        gdf[SNAP_EDGE].to_numpy(dtype=np.int64),
        gdf[SNAP_OFFSET_M].to_numpy(dtype=np.float64),
        gdf[SNAP_DISTANCE_M].to_numpy(dtype=np.float64),
    )


def require_snapped(net: WalkNetwork, gdf: Any, what: str) -> Snapped:
    """Check that ``gdf`` meets the snapped-frame contract on ``net``; return its places.

    Centers, demand and candidates are validated and snapped once, when they
    are loaded (:mod:`coverage.centers`, :mod:`coverage.demand`); this is the
    one cheap check at the entry of the functions that search from or to them.

    Parameters
    ----------
    net
        The walking network.
    gdf
        A GeoDataFrame in ``net.crs`` with the snap columns.
    what
        Name of the frame in error messages (``"centers"``, ``"demand"``...).

    Returns
    -------
    Snapped
        The frame's snap columns as arrays.

    Raises
    ------
    InputError
        Not a GeoDataFrame, another CRS than ``net.crs``, snap columns missing
        or not from this network.
    """
    require_net_crs(net, gdf, what)
    return as_snapped(net, *snap_arrays(gdf, what), what)


def center_ids(centers: pd.DataFrame) -> NDArray[np.object_]:
    """Return the ``center_id`` of each row as str (the row number when there is no such column)."""
    if CENTER_ID in centers:
        ids: NDArray[np.object_] = centers[CENTER_ID].astype(str).to_numpy(dtype=object)
        return ids
    return np.arange(len(centers)).astype(str).astype(object)


def point_xy(
    net: WalkNetwork, edge: IntArray, offset_m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Return the coordinates of places on edges (their snapped points, not the places).

    Parameters
    ----------
    net
        The walking network.
    edge, offset_m
        Per place: edge index and offset along it from its ``u`` end.

    Returns
    -------
    tuple of arrays
        ``x`` and ``y`` in ``net.crs`` (read-only for 10,000 places or more: the
        network keeps them for the next call with the same places).
    """
    if edge.size == 0:
        e = np.empty(0, dtype=np.float64)
        return e, e
    if edge.size < _PLACES_MEMO_MIN:
        return _point_xy(net, edge, offset_m)
    edge = np.ascontiguousarray(edge, dtype=np.int64)
    offset_m = np.ascontiguousarray(offset_m, dtype=np.float64)
    digest = hashlib.sha256(edge.data)  # the buffers themselves: no joined copy
    digest.update(offset_m.data)
    return _graph(net).places_xy(digest.digest(), lambda: _point_xy(net, edge, offset_m))


#: Fewer places than this are interpolated every time (cheaper than keying them).
_PLACES_MEMO_MIN = 10_000


def _point_xy(
    net: WalkNetwork, edge: IntArray, offset_m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    first, last, straight = _graph(net).edge_ends()
    length = net.edge_length_m[edge]
    frac = np.clip(offset_m / np.maximum(length, 1e-12), 0.0, 1.0)
    # straight edges (two vertices) interpolate in numpy; only bent ones need shapely
    x = first[edge, 0] + frac * (last[edge, 0] - first[edge, 0])
    y = first[edge, 1] + frac * (last[edge, 1] - first[edge, 1])
    bent = ~straight[edge]
    if bent.any():
        lines = net.edge_geometry[edge[bent]]
        pts = shapely.line_interpolate_point(lines, frac[bent] * shapely.length(lines))
        x[bent] = shapely.get_x(pts)
        y[bent] = shapely.get_y(pts)
    return x.astype(np.float64), y.astype(np.float64)


# --- results -------------------------------------------------------------------


@dataclass(frozen=True)
class NodeReach:
    """Distance from each network node to its nearest source.

    ``dist_m[i]`` is ``inf`` and ``source[i]`` is ``-1`` when node ``i`` is not
    reached (disconnected, or farther than the search limit).
    """

    dist_m: FloatArray
    source: IntArray
    limit_m: float = math.inf


@dataclass(frozen=True)
class SourceReach:
    """Per-source bounded reach, as a ragged array.

    Source ``j`` reaches nodes ``node[indptr[j]:indptr[j+1]]`` (in increasing
    order) at distances ``dist_m[indptr[j]:indptr[j+1]]`` (meters, ``<= limit_m``).
    """

    indptr: IntArray
    node: IntArray
    dist_m: FloatArray
    limit_m: float

    def __len__(self) -> int:
        """Return the number of sources."""
        return int(self.indptr.size - 1)

    def of(self, j: int, n_nodes: int) -> NodeReach:
        """Return the reach of source ``j`` alone, as dense per-node arrays of length ``n_nodes``."""
        a, b = self.indptr[j], self.indptr[j + 1]
        dist = np.full(n_nodes, np.inf)
        src = np.full(n_nodes, -1, dtype=np.int64)
        dist[self.node[a:b]] = self.dist_m[a:b]
        src[self.node[a:b]] = j
        return NodeReach(dist, src, self.limit_m)


@dataclass(frozen=True)
class PointPairs:
    """Every (source, point) pair within a walking limit, with its distance.

    Each pair appears once, in no particular order.
    """

    source: IntArray
    point: IntArray
    dist_m: FloatArray
    limit_m: float

    def __len__(self) -> int:
        """Return the number of pairs."""
        return int(self.source.size)


# --- the graph cache -----------------------------------------------------------


def _adjacency_arrays(net: WalkNetwork) -> tuple[IntArray, IntArray, FloatArray]:
    """Build the symmetric adjacency of ``net`` as ``(rows, cols, lengths)``, sorted by row and column.

    Parallel edges keep the shortest; self-loops are dropped (a walk never needs them).
    """
    keep = net.edge_u != net.edge_v
    u, v, w = net.edge_u[keep], net.edge_v[keep], net.edge_length_m[keep]
    rows = np.concatenate([u, v])
    cols = np.concatenate([v, u])
    vals = np.concatenate([w, w])
    order = np.lexsort((vals, cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return rows[first], cols[first], vals[first]


class _Graph:
    """Search structures derived once per network: CSR adjacency, extent, node buckets."""

    def __init__(self, net: WalkNetwork) -> None:
        rows, cols, vals = _adjacency_arrays(net)
        self.n = net.n_nodes
        # int32 is what csgraph works in; converting once here saves a copy per search
        self.indptr = np.searchsorted(rows, np.arange(self.n + 1)).astype(np.int32)
        self.indices = cols.astype(np.int32)
        self.data = vals.astype(np.float64)
        self._net = weakref.ref(net)
        self._origin: tuple[float, float, float] | None = None
        self._ends: tuple[FloatArray, FloatArray, NDArray[np.bool_]] | None = None
        self._buckets: dict[float, tuple[IntArray, IntArray]] = {}
        self._places: dict[bytes, tuple[FloatArray, FloatArray]] = {}

    def matrix(self) -> sparse.csr_array:
        """Return the adjacency as a CSR array sharing the cached arrays (do not modify it)."""
        return sparse.csr_array((self.data, self.indices, self.indptr), shape=(self.n, self.n))

    def origin(self) -> tuple[float, float, float]:
        """Return ``(x0, y0, y1)``: below-left of every edge geometry, and its top.

        Every place on an edge lies inside, so grid cells counted from here are
        never negative.
        """
        if self._origin is None:
            net = self._net()
            assert net is not None  # the cache entry dies with the network
            x0, y0, _, y1 = shapely.total_bounds(net.edge_geometry)
            x0 = min(float(x0), float(net.node_x.min()))
            y0 = min(float(y0), float(net.node_y.min()))
            y1 = max(float(y1), float(net.node_y.max()))
            self._origin = (x0 - 1.0, y0 - 1.0, y1)
        return self._origin

    def edge_ends(self) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
        """Return each edge geometry's first and last vertex, and whether it is straight."""
        if self._ends is None:
            net = self._net()
            assert net is not None
            coords, which = shapely.get_coordinates(net.edge_geometry, return_index=True)
            counts = np.bincount(which, minlength=net.n_edges)
            stop = np.cumsum(counts)
            self._ends = (coords[stop - counts], coords[stop - 1], counts == 2)
        return self._ends

    def places_xy(
        self, key: bytes, compute: Callable[[], tuple[FloatArray, FloatArray]]
    ) -> tuple[FloatArray, FloatArray]:
        """Return the coordinates of the places digested as ``key``, computed once (read-only).

        The app audits the same demand again after every change (about 1 s of
        interpolating 824k snapped points at 300k nodes); a few sets are kept.
        """
        hit = self._places.get(key)
        if hit is None:
            if len(self._places) >= 4:  # demand and a few center sets; do not grow
                self._places.clear()
            x, y = compute()
            x.flags.writeable = False
            y.flags.writeable = False
            hit = self._places[key] = (x, y)
        return hit

    def buckets(self, grid: _Grid) -> tuple[IntArray, IntArray]:
        """Return the nodes sorted by their cell of ``grid`` and the sorted cell keys."""
        hit = self._buckets.get(grid.cell_m)
        if hit is None:
            net = self._net()
            assert net is not None
            if len(self._buckets) >= 4:  # a few thresholds per run; do not grow without bound
                self._buckets.clear()
            hit = grid.bucket(net.node_x, net.node_y)
            self._buckets[grid.cell_m] = hit
        return hit


_GRAPHS: dict[int, tuple[weakref.ref[WalkNetwork], _Graph]] = {}


def _graph(net: WalkNetwork) -> _Graph:
    """Return the search structures of ``net``, built on first use and dropped with ``net``."""
    key = id(net)
    hit = _GRAPHS.get(key)
    if hit is not None and hit[0]() is net:
        return hit[1]
    g = _Graph(net)
    _GRAPHS[key] = (weakref.ref(net), g)
    weakref.finalize(net, _GRAPHS.pop, key, None)
    return g


def adjacency(net: WalkNetwork) -> sparse.csr_array:
    """Return the symmetric length-weighted CSR adjacency of ``net`` (cached; do not modify it).

    Parameters
    ----------
    net
        The walking network.

    Returns
    -------
    scipy.sparse.csr_array
        ``n_nodes × n_nodes``; entry ``(u, v)`` is the length in meters of the
        shortest edge between ``u`` and ``v``. Self-loops are dropped.
    """
    return _graph(net).matrix()


# --- shared pieces of every search ---------------------------------------------


def _access_arcs(
    net: WalkNetwork, sources: Snapped
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Return each source's arcs to its edge's ends: ``u``, ``v``, and the walks to them."""
    e = sources.edge
    length = net.edge_length_m[e]
    to_u = sources.access_m + sources.offset_m
    to_v = sources.access_m + (length - sources.offset_m)
    return net.edge_u[e], net.edge_v[e], to_u, to_v


def _same_edge_pairs(point_edge: IntArray, src_edge: IntArray) -> tuple[IntArray, IntArray]:
    """Return all (point, source) index pairs on the same edge, point-major, sources ascending."""
    order = np.argsort(src_edge, kind="stable")
    se = src_edge[order]
    lo = np.searchsorted(se, point_edge, side="left")
    hi = np.searchsorted(se, point_edge, side="right")
    counts = hi - lo
    pi = np.repeat(np.arange(point_edge.size), counts)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    sj = order[np.arange(pi.size) + starts]
    return pi.astype(np.int64), sj.astype(np.int64)


def _same_edge_m(points: Snapped, sources: Snapped) -> tuple[IntArray, IntArray, FloatArray]:
    """Return the (point, source) pairs on one edge and the walk along it (source access included)."""
    pi, sj = _same_edge_pairs(points.edge, sources.edge)
    d = np.abs(points.offset_m[pi] - sources.offset_m[sj]) + sources.access_m[sj]
    return pi, sj, d


# --- nearest source --------------------------------------------------------------


def _augmented(g: _Graph, net: WalkNetwork, sources: Snapped) -> sparse.csr_array:
    """Return the adjacency plus one virtual node per source, with arcs to its edge's two ends."""
    k = sources.size
    nnz = g.indices.size
    indptr = np.concatenate([g.indptr, nnz + 2 * np.arange(1, k + 1, dtype=np.int32)])
    u, v, to_u, to_v = _access_arcs(net, sources)
    targets = np.column_stack([u, v]).ravel().astype(np.int32)
    weights = np.column_stack([to_u, to_v]).ravel()
    n = g.n + k
    return sparse.csr_array(
        (np.concatenate([g.data, weights]), np.concatenate([g.indices, targets]), indptr),
        shape=(n, n),
    )


def nearest_source_m(net: WalkNetwork, sources: Snapped, *, limit_m: float = math.inf) -> NodeReach:
    """Compute the walking distance from every node to the nearest of several sources on edges.

    One multi-source Dijkstra on the network augmented with one virtual node per
    source.

    Parameters
    ----------
    net
        The walking network.
    sources
        The sources' places (e.g. ``require_snapped(net, centers, "centers")``).
    limit_m
        Stop the search at this distance; farther nodes count as unreached.

    Returns
    -------
    NodeReach
        ``dist_m`` (per node, ``inf`` when unreached) and ``source`` (per node,
        index of the nearest source, ``-1`` when unreached).
    """
    src = as_snapped(net, *sources, "sources")
    n = net.n_nodes
    if src.size == 0:
        return NodeReach(np.full(n, np.inf), np.full(n, -1, dtype=np.int64), float(limit_m))
    A = _augmented(_graph(net), net, src)
    dist, _, who = dijkstra(
        A,
        directed=True,
        indices=np.arange(n, n + src.size),
        min_only=True,
        return_predecessors=True,
        limit=limit_m,
    )
    dist = np.asarray(dist[:n], dtype=np.float64)
    source = np.asarray(who[:n], dtype=np.int64) - n
    source[~np.isfinite(dist)] = -1
    return NodeReach(dist, source, float(limit_m))


def points_reach_m(
    net: WalkNetwork, reach: NodeReach, points: Snapped, sources: Snapped
) -> tuple[FloatArray, IntArray]:
    """Compute the walking distance from points on edges to their nearest source.

    A point at ``offset`` on edge ``(u, v)`` with access ``a`` is at
    ``a + min(dist[u] + offset, dist[v] + length − offset)``, or
    ``a + |offset − src_offset| + src_access`` from a source on the same edge
    (ties go to the lower source index).

    Parameters
    ----------
    net
        The walking network.
    reach
        Result of :func:`nearest_source_m` for ``sources``.
    points
        The points' places.
    sources
        The sources' places, as passed to :func:`nearest_source_m`.

    Returns
    -------
    tuple of arrays
        ``dist_m`` per point (``inf`` when no source is within ``reach.limit_m``)
        and ``source`` per point (source index, ``-1`` when unreached).
    """
    pts = as_snapped(net, *points, "points")
    src = as_snapped(net, *sources, "sources")
    u, v = net.edge_u[pts.edge], net.edge_v[pts.edge]
    du = reach.dist_m[u] + pts.offset_m
    dv = reach.dist_m[v] + (net.edge_length_m[pts.edge] - pts.offset_m)
    via_v = dv < du
    best = np.where(via_v, dv, du)
    source = np.where(via_v, reach.source[v], reach.source[u]).astype(np.int64)
    if src.size and pts.size:
        pi, sj, d = _same_edge_m(pts, src)
        order = np.lexsort((d, pi))  # stable: equal walks keep the lower source first
        pi, sj, d = pi[order], sj[order], d[order]
        first = np.ones(pi.size, dtype=bool)
        first[1:] = pi[1:] != pi[:-1]
        pi, sj, d = pi[first], sj[first], d[first]
        better = d < best[pi]
        best[pi[better]] = d[better]
        source[pi[better]] = sj[better]
    dist = best + pts.access_m
    out = ~(dist <= reach.limit_m)
    dist[out] = np.inf
    source[out] = -1
    return dist, source


def nearest_points_m(
    net: WalkNetwork, sources: Snapped, points: Snapped, *, limit_m: float = math.inf
) -> tuple[FloatArray, IntArray]:
    """Compute the walking distance from each point to its nearest source, and that source.

    :func:`nearest_source_m` followed by :func:`points_reach_m`.

    Parameters
    ----------
    net
        The walking network.
    sources, points
        Places of the sources and of the points.
    limit_m
        Search no farther; farther points count as unreached.

    Returns
    -------
    tuple of arrays
        ``dist_m`` per point (``inf`` when unreached) and ``source`` per point
        (source index, ``-1`` when unreached).
    """
    reach = nearest_source_m(net, sources, limit_m=limit_m)
    return points_reach_m(net, reach, points, sources)


# --- bounded reach of each source ---------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Square cells of side ``cell_m`` counted from ``(x0, y0)``.

    A cell's key is ``(column + 1) * ncy + (row + 1)``; ``ncy`` leaves room for the
    rows of a block around a tile, so two cells never share a key.
    """

    x0: float
    y0: float
    cell_m: float
    ncy: int

    def cells(
        self, x: FloatArray, y: FloatArray, width_m: float | None = None
    ) -> tuple[IntArray, IntArray]:
        """Return the cell column and row of each point (cells ``width_m`` wide, default ``cell_m``)."""
        w = self.cell_m if width_m is None else width_m
        return (
            np.floor((x - self.x0) / w).astype(np.int64),
            np.floor((y - self.y0) / w).astype(np.int64),
        )

    def bucket(self, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray]:
        """Return the points sorted by cell (stable) and their sorted cell keys."""
        kx, ky = self.cells(x, y)
        key = (kx + 1) * self.ncy + (ky + 1)
        order = np.argsort(key, kind="stable")
        return order, key[order]

    def block(self, order: IntArray, keys: IntArray, cx0: int, cy0: int, t: int) -> IntArray:
        """Return the bucketed points in cells ``cx0-1 .. cx0+t`` × ``cy0-1 .. cy0+t``."""
        i = np.arange(cx0 - 1, cx0 + t + 1)
        j = np.arange(cy0 - 1, cy0 + t + 1)
        want = np.add.outer((i + 1) * self.ncy, j + 1).ravel()
        lo = np.searchsorted(keys, want, side="left")
        hi = np.searchsorted(keys, want, side="right")
        parts = [order[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


class _Tiles:
    """Sources grouped in square tiles, each searched on the subgraph of the cells around it.

    A tile is ``t × t`` cells of side ``limit_m``; a source in it reaches within
    ``limit_m`` only nodes of the ``(t + 2)²`` cells around it, because a walk is
    never shorter than the straight line. Sparse sources get wider tiles, so one
    Dijkstra call serves more of them.
    """

    def __init__(self, net: WalkNetwork, sources: Snapped, limit_m: float) -> None:
        self.net, self.sources, self.limit_m = net, sources, limit_m
        self.g = _graph(net)
        x0, y0, y1 = self.g.origin()
        cell = max(limit_m, 1.0)
        # rows per column: every cell, plus room for the widest block above the top one
        self.grid = _Grid(x0, y0, cell, int(np.floor((y1 - y0) / cell)) + _MAX_TILE_CELLS + 3)
        self.sx, self.sy = point_xy(net, sources.edge, sources.offset_m)
        gx, gy = self.grid.cells(self.sx, self.sy)
        occupied = np.unique(gx * (int(gy.max()) + 1) + gy).size
        density = max(sources.size / occupied, 1e-9)
        t = np.rint(np.sqrt(_SOURCES_PER_TILE / density))
        self.t = int(np.clip(t, 1, _MAX_TILE_CELLS))
        self.tx, self.ty = self.grid.cells(self.sx, self.sy, cell * self.t)
        tkey = self.tx * (self.grid.ncy // self.t + 2) + self.ty
        self.order = np.argsort(tkey, kind="stable")
        _, self.starts = np.unique(tkey[self.order], return_index=True)
        self.ends = np.append(self.starts[1:], sources.size)
        self.node_order, self.node_keys = self.g.buckets(self.grid)
        self.g2l = np.full(net.n_nodes, -1, dtype=np.int64)

    def __len__(self) -> int:
        """Return the number of tiles."""
        return int(self.starts.size)

    def tile(self, it: int) -> tuple[IntArray, int, int]:
        """Return tile ``it``'s sources and its lower-left cell."""
        srcs = self.order[self.starts[it] : self.ends[it]]
        return srcs, int(self.tx[srcs[0]]) * self.t, int(self.ty[srcs[0]]) * self.t

    def nodes(self, cx0: int, cy0: int) -> IntArray:
        """Return the nodes of the cells around the tile at ``(cx0, cy0)``."""
        return self.grid.block(self.node_order, self.node_keys, cx0, cy0, self.t)

    def search(self, srcs: IntArray, loc: IntArray) -> FloatArray:
        """Run one bounded Dijkstra from each of ``srcs`` on the subgraph induced by ``loc``.

        Returns the distances, one row per source and one column per local node,
        then one per virtual source node; the first of those is set to ``inf``
        and stands for "not local" (see :meth:`local`). ``self.g2l`` maps the
        local nodes to their columns until :meth:`release`.
        """
        g, nl, nc = self.g, loc.size, srcs.size
        self.g2l[loc] = np.arange(nl)
        # induced subgraph of the local nodes as CSR (rows in local order), plus one
        # row per source with one-way arcs to the ends of its edge
        st = g.indptr[loc].astype(np.int64)
        cnt = g.indptr[loc + 1].astype(np.int64) - st
        flat = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(st, cnt)
        col = self.g2l[g.indices[flat]]
        keep = col >= 0
        kept = np.bincount(np.repeat(np.arange(nl), cnt)[keep], minlength=nl)
        u, v, to_u, to_v = _access_arcs(self.net, self.sources.take(srcs))
        vcols = np.column_stack([self.g2l[u], self.g2l[v]])
        vdata = np.column_stack([to_u, to_v])
        vok = vcols >= 0
        indptr = np.concatenate([[0], np.cumsum(np.concatenate([kept, vok.sum(axis=1)]))])
        G = sparse.csr_array(
            (
                np.concatenate([g.data[flat][keep], vdata[vok]]),
                np.concatenate([col[keep], vcols[vok]]).astype(np.int32),
                indptr.astype(np.int32),
            ),
            shape=(nl + nc, nl + nc),
        )
        D: FloatArray = dijkstra(G, directed=True, indices=nl + np.arange(nc), limit=self.limit_m)
        D[:, nl] = np.inf
        return D

    def local(self, nodes: IntArray, sentinel: int) -> IntArray:
        """Return the columns of ``nodes`` in the last search (``sentinel`` for those not local)."""
        c = self.g2l[nodes]
        return np.where(c >= 0, c, sentinel)

    def release(self, loc: IntArray) -> None:
        """Forget the local numbering of the last search."""
        self.g2l[loc] = -1

    def report(self, progress: ProgressFn | None, it: int, message: str) -> None:
        """Report tile ``it`` done, every few tiles."""
        if progress is not None and (it % _PROGRESS_EVERY == 0 or it == len(self) - 1):
            progress((it + 1) / len(self), message)


def _check_limit(limit_m: float) -> float:
    if not math.isfinite(limit_m) or limit_m < 0:
        msg = f"`limit_m` must be a finite distance >= 0; got {limit_m!r}."
        raise InputError(msg)
    return float(limit_m)


def reach_per_source_m(
    net: WalkNetwork,
    sources: Snapped,
    *,
    limit_m: float,
    progress: ProgressFn | None = None,
) -> SourceReach:
    """Compute the bounded reach of each source on its own (not only where it is the nearest).

    Parameters
    ----------
    net
        The walking network.
    sources
        The sources' places.
    limit_m
        Largest distance of interest (finite).
    progress
        Called with ``(fraction, message)``.

    Returns
    -------
    SourceReach
        Ragged per-source arrays of reached nodes (increasing) and their distances.
    """
    limit_m = _check_limit(limit_m)
    src = as_snapped(net, *sources, "sources")
    if src.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return SourceReach(np.zeros(1, dtype=np.int64), empty, np.empty(0), limit_m)
    tiles = _Tiles(net, src, limit_m)
    who: list[IntArray] = []
    node: list[IntArray] = []
    dist: list[FloatArray] = []
    for it in range(len(tiles)):
        srcs, cx0, cy0 = tiles.tile(it)
        loc = tiles.nodes(cx0, cy0)
        D = tiles.search(srcs, loc)[:, : loc.size]
        r, c = np.nonzero(np.isfinite(D))
        who.append(srcs[r])
        node.append(loc[c])
        dist.append(D[r, c])
        tiles.release(loc)
        tiles.report(progress, it, "per-source reach")
    s, n, d = np.concatenate(who), np.concatenate(node), np.concatenate(dist)
    order = np.lexsort((n, s))
    counts = np.bincount(s, minlength=src.size)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SourceReach(indptr, n[order].astype(np.int64), d[order].astype(np.float64), limit_m)


def _near_points(
    tiles: _Tiles, grid_points: tuple[IntArray, IntArray, FloatArray, FloatArray], it: int
) -> tuple[IntArray, IntArray]:
    """Return tile ``it``'s sources and the points within ``limit_m`` of their bounding box."""
    order, keys, px, py = grid_points
    srcs, cx0, cy0 = tiles.tile(it)
    near = tiles.grid.block(order, keys, cx0, cy0, tiles.t)
    if near.size:
        # farther than the limit from the sources' bounding box: out of reach
        sx, sy = tiles.sx[srcs], tiles.sy[srcs]
        dx = np.maximum(np.maximum(sx.min() - px[near], px[near] - sx.max()), 0.0)
        dy = np.maximum(np.maximum(sy.min() - py[near], py[near] - sy.max()), 0.0)
        near = near[dx * dx + dy * dy <= tiles.limit_m * tiles.limit_m + 1.0]
    return srcs, near


def _tile_pairs(
    tiles: _Tiles, srcs: IntArray, pts: Snapped, loc: IntArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Return the (source row, point column) pairs of one tile within the limit, with distances."""
    net = tiles.net
    D = tiles.search(srcs, loc)
    nl = loc.size
    lu = tiles.local(net.edge_u[pts.edge], nl)
    lv = tiles.local(net.edge_v[pts.edge], nl)
    du = D[:, lu] + pts.offset_m[None, :]
    dv = D[:, lv] + (net.edge_length_m[pts.edge] - pts.offset_m)[None, :]
    d = np.minimum(du, dv)
    pi, sj, along = _same_edge_m(pts, tiles.sources.take(srcs))
    d[sj, pi] = np.minimum(d[sj, pi], along)
    d += pts.access_m[None, :]
    r, c = np.nonzero(d <= tiles.limit_m)
    tiles.release(loc)
    return r, c, d[r, c]


def _tile_pairs_each(
    net: WalkNetwork,
    sources: Snapped,
    points: Snapped,
    limit_m: float,
    progress: ProgressFn | None,
) -> Iterator[tuple[IntArray, IntArray, FloatArray]]:
    """Yield each tile's (source, point, distance) pairs within ``limit_m``; sources ascending.

    Every source belongs to one tile, so a tile's pairs are all the pairs of its sources.
    """
    tiles = _Tiles(net, sources, limit_m)
    px, py = point_xy(net, points.edge, points.offset_m)
    grid_points = (*tiles.grid.bucket(px, py), px, py)
    for it in range(len(tiles)):
        srcs, near = _near_points(tiles, grid_points, it)
        if near.size:
            _, cx0, cy0 = tiles.tile(it)
            r, c, d = _tile_pairs(tiles, srcs, points.take(near), tiles.nodes(cx0, cy0))
            yield srcs[r], near[c], d
        tiles.report(progress, it, "walking reach")


def pairs_within_m(
    net: WalkNetwork,
    sources: Snapped,
    points: Snapped,
    *,
    limit_m: float,
    progress: ProgressFn | None = None,
) -> PointPairs:
    """Find every (source, point) pair within ``limit_m`` of each other on foot.

    Walking distance = source access leg + network path between the two snapped
    points (through the edge ends, or along the edge when both lie on it) +
    point access leg. :func:`within_matrix` finds the same pairs as a boolean
    matrix, in less memory.

    Parameters
    ----------
    net
        The walking network.
    sources, points
        Places of the sources and of the points.
    limit_m
        Largest distance (finite, inclusive).
    progress
        Called with ``(fraction, message)``.

    Returns
    -------
    PointPairs
        ``source`` and ``point`` (indices) and ``dist_m`` of every pair within the
        limit, each pair once.
    """
    limit_m = _check_limit(limit_m)
    src = as_snapped(net, *sources, "sources")
    pts = as_snapped(net, *points, "points")
    empty = np.empty(0, dtype=np.int64)
    if src.size == 0 or pts.size == 0:
        return PointPairs(empty, empty, np.empty(0), limit_m)
    out_s: list[IntArray] = [empty]
    out_p: list[IntArray] = [empty]
    out_d: list[FloatArray] = [np.empty(0)]
    for s, p, d in _tile_pairs_each(net, src, pts, limit_m, progress):
        out_s.append(s)
        out_p.append(p)
        out_d.append(d)
    pairs = PointPairs(
        np.concatenate(out_s).astype(np.int64),
        np.concatenate(out_p).astype(np.int64),
        np.concatenate(out_d).astype(np.float64),
        limit_m,
    )
    logger.debug(
        "%d sources × %d points within %.0f m: %d pairs", src.size, pts.size, limit_m, len(pairs)
    )
    return pairs


def _sorted_rows(
    s: IntArray, p: IntArray, n_points: int
) -> tuple[IntArray, IntArray, NDArray[np.int32]]:
    """One tile's pairs as rows: its sources, their pair counts, their points sorted per source.

    ``s`` is ascending (one block per source, as a tile yields them).
    """
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    counts = np.diff(np.append(starts, s.size))
    rank = np.repeat(np.arange(starts.size, dtype=np.int64) * n_points, counts)
    key = rank + p
    key.sort()  # one sort of row-major keys: the points ascend within each row
    key -= rank
    return s[starts], counts, key.astype(np.int32)


def within_matrix(
    net: WalkNetwork,
    sources: Snapped,
    points: Snapped,
    *,
    limit_m: float,
    progress: ProgressFn | None = None,
) -> sparse.csr_array:
    """Return which points each source reaches within ``limit_m`` on foot, as a boolean matrix.

    The pairs of :func:`pairs_within_m`, kept tile by tile as 32-bit point indices only
    (no distances, no source column) and laid out as CSR rows once the search is done:
    at most about 9 bytes per pair instead of the 24 of the pair arrays, their
    concatenated copies and the COO conversion (30 million pairs within 15 minutes on
    the 100k-node city; the 300k city's siting peaked there at 7.6 GB).

    Parameters
    ----------
    net
        The walking network.
    sources, points
        Places of the sources (rows) and of the points (columns).
    limit_m
        Largest distance (finite, inclusive).
    progress
        Called with ``(fraction, message)``.

    Returns
    -------
    scipy.sparse.csr_array
        Boolean, ``sources × points``, canonical (column indices sorted, no duplicates).
    """
    limit_m = _check_limit(limit_m)
    src = as_snapped(net, *sources, "sources")
    pts = as_snapped(net, *points, "points")
    if pts.size >= np.iinfo(np.int32).max:
        msg = f"`points` must be fewer than 2**31 for a coverage matrix; got {pts.size}."
        raise InputError(msg)
    shape = (src.size, pts.size)
    if src.size == 0 or pts.size == 0:
        return sparse.csr_array(shape, dtype=bool)
    parts = [
        _sorted_rows(s, p, pts.size)
        for s, p, _ in _tile_pairs_each(net, src, pts, limit_m, progress)
        if s.size
    ]
    counts = np.zeros(src.size, dtype=np.int64)
    for rows, n, _ in parts:
        counts[rows] = n
    indptr = np.concatenate([[0], np.cumsum(counts)])
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=np.int32)
    while parts:  # move each tile's points to their rows, freeing the tile as it goes
        rows, n, cols = parts.pop()
        local = np.concatenate([[0], np.cumsum(n)[:-1]])
        indices[np.arange(cols.size) + np.repeat(indptr[rows] - local, n)] = cols
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    out = sparse.csr_array(
        (np.ones(nnz, dtype=bool), indices, indptr.astype(index_dtype)), shape=shape
    )
    out.has_sorted_indices = True
    out.has_canonical_format = True
    logger.debug("%d sources × %d points within %.0f m: %d pairs", src.size, pts.size, limit_m, nnz)
    return out


# --- frames --------------------------------------------------------------------


def nearest_frame(
    minutes: FloatArray, source: IntArray, ids: NDArray[np.object_], *, index: pd.Index
) -> pd.DataFrame:
    """Return per-point minutes to the nearest source, and its id, as a frame.

    Parameters
    ----------
    minutes
        Minutes per point (``inf`` when unreached).
    source
        Nearest source per point (``-1`` when unreached), as from
        :func:`nearest_points_m`.
    ids
        Id of each source.
    index
        Index of the points' frame.

    Returns
    -------
    pandas.DataFrame
        Index ``index``; columns ``minutes_to_nearest`` (NaN when unreached) and
        ``nearest_center_id`` (None when unreached).
    """
    nearest = np.full(source.size, None, dtype=object)
    nearest[source >= 0] = ids[source[source >= 0]]
    # an explicit object Series keeps None (pandas 3 would infer str and turn None into NaN)
    return pd.DataFrame(
        {
            MINUTES_TO_NEAREST: np.where(np.isfinite(minutes), minutes, np.nan),
            NEAREST_CENTER_ID: pd.Series(nearest, dtype=object, index=index),
        },
        index=index,
    )


def minutes_to_nearest(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    speed_kmh: float,
    limit_min: float = math.inf,
) -> pd.DataFrame:
    """Compute the walking minutes from each demand unit to its nearest center.

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
    src = require_snapped(net, centers, "centers")
    pts = require_snapped(net, demand, "demand")
    dist, who = nearest_points_m(net, src, pts, limit_m=limit_min * 60.0 * ms)
    return nearest_frame(dist / ms / 60.0, who, center_ids(centers), index=demand.index)
