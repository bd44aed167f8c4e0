"""Residential demand units with population estimates, snapped to the network.

Sources, in order of preference:

1. **A population file** from the planner (polygons or points with a population
   column, or a population raster such as WorldPop when ``rasterio`` is
   installed). When given, it replaces the OSM estimate entirely.
2. **Residential buildings** in OSM: footprint area × levels ÷ floor area per
   person (:class:`PopulationModel`).
3. **Residential landuse** in OSM: area × residential density.

Census counts per area (街道 / 社区) are spread over the units of 2 and 3 by
:mod:`coverage.census`, which builds on the helpers here (:func:`osm_units`,
:func:`finish_units`, the value checks and the cell split).

Never counting twice
--------------------
Chinese OSM data often maps a compound (``landuse=residential``) and only some
of its buildings. Each landuse polygon therefore receives
``max(0, area × density − population of the residential buildings inside it)``,
spread over its area *not* covered by those buildings. The compound as a whole
gets ``max(building estimate, landuse estimate)``: fully mapped compounds are
counted from their buildings, sparsely mapped ones from their area, and no
square meter is counted by both. A building straddling the landuse edge counts
inside in proportion to its area inside. Overlapping landuse polygons are made
disjoint first (a later polygon loses the area already covered by an earlier one).

Polygons larger than one grid cell are split into square cells
(``cell_size_m``, aligned to the network CRS) and their population is spread by
area, so that a compound half inside a walking catchment counts half.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from coverage.coords import Crs
from coverage.errors import InputError, ResourceLimitError
from coverage.names import GROUP_PREFIX, HOUSEHOLDS
from coverage.network import WalkNetwork
from coverage.osm import OsmExtract, default_memory_budget_bytes
from coverage.parallel import elementwise_in_threads
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, snap_frame
from coverage.userfiles import Source, read_features

logger = logging.getLogger(__name__)

#: Column names of a demand GeoDataFrame (see docs/ARCHITECTURE.md).
DEMAND_ID = "demand_id"
POPULATION = "population"
KIND = "kind"
NAME = "name"

#: Columns of a demand GeoDataFrame, in order.
COLUMNS = (DEMAND_ID, POPULATION, KIND, NAME, "geometry", SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M)
#: Optional columns a demand frame keeps besides ``population_<group>``: a census unit's area
#: number and households (:mod:`coverage.census`).
PASSED_COLUMNS = ("census_area", HOUSEHOLDS)
#: Population column names tried (case-insensitively) when ``population_column`` is not found.
POPULATION_ALIASES = ("population", "pop", "人口", "人口数", "常住人口", "户籍人口")
NAME_ALIASES = ("name", "名称", "小区名称", "社区名称")
RASTER_SUFFIXES = (".tif", ".tiff")

Floats = NDArray[np.float64]
Window = tuple[float, float, float, float]

#: Largest total population a file may hold: more than the world's (about 8e9,
#: UN World Population Prospects 2024) means a unit or data error.
MAX_TOTAL_POPULATION = 1e10

#: Memory one grid cell costs through the pipeline (box, piece, frame row, snap), in
#: bytes; an upper estimate measured on the embedded city (about 1.5 kB per unit).
BYTES_PER_CELL = 4_000
#: Share of the memory budget the cell split may use.
CELL_MEMORY_SHARE = 0.5
#: Edge cells whose holes are sorted at once (about 1 kB per cell while sorting).
HOLE_CHUNK_CELLS = 1 << 16


def max_cells(memory_budget_bytes: int | None = None) -> int:
    """Largest number of grid cells :func:`split_into_cells` builds within a memory budget.

    Parameters
    ----------
    memory_budget_bytes
        The run's memory budget (``--max-memory-gb``); default
        :func:`coverage.osm.default_memory_budget_bytes` (80 % of the memory
        available now, less under ``ulimit -v``).

    Returns
    -------
    int
        ``CELL_MEMORY_SHARE * budget // BYTES_PER_CELL`` (at least 10,000).
    """
    budget = (
        default_memory_budget_bytes() if memory_budget_bytes is None else int(memory_budget_bytes)
    )
    return max(int(budget * CELL_MEMORY_SHARE) // BYTES_PER_CELL, 10_000)


@dataclass(frozen=True)
class PopulationModel:
    """How population is estimated from OSM buildings and residential landuse.

    Attributes
    ----------
    floor_area_per_person_m2
        Residential floor area per resident. Default 36.5 m²: city households
        lived on 36.52 m² per person in the 2020 (7th) census (《中国人口普查年鉴-2020》,
        National Bureau of Statistics, 2022; 城市家庭人均居住面积). Large cities are
        tighter: Beijing 33.41 m², Shanghai 30.58 m² in the same yearbook.
    default_levels
        Storeys assumed when a building has no ``building:levels``. Default 6,
        the typical height of the walk-up (多层) housing that dominates older
        Chinese residential compounds.
    landuse_density_per_km2
        Residents per km² of ``landuse=residential`` without mapped buildings.
        Default 20,000 (50 m² of residential land per person), the middle of the
        per-capita residential land range GB 50180-2018 (城市居住区规划设计标准)
        gives for 4–6-storey residential districts; 15,000 is a cautious value
        for mixed or low-rise areas.
    cell_size_m
        Side of the square cells large polygons are split into.
    """

    floor_area_per_person_m2: float = 36.5
    default_levels: float = 6.0
    landuse_density_per_km2: float = 20_000.0
    cell_size_m: float = 100.0

    def __post_init__(self) -> None:
        """Refuse values outside their plausible ranges, naming the field."""
        checks = (
            ("floor_area_per_person_m2", self.floor_area_per_person_m2, 1.0, 1000.0),
            ("default_levels", self.default_levels, 1.0, 200.0),
            ("landuse_density_per_km2", self.landuse_density_per_km2, 0.0, 500_000.0),
            ("cell_size_m", self.cell_size_m, 5.0, 5000.0),
        )
        for label, value, lo, hi in checks:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                msg = f"`PopulationModel.{label}` must be a number in [{lo:g}, {hi:g}]; got {value!r}."
                raise InputError(msg)


@dataclass(frozen=True)
class PopulationFile:
    """A population file and how to read it (see :func:`demand_units`).

    Attributes
    ----------
    source
        Path or upload bytes (GeoJSON, GeoPackage, CSV), a GeoTIFF path, or a GeoDataFrame.
    filename
        Name of an upload (its extension selects the format).
    column
        Population column (``pop``, ``人口``... are tried if absent).
    name_column
        Column of unit names (``name``/``名称`` by default).
    crs
        Datum of the coordinates (``"wgs84"``, ``"gcj02"``, ``"bd09"``).
    group_columns
        Columns of population groups (e.g. ``60岁及以上``), spread over the units
        like the total and kept as ``population_<group>`` (issue 15).
    """

    source: Source | gpd.GeoDataFrame
    filename: str | None = None
    column: str = "population"
    name_column: str | None = None
    crs: Crs | str = "wgs84"
    group_columns: tuple[str, ...] = ()


# --- geometry helpers -----------------------------------------------------------


def _polygon_parts(
    parent: NDArray[np.intp], geoms: NDArray[np.object_], *, min_area_m2: float = 1e-6
) -> tuple[NDArray[np.intp], NDArray[np.object_]]:
    """Explode to single Polygons, dropping non-polygon and empty parts.

    Polygons are their own single part: only the other types go through
    ``get_parts``, which copies every part (0.7 s for 300,000 buildings).
    """
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    if single.all():
        parts, idx = np.asarray(geoms, dtype=object), np.arange(geoms.size)
    else:
        multi = np.flatnonzero(~single)
        m_parts, m_idx = shapely.get_parts(geoms[multi], return_index=True)
        idx = np.concatenate([np.flatnonzero(single), multi[m_idx]])
        parts = np.concatenate([geoms[single], m_parts])
        order = np.argsort(idx, kind="stable")
        idx, parts = idx[order], parts[order]
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & (
        shapely.area(parts) > min_area_m2
    )
    return parent[idx[keep]], parts[keep]


def split_into_cells(
    geoms: NDArray[np.object_],
    cell_size_m: float,
    *,
    window: Window | None = None,
    cell_limit: int | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.object_]]:
    """Split polygons into pieces no larger than the square grid cells.

    Polygons whose bounding box fits within one cell side are only exploded
    into single Polygons; larger ones are intersected with the cells of a grid
    aligned to multiples of ``cell_size_m`` (vectorised with shapely 2).

    Parameters
    ----------
    geoms
        Polygons in projected coordinates (meters).
    cell_size_m
        Side of the square cells.
    window
        ``(x0, y0, x1, y1)``: only cells meeting this box are built (the
        network's extent), so a country-sized polygon costs what its part in the
        city costs. Pieces inside the window are exactly those built without it.
    cell_limit
        Most grid cells built; default :func:`max_cells` of the default budget.

    Raises
    ------
    ResourceLimitError
        More than ``cell_limit`` cells would be built.

    Returns
    -------
    tuple
        ``(parent, pieces)``: for each piece, the index of the polygon it came
        from, and the Polygon pieces (projected coordinates).
    """
    geoms = np.asarray(geoms, dtype=object)
    n = geoms.size
    index = np.arange(n, dtype=np.intp)
    if n == 0:
        return index, geoms
    bounds = shapely.bounds(geoms)
    big = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]) > cell_size_m
    small_parent, small_parts = _polygon_parts(index[~big], geoms[~big])
    if not big.any():
        return small_parent, small_parts
    c = cell_size_m
    b = bounds[big]
    ix0 = np.floor(b[:, 0] / c).astype(np.int64)
    iy0 = np.floor(b[:, 1] / c).astype(np.int64)
    nx = np.maximum(np.ceil(b[:, 2] / c).astype(np.int64) - ix0, 1)
    ny = np.maximum(np.ceil(b[:, 3] / c).astype(np.int64) - iy0, 1)
    if window is not None:
        ix0, nx = _clamp(ix0, nx, math.floor(window[0] / c), math.ceil(window[2] / c))
        iy0, ny = _clamp(iy0, ny, math.floor(window[1] / c), math.ceil(window[3] / c))
    counts = nx * ny
    _check_cell_count(int(counts.sum()), cell_size_m, cell_limit)
    which = np.repeat(np.arange(b.shape[0]), counts)
    local = np.arange(which.size) - np.repeat(np.cumsum(counts) - counts, counts)
    gx = ix0[which] + local % nx[which]
    gy = iy0[which] + local // nx[which]
    boxes = shapely.box(gx * c, gy * c, (gx + 1) * c, (gy + 1) * c)
    big_geoms = geoms[big]
    owner = big_geoms[which]
    # Most cells of a large area lie wholly inside or outside it: decide those with
    # prepared predicates and intersect only the cells on its boundary.
    fresh = ~shapely.is_prepared(big_geoms)  # the caller's own objects: undo what we add
    shapely.prepare(big_geoms)
    try:
        touch = shapely.intersects(owner, boxes)
        inside = touch & shapely.contains_properly(owner, boxes)
    finally:
        shapely.destroy_prepared(big_geoms[fresh])
    pieces = np.full(which.size, None, dtype=object)
    pieces[inside] = boxes[inside]
    edge = np.flatnonzero(touch & ~inside)
    near = _without_far_holes(big_geoms, which[edge], boxes[edge], 0.1 * c)
    pieces[edge] = elementwise_in_threads(shapely.intersection, near, boxes[edge])
    pieces = pieces[touch]
    which = which[touch]
    big_parent, big_parts = _polygon_parts(index[big][which], pieces)
    parent = np.concatenate([small_parent, big_parent])
    parts = np.concatenate([small_parts, big_parts])
    order = np.argsort(parent, kind="stable")
    return parent[order], parts[order]


def _without_far_holes(
    geoms: NDArray[np.object_],
    owner: NDArray[np.intp],
    boxes: NDArray[np.object_],
    margin_m: float,
) -> NDArray[np.object_]:
    """Return ``geoms[owner]``, each Polygon without the holes farther than ``margin_m`` from its box.

    A compound with its buildings cut out has a dozen holes, and GEOS spends
    most of an intersection with a cell on the holes (4/5 of 9 s at 100k
    nodes). A hole whose bounding box stays ``margin_m`` clear of the cell is
    outside the piece and shares no edge or node with it, so the intersection
    is the same, coordinate for coordinate: the overlay nodes and labels only
    what it finds near the cell (GEOS's clipping box is the cell widened by a
    tenth of its side, ``margin_m`` here, plus the segments that cross it), so
    ``margin_m`` must be at least a tenth of the box side. Other geometry types,
    and polygons that keep all their holes, pass unchanged. The tests compare
    the pieces with the plain intersection byte for byte, so a GEOS release that
    changed this would be caught.
    """
    out = np.array(geoms[owner], dtype=object)
    holed = (shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON) & (
        shapely.get_num_interior_rings(geoms) > 0
    )
    cells = np.flatnonzero(holed[owner])
    if cells.size == 0:
        return out
    polys = np.flatnonzero(holed)
    rings, ring_poly = shapely.get_rings(geoms[polys], return_index=True)
    ring_bounds = shapely.bounds(rings)
    n_rings = np.bincount(ring_poly, minlength=polys.size)
    first_ring = np.cumsum(n_rings) - n_rings
    pos = np.searchsorted(polys, owner[cells])  # each cell's polygon among ``polys``
    box_bounds = shapely.bounds(boxes) + np.array([-margin_m, -margin_m, margin_m, margin_m])
    for lo in range(0, cells.size, HOLE_CHUNK_CELLS):  # chunks bound the per-ring arrays
        chunk = slice(lo, lo + HOLE_CHUNK_CELLS)
        counts = n_rings[pos[chunk]]
        cell_of = np.repeat(np.arange(counts.size), counts)
        local = np.arange(cell_of.size) - np.repeat(np.cumsum(counts) - counts, counts)
        ring = first_ring[pos[chunk]][cell_of] + local
        rb = ring_bounds[ring]
        bb = box_bounds[cells[chunk]][cell_of]
        far = (
            (rb[:, 0] > bb[:, 2])
            | (rb[:, 2] < bb[:, 0])
            | (rb[:, 1] > bb[:, 3])
            | (rb[:, 3] < bb[:, 1])
        ) & (local > 0)  # the shell always stays
        rebuilt = np.bincount(cell_of, weights=far, minlength=counts.size) > 0
        sel = ~far & rebuilt[cell_of]
        if sel.any():
            shapely.polygons(rings[ring[sel]], indices=cells[chunk][cell_of[sel]], out=out)
    return out


def _clamp(
    i0: NDArray[np.int64], n: NDArray[np.int64], lo: int, hi: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Cut the cell ranges ``[i0, i0 + n)`` to ``[lo, hi)``; empty ranges get ``n = 0``."""
    start = np.maximum(i0, lo)
    stop = np.minimum(i0 + n, hi)
    return start, np.maximum(stop - start, 0)


def _check_cell_count(count: int, cell_size_m: float, cell_limit: int | None) -> None:
    limit = max_cells() if cell_limit is None else cell_limit
    if count > limit:
        msg = (
            f"The population/residential polygons would be split into {count:,} cells of "
            f"{cell_size_m:g} m, more than the limit of {limit:,} (about "
            f"{BYTES_PER_CELL / 1000:g} kB of memory each; the limit is half the memory "
            "budget). Keep only the area you plan for, use larger cells "
            "(`PopulationModel.cell_size_m`), or raise the budget (--max-memory-gb)."
        )
        raise ResourceLimitError(msg)


def spread_by_area(
    parent: NDArray[np.intp],
    pieces: NDArray[np.object_],
    population: Floats,
    n: int,
    *,
    full_area: Floats | None = None,
) -> Floats:
    """Return each piece's population: its parent's shared by area (sums conserved).

    Where ``full_area`` is finite it replaces the parent's summed piece area
    (a parent cut to a window: its pieces get their share of the whole).
    """
    area = shapely.area(pieces)
    total = np.bincount(parent, weights=area, minlength=n)
    if full_area is not None:
        total = np.where(np.isfinite(full_area), full_area, total)
    share = np.divide(area, total[parent], out=np.zeros_like(area), where=total[parent] > 0)
    return np.asarray(population[parent] * share, dtype=np.float64)


def valid_geometries(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Return ``geoms`` 2-D and valid (``make_valid`` where needed)."""
    geoms = np.array(geoms, dtype=object)  # a copy: the caller's array is never touched
    # force_2d rebuilds every geometry (half a second at 300,000): only when one has Z or M
    if (shapely.has_z(geoms) | shapely.has_m(geoms)).any():
        geoms = shapely.force_2d(geoms)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def _disjoint(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Remove from each polygon the area already covered by earlier polygons."""
    out = geoms.copy()
    if geoms.size < 2:
        return out
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    earlier = j < i
    i, j = i[earlier], j[earlier]
    for k in np.unique(i):
        others = geoms[j[i == k]]
        out[k] = shapely.difference(out[k], shapely.union_all(others))
    return out


def _row_unions(rows: NDArray[np.object_]) -> NDArray[np.object_]:
    """Return the union of each row of a 2-D array of geometries."""
    return np.asarray(shapely.union_all(rows, axis=1), dtype=object)


def _grouped_unions(
    group: NDArray[np.intp], geoms: NDArray[np.object_]
) -> tuple[NDArray[np.intp], NDArray[np.object_]]:
    """Return the distinct ``group`` values and the union of each one's ``geoms``.

    Each union is ``shapely.union_all`` of the group's geometries in their order
    in ``geoms``, so the result is the one a loop over the groups gives, byte for
    byte; groups of equal size go to GEOS as one 2-D array (a Python call per
    group cost a second at 37,000 landuse compounds).
    """
    order = np.argsort(group, kind="stable")
    keys, starts, sizes = np.unique(group[order], return_index=True, return_counts=True)
    unions = np.empty(keys.size, dtype=object)
    members = geoms[order]
    for size in np.unique(sizes).tolist():
        which = np.flatnonzero(sizes == size)
        rows = starts[which][:, None] + np.arange(size)[None, :]
        unions[which] = elementwise_in_threads(_row_unions, members[rows], min_elements=1_000)
    return keys, unions


# --- OSM estimate -----------------------------------------------------------------


def osm_units(
    extract: OsmExtract, net: WalkNetwork, model: PopulationModel, cell_limit: int | None = None
) -> gpd.GeoDataFrame:
    """Residential units estimated from OSM buildings and landuse (the module docstring's model).

    Returns
    -------
    geopandas.GeoDataFrame
        The demand columns without the snap columns (``kind`` ``"building"`` or
        ``"landuse"``), pieces no larger than a cell, in ``net.crs``; not snapped.
    """
    res = extract.residential
    if len(res) == 0:
        return demand_frame([], [], [], [], [], net.crs)
    res = res.to_crs(net.crs)
    geoms = valid_geometries(res.geometry.values)
    kind = res["kind"].astype(str).to_numpy()
    names = res["name"].to_numpy(dtype=object)
    osm_key = [f"{str(t)[:1]}{int(i)}" for t, i in zip(res["osm_type"], res["osm_id"], strict=True)]
    osm_key_arr = np.asarray(osm_key, dtype=object)

    is_b = kind == "building"
    b_geom = geoms[is_b]
    levels = res["building_levels"].to_numpy(dtype=np.float64)[is_b]
    levels = np.where(np.isfinite(levels) & (levels > 0), levels, model.default_levels)
    b_area = shapely.area(b_geom)
    b_pop = b_area * levels / model.floor_area_per_person_m2

    is_l = kind == "landuse"
    l_geom = _disjoint(geoms[is_l])
    l_area = shapely.area(l_geom)
    l_pop = l_area * model.landuse_density_per_km2 / 1e6
    l_place = l_geom.copy()
    if b_geom.size and l_geom.size:
        li, bi = shapely.STRtree(b_geom).query(l_geom, predicate="intersects")
        inside = shapely.area(elementwise_in_threads(shapely.intersection, l_geom[li], b_geom[bi]))
        share = np.divide(inside, b_area[bi], out=np.zeros_like(inside), where=b_area[bi] > 0)
        b_pop_in = np.bincount(li, weights=b_pop[bi] * share, minlength=l_geom.size)
        l_pop = np.maximum(l_pop - b_pop_in, 0.0)
        keys, unions = _grouped_unions(li, b_geom[bi])
        rest = elementwise_in_threads(shapely.difference, l_geom[keys], unions)
        open_ = shapely.area(rest) > 1.0  # else a fully built-over compound: keep its outline
        l_place[keys[open_]] = rest[open_]
        logger.info(
            "residential buildings inside landuse account for %.0f people; landuse adds %.0f",
            float(b_pop_in.sum()),
            float(l_pop.sum()),
        )

    unit_geom = np.concatenate([b_geom, l_place])
    unit_pop = np.concatenate([b_pop, l_pop])
    unit_kind = np.concatenate(
        [
            np.full(b_geom.size, "building", dtype=object),
            np.full(l_place.size, "landuse", dtype=object),
        ]
    )
    unit_name = np.concatenate([names[is_b], names[is_l]])
    unit_key = np.concatenate([osm_key_arr[is_b], osm_key_arr[is_l]])
    parent, pieces = split_into_cells(unit_geom, model.cell_size_m, cell_limit=cell_limit)
    pop = spread_by_area(parent, pieces, unit_pop, unit_geom.size)
    prefix = np.where(unit_kind[parent] == "building", "b", "l")
    ids = piece_ids(prefix, unit_key[parent], parent)
    return demand_frame(ids, pop, unit_kind[parent], unit_name[parent], pieces, net.crs)


def piece_ids(prefix: NDArray[Any], key: NDArray[Any], parent: NDArray[np.intp]) -> list[str]:
    """``<prefix><key>-<n>`` with ``n`` counting the pieces of each parent (parent sorted)."""
    start = np.r_[True, parent[1:] != parent[:-1]] if parent.size else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(start, np.arange(parent.size), 0))
    part = np.arange(parent.size) - group_start
    return [f"{p}{k}-{n}" for p, k, n in zip(prefix, key, part, strict=True)]


def demand_frame(
    ids: Any, population: Any, kind: Any, name: Any, geoms: Any, crs: str
) -> gpd.GeoDataFrame:
    """Return a demand frame (no snap columns) from its columns, in ``crs``."""
    names = np.empty(len(ids), dtype=object)
    names[:] = [
        None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
        for v in name
    ]
    data = pd.DataFrame(
        {
            DEMAND_ID: pd.Series(list(ids), dtype=object),
            POPULATION: pd.Series(np.asarray(population, dtype=np.float64), dtype=np.float64),
            KIND: pd.Series(list(kind), dtype=object),
            NAME: pd.Series(names, dtype=object),
        }
    )
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(list(geoms), crs=crs), crs=crs)


# --- user files -----------------------------------------------------------------


def find_column(columns: list[str], wanted: str | None, aliases: tuple[str, ...]) -> str | None:
    """Return the column ``wanted`` (exact, then case-insensitive), else the first alias found."""
    if wanted is not None and wanted in columns:
        return wanted
    lookup = {str(c).strip().lower(): c for c in columns}
    if wanted is not None and wanted.strip().lower() in lookup:
        return str(lookup[wanted.strip().lower()])
    return next((str(lookup[a]) for a in aliases if a in lookup), None)


def _file_units(
    gdf: gpd.GeoDataFrame,
    net: WalkNetwork,
    model: PopulationModel,
    *,
    spec: PopulationFile,
    label: str,
    window: Window,
    cell_limit: int | None = None,
) -> gpd.GeoDataFrame:
    population_column, name_column = spec.column, spec.name_column
    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    pop_col = find_column(columns, population_column, POPULATION_ALIASES)
    if pop_col is None:
        msg = f"{label!r} has no population column {population_column!r} (also tried {', '.join(POPULATION_ALIASES)}); its columns are: {', '.join(columns) or 'none'}. Pass `population_column`."
        raise InputError(msg)
    values = population_values(gdf[pop_col], label=label, column_name=pop_col)
    check_population_values(values, label)
    name_col = (
        find_column(columns, name_column, NAME_ALIASES)
        if name_column is not None
        else find_column(columns, None, NAME_ALIASES)
    )
    if name_column is not None and name_col is None:
        msg = f"{label!r} has no column {name_column!r}; its columns are: {', '.join(columns)}."
        raise InputError(msg)
    names = (
        gdf[name_col].to_numpy(dtype=object) if name_col else np.full(len(gdf), None, dtype=object)
    )
    proj = gdf.to_crs(net.crs)
    geoms = valid_geometries(proj.geometry.values)
    types = shapely.get_type_id(geoms)
    is_point = types == shapely.GeometryType.POINT
    is_poly = np.isin(
        types,
        [
            shapely.GeometryType.POLYGON,
            shapely.GeometryType.MULTIPOLYGON,
            shapely.GeometryType.GEOMETRYCOLLECTION,
        ],
    )
    other = ~(is_point | is_poly)
    if other.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(other)[:10])
        msg = f"{label!r}: population features must be polygons or points; features {rows} are lines or multi-points. Convert them to areas or single points."
        raise InputError(msg)
    poly_idx = np.flatnonzero(is_poly)
    parent, pieces, pop = _split_file_polygons(
        geoms[poly_idx], values[poly_idx], model, window=window, label=label, cell_limit=cell_limit
    )
    src = poly_idx[parent]
    pt_idx = np.flatnonzero(is_point)
    all_src = np.concatenate([src, pt_idx])
    all_geom = np.concatenate([pieces, geoms[pt_idx]])
    all_pop = np.concatenate([pop, values[pt_idx]])
    order = np.argsort(all_src, kind="stable")
    all_src, all_geom, all_pop = all_src[order], all_geom[order], all_pop[order]
    ids = piece_ids(np.full(all_src.size, "f", dtype=object), (all_src + 1).astype(object), all_src)
    kinds = np.full(all_src.size, "file", dtype=object)
    out = demand_frame(ids, all_pop, kinds, names[all_src], all_geom, net.crs)
    for group in spec.group_columns:
        share = _group_share(gdf, columns, group, values, label)
        out[f"{GROUP_PREFIX}{group}"] = all_pop * share[all_src]
    return out


def _group_share(
    gdf: gpd.GeoDataFrame, columns: list[str], group: str, total: Floats, label: str
) -> Floats:
    """Return each feature's share of residents in ``group`` (its column / the total)."""
    if group not in columns:
        msg = f"{label!r} has no population group column {group!r}; its columns are: {', '.join(columns)}."
        raise InputError(msg)
    values = population_values(gdf[group], label=label, column_name=group)
    over = values > total * (1 + 1e-9) + 1e-9
    if over.any():
        msg = f"{label!r}: group column {group!r} exceeds the total population in features {_feature_rows(np.flatnonzero(over))}; a group is part of the total."
        raise InputError(msg)
    share = np.zeros(total.size)
    np.divide(values, total, out=share, where=total > 0)
    return share


def _feature_rows(positions: NDArray[np.intp]) -> str:
    """1-based feature numbers, the first ten and how many more."""
    more = f" and {positions.size - 10} more" if positions.size > 10 else ""
    return ", ".join(str(int(i) + 1) for i in positions[:10]) + more


def population_values(column: pd.Series, *, label: str, column_name: str = "") -> Floats:
    """Return a file's population numbers, refusing booleans, text and absurd totals."""
    raw = column.to_numpy(dtype=object)
    is_bool = np.array([isinstance(v, (bool, np.bool_)) for v in raw], dtype=bool)
    values = pd.to_numeric(column.where(~is_bool, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | is_bool)
    if bad.size:
        msg = f"{label!r}: column {column_name!r} must hold numbers ≥ 0, but features {_feature_rows(bad)} are missing, negative, true/false or not numbers (e.g. {str(raw[bad[0]])[:40]!r}). Fix them (0 for uninhabited areas)."
        raise InputError(msg)
    with np.errstate(over="ignore"):
        total = float(values.sum())
    if not total <= MAX_TOTAL_POPULATION:
        big = np.flatnonzero(values > MAX_TOTAL_POPULATION / max(values.size, 1))
        msg = f"{label!r}: column {column_name!r} adds up to {total:.3g} residents, more than {MAX_TOTAL_POPULATION:.0e} (the world has about 8e9); features {_feature_rows(big)} hold the largest values. Check the column's unit and the values."
        raise InputError(msg)
    return np.asarray(values, dtype=np.float64)


def warn_overlaps(geoms: NDArray[np.object_], label: str) -> None:
    """Warn when population polygons overlap: their shared area is counted once per polygon."""
    if geoms.size < 2:
        return
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = i < j
    i, j = i[pair], j[pair]
    if i.size == 0:
        return
    shared = shapely.area(shapely.intersection(geoms[i], geoms[j]))
    area = shapely.area(geoms)
    real = shared > 1e-6 * np.minimum(area[i], area[j])
    if not real.any():
        return
    involved = np.unique(np.concatenate([i[real], j[real]]))
    share = float(shared[real].sum()) / max(float(area.sum()), 1e-12)
    warnings.warn(
        f"{label}: {involved.size} population polygons overlap ({int(real.sum())} pairs, "
        f"{share:.1%} of their total area; features {_feature_rows(involved)}). Residents "
        "in an overlap are counted once for each polygon: dissolve or cut the overlaps "
        "in your GIS if they describe the same people.",
        UserWarning,
        stacklevel=4,
    )


def population_window(net: WalkNetwork, margin_m: float, cell_size_m: float) -> Window:
    """Return the network's extent plus ``margin_m``, widened by one cell on each side."""
    x0, y0, x1, y1 = net.extent_m(margin_m)
    return (x0 - cell_size_m, y0 - cell_size_m, x1 + cell_size_m, y1 + cell_size_m)


def _split_file_polygons(
    geoms: NDArray[np.object_],
    values: Floats,
    model: PopulationModel,
    *,
    window: Window,
    label: str,
    cell_limit: int | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.object_], Floats]:
    """Cells of the file's polygons within ``window``, with population spread by area.

    A polygon reaching beyond the window keeps its population density: each
    piece gets its share of the polygon's whole area, and the share outside is
    left out (as :func:`_within_extent` would leave out those cells).
    """
    warn_overlaps(geoms, label)
    parent, pieces = split_into_cells(
        geoms, model.cell_size_m, window=window, cell_limit=cell_limit
    )
    bounds = shapely.bounds(geoms) if geoms.size else np.zeros((0, 4))
    clipped = (
        (bounds[:, 0] < window[0])
        | (bounds[:, 1] < window[1])
        | (bounds[:, 2] > window[2])
        | (bounds[:, 3] > window[3])
    )
    full_area = np.where(clipped, shapely.area(geoms), np.nan) if geoms.size else np.zeros(0)
    pop = spread_by_area(parent, pieces, values, geoms.size, full_area=full_area)
    kept = np.bincount(parent, weights=pop, minlength=geoms.size)
    lost = float((values - kept)[~clipped].sum())
    if lost > 1e-6 * max(float(values.sum()), 1.0):
        logger.warning("%.0f people lie in polygons with no area and were dropped", lost)
    if clipped.any():
        logger.info(
            "%d population polygons reach beyond the network's extent; cut to it",
            int(clipped.sum()),
        )
    return parent, pieces, pop


#: Peak bytes per pixel of the window read from a population raster: the float64
#: band and its mask, then a box polygon, an id and a row per populated pixel.
BYTES_PER_RASTER_PIXEL = 400
#: Largest believable population of one demand unit (pixel, polygon or point): no
#: city district holds 10^8 residents; a larger value is a unit or nodata error.
MAX_UNIT_POPULATION = 1e8


def check_population_values(values: NDArray[np.float64], label: str) -> None:
    """Refuse non-finite or absurd populations (e.g. 1e308, whose total overflows to inf).

    Raises
    ------
    InputError
        A value above :data:`MAX_UNIT_POPULATION`, or a total that is not finite.
    """
    with np.errstate(over="ignore"):
        total = float(np.sum(values))
    if values.size and (not math.isfinite(total) or float(np.max(values)) > MAX_UNIT_POPULATION):
        msg = (
            f"{label!r} has a population of {float(np.max(values)):.3g} in one unit (total "
            f"{total:.3g}); expected at most {MAX_UNIT_POPULATION:.0e} residents per polygon, "
            "point or pixel. Check the population column or the raster's nodata value."
        )
        raise InputError(msg)


def _window_pixels_fit(name: str, n_pixels: int, budget: int | None) -> None:
    """Refuse a raster window whose pixels would not fit the memory budget."""
    budget = default_memory_budget_bytes() if budget is None else budget
    limit = budget // BYTES_PER_RASTER_PIXEL
    if n_pixels > limit:
        msg = (
            f"{name!r}: the window over the walking network has {n_pixels:,} pixels, more than "
            f"the {limit:,} the memory budget of {budget / 1e9:.1f} GB allows. Resample the "
            "raster to a coarser grid (`gdalwarp -tr`), clip it to the city, or raise the "
            "budget (--max-memory-gb)."
        )
        raise ResourceLimitError(msg)


def population_from_raster(
    path: Path | str,
    net: WalkNetwork,
    *,
    band: int = 1,
    margin_m: float = 200.0,
    memory_budget_bytes: int | None = None,
) -> gpd.GeoDataFrame:
    """Demand units from a population raster (e.g. WorldPop GeoTIFF), one per populated pixel.

    Needs the optional ``rasterio`` package (``pip install 'coverage-planner[raster]'``).
    Only the window covering the network's extent (plus ``margin_m``) is read, so a
    country-wide raster costs no more memory than the city.

    Parameters
    ----------
    path
        A GeoTIFF of residents per pixel, with a CRS (WorldPop: EPSG:4326).
    net
        The walking network; its extent selects the pixels.
    band
        Band to read (1-based).
    margin_m
        Margin around the network's extent, in meters.
    memory_budget_bytes
        Refuse a window of more than ``memory_budget_bytes / BYTES_PER_RASTER_PIXEL``
        pixels before reading it; ``None``: 80 % of the memory available now.

    Returns
    -------
    geopandas.GeoDataFrame
        ``demand_id`` (``"r<row>_<col>"`` in the whole raster), ``population``,
        ``kind`` (``"raster"``), ``name`` (None), Polygon ``geometry`` (pixel), in
        ``net.crs``; not snapped.
    """
    try:
        import rasterio
    except ImportError as exc:
        msg = "Reading population rasters needs the optional package rasterio: install it (`pip install 'coverage-planner[raster]'`), or convert the raster to points/polygons with a population column."
        raise InputError(msg) from exc
    from pyproj import Transformer

    p = Path(path)
    if not p.is_file():
        msg = f"Population raster not found: {str(p)!r}."
        raise InputError(msg)
    try:
        with rasterio.open(p) as src:
            t = src.transform
            if src.crs is None:
                msg = f"{p.name!r} has no CRS; WorldPop rasters are EPSG:4326, set it with `gdal_edit.py -a_srs EPSG:4326`."
                raise InputError(msg)
            if t.b != 0 or t.d != 0:
                msg = f"{p.name!r} is a rotated raster; warp it to a north-up grid first (`gdalwarp`)."
                raise InputError(msg)
            if not 1 <= band <= src.count:
                msg = f"{p.name!r} has {src.count} band(s); `band` must be in 1..{src.count}, got {band}."
                raise InputError(msg)
            bx0, by0, bx1, by1 = Transformer.from_crs(
                net.crs, src.crs, always_xy=True
            ).transform_bounds(*net.extent_m(margin_m), densify_pts=21)
            inv = ~t
            cols, rows = zip(*(inv * (x, y) for x in (bx0, bx1) for y in (by0, by1)), strict=True)
            c0, c1 = max(0, math.floor(min(cols))), min(src.width, math.ceil(max(cols)))
            r0, r1 = max(0, math.floor(min(rows))), min(src.height, math.ceil(max(rows)))
            if c0 >= c1 or r0 >= r1:
                msg = f"{p.name!r} does not overlap the OSM extract; use the population raster of this city (or of the whole country)."
                raise InputError(msg)
            _window_pixels_fit(p.name, (c1 - c0) * (r1 - r0), memory_budget_bytes)
            window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
            data = src.read(band, window=window, masked=True).astype(np.float64).filled(0.0)
            raster_crs, width, height = src.crs, src.width, src.height
    except rasterio.errors.RasterioError as exc:
        msg = f"{p.name!r} could not be read as a raster ({exc})."
        raise InputError(msg) from exc
    data = np.where(np.isfinite(data) & (data > 0), data, 0.0)
    check_population_values(data, p.name)
    rows_i, cols_i = np.nonzero(data)
    x0 = t.c + (cols_i + c0) * t.a
    y0 = t.f + (rows_i + r0) * t.e
    boxes = shapely.box(x0, y0, x0 + t.a, y0 + t.e)
    ids = [f"r{r + r0}_{c + c0}" for r, c in zip(rows_i, cols_i, strict=True)]
    gdf = demand_frame(
        ids,
        data[rows_i, cols_i],
        ["raster"] * rows_i.size,
        [None] * rows_i.size,
        boxes,
        str(raster_crs),
    )
    logger.info(
        "read %d populated pixels (%.0f residents) from %s, window %dx%d of %dx%d",
        rows_i.size,
        float(data.sum()),
        p.name,
        c1 - c0,
        r1 - r0,
        width,
        height,
    )
    return gdf.to_crs(net.crs)


# --- public API -------------------------------------------------------------------


def demand_units(
    extract: OsmExtract,
    net: WalkNetwork,
    *,
    model: PopulationModel | None = None,
    population: PopulationFile | Source | gpd.GeoDataFrame | None = None,
    extent_margin_m: float = 200.0,
    memory_budget_bytes: int | None = None,
) -> gpd.GeoDataFrame:
    """Residential demand units with population, snapped to the walking network.

    Parameters
    ----------
    extract
        The OSM extract (``extract.residential``), used when ``population`` is None.
    net
        The walking network; output is in ``net.crs``.
    model
        Population model for OSM estimates; default :class:`PopulationModel()`.
    population
        Optional population data replacing the OSM estimate (the OSM estimate is
        then never computed): a :class:`PopulationFile` (columns, upload name,
        datum), or its ``source`` alone: a file path or upload bytes (GeoJSON,
        GeoPackage or CSV; polygons or points), a GeoDataFrame, or a GeoTIFF
        raster path (needs rasterio).
    extent_margin_m
        Units whose representative point lies farther than this outside the
        bounding box of the network's nodes are dropped (logged): the network
        cannot say how far they are from anything.
    memory_budget_bytes
        Memory budget (``--max-memory-gb``): the cell split builds at most
        :func:`max_cells` of it, a raster window holds at most
        ``budget / BYTES_PER_RASTER_PIXEL`` pixels. ``None``:
        :func:`coverage.osm.default_memory_budget_bytes`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``demand_id`` (unique str), ``population`` (float ≥ 0), ``kind``
        (``"building"``, ``"landuse"``, ``"file"``, ``"raster"``; ``"census"`` comes
        from :func:`coverage.census.census_demand`), ``name``,
        ``geometry`` (Polygon pieces no larger than a cell; Point for point
        files), ``snap_edge``, ``snap_offset_m``, ``snap_distance_m``;
        RangeIndex; CRS ``net.crs``. Units with zero population are left out.

    Raises
    ------
    InputError
        Unreadable population data, missing/negative population values, or no
        populated unit within the network's extent.
    """
    model = PopulationModel() if model is None else model
    if not (math.isfinite(extent_margin_m) and extent_margin_m >= 0):
        msg = f"`extent_margin_m` must be a finite distance ≥ 0 m; got {extent_margin_m!r}."
        raise InputError(msg)
    cell_limit = max_cells(memory_budget_bytes)
    if population is None:
        units = osm_units(extract, net, model, cell_limit)
        label = extract.path.name
        return finish_units(units, net, extent_margin_m, label, from_file=False)
    spec = population if isinstance(population, PopulationFile) else PopulationFile(population)
    src = spec.source
    window = population_window(net, extent_margin_m, model.cell_size_m)
    if isinstance(src, gpd.GeoDataFrame):
        if src.crs is None:
            msg = "The population GeoDataFrame has no CRS; set it (`gdf.set_crs('EPSG:4326')`)."
            raise InputError(msg)
        label = spec.filename or "population data"
        units = _file_units(
            src, net, model, spec=spec, label=label, window=window, cell_limit=cell_limit
        )
    elif isinstance(src, (str, Path)) and str(src).lower().endswith(RASTER_SUFFIXES):
        label = Path(src).name
        units = population_from_raster(
            src, net, margin_m=extent_margin_m, memory_budget_bytes=memory_budget_bytes
        )
    else:
        gdf = read_features(src, filename=spec.filename, crs=spec.crs)
        label = spec.filename or (Path(src).name if isinstance(src, (str, Path)) else "upload")
        units = _file_units(
            gdf, net, model, spec=spec, label=label, window=window, cell_limit=cell_limit
        )
    return finish_units(units, net, extent_margin_m, label, from_file=True)


def finish_units(
    units: gpd.GeoDataFrame,
    net: WalkNetwork,
    extent_margin_m: float,
    label: str,
    *,
    from_file: bool,
) -> gpd.GeoDataFrame:
    """Keep populated units within the extent, snap them, and give the demand contract."""
    units = units.loc[units[POPULATION].to_numpy() > 0]
    units = within_extent(units, net, extent_margin_m, label)
    if len(units) == 0:
        if from_file:  # the population file was given: suggesting one would be no help
            msg = f"No populated residential areas from the population file {label!r} lie within the walking network's extent (plus {extent_margin_m:g} m). Check that the file covers the city of the OSM extract, its coordinate system (`--crs`), and that its population values are above 0."
        else:
            msg = f"No populated residential areas from {label!r} lie within the walking network. Provide a population file, or check that the OSM extract has landuse=residential or residential buildings."
        raise InputError(msg)
    if units[DEMAND_ID].duplicated().any():  # pragma: no cover - ids are built unique
        units = units.assign(**{DEMAND_ID: [f"{d}~{i}" for i, d in enumerate(units[DEMAND_ID])]})
    out = snap_frame(net, units.reset_index(drop=True))
    groups = [c for c in out.columns if str(c).startswith(GROUP_PREFIX)]
    # a census's area number and households travel with its units (coverage.census)
    groups += [c for c in PASSED_COLUMNS if c in out.columns]
    out = gpd.GeoDataFrame(
        out[[*COLUMNS, *groups]].reset_index(drop=True), geometry="geometry", crs=net.crs
    )
    for col in (DEMAND_ID, KIND, NAME):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    logger.info(
        "returned %d demand units with %.0f residents (%s)",
        len(out),
        float(out[POPULATION].sum()),
        ", ".join(f"{k}: {v}" for k, v in out[KIND].value_counts().items()),
    )
    return out


def inside_extent(
    geoms: NDArray[np.object_], net: WalkNetwork, margin_m: float
) -> NDArray[np.bool_]:
    """Whether each geometry's representative point lies within the network's extent plus ``margin_m``."""
    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    x0, y0, x1, y1 = net.extent_m(margin_m)
    return np.asarray((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1), dtype=bool)


def within_extent(
    units: gpd.GeoDataFrame, net: WalkNetwork, margin_m: float, label: str
) -> gpd.GeoDataFrame:
    """Return the units whose representative point lies within the extent (:func:`inside_extent`), logging the others."""
    if len(units) == 0:
        return units
    inside = inside_extent(units.geometry.values, net, margin_m)
    if not inside.all():
        logger.info(
            "%s: left out %d demand units (%.0f residents) outside the walking network's extent",
            label,
            int((~inside).sum()),
            float(units[POPULATION].to_numpy()[~inside].sum()),
        )
    return units.loc[inside]
