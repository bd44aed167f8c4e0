"""The walking network: walkable ways → simplified graph → largest component → local UTM.

:class:`WalkNetwork` is a frozen set of numpy arrays (nodes, undirected edges,
edge geometries and lengths in meters) in the local UTM zone; the searches
downstream work on it. :func:`network_from_ways` builds it from the way arrays of
an :class:`~coverage.osm.OsmExtract` with numpy; :func:`walk_graph` gives the same
network as an osmnx ``MultiDiGraph`` for interoperability and as the independent
check (:func:`network_from_graph` flattens it). Caching on disk is
:mod:`coverage.netcache`'s job, snapping points to the network
:mod:`coverage.snapping`'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType
from typing import Any, NamedTuple

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from coverage.errors import InputError
from coverage.osm import OsmExtract, WalkWays
from coverage.progress import ProgressFn

logger = logging.getLogger(__name__)

DEFAULT_SPEED_KMH = 4.5
#: Longest plausible segment between two consecutive nodes of a walkable way, in
#: meters (great-circle). Real footpaths are drawn with nodes every few meters to a
#: few hundred; a longer segment is a mapping error (a node at (0, 0), a way from
#: Beijing to Buenos Aires) that would drag the UTM zone and the extent. Such
#: segments are dropped with a warning naming their ways.
MAX_SEGMENT_M = 20_000.0
_EARTH_RADIUS_M = 6_371_008.8


def _ox() -> ModuleType:
    """Return osmnx, imported on first use.

    Lazy on purpose: importing osmnx takes ~2 s (it pulls in scikit-learn), and only
    the osmnx-graph interop (:func:`walk_graph`) needs it, never the CLI's or the
    app's own path.
    """
    import osmnx  # lazy: heavy optional dependency, see above

    return osmnx


@dataclass(frozen=True)
class WalkNetwork:
    """An undirected walking network in a projected (metric) CRS.

    Edge ``i`` joins nodes ``edge_u[i]`` and ``edge_v[i]`` (indices into the node
    arrays); its geometry runs from ``u`` to ``v``. Walking is allowed both ways.
    """

    crs: str
    node_osmid: NDArray[np.int64]
    node_x: NDArray[np.float64]
    node_y: NDArray[np.float64]
    edge_u: NDArray[np.int64]
    edge_v: NDArray[np.int64]
    edge_length_m: NDArray[np.float64]
    edge_highway: NDArray[np.object_]
    edge_geometry: NDArray[np.object_]
    source_sha256: str = ""
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_x.size)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return int(self.edge_u.size)

    @property
    def length_km(self) -> float:
        """Total length of the edges in kilometres."""
        return float(self.edge_length_m.sum() / 1000.0)

    @property
    def node_xy(self) -> NDArray[np.float64]:
        """Node coordinates as an ``(n_nodes, 2)`` array in ``crs``."""
        return np.column_stack([self.node_x, self.node_y])

    def extent_m(self, margin_m: float = 0.0) -> tuple[float, float, float, float]:
        """Return ``(xmin, ymin, xmax, ymax)`` of the nodes, grown by ``margin_m`` (``crs`` units)."""
        return (
            float(self.node_x.min()) - margin_m,
            float(self.node_y.min()) - margin_m,
            float(self.node_x.max()) + margin_m,
            float(self.node_y.max()) + margin_m,
        )

    def walk_time_s(self, speed_kmh: float = DEFAULT_SPEED_KMH) -> NDArray[np.float64]:
        """Return each edge's walking time in seconds at ``speed_kmh``."""
        return self.edge_length_m / speed_ms(speed_kmh)

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        """Spatial index over edge geometries (built on first use)."""
        return shapely.STRtree(self.edge_geometry)

    def to_networkx(self, speed_kmh: float = DEFAULT_SPEED_KMH) -> nx.MultiGraph:
        """Return the network as an undirected ``networkx.MultiGraph`` (node = index)."""
        G = nx.MultiGraph(crs=self.crs)
        G.add_nodes_from(
            (i, {"x": float(x), "y": float(y), "osmid": int(o)})
            for i, (x, y, o) in enumerate(
                zip(self.node_x, self.node_y, self.node_osmid, strict=True)
            )
        )
        t = self.edge_length_m / speed_ms(speed_kmh)
        G.add_edges_from(
            (int(u), int(v), {"length_m": float(length), "walk_time_s": float(s), "edge": i})
            for i, (u, v, length, s) in enumerate(
                zip(self.edge_u, self.edge_v, self.edge_length_m, t, strict=True)
            )
        )
        return G


def speed_ms(speed_kmh: float) -> float:
    """Convert a walking speed to m/s, refusing non-positive or absurd speeds.

    Raises
    ------
    InputError
        ``speed_kmh`` is not a number in (0, 30].
    """
    msg = f"`speed_kmh` must be a walking speed in (0, 30] km/h; got {speed_kmh!r}. The default is {DEFAULT_SPEED_KMH} km/h."
    if isinstance(speed_kmh, (bool, str, bytes)):
        raise InputError(msg)
    try:
        value = float(speed_kmh)
    except (TypeError, ValueError) as exc:
        raise InputError(msg) from exc
    if not np.isfinite(value) or value <= 0 or value > 30:
        raise InputError(msg)
    return value / 3.6


@contextlib.contextmanager
def _osmnx_settings(**changes: Any) -> Iterator[None]:
    """Temporarily change ``osmnx.settings`` and restore them afterwards."""
    old = {k: getattr(_ox().settings, k) for k in changes}
    try:
        for k, v in changes.items():
            setattr(_ox().settings, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(_ox().settings, k, v)


def raw_walk_graph(extract: OsmExtract) -> nx.MultiDiGraph:
    """Build the unsimplified, unprojected osmnx-style graph of the walkable ways.

    Every consecutive node pair of a way becomes an edge in both directions
    (pedestrians ignore ``oneway``), with ``osmid``, ``highway`` and ``reversed``
    attributes as osmnx sets them, and great-circle ``length`` in meters.

    Returns
    -------
    networkx.MultiDiGraph
        Nodes keyed by OSM id with ``x`` (longitude) and ``y`` (latitude), in EPSG:4326.
    """
    ways = extract.ways
    G = nx.MultiDiGraph(crs="epsg:4326")
    node_id, lon, lat = ways.node_id, ways.lon, ways.lat
    uniq, first = np.unique(node_id, return_index=True)
    G.add_nodes_from(
        (int(n), {"x": float(x), "y": float(y)})
        for n, x, y in zip(uniq, lon[first], lat[first], strict=True)
    )
    starts, ends = ways.offsets[:-1], ways.offsets[1:]
    for wid, hw, a, b in zip(ways.way_id, ways.highway, starts, ends, strict=True):
        ids = node_id[a:b]
        u, v = ids[:-1], ids[1:]
        attrs = {"osmid": int(wid), "highway": hw, "oneway": False}
        G.add_edges_from(
            (int(x), int(y), {**attrs, "reversed": False})
            for x, y in zip(u, v, strict=True)
            if x != y
        )
        G.add_edges_from(
            (int(y), int(x), {**attrs, "reversed": True})
            for x, y in zip(u, v, strict=True)
            if x != y
        )
    return _ox().distance.add_edge_lengths(G)


def walk_graph(
    extract: OsmExtract, *, speed_kmh: float = DEFAULT_SPEED_KMH, progress: ProgressFn | None = None
) -> nx.MultiDiGraph:
    """Return the simplified, projected walking graph as an osmnx ``MultiDiGraph``.

    Bidirectional, simplified with osmnx, restricted to its largest weakly
    connected component, projected to local UTM, and each edge given
    ``length_m`` (projected geometry length) and ``walk_time_s``. The reference
    for :func:`network_from_ways`, which builds the same network with numpy.

    Returns
    -------
    networkx.MultiDiGraph
        ``graph`` attributes ``crs``, ``raw_nodes``, ``dropped_nodes``,
        ``dropped_share``; edges with ``geometry``, ``length_m``, ``walk_time_s``,
        ``highway``, ``osmid`` (and osmnx's great-circle ``length``).
    """
    ms = speed_ms(speed_kmh)
    if progress:
        progress(0.1, "building raw graph")
    G = raw_walk_graph(extract)
    raw_nodes = G.number_of_nodes()
    if progress:
        progress(0.35, "simplifying")
    with _osmnx_settings(log_console=False, use_cache=False):
        G = _ox().simplify_graph(G)
        before = G.number_of_nodes()
        G = _ox().truncate.largest_component(G, strongly=False)
        after = G.number_of_nodes()
        if progress:
            progress(0.65, "projecting to UTM")
    _project_to_utm(G)
    _add_projected_lengths(G, ms)
    G.graph.update(_component_stats(raw_nodes, before, after))
    logger.info(
        "returned graph with %d nodes and %d edges", G.number_of_nodes(), G.number_of_edges()
    )
    return G


def _utm_crs(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> pyproj.CRS:
    """Return the UTM zone of the bulk of these points (UPS beyond the UTM limits).

    The zone is the one holding the median longitude and latitude, so a few
    stray nodes far away (a node at (0, 0)) cannot move it; osmnx uses the
    centre of the bounds instead, which is the same on any compact extract.
    """
    if lon.size == 0:
        msg = "The walking network is empty, so no projection can be chosen. Check that the OSM extract holds connected walkable ways."
        raise InputError(msg)
    mlon, mlat = float(np.median(lon)), float(np.median(lat))
    if mlat < -80.0:
        return pyproj.CRS.from_epsg(32761)
    if mlat > 84.0:
        return pyproj.CRS.from_epsg(32661)
    crs = gpd.GeoSeries(gpd.points_from_xy([mlon], [mlat]), crs="EPSG:4326").estimate_utm_crs()
    return pyproj.CRS.from_user_input(crs)


def _project_to_utm(G: nx.MultiDiGraph) -> None:
    """Project a WGS-84 graph in place to the UTM zone osmnx would choose.

    Same result as ``osmnx.projection.project_graph`` (zone from
    ``GeoSeries.estimate_utm_crs`` of the nodes, UPS beyond the UTM limits), but
    with one vectorised transform instead of a GeoDataFrame round trip (~10x
    faster on a city).
    """
    nodes = list(G.nodes)
    lon = np.fromiter((G.nodes[n]["x"] for n in nodes), dtype=np.float64, count=len(nodes))
    lat = np.fromiter((G.nodes[n]["y"] for n in nodes), dtype=np.float64, count=len(nodes))
    crs = _utm_crs(lon, lat)
    t = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = t.transform(lon, lat)
    for n, xi, yi in zip(nodes, x.tolist(), y.tolist(), strict=True):
        G.nodes[n]["x"] = xi
        G.nodes[n]["y"] = yi
    with_geom = [d for _, _, d in G.edges(data=True) if "geometry" in d]
    if with_geom:
        geoms = np.array([d["geometry"] for d in with_geom], dtype=object)
        projected = shapely.transform(
            geoms, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1]))
        )
        for d, g in zip(with_geom, projected, strict=True):
            d["geometry"] = g
    G.graph["crs"] = crs


def _add_projected_lengths(G: nx.MultiDiGraph, ms: float) -> None:
    """Give every edge a geometry, ``length_m`` (projected) and ``walk_time_s``."""
    for u, v, data in G.edges(data=True):
        geom = data.get("geometry")
        if geom is None:
            geom = shapely.LineString(
                [(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])]
            )
            data["geometry"] = geom
        data["length_m"] = float(geom.length)
        data["walk_time_s"] = data["length_m"] / ms


def network_from_graph(G: nx.MultiDiGraph, *, source_sha256: str = "") -> WalkNetwork:
    """Flatten a projected, bidirectional walking graph to a :class:`WalkNetwork`.

    Each pair of reciprocal directed edges becomes one undirected edge.

    Raises
    ------
    InputError
        The graph is not in a projected CRS.
    """
    crs = pyproj.CRS.from_user_input(G.graph["crs"])
    if not crs.is_projected:
        msg = f"The walking graph must be projected to a metric CRS; it is in {crs.to_string()}. Use `walk_graph`, which projects to local UTM."
        raise InputError(msg)
    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    node_x = np.array([G.nodes[n]["x"] for n in nodes], dtype=np.float64)
    node_y = np.array([G.nodes[n]["y"] for n in nodes], dtype=np.float64)
    seen: set[tuple[int, int, bytes]] = set()
    eu: list[int] = []
    ev: list[int] = []
    hw: list[str] = []
    geoms: list[shapely.LineString] = []
    for u, v, data in G.edges(data=True):
        geom = data["geometry"]
        a, b = index[u], index[v]
        coords = np.asarray(geom.coords)
        key_fwd = (a, b, coords.round(3).tobytes())
        if key_fwd in seen:
            continue
        seen.add((b, a, coords[::-1].round(3).tobytes()))
        seen.add(key_fwd)
        eu.append(a)
        ev.append(b)
        highway = data.get("highway", "")
        hw.append(highway if isinstance(highway, str) else ";".join(sorted(map(str, highway))))
        geoms.append(geom)
    geometry = np.empty(len(geoms), dtype=object)
    geometry[:] = geoms
    osmid = np.array([int(n) for n in nodes], dtype=np.int64)
    stats = {
        "raw_nodes": int(G.graph.get("raw_nodes", len(nodes))),
        "dropped_nodes": int(G.graph.get("dropped_nodes", 0)),
        "dropped_share": float(G.graph.get("dropped_share", 0.0)),
    }
    return WalkNetwork(
        crs=crs.to_string(),
        node_osmid=osmid,
        node_x=node_x,
        node_y=node_y,
        edge_u=np.asarray(eu, dtype=np.int64),
        edge_v=np.asarray(ev, dtype=np.int64),
        edge_length_m=shapely.length(geometry).astype(np.float64),
        edge_highway=np.asarray(hw, dtype=object),
        edge_geometry=geometry,
        source_sha256=source_sha256,
        stats=stats,
    )


def _component_stats(raw_nodes: int, before: int, after: int) -> dict[str, float]:
    """Log what keeping the largest component dropped; return it as network ``stats``."""
    if before - after:
        logger.info(
            "kept the largest connected component: dropped %d of %d simplified nodes (%.1f %%)",
            before - after,
            before,
            100.0 * (before - after) / before,
        )
    return {
        "raw_nodes": raw_nodes,
        "dropped_nodes": before - after,
        "dropped_share": (before - after) / before if before else 0.0,
    }


class _RawEdges(NamedTuple):
    """The walkable ways as raw undirected edges between distinct nodes."""

    node_osmid: NDArray[np.int64]  # sorted distinct OSM node ids
    lon: NDArray[np.float64]  # per node
    lat: NDArray[np.float64]
    a: NDArray[np.int64]  # edge ends, indices into node_osmid
    b: NDArray[np.int64]
    way: NDArray[np.int64]  # per edge, index of its way piece


class _Chains(NamedTuple):
    """Chains of raw edges between endpoint nodes: the edges of the simplified graph.

    Chain ``i`` runs from node ``u[i]`` to node ``v[i]`` through the nodes
    ``nodes[node_ptr[i]:node_ptr[i+1]]`` over the raw edges
    ``raw_edges[edge_ptr[i]:edge_ptr[i+1]]``.
    """

    u: NDArray[np.int64]
    v: NDArray[np.int64]
    nodes: NDArray[np.int64]
    node_ptr: NDArray[np.int64]
    raw_edges: NDArray[np.int64]
    edge_ptr: NDArray[np.int64]


def _raw_edges(ways: WalkWays) -> _RawEdges:
    """Consecutive node pairs inside each way piece, self-loops dropped."""
    nid = ways.node_id
    uniq, first, inv = np.unique(nid, return_index=True, return_inverse=True)
    inv = inv.astype(np.int64).ravel()
    last = np.zeros(nid.size, dtype=bool)
    last[ways.offsets[1:] - 1] = True
    pair = ~last[:-1]
    a, b = inv[:-1][pair], inv[1:][pair]
    way_of = np.repeat(np.arange(len(ways)), np.diff(ways.offsets))[:-1][pair]
    keep = a != b
    return _RawEdges(uniq, ways.lon[first], ways.lat[first], a[keep], b[keep], way_of[keep])


def _drop_long_segments(raw: _RawEdges, way_id: NDArray[np.int64]) -> _RawEdges:
    """Drop raw edges longer than :data:`MAX_SEGMENT_M`, warning with their OSM way ids."""
    lon, lat = np.radians(raw.lon), np.radians(raw.lat)
    dlat = lat[raw.b] - lat[raw.a]
    dlon = lon[raw.b] - lon[raw.a]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[raw.a]) * np.cos(lat[raw.b]) * np.sin(dlon / 2) ** 2
    dist_m = 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    long = dist_m > MAX_SEGMENT_M
    if not long.any():
        return raw
    ways = sorted(set(way_id[raw.way[long]].tolist()))
    shown = ", ".join(str(w) for w in ways[:5]) + (" ..." if len(ways) > 5 else "")
    logger.warning(
        "dropped %d way segment(s) longer than %.0f km (longest %.0f km), a mapping error "
        "no one walks: OSM way(s) %s",
        int(long.sum()),
        MAX_SEGMENT_M / 1000,
        float(dist_m.max()) / 1000,
        shown,
    )
    keep = ~long
    return raw._replace(a=raw.a[keep], b=raw.b[keep], way=raw.way[keep])


def _endpoints(raw: _RawEdges) -> NDArray[np.bool_]:
    """Nodes osmnx keeps when simplifying: not exactly two neighbours joined by one edge each."""
    n = int(raw.node_osmid.size)
    a, b = raw.a, raw.b
    deg = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pk = np.unique(lo * n + hi)
    nb = np.bincount(pk // n, minlength=n) + np.bincount(pk % n, minlength=n)
    return np.asarray((nb != 2) | (deg != 2))


def _chains(raw: _RawEdges, endpoint: NDArray[np.bool_]) -> _Chains:
    """Walk every chain once, from an endpoint through interstitial nodes to the next endpoint.

    Components without an endpoint (pure rings) yield no chain and vanish, as in osmnx.
    """
    n, m = int(raw.node_osmid.size), int(raw.a.size)
    # incidence lists: node -> raw edges, in way order
    ends = np.concatenate([raw.a, raw.b])
    order = np.argsort(ends, kind="stable")
    inc = np.concatenate([np.arange(m), np.arange(m)])[order]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=ptr[1:])
    # plain Python ints: this loop visits every raw edge once
    al, bl, incl, ptrl = raw.a.tolist(), raw.b.tolist(), inc.tolist(), ptr.tolist()
    endl = endpoint.tolist()
    used = [False] * m
    ch_u: list[int] = []
    ch_v: list[int] = []
    seq: list[int] = []
    seq_edges: list[int] = []
    seq_ptr = [0]
    edge_ptr = [0]
    for s in np.flatnonzero(endpoint).tolist():
        for k in range(ptrl[s], ptrl[s + 1]):
            e = incl[k]
            if used[e]:
                continue
            cur = s
            seq.append(s)
            while True:
                used[e] = True
                seq_edges.append(e)
                nxt = bl[e] if al[e] == cur else al[e]
                seq.append(nxt)
                if endl[nxt]:
                    break
                p0 = ptrl[nxt]
                e = incl[p0] if incl[p0] != e else incl[p0 + 1]
                cur = nxt
            ch_u.append(s)
            ch_v.append(nxt)
            seq_ptr.append(len(seq))
            edge_ptr.append(len(seq_edges))

    def arr(values: list[int]) -> NDArray[np.int64]:
        return np.asarray(values, dtype=np.int64)

    return _Chains(arr(ch_u), arr(ch_v), arr(seq), arr(seq_ptr), arr(seq_edges), arr(edge_ptr))


def _largest_component(
    chains: _Chains, endpoint: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
    """Return the kept nodes (mask) and kept chains (indices) of the largest component.

    Components are sized by their endpoint nodes, as osmnx counts them after simplifying.
    """
    n = int(endpoint.size)
    cu, cv = chains.u, chains.v
    g = sparse.csr_array((np.ones(cu.size), (cu, cv)), shape=(n, n))
    _, label = connected_components(g, directed=False)
    sizes = np.bincount(label[endpoint], minlength=int(label.max()) + 1 if n else 1)
    big = int(np.argmax(sizes)) if endpoint.any() else -1
    keep_n = endpoint & (label == big)
    keep_e = label[cu] == big if cu.size else np.zeros(0, dtype=bool)
    return keep_n, np.flatnonzero(keep_e)


def _ragged_positions(lens: NDArray[np.int64]) -> NDArray[np.int64]:
    """Position of each element inside its segment, for segments of ``lens`` elements."""
    return np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)


def _oriented_paths(
    chains: _Chains, kept: NDArray[np.intp], node_index: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Return ``(u, v, path_nodes, path_lens)`` of the kept chains, each run from its lower node.

    That is the direction a networkx edge walk over nodes in osmid order sees
    first; ``path_nodes`` concatenates every edge's node sequence (raw node
    indices), reversed where the chain was flipped.
    """
    sp = chains.node_ptr
    u_i, v_i = node_index[chains.u[kept]], node_index[chains.v[kept]]
    flip = v_i < u_i
    lens = (sp[1:] - sp[:-1])[kept]
    starts = sp[:-1][kept]
    pos = _ragged_positions(lens)
    rev_pos = np.repeat(lens, lens) - 1 - pos
    take = np.repeat(starts, lens) + np.where(np.repeat(flip, lens), rev_pos, pos)
    return np.where(flip, v_i, u_i), np.where(flip, u_i, v_i), chains.nodes[take], lens


def _chain_highways(
    way_highway: NDArray[np.object_], raw: _RawEdges, chains: _Chains, kept: NDArray[np.intp]
) -> NDArray[np.object_]:
    """``highway`` of each kept chain: its way's value, or the sorted distinct values joined by ";"."""
    ep = chains.edge_ptr
    hw_names, hw_code = np.unique(np.asarray(way_highway, dtype=str), return_inverse=True)
    ep_lens = (ep[1:] - ep[:-1])[kept]
    raw_edge = chains.raw_edges[np.repeat(ep[:-1][kept], ep_lens) + _ragged_positions(ep_lens)]
    codes = hw_code.ravel()[raw.way[raw_edge]]
    bounds = np.concatenate([[0], np.cumsum(ep_lens)])[:-1]
    cmin = np.minimum.reduceat(codes, bounds) if codes.size else codes
    cmax = np.maximum.reduceat(codes, bounds) if codes.size else codes
    highway = hw_names.astype(object)[cmin] if cmin.size else np.empty(0, dtype=object)
    for i in np.flatnonzero(cmin != cmax).tolist():
        vals = codes[bounds[i] : bounds[i] + ep_lens[i]]
        highway[i] = ";".join(sorted({str(hw_names[c]) for c in vals.tolist()}))
    return np.asarray(highway, dtype=object)


def _project_nodes(
    raw: _RawEdges, keep_n: NDArray[np.bool_]
) -> tuple[pyproj.CRS, NDArray[np.float64], NDArray[np.float64]]:
    """Project every raw node to the UTM zone osmnx would choose for the kept nodes."""
    crs = _utm_crs(raw.lon[keep_n], raw.lat[keep_n])
    t = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = t.transform(raw.lon, raw.lat)
    return crs, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _duplicate_lines(
    eu: NDArray[np.int64],
    ev: NDArray[np.int64],
    coords: NDArray[np.float64],
    offsets: NDArray[np.int64],
    n_nodes: int,
) -> NDArray[np.bool_]:
    """Mask of the edges to keep: a geometry repeated between the same two nodes goes.

    Ways sharing a segment give the same line twice (either direction, to the millimetre).
    """
    pairkey = np.minimum(eu, ev) * max(n_nodes, 1) + np.maximum(eu, ev)
    _, first_of, counts = np.unique(pairkey, return_index=True, return_counts=True)
    keep_edge = np.ones(eu.size, dtype=bool)
    for grp in np.flatnonzero(counts > 1).tolist():
        members = np.flatnonzero(pairkey == pairkey[first_of[grp]])
        seen: set[bytes] = set()
        for j in members.tolist():
            c = np.round(coords[offsets[j] : offsets[j + 1]], 3)
            key = c.tobytes()
            if key in seen or c[::-1].tobytes() in seen:
                keep_edge[j] = False
            seen.add(key)
    return keep_edge


def network_from_ways(extract: OsmExtract, *, source_sha256: str = "") -> WalkNetwork:
    """Build the simplified, projected walking network straight from the way arrays.

    Gives the same network as ``network_from_graph(walk_graph(extract))`` (same
    nodes, edges, geometries, lengths, ``highway`` values and CRS; edges may come
    in another order) with numpy instead of networkx: about 80x faster and a
    fifth of the memory on a 300,000-node city. The rules are osmnx's for a
    bidirectional graph: a node is kept when it does not have exactly two
    neighbours joined by one edge each; chains of the other nodes become one
    edge; components without any kept node (pure rings) vanish; the largest
    connected component is kept; the UTM zone is the one osmnx would choose.

    Parameters
    ----------
    extract
        The walkable ways read by :func:`coverage.osm.read_osm`.
    source_sha256
        Hash of the input file, kept in the network (the cache key).

    Returns
    -------
    WalkNetwork
        ``stats`` has ``raw_nodes``, ``dropped_nodes`` and ``dropped_share``
        (simplified nodes outside the largest component).
    """
    raw = _drop_long_segments(_raw_edges(extract.ways), extract.ways.way_id)
    endpoint = _endpoints(raw)
    chains = _chains(raw, endpoint)
    keep_n, kept = _largest_component(chains, endpoint)
    before, after = int(endpoint.sum()), int(keep_n.sum())
    if kept.size == 0:
        msg = (
            f"{extract.path.name!r} has walkable ways but no street network to walk on: "
            "they are only closed loops or ways that repeat one node. Use an extract "
            "that covers connected streets."
        )
        raise InputError(msg)
    node_index = np.full(endpoint.size, -1, dtype=np.int64)
    node_index[keep_n] = np.arange(after)
    eu, ev, path_nodes, lens = _oriented_paths(chains, kept, node_index)
    highway = _chain_highways(extract.ways.highway, raw, chains, kept)
    crs, x, y = _project_nodes(raw, keep_n)
    coords = np.column_stack([x[path_nodes], y[path_nodes]])
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    geometry = np.asarray(
        shapely.from_ragged_array(shapely.GeometryType.LINESTRING, coords, (offsets,)),
        dtype=object,
    )
    order_e = np.lexsort((ev, eu))
    order_e = order_e[_duplicate_lines(eu, ev, coords, offsets, after)[order_e]]
    out_geom = np.empty(order_e.size, dtype=object)
    out_geom[:] = list(geometry[order_e])
    net = WalkNetwork(
        crs=crs.to_string(),
        node_osmid=raw.node_osmid[keep_n].astype(np.int64),
        node_x=x[keep_n],
        node_y=y[keep_n],
        edge_u=eu[order_e].astype(np.int64),
        edge_v=ev[order_e].astype(np.int64),
        edge_length_m=shapely.length(out_geom).astype(np.float64),
        edge_highway=highway[order_e],
        edge_geometry=out_geom,
        source_sha256=source_sha256,
        stats=_component_stats(int(raw.node_osmid.size), before, after),
    )
    logger.info("returned network with %d nodes and %d edges", net.n_nodes, net.n_edges)
    return net
