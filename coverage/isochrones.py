"""Service areas that follow the streets: per-center and union polygons, and bands.

The walking searches come from :mod:`coverage.reach`: the nearest-source reach
of every node for the union areas, the bounded reach of each center on its own
for the per-center areas. An area is built from the reached streets — whole
edges, the reached part of partly reached edges (from either end, and around
each center on its own edge) and the centers' access legs — buffered by a
corridor width and unioned, never from a convex hull. A city-wide area is
unioned tile by tile, and the bands between nested areas are cut in the same
tiles.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from coverage.centers import CENTER_ID
from coverage.errors import InputError
from coverage.network import WalkNetwork, speed_ms
from coverage.parallel import worker_threads
from coverage.progress import ProgressFn, sub_progress
from coverage.reach import (
    NodeReach,
    Snapped,
    SourceReach,
    as_snapped,
    center_ids,
    nearest_source_m,
    reach_per_source_m,
    require_snapped,
)

logger = logging.getLogger(__name__)

#: Output columns.
MINUTES = "minutes"
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
#: Most vertices the tile memo keeps: about 230 MB at the ~39 bytes per vertex measured
#: (shapely 2.2, GEOS 3.14). One scenario's city-wide areas and bands hold 1.45 M at 100k
#: nodes, so the baseline and three other scenarios (three walking speeds) are kept.
TILE_MEMO_MAX_VERTICES = 6_000_000

# --- polygons ------------------------------------------------------------------


def _substrings(
    geoms: NDArray[np.object_], start_m: NDArray[np.float64], end_m: NDArray[np.float64]
) -> NDArray[np.object_]:
    """Return the parts of ``geoms[i]`` between ``start_m[i]`` and ``end_m[i]`` along the line.

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
    src: Snapped,
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Return the edges fully within ``budget_m`` (indices) and line pieces of partly reached edges."""
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
    r = budget_m - src.access_m
    live = (r >= 0) & ~full[src.edge]
    se, so, rr = src.edge[live], src.offset_m[live], r[live]
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
    src: Snapped,
    extra: NDArray[np.object_],
) -> NDArray[np.object_]:
    """Return every line of an area: whole reached edges, reached pieces, then ``extra`` (access legs)."""
    full_idx, pieces = _reached_lines(net, dist_m, budget_m, src)
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
    """Return the Polygon parts of a geometry (or of an array of geometries)."""
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
    """Tiles covering ``bounds``, on a grid aligned to multiples of ``tile_m``.

    The grid does not move with the extent, so a scenario that reaches farther (a
    station at the edge of town) keeps every other tile's box, and its memo key.
    """
    # nan* skips the bounds of empty geometries
    x0 = math.floor(np.nanmin(bounds[:, 0]) / tile_m) * tile_m
    y0 = math.floor(np.nanmin(bounds[:, 1]) / tile_m) * tile_m
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


class TileMemo:
    """The tile pieces and bands of recent service areas, keyed by what each is built from.

    A new scenario whose streets are unchanged in a tile (a station added across town,
    the same speed) takes that tile's piece from here instead of buffering and
    unioning its corridors again: only the tiles whose reached streets changed are
    built (issue 16, "do not search again"). The key is the tile's box, the corridor
    width, the hole filling and the WKB of its lines in order, so a hit returns the
    very geometry a build would. Least recently used entries go first once the memo
    holds more than ``max_vertices`` vertices; safe to use from the tile threads.
    """

    def __init__(self, max_vertices: int = TILE_MEMO_MAX_VERTICES) -> None:
        self.max_vertices = int(max_vertices)
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[bytes, tuple[shapely.Geometry | None, int]] = OrderedDict()
        self._vertices = 0
        self._lock = threading.Lock()

    @property
    def vertices(self) -> int:
        """Vertices held now."""
        return self._vertices

    def __len__(self) -> int:
        """Entries held now."""
        return len(self._items)

    def get(self, key: bytes) -> tuple[bool, shapely.Geometry | None]:
        """Return ``(found, geometry)`` for ``key`` (and count a hit or a miss)."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return False, None
            self._items.move_to_end(key)
            self.hits += 1
            return True, item[0]

    def put(self, key: bytes, geom: shapely.Geometry | None) -> None:
        """Keep ``geom`` under ``key``, dropping the oldest entries beyond the bound."""
        size = 0 if geom is None else int(shapely.get_num_coordinates(geom))
        if size > self.max_vertices:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._vertices -= old[1]
            self._items[key] = (geom, size)
            self._vertices += size
            while self._vertices > self.max_vertices:
                _, (_, dropped) = self._items.popitem(last=False)
                self._vertices -= dropped

    def clear(self) -> None:
        """Forget every entry and reset the counts."""
        with self._lock:
            self._items.clear()
            self._vertices = 0
            self.hits = self.misses = 0


#: The process's tile memo (what the app's scenarios share); ``TILE_MEMO.clear()`` frees it.
TILE_MEMO = TileMemo()


def _tile_key(
    lines: NDArray[np.object_], box: _Box, corridor_m: float, min_hole_area_m2: float
) -> bytes:
    """Hash what a tile piece is built from: box, widths and the lines' WKB in order."""
    digest = hashlib.sha256(np.array([*box, corridor_m, min_hole_area_m2, _QUAD_SEGS]).tobytes())
    for wkb in shapely.to_wkb(lines, hex=False).tolist():
        digest.update(len(wkb).to_bytes(8, "little"))
        digest.update(wkb)
    return digest.digest()


def _tile_piece(
    lines: NDArray[np.object_],
    tree: shapely.STRtree,
    box: _Box,
    corridor_m: float,
    min_hole_area_m2: float,
) -> tuple[bytes, shapely.Geometry | None]:
    """Return the tile's memo key and the union of the corridors of ``lines`` inside ``box``.

    Holes under ``min_hole_area_m2`` are filled. Buffers crossing the box edge are cut
    before the union, so the seam crossings come from the buffers themselves (the same
    on both sides of a seam) and not from the noding of the union; holes strictly
    inside the tile are holes of the whole union. The lines are taken in their order in
    ``lines`` (not the tree's), so a tile whose streets a new scenario leaves alone has
    the same key and is taken from :data:`TILE_MEMO`. The key is empty when no line
    touches the tile.
    """
    r = corridor_m * _SEAM_MARGIN
    idx = np.sort(tree.query(shapely.box(box[0] - r, box[1] - r, box[2] + r, box[3] + r)))
    if idx.size == 0:
        return b"", None
    near = lines[idx]
    key = _tile_key(near, box, corridor_m, min_hole_area_m2)
    found, piece = TILE_MEMO.get(key)
    if found:
        return key, piece
    buffers = shapely.buffer(near, corridor_m, quad_segs=_QUAD_SEGS)
    b = shapely.bounds(buffers).reshape(-1, 4)
    inner = (b[:, 0] > box[0]) & (b[:, 1] > box[1]) & (b[:, 2] < box[2]) & (b[:, 3] < box[3])
    cut = shapely.clip_by_rect(buffers[~inner], *box)
    merged = shapely.union_all(np.concatenate([buffers[inner], cut]))
    piece = _fill_small_holes(_seam_rounded(merged, box), min_hole_area_m2)
    piece = None if piece.is_empty else piece
    TILE_MEMO.put(key, piece)
    return key, piece


def _tile_band(
    keys: tuple[bytes, bytes],
    lo: shapely.Geometry | None,
    hi: shapely.Geometry | None,
    box: _Box,
) -> shapely.Geometry | None:
    """:func:`_band` of two tile pieces, from :data:`TILE_MEMO` when both pieces' keys were seen."""
    if not (keys[0] and keys[1]):
        return _band(lo, hi, box)
    key = hashlib.sha256(b"band" + keys[0] + keys[1]).digest()
    found, band = TILE_MEMO.get(key)
    if not found:
        band = _band(lo, hi, box)
        TILE_MEMO.put(key, band)
    return band


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
        keyed = [
            _tile_piece(x, tree, box, corridor_m, min_hole_area_m2)
            for x, tree in zip(sets, trees, strict=True)
        ]
        keys = [k for k, _ in keyed]
        pieces = [p for _, p in keyed]
        if not with_bands:
            return pieces, []
        bands = [
            _tile_band((keys[k - 1], keys[k]), pieces[k - 1], pieces[k], box)
            for k in range(1, len(pieces))
        ]
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
    sources: Snapped,
    *,
    corridor_m: float = DEFAULT_CORRIDOR_M,
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2,
    access_lines: Sequence[Any] = (),
) -> shapely.Geometry:
    """Build the area within ``budget_m`` of the sources along the streets.

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
    sources
        The sources' places (see :class:`coverage.reach.Snapped`).
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
    _check_corridor(corridor_m)
    if budget_m > reach.limit_m:
        msg = f"`budget_m` ({budget_m}) exceeds the search limit ({reach.limit_m}); search with a larger `limit_m`."
        raise InputError(msg)
    src = as_snapped(net, *sources, "sources")
    extra = np.empty(len(access_lines), dtype=object)
    extra[:] = list(access_lines)
    lines = _reach_lines(net, reach.dist_m, budget_m, src, extra)
    return _polygon(lines, corridor_m=corridor_m, min_hole_area_m2=min_hole_area_m2)


def _access_legs(net: WalkNetwork, centers: gpd.GeoDataFrame, src: Snapped) -> NDArray[np.object_]:
    """Return the straight lines from each center to where it joins the network."""
    if src.size == 0:
        return np.empty(0, dtype=object)
    on = shapely.line_interpolate_point(net.edge_geometry[src.edge], src.offset_m)
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


def _check_corridor(corridor_m: float) -> None:
    if not corridor_m > 0:
        msg = f"`corridor_m` must be > 0 meters; got {corridor_m!r}. The default is {DEFAULT_CORRIDOR_M}."
        raise InputError(msg)


@dataclass(frozen=True)
class AreaSpec:
    """One set of nested service areas to build (see :func:`area_sets_and_bands`).

    Parameters
    ----------
    thresholds
        The thresholds, strictly increasing, as they are labelled in the output
        (minutes, or meters for distance thresholds).
    budgets_m
        The walking distance of each threshold.
    corridor_m
        Half-width of the street corridor.
    min_hole_area_m2
        Holes smaller than this are filled.
    columns
        Output columns of the threshold, and of the bands' lower and upper bounds.
    label
        Progress message of this set (``"service areas"``).
    """

    thresholds: tuple[float, ...]
    budgets_m: tuple[float, ...]
    corridor_m: float
    min_hole_area_m2: float
    columns: tuple[str, str, str] = (MINUTES, MINUTES_FROM, MINUTES_TO)
    label: str = "service areas"


def minute_spec(
    minutes: Sequence[float], speed_kmh: float, corridor_m: float, min_hole_area_m2: float
) -> AreaSpec:
    """Return the spec of areas within ``minutes`` at ``speed_kmh`` (budget: minutes × speed)."""
    ms = speed_ms(speed_kmh)
    ts = check_thresholds(minutes)
    _check_corridor(corridor_m)
    return AreaSpec(ts, tuple(t * 60.0 * ms for t in ts), corridor_m, min_hole_area_m2)


def distance_spec(
    meters: Sequence[float],
    corridor_m: float,
    min_hole_area_m2: float,
    columns: tuple[str, str, str],
) -> AreaSpec:
    """Return the spec of areas within ``meters`` of walking (the budget is the distance itself).

    ``columns`` names the threshold and band columns (e.g. ``meters``,
    ``meters_from``, ``meters_to``). The areas do not depend on the speed.
    """
    ds = check_thresholds(meters)
    _check_corridor(corridor_m)
    return AreaSpec(ds, ds, corridor_m, min_hole_area_m2, columns, "distance service areas")


def service_areas(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    speed_kmh: float,
    corridor_m: float = DEFAULT_CORRIDOR_M,
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2,
    per_center: bool = True,
    progress: ProgressFn | None = None,
) -> gpd.GeoDataFrame:
    """Build service areas that follow the streets, per center and threshold, and their union.

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
    progress
        Called with ``(fraction, message)``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``center_id`` (``"all"`` for the union), ``minutes``, geometry
        (Polygon/MultiPolygon in ``net.crs``); the union rows come first.
    """
    spec = minute_spec(minutes, speed_kmh, corridor_m, min_hole_area_m2)
    return _area_sets(
        net, centers, [spec], per_center=per_center, progress=progress, with_bands=False
    )[0][0]


def service_areas_and_bands(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    speed_kmh: float,
    corridor_m: float = DEFAULT_CORRIDOR_M,
    min_hole_area_m2: float = DEFAULT_MIN_HOLE_AREA_M2,
    per_center: bool = True,
    progress: ProgressFn | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Build service areas (as :func:`service_areas`) and the bands of their union (as :func:`service_bands`).

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
    spec = minute_spec(minutes, speed_kmh, corridor_m, min_hole_area_m2)
    return _area_sets(
        net, centers, [spec], per_center=per_center, progress=progress, with_bands=True
    )[0]


def area_sets_and_bands(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    specs: Sequence[AreaSpec],
    *,
    per_center: bool = True,
    progress: ProgressFn | None = None,
) -> list[tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]]:
    """Build several sets of service areas and bands from one walking search.

    The nearest-center search (and, with ``per_center``, each center's own
    search and the street corridors) runs once, to the longest budget of all
    ``specs``; each set is then built from those reach values exactly as
    :func:`service_areas_and_bands` builds it alone. Minute thresholds and
    network-distance thresholds (:func:`minute_spec`, :func:`distance_spec`) so
    share one search.

    Parameters
    ----------
    net
        The walking network.
    centers
        Centers frame (``center_id`` and snap columns), in ``net.crs``.
    specs
        The sets to build (at least one).
    per_center
        Also return one area per center and threshold (not only the union).
    progress
        Called with ``(fraction, message)``; each set reports under its label.

    Returns
    -------
    list of tuple of geopandas.GeoDataFrame
        Per spec, the areas (``center_id``, the threshold column, geometry; the
        union rows first) and the bands (lower, upper, geometry), with the
        spec's column names.
    """
    if not specs:
        msg = "`specs` must list at least one set of service areas."
        raise InputError(msg)
    return _area_sets(
        net, centers, specs, per_center=per_center, progress=progress, with_bands=True
    )


def _union_areas(
    net: WalkNetwork,
    reach: NodeReach,
    src: Snapped,
    legs: NDArray[np.object_],
    spec: AreaSpec,
    *,
    with_bands: bool,
) -> tuple[list[shapely.Geometry], list[shapely.Geometry]]:
    """Return the union area per threshold (and the bands between them) from the search ``reach``."""
    line_sets = [
        _reach_lines(net, reach.dist_m, bm, src, legs[src.access_m <= bm]) for bm in spec.budgets_m
    ]
    if line_sets[-1].size > _TILED_UNION_MIN:
        return _tiled_areas(
            line_sets,
            corridor_m=spec.corridor_m,
            min_hole_area_m2=spec.min_hole_area_m2,
            with_bands=with_bands,
        )
    unions = [
        _polygon(lines, corridor_m=spec.corridor_m, min_hole_area_m2=spec.min_hole_area_m2)
        for lines in line_sets
    ]
    return unions, _differences(unions) if with_bands else []


@dataclass(frozen=True)
class _Searched:
    """The walking searches every set of areas is built from (see :func:`_area_sets`)."""

    src: Snapped
    legs: NDArray[np.object_]
    reach: NodeReach
    per_source: SourceReach | None
    corridors: dict[float, NDArray[np.object_]]

    def corridors_of(self, net: WalkNetwork, corridor_m: float) -> NDArray[np.object_]:
        """Return every edge buffered by ``corridor_m`` (built once per width)."""
        if corridor_m not in self.corridors:
            self.corridors[corridor_m] = shapely.buffer(
                net.edge_geometry, corridor_m, quad_segs=_QUAD_SEGS
            )
        return self.corridors[corridor_m]


def _per_center_rows(
    net: WalkNetwork,
    searched: _Searched,
    per_source: SourceReach,
    ids: NDArray[np.object_],
    spec: AreaSpec,
    progress: ProgressFn | None,
) -> list[dict[str, Any]]:
    """Return one row (``center_id``, threshold, geometry) per center and threshold.

    One bounded search for all centers (``per_source``); then each center's
    areas are built in a thread (GEOS releases the GIL), their street corridors taken
    from one buffer of every edge (an edge reached by many centers is buffered once).
    Each polygon is the union of the same corridors, in the same order, as
    :func:`reach_polygon` builds for that center alone, so the areas do not depend on
    the threads.
    """
    src, legs = searched.src, searched.legs
    corridors = searched.corridors_of(net, spec.corridor_m)

    def areas_of(j: int) -> list[shapely.Geometry]:
        rj = per_source.of(j, net.n_nodes)
        one = src.take([j])
        out = []
        for bm in spec.budgets_m:
            full_idx, pieces = _reached_lines(net, rj.dist_m, bm, one)
            extra = np.empty(1 if src.access_m[j] <= bm else 0, dtype=object)
            extra[:] = [legs[j]] if extra.size else []
            if full_idx.size + pieces.size + extra.size > _TILED_UNION_MIN:
                # a center reaching a whole city: the tiled union, as reach_polygon does
                lines = np.concatenate([net.edge_geometry[full_idx], pieces, extra])
                out.append(
                    _polygon(
                        lines, corridor_m=spec.corridor_m, min_hole_area_m2=spec.min_hole_area_m2
                    )
                )
                continue
            out.append(_corridor_union(corridors[full_idx], pieces, extra, spec))
        return out

    rows: list[dict[str, Any]] = []
    value = spec.columns[0]
    for j, geoms in enumerate(_each(areas_of, src.size)):
        for t, geom in zip(spec.thresholds, geoms, strict=True):
            rows.append({CENTER_ID: ids[j], value: t, "geometry": geom})
        if progress:
            progress((j + 1) / src.size, f"{spec.label} {j + 1}/{src.size}")
    return rows


#: Fewer centers than this are built one after another (threads would not pay).
_THREADED_MIN_CENTERS = 8


def _each(fn: Any, n: int) -> list[Any]:
    """Return ``[fn(0), …, fn(n - 1)]``, in threads when there are enough centers.

    Serially when a thread cannot start (a process under a tight address-space limit).
    """
    threads = worker_threads()
    if n < _THREADED_MIN_CENTERS or threads < 2:
        return [fn(j) for j in range(n)]
    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(fn, range(n)))
    except RuntimeError as exc:  # "can't start new thread"
        logger.info("per-center service areas built serially: %s", exc)
        return [fn(j) for j in range(n)]


def _corridor_union(
    corridors: NDArray[np.object_],
    pieces: NDArray[np.object_],
    extra: NDArray[np.object_],
    spec: AreaSpec,
) -> shapely.Geometry:
    """:func:`_polygon` of the lines ``[edges, pieces, extra]``, the edges' corridors given."""
    if corridors.size + pieces.size + extra.size == 0:
        return shapely.Polygon()
    own = shapely.buffer(np.concatenate([pieces, extra]), spec.corridor_m, quad_segs=_QUAD_SEGS)
    merged = shapely.union_all(np.concatenate([corridors, own]))
    return _fill_small_holes(merged, spec.min_hole_area_m2)


def _area_sets(
    net: WalkNetwork,
    centers: gpd.GeoDataFrame,
    specs: Sequence[AreaSpec],
    *,
    per_center: bool,
    progress: ProgressFn | None,
    with_bands: bool,
) -> list[tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]]:
    """Build each spec's areas (and bands) from one search to the longest budget.

    A node's reach within a budget does not depend on how far past it the search
    went, so each set equals the one its own search would give.
    """
    src = require_snapped(net, centers, "centers")
    limit_m = max(spec.budgets_m[-1] for spec in specs)
    searched = _Searched(
        src,
        _access_legs(net, centers, src),
        nearest_source_m(net, src, limit_m=limit_m),
        reach_per_source_m(net, src, limit_m=limit_m) if per_center and src.size else None,
        {},
    )
    ids = center_ids(centers)
    out = []
    for k, spec in enumerate(specs):
        step = sub_progress(progress, k / len(specs), (k + 1) / len(specs))
        if step and k:
            step(0.0, spec.label)
        out.append(_area_set(net, searched, ids, spec, step, with_bands=with_bands))
    return out


def _area_set(
    net: WalkNetwork,
    searched: _Searched,
    ids: NDArray[np.object_],
    spec: AreaSpec,
    progress: ProgressFn | None,
    *,
    with_bands: bool,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return one spec's areas and bands, built from ``searched``."""
    value, lower, upper = spec.columns
    unions, band_geoms = _union_areas(
        net, searched.reach, searched.src, searched.legs, spec, with_bands=with_bands
    )
    rows: list[dict[str, Any]] = [
        {CENTER_ID: ALL_CENTERS, value: t, "geometry": geom}
        for t, geom in zip(spec.thresholds, unions, strict=True)
    ]
    if searched.per_source is not None:
        rows += _per_center_rows(net, searched, searched.per_source, ids, spec, progress)
    out = gpd.GeoDataFrame(
        rows, geometry="geometry", crs=net.crs, columns=[CENTER_ID, value, "geometry"]
    )
    logger.info("returned %d %s for %d centers", len(out), spec.label, ids.size)
    ts = spec.thresholds
    bands = gpd.GeoDataFrame(
        {
            lower: [0.0, *ts[:-1]][: len(band_geoms)],
            upper: list(ts[: len(band_geoms)]),
        },
        geometry=gpd.GeoSeries(band_geoms, crs=net.crs),
        crs=net.crs,
    )
    return out, bands


def service_bands(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Cut non-overlapping bands (0–5, 5–15, …) from the union service areas.

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
    """Return each of nested ``areas`` minus the one before it (the first as is)."""
    out = []
    prev = shapely.Polygon()
    for g in areas:
        out.append(shapely.difference(g, prev) if not prev.is_empty else g)
        prev = g
    return out


def check_thresholds(minutes: Sequence[float]) -> tuple[float, ...]:
    """Return ``minutes`` as a tuple of floats, checked to be positive and strictly increasing.

    Parameters
    ----------
    minutes
        Thresholds, e.g. ``(5, 15)``.

    Returns
    -------
    tuple of float
        The thresholds.

    Raises
    ------
    InputError
        No threshold, a threshold that is not a positive finite number, or
        thresholds out of order.
    """
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
