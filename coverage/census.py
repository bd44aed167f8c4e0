"""Census counts per area (街道 / 社区 polygons) spread over the residential land inside them.

A census table gives how many people live in each area, not where inside it. This
module spreads each area's count dasymetrically, never uniformly over the area
(people do not live in rivers, parks and rail yards):

1. **Residential features** (the OSM buildings and ``landuse=residential`` that
   :func:`coverage.demand.osm_units` estimates): each piece inside the area
   weighs its OSM estimate, i.e. building floor area (footprint × ``building:levels``,
   :attr:`~coverage.demand.PopulationModel.default_levels` storeys when untagged)
   where buildings are mapped, and residential landuse area (at the model's
   density) where they are not. Only the ratios inside one area matter: the
   census decides the total.
2. **Fallback, areas with no residential feature**: the walkable streets inside
   the area, buffered by :data:`STREET_BUFFER_M` (people live along streets,
   not in the middle of a park or a river), split into cells and weighted by area.
3. **Unplaced**: an area with neither (or lying outside the OSM extract) keeps
   its count in the ``census`` report as *unplaced*, with a logged warning; so
   does the share of an area beyond the extract (by land area: the extract
   cannot say where people live outside it).

Every area's count is kept exactly: the units placed from an area plus its
unplaced count add up to the census value (to rounding). The units are demand
units of ``kind`` ``"census"`` (docs/ARCHITECTURE.md), named after their area.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from coverage.demand import (
    NAME_ALIASES,
    POPULATION,
    POPULATION_ALIASES,
    PopulationModel,
    check_population_values,
    demand_frame,
    find_column,
    finish_units,
    inside_extent,
    osm_units,
    population_values,
    split_into_cells,
    valid_geometries,
    warn_overlaps,
)
from coverage.errors import InputError
from coverage.names import GROUP_PREFIX, HOUSEHOLDS
from coverage.network import WalkNetwork
from coverage.osm import OsmExtract
from coverage.userfiles import Source, read_features

logger = logging.getLogger(__name__)

#: ``kind`` of census demand units.
KIND_CENSUS = "census"
#: Demand columns of census units: the area's number (1-based, as in ``demand_id``
#: ``c<n>-…``), its households spread like its residents (when the census has them), and
#: each group as ``population_<group>`` (the prefix of :mod:`coverage.groups`).
CENSUS_AREA = "census_area"
#: Census population columns tried (case-insensitively) when ``column`` is not found.
CENSUS_ALIASES = ("population", "人口", "常住人口", *POPULATION_ALIASES)
#: Household columns tried when ``households_column`` is not given.
HOUSEHOLD_ALIASES = ("households", "户数", "家庭户数", "总户数")
#: Area name columns tried (then :data:`coverage.demand.NAME_ALIASES`).
AREA_NAME_ALIASES = ("name", "名称", "社区", "街道", "社区名称", "街道名称", *NAME_ALIASES)
#: Half-width of the street band that receives the people of an area without
#: residential features, in meters (a building row along a street).
STREET_BUFFER_M = 25.0
#: How an area's people were placed (``census.areas[].method``).
BY_RESIDENTIAL, BY_STREETS, NOT_PLACED = "residential", "streets", "unplaced"

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class CensusFile:
    """A census file (polygons with counts) and how to read it.

    Attributes
    ----------
    source
        Path or upload bytes (GeoJSON, GeoPackage, CSV with WKT), or a GeoDataFrame.
    filename
        Name of an upload (its extension selects the format).
    column
        Population column; ``None`` detects ``population`` / ``人口`` / ``常住人口`` …
    households_column
        Household column (passed through); ``None`` detects ``households`` / ``户数``.
    group_columns
        Further columns passed through to the report (e.g. ``街道`` of a 社区 table).
    population_groups
        Columns of population groups (e.g. ``60岁及以上``), counts per area that are
        part of the total: spread over the area's units like the total and kept as
        ``population_<group>`` demand columns (:mod:`coverage.groups`).
    name_column
        Area name column; ``None`` detects ``name`` / ``名称`` / ``社区`` / ``街道``.
    crs
        Datum of the coordinates (``"wgs84"``, ``"gcj02"``, ``"bd09"``).
    """

    source: Source | gpd.GeoDataFrame
    filename: str | None = None
    column: str | None = None
    households_column: str | None = None
    group_columns: tuple[str, ...] = ()
    name_column: str | None = None
    crs: str = "wgs84"
    population_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class CensusDemand:
    """Demand units spread from a census and the report of what was placed.

    Attributes
    ----------
    demand
        Snapped demand units (the demand contract), ``kind`` ``"census"``.
    report
        The ``census`` section of ``summary.json`` (:func:`census_report`).
    """

    demand: gpd.GeoDataFrame
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Areas:
    """The census areas as read: names, counts, pass-through values, projected polygons."""

    names: list[str]
    counts: Floats
    extra: pd.DataFrame
    geoms: NDArray[np.object_]
    column: str
    groups: dict[str, Floats] = field(default_factory=dict)


# --- reading -----------------------------------------------------------------------


def _column(
    columns: list[str], wanted: str | None, aliases: tuple[str, ...], label: str, what: str
) -> str | None:
    found = find_column(columns, wanted, aliases if wanted is None else ())
    if wanted is not None and found is None:
        msg = f"{label!r} has no {what} column {wanted!r}; its columns are: {', '.join(columns) or 'none'}."
        params = {"name": label, "column": wanted, "columns": ", ".join(columns) or "—"}
        raise InputError(msg, code="census.no_column", params=params)
    return found


def _areas(gdf: gpd.GeoDataFrame, crs: str, spec: CensusFile, label: str) -> _Areas:
    """Read counts, names and pass-through columns; project to ``crs`` and check the polygons."""
    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    pop_col = _column(columns, spec.column, CENSUS_ALIASES, label, "census population")
    if pop_col is None:
        msg = f"{label!r} has no census population column (tried {', '.join(CENSUS_ALIASES)}); its columns are: {', '.join(columns) or 'none'}. Name it with `--census-column`."
        params = {"name": label, "columns": ", ".join(columns) or "—"}
        raise InputError(msg, code="census.no_population", params=params)
    counts = population_values(gdf[pop_col], label=label, column_name=pop_col)
    check_population_values(counts, label)
    name_col = _column(columns, spec.name_column, AREA_NAME_ALIASES, label, "name")
    names = [
        str(v) if name_col and v is not None and v == v else f"#{i + 1}"
        for i, v in enumerate(gdf[name_col] if name_col else [None] * len(gdf))
    ]
    keep: dict[str, str] = {}
    hh = _column(columns, spec.households_column, HOUSEHOLD_ALIASES, label, "household")
    if hh is not None:
        keep[hh] = "households"
    for g in spec.group_columns:
        found = _column(columns, g, (), label, "group")
        keep[str(found)] = str(found)
    extra = pd.DataFrame(gdf[list(keep)]).rename(columns=keep).reset_index(drop=True)
    if "households" in extra:  # spread over the units; a missing value stays missing
        extra["households"] = pd.to_numeric(extra["households"], errors="coerce")
    groups = _group_counts(gdf, columns, spec.population_groups, counts, label)
    for name, values in groups.items():
        extra[name] = values
    geoms = valid_geometries(gdf.to_crs(crs).geometry.values)
    types = set(shapely.get_type_id(geoms).tolist())
    polygonal = {
        int(shapely.GeometryType.POLYGON),
        int(shapely.GeometryType.MULTIPOLYGON),
        int(shapely.GeometryType.GEOMETRYCOLLECTION),
    }
    if not types <= polygonal:
        msg = f"{label!r}: census areas must be polygons (one per 街道 / 社区); found points or lines. Give the area boundaries, or use `--population` for points."
        raise InputError(msg, code="census.not_polygons", params={"name": label})
    warn_overlaps(geoms, label)
    return _Areas(
        names=names, counts=counts, extra=extra, geoms=geoms, column=pop_col, groups=groups
    )


def _group_counts(
    gdf: gpd.GeoDataFrame, columns: list[str], wanted: tuple[str, ...], total: Floats, label: str
) -> dict[str, Floats]:
    """Return the count of each population group per area, checked to be part of the total."""
    out: dict[str, Floats] = {}
    for g in wanted:
        found = _column(columns, g, (), label, "population group")
        values = population_values(gdf[str(found)], label=label, column_name=str(found))
        over = values > total * (1 + 1e-9) + 1e-9
        if over.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(over)[:5])
            msg = f"{label!r}: population group {g!r} exceeds the area's census population in area(s) {rows}; a group is part of the total (check `--population-groups` and `--census-column`)."
            raise InputError(msg)
        out[str(g)] = values
    return out


# --- spreading -----------------------------------------------------------------------


def _pairs(
    areas: NDArray[np.object_], pieces: NDArray[np.object_]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.object_]]:
    """Return ``(area, piece, piece ∩ area)`` for every pair that shares area."""
    if areas.size == 0 or pieces.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0, dtype=object)
    a, p = shapely.STRtree(pieces).query(areas, predicate="intersects")
    inter = shapely.intersection(areas[a], pieces[p])
    ok = shapely.area(inter) > 1e-6
    return a[ok], p[ok], inter[ok]


def _explode(
    area: NDArray[np.intp], geoms: NDArray[np.object_], weights: Floats
) -> tuple[NDArray[np.intp], NDArray[np.object_], Floats]:
    """Single Polygons of ``geoms`` (an intersection may hold several, or slivers of lines), weights shared by area."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & (
        shapely.area(parts) > 1e-6
    )
    parts, idx = parts[keep], idx[keep]
    whole = np.bincount(idx, weights=shapely.area(parts), minlength=geoms.size)
    share = np.divide(
        shapely.area(parts), whole[idx], out=np.zeros(parts.size), where=whole[idx] > 0
    )
    return area[idx], parts, weights[idx] * share


def _street_pieces(
    net: WalkNetwork, area: shapely.Geometry, model: PopulationModel
) -> NDArray[np.object_]:
    """Return the walkable street band inside ``area``, cut into cells (the fallback)."""
    edges = net.edge_tree.query(area, predicate="intersects")
    if edges.size == 0:
        return np.zeros(0, dtype=object)
    band = shapely.union_all(shapely.buffer(net.edge_geometry[edges], STREET_BUFFER_M))
    inside = shapely.intersection(band, area)
    if shapely.is_empty(inside) or shapely.area(inside) <= 1.0:
        return np.zeros(0, dtype=object)
    _, cells = split_into_cells(np.asarray([inside], dtype=object), model.cell_size_m)
    return cells


@dataclass
class _Placed:
    """Units built so far, as columns."""

    area: list[NDArray[np.intp]] = field(default_factory=list)
    geoms: list[NDArray[np.object_]] = field(default_factory=list)
    pop: list[Floats] = field(default_factory=list)

    def add(self, area: int, geoms: NDArray[np.object_], weights: Floats, people: float) -> None:
        total = float(weights.sum())
        self.area.append(np.full(geoms.size, area, dtype=np.intp))
        self.geoms.append(geoms)
        self.pop.append(people * weights / total)


def _spread(
    areas: _Areas, extract: OsmExtract, net: WalkNetwork, model: PopulationModel, margin_m: float
) -> tuple[_Placed, list[str], Floats, Floats]:
    """Place each area's count; return the units, each area's method, placed count and share inside the extent."""
    box = shapely.box(*net.extent_m(margin_m))
    inside_geoms = shapely.intersection(areas.geoms, box)
    full = shapely.area(areas.geoms)
    inside_share = np.divide(
        shapely.area(inside_geoms), full, out=np.zeros_like(full), where=full > 0
    )
    osm = osm_units(extract, net, model)
    pieces = np.asarray(osm.geometry.values, dtype=object)
    weights = osm[POPULATION].to_numpy(dtype=np.float64)
    a, p, inter = _pairs(inside_geoms, pieces)
    piece_area = shapely.area(pieces[p])
    share = np.divide(
        shapely.area(inter), piece_area, out=np.zeros(inter.size), where=piece_area > 0
    )
    a, inter, w = _explode(a, inter, weights[p] * share)
    # The pieces kept are those the demand contract keeps (representative point in the extent).
    ok = (w > 0) & inside_extent(inter, net, margin_m) if inter.size else np.zeros(0, dtype=bool)
    a, inter, w = a[ok], inter[ok], w[ok]
    placed = _Placed()
    methods: list[str] = []
    placed_count = np.zeros(len(areas.names))
    for i in range(len(areas.names)):
        people = float(areas.counts[i]) * float(inside_share[i])
        mine = a == i
        if people <= 0:
            methods.append(BY_RESIDENTIAL if mine.any() else NOT_PLACED)
            continue
        if mine.any():
            placed.add(i, inter[mine], w[mine], people)
            methods.append(BY_RESIDENTIAL)
        else:
            cells = _street_pieces(net, inside_geoms[i], model)
            cells = cells[inside_extent(cells, net, margin_m)] if cells.size else cells
            if cells.size == 0:
                methods.append(NOT_PLACED)
                continue
            placed.add(i, cells, shapely.area(cells), people)
            methods.append(BY_STREETS)
        placed_count[i] = people
    return placed, methods, placed_count, inside_share


def _spread_counts(areas: _Areas, area_idx: NDArray[np.intp], pop: Floats) -> dict[str, Floats]:
    """Return the census area, households and group counts of each unit, spread like its residents.

    A unit holding ``p`` of its area's ``P`` residents gets ``p / P`` of the area's
    households and of each group: their totals per area are kept as the
    residents' are (the placed share of them, when part of the area is unplaced).
    """
    total = areas.counts[area_idx]
    share = np.divide(pop, total, out=np.zeros_like(pop), where=total > 0)
    out: dict[str, Floats] = {CENSUS_AREA: (area_idx + 1).astype(np.float64)}
    if "households" in areas.extra:
        hh = areas.extra["households"].to_numpy(dtype=np.float64)
        out[HOUSEHOLDS] = hh[area_idx] * share  # NaN where the area has no household count
    for name, values in areas.groups.items():
        out[f"{GROUP_PREFIX}{name}"] = values[area_idx] * share
    return out


def _reason(method: str, inside_share: float) -> str:
    if inside_share <= 0:
        return "outside the OSM extract"
    if method == NOT_PLACED:
        return "no residential land or streets inside it in the extract"
    return "partly outside the OSM extract"


def census_report(
    areas: _Areas, methods: list[str], placed: Floats, inside_share: Floats, *, label: str
) -> dict[str, Any]:
    """Return the ``census`` section of ``summary.json``.

    Returns
    -------
    dict
        ``file``, ``column``, ``areas`` (count), ``population``, ``placed``,
        ``unplaced`` (people), ``unplaced_areas`` (``name``, ``population``,
        ``unplaced``, ``reason``) and ``by_area`` (``name``, ``population``,
        ``placed``, ``method``, plus the household and group columns).
    """
    by_area = []
    unplaced_areas = []
    for i, name in enumerate(areas.names):
        total, done = float(areas.counts[i]), float(placed[i])
        row: dict[str, Any] = {"name": name, "population": total, "placed": done}
        row["method"] = methods[i]
        row.update({k: _plain(v) for k, v in areas.extra.iloc[i].items()})
        by_area.append(row)
        missing = total - done
        if missing > 1e-9 * max(total, 1.0):
            reason = _reason(methods[i], float(inside_share[i]))
            unplaced_areas.append(
                {"name": name, "population": total, "unplaced": missing, "reason": reason}
            )
    return {
        "file": label,
        "column": areas.column,
        "areas": len(areas.names),
        "population": float(areas.counts.sum()),
        "placed": float(placed.sum()),
        "unplaced": float(areas.counts.sum() - placed.sum()),
        "unplaced_areas": unplaced_areas,
        "by_area": by_area,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _read(census: CensusFile) -> tuple[gpd.GeoDataFrame, str]:
    """Return the census features in EPSG:4326 (converted from ``census.crs``) and a label."""
    src = census.source
    if isinstance(src, gpd.GeoDataFrame):
        if src.crs is None:
            msg = "The census GeoDataFrame has no CRS; set it (`gdf.set_crs('EPSG:4326')`)."
            raise InputError(msg)
        return src, str(census.filename or "census data")
    gdf = read_features(src, filename=census.filename, crs=census.crs)
    return gdf, str(census.filename or getattr(src, "name", "census file"))


def check_census(census: CensusFile) -> None:
    """Read a census file and check its columns, counts and polygons, before any slow step.

    Raises
    ------
    InputError
        As :func:`census_demand` does for the file itself (no network is needed).
    """
    gdf, label = _read(census)
    _areas(gdf, "EPSG:4326", census, label)


def census_demand(
    extract: OsmExtract,
    net: WalkNetwork,
    census: CensusFile,
    *,
    model: PopulationModel | None = None,
    extent_margin_m: float = 200.0,
) -> CensusDemand:
    """Demand units from census counts per area, spread over the residential land inside each.

    Parameters
    ----------
    extract
        The OSM extract (its residential features receive the people).
    net
        The walking network; output in ``net.crs``.
    census
        The census file (:class:`CensusFile`).
    model
        Weights of buildings against landuse (:class:`~coverage.demand.PopulationModel`).
    extent_margin_m
        As :func:`coverage.demand.demand_units`: only land within the network's
        extent plus this margin receives people.

    Returns
    -------
    CensusDemand
        ``demand``: ``demand_id`` (``c<area>-<n>``), ``population``, ``kind``
        (``"census"``), ``name`` (the area's), geometry, snap columns;
        ``report``: the ``census`` section (:func:`census_report`).

    Raises
    ------
    InputError
        Unreadable file, no population column, bad counts, areas that are not
        polygons, or no area placed at all.
    """
    model = PopulationModel() if model is None else model
    gdf, label = _read(census)
    areas = _areas(gdf, str(net.crs), census, label)
    placed, methods, placed_count, inside_share = _spread(
        areas, extract, net, model, extent_margin_m
    )
    report = census_report(areas, methods, placed_count, inside_share, label=str(label))
    for row in report["unplaced_areas"]:
        logger.warning(
            "census area %s: %.0f of %.0f people not placed (%s)",
            row["name"],
            row["unplaced"],
            row["population"],
            row["reason"],
        )
    if not placed.area:
        msg = f"No census area of {label!r} could be placed on the walking network's residential land or streets: check `--crs` (GCJ-02 / BD-09 areas read as WGS-84 shift by 300–700 m) and that the areas cover the OSM extract."
        raise InputError(msg, code="census.nothing_placed", params={"name": label})
    area_idx = np.concatenate(placed.area)
    order = np.argsort(area_idx, kind="stable")
    area_idx = area_idx[order]
    geoms = np.concatenate(placed.geoms)[order]
    pop = np.concatenate(placed.pop)[order]
    start = np.r_[True, area_idx[1:] != area_idx[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(area_idx.size), 0))
    ids = [f"c{a + 1}-{n}" for a, n in zip(area_idx, np.arange(area_idx.size) - first, strict=True)]
    names = np.asarray(areas.names, dtype=object)[area_idx]
    kinds = np.full(area_idx.size, KIND_CENSUS, dtype=object)
    units = demand_frame(ids, pop, kinds, names, geoms, net.crs)
    for column, values in _spread_counts(areas, area_idx, pop).items():
        units[column] = values
    demand = finish_units(units, net, extent_margin_m, str(label), from_file=True)
    logger.info(
        "census %s: %d areas, %.0f of %.0f people placed",
        label,
        report["areas"],
        report["placed"],
        report["population"],
    )
    return CensusDemand(demand=demand, report=report)
