"""Write the output contract (docs/DESIGN.md) of an audit or a siting run, atomically.

:func:`output_files` turns an :class:`~coverage.audit.AuditResult` (and an optional
:class:`~coverage.siting.SitingResult`) into ``{file name: bytes}``: ``summary.json``,
GeoJSON layers in EPSG:4326 (RFC 7946: lon/lat, counter-clockwise exterior rings,
coordinates rounded to 7 decimals, NaN written as ``null``, Chinese kept as is), CSV
tables and ``report.html``. :func:`write_outputs` puts those files into a folder
all-or-nothing: they are built in a temporary sibling folder, flushed to disk and
swapped into place, so the folder holds either the previous complete output or the
new one, never a mix. :func:`coverage.pipeline.write` does both for a scenario result.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from coverage import i18n
from coverage.errors import InputError
from coverage.fileio import json_bytes, jsonable, strip_controls
from coverage.inputs import CityData
from coverage.maps import MapLayers, coverage_map
from coverage.names import covered_column, share_column, threshold_key
from coverage.progress import ProgressFn
from coverage.report import report_html
from coverage.scenario import ScenarioResult

logger = logging.getLogger(__name__)

#: Version of the output contract; bump it whenever a file or field name changes.
SCHEMA_VERSION = 1
#: Decimals kept in GeoJSON coordinates (1e-7 degree ≈ 1 cm).
COORD_DECIMALS = 7

SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
CENTERS_GEOJSON = "centers.geojson"
SERVICE_AREAS_GEOJSON = "service_areas.geojson"
DEMAND_GEOJSON = "demand.geojson"
UNCOVERED_GEOJSON = "uncovered.geojson"
PROPOSED_SITES_GEOJSON = "proposed_sites.geojson"
COVERAGE_CURVE_CSV = "coverage_curve.csv"
CENTERS_CSV = "centers.csv"
COVERAGE_BY_LEVEL_CSV = "coverage_by_level.csv"
REPORT_HTML = "report.html"

#: Contract columns of each GeoJSON layer (``covered_<t>`` columns are added per threshold).
CENTER_COLUMNS = ("center_id", "name", "source", "level", "snap_distance_m")
SERVICE_AREA_COLUMNS = ("center_id", "minutes")
DEMAND_COLUMNS = ("demand_id", "population", "minutes_to_nearest", "nearest_center_id")
DEMAND_EXTRA_COLUMNS = ("kind", "name")
UNCOVERED_COLUMNS = ("minutes", "population", "area_m2")
SITE_COLUMNS = ("rank", "marginal_population", "cumulative_population", "cumulative_share")
SITE_EXTRA_COLUMNS = ("candidate_id", "snap_distance_m")
MINUTES_AFTER = "minutes_after"
LON = "lon"
LAT = "lat"

_WGS84 = pyproj.CRS.from_epsg(4326)
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
#: ``json``'s own string encoder with ``ensure_ascii=False`` (Chinese kept as is).
_encode_text = json.encoder.encode_basestring
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


# --- values ---------------------------------------------------------------------------


def _column_values(series: pd.Series) -> list[Any]:
    if pd.api.types.is_bool_dtype(series.dtype):
        return [bool(v) for v in series.to_numpy()]
    if pd.api.types.is_float_dtype(series.dtype):
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return [float(v) if math.isfinite(v) else None for v in arr]
    if pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        return [int(v) for v in series.to_numpy()]
    return [_plain_text(jsonable(v)) for v in series.to_numpy(dtype=object)]


def safe_filename(name: str, *, default: str = "unnamed", max_chars: int = 100) -> str:
    """Return ``name`` made safe as one file name on Windows, macOS and Linux.

    Path separators, control characters and characters Windows forbids become
    ``_``; leading dots and trailing dots/spaces are dropped (no hidden files, no
    ``..``); Windows reserved device names (``CON``, ``NUL``, ``COM1``...) get a
    ``_`` prefix. Chinese and other letters are kept.

    Parameters
    ----------
    name
        A user-supplied string (a district or scenario name).
    default
        Returned when nothing usable is left.
    max_chars
        Longest result, in characters.

    Returns
    -------
    str
        A non-empty file name without any directory part.
    """
    text = unicodedata.normalize("NFC", str(name))
    text = _UNSAFE.sub("_", text).strip().lstrip(".").rstrip(". ")
    text = text[:max_chars].rstrip(". ")
    if not text:
        return default
    if text.split(".")[0].upper() in _RESERVED:
        text = f"_{text}"
    return text


# --- GeoJSON --------------------------------------------------------------------------


def _to_wgs84(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        if len(gdf) == 0:
            return gdf.set_crs(_WGS84)
        msg = f"`{what}` has no CRS; give it the network's CRS (`gdf.set_crs(net.crs)`) before exporting so its coordinates can be converted to EPSG:4326."
        raise InputError(msg)
    if pyproj.CRS.from_user_input(gdf.crs).equals(_WGS84):
        return gdf
    return gdf.to_crs(_WGS84)


#: Above this many coordinates a shape that rounding broke is checked and repaired
#: ring by ring (:func:`_repaired_large`): GEOS's whole-shape ``make_valid`` of a
#: city-wide union of service areas (one polygon with ~20,000 holes) takes tens of
#: seconds, while the breakage is a few centimetre slivers.
LARGE_COORDS = 20_000


def _flagged_holes(poly: Any) -> tuple[Any, Any, Any]:
    """Split a polygon's rings: shell, holes that may matter for validity, the others.

    A hole that is valid on its own, meets neither the shell nor another hole and
    lies inside the shell cannot make the polygon invalid; every other hole is
    flagged. Returns ``(shell ring, flagged hole rings, free hole rings)``.
    """
    rings = shapely.get_rings(poly)
    shell, holes = rings[0], rings[1:]
    if holes.size == 0:
        return shell, holes, holes
    hole_polys = shapely.polygons(holes)
    flag = ~np.asarray(shapely.is_valid(hole_polys), dtype=bool)
    i, j = shapely.STRtree(hole_polys).query(hole_polys)  # envelopes, then the exact test
    pair = i < j
    i, j = i[pair], j[pair]
    meet = np.asarray(shapely.intersects(hole_polys[i], hole_polys[j]), dtype=bool)
    flag[i[meet]] = True
    flag[j[meet]] = True
    shell_poly = shapely.polygons(shell)
    shapely.prepare(shell)
    shapely.prepare(shell_poly)
    flag |= np.asarray(shapely.intersects(shell, holes), dtype=bool)
    flag |= ~np.asarray(shapely.contains(shell_poly, shapely.get_point(holes, 0)), dtype=bool)
    return shell, holes[flag], holes[~flag]


def _polygon_valid_and_repaired(poly: Any, *, repair: bool) -> tuple[bool, Any]:
    """Return the validity of one large polygon, and its ``structure`` repair if asked and needed."""
    shell, flagged, free = _flagged_holes(poly)
    core = shapely.Polygon(shell, list(flagged))
    if shapely.is_valid(core):
        return True, poly
    if not repair:
        return False, poly
    fixed = shapely.make_valid(core, method="structure", keep_collapsed=False)
    if free.size == 0:
        return False, fixed
    # The free holes lie strictly inside one part each and meet nothing: punch them
    # into the part that holds them, as repairing the whole would.
    free = shapely.remove_repeated_points(free, 0.0)
    parts = shapely.get_parts(np.asarray([fixed], dtype=object))
    parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    owner_part, hole = shapely.STRtree(parts).query(shapely.get_point(free, 0), predicate="within")[
        ::-1
    ]
    out = []
    for k, part in enumerate(parts):
        mine = free[owner_part == k] if hole.size else free[:0]
        extra = list(mine[np.argsort(hole[owner_part == k])]) if mine.size else []
        rings = shapely.get_rings(part)
        out.append(shapely.Polygon(rings[0], [*rings[1:], *extra]))
    return False, out[0] if len(out) == 1 else shapely.multipolygons(out)


def _clashing_parts(parts: Any) -> Any:
    """Polygons of a MultiPolygon that break its validity: interiors meet, or boundaries share a line."""
    clash = np.zeros(parts.size, dtype=bool)
    i, j = shapely.STRtree(parts).query(parts)  # envelopes only: cheap
    big_first = shapely.get_num_coordinates(parts[i]) >= shapely.get_num_coordinates(parts[j])
    i, j = i[(i != j) & big_first], j[(i != j) & big_first]
    if i.size == 0:
        return clash
    shapely.prepare(parts)  # a prepared large polygon answers `intersects` from its index
    meet = np.asarray(shapely.intersects(parts[i], parts[j]), dtype=bool)
    i, j = i[meet], j[meet]
    if i.size:
        matrix = shapely.relate(parts[i], parts[j])
        bad = np.array([m[0] != "F" or m[4] == "1" for m in matrix], dtype=bool)
        clash[i[bad]] = True
        clash[j[bad]] = True
    return clash


def _repaired_large(geom: Any, *, repair: bool) -> tuple[bool, Any]:
    """``(is_valid(geom), make_valid(geom, method="structure"))`` for a large (Multi)Polygon.

    The same answers as GEOS on the whole shape (same area and coordinates; only
    the order of rings and parts may differ), computed on the rings that can
    matter: polygon by polygon, and the polygons that meet each other together.
    """
    parts = shapely.get_parts(np.asarray([geom], dtype=object))
    if shapely.get_type_id(geom) not in (3, 6):
        ok = bool(shapely.is_valid(geom))
        return ok, geom if ok or not repair else shapely.make_valid(geom, method="structure")
    results = [_polygon_valid_and_repaired(p, repair=repair) for p in parts]
    valid = np.array([r[0] for r in results], dtype=bool)
    fixed = np.array([r[1] for r in results] + [None], dtype=object)[:-1]
    clash = _clashing_parts(parts)
    ok = bool(valid.all() and not clash.any())
    if ok or not repair:
        return ok, geom
    pieces = [*shapely.get_parts(fixed[~clash])]
    if clash.any():
        merged = shapely.make_valid(
            shapely.multipolygons(parts[clash]), method="structure", keep_collapsed=False
        )
        pieces += list(shapely.get_parts(merged))
    polys = [p for p in pieces if shapely.get_type_id(p) == shapely.GeometryType.POLYGON]
    if not polys:
        return ok, shapely.Polygon()
    # GEOS's repair rebuilds every ring and drops repeated points; so do we
    out = polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
    return ok, shapely.remove_repeated_points(out, 0.0)


def _repair_rounded(arr: Any, rounded: Any, present: Any) -> None:
    """Repair, in ``rounded``, the shapes rounding made invalid (and that were valid)."""
    large = np.zeros(arr.size, dtype=bool)
    large[present] = shapely.get_num_coordinates(arr[present]) > LARGE_COORDS
    broken = np.flatnonzero(present & ~large)
    broken = broken[~np.asarray(shapely.is_valid(rounded[broken]), dtype=bool)]
    broken = broken[np.asarray(shapely.is_valid(arr[broken]), dtype=bool)]
    if broken.size:
        fixed = shapely.make_valid(rounded[broken], method="structure", keep_collapsed=False)
        gone = np.asarray(shapely.is_empty(fixed), dtype=bool)
        fixed[gone] = arr[broken][gone]
        rounded[broken] = fixed
    for k in np.flatnonzero(large):
        ok, fixed_one = _repaired_large(rounded[k], repair=True)
        if ok or not _repaired_large(arr[k], repair=False)[0]:
            continue
        rounded[k] = arr[k] if shapely.is_empty(fixed_one) else fixed_one


def _geometry_json(geoms: Any) -> list[str]:
    arr = np.array(geoms, dtype=object)
    missing = np.asarray(shapely.is_missing(arr), dtype=bool)
    empty = np.zeros(arr.size, dtype=bool)
    empty[~missing] = shapely.is_empty(arr[~missing])
    arr[missing | empty] = None
    rounded = shapely.transform(arr, lambda c: np.round(c, COORD_DECIMALS))
    # Rounding can fold centimetre-thin slivers onto themselves; repair those, and keep
    # the unrounded shape where the repair leaves nothing.
    _repair_rounded(arr, rounded, ~(missing | empty))
    arr = shapely.orient_polygons(rounded)  # RFC 7946 §3.1.6: exterior rings counter-clockwise
    out = shapely.to_geojson(arr)
    return ["null" if s is None else str(s) for s in out]


def geojson_bytes(
    gdf: gpd.GeoDataFrame,
    columns: Sequence[str] | None = None,
    *,
    optional: Sequence[str] = (),
    what: str = "layer",
) -> bytes:
    r"""Return ``gdf`` as an RFC 7946 GeoJSON FeatureCollection (UTF-8 bytes).

    Parameters
    ----------
    gdf
        Any CRS (converted to EPSG:4326); a frame without CRS is refused.
    columns
        Properties to write, in this order; all of them must exist. ``None``
        writes every non-geometry column.
    optional
        Further properties written when present.
    what
        Name of the layer in error messages.

    Returns
    -------
    bytes
        The FeatureCollection; coordinates lon/lat rounded to 7 decimals,
        NaN/None as ``null``, Chinese text kept (not ``\\u`` escaped).

    Raises
    ------
    InputError
        A missing contract column, or no CRS.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{what}` must be a GeoDataFrame; got {type(gdf).__name__}."
        raise InputError(msg)
    geom_name = gdf.geometry.name
    if columns is None:
        props = [c for c in gdf.columns if c != geom_name]
    else:
        missing = [c for c in columns if c not in gdf.columns]
        if missing:
            msg = f"`{what}` lacks the contract column(s) {missing}; build it with the coverage library (see docs/ARCHITECTURE.md)."
            raise InputError(msg)
        props = list(columns) + [c for c in optional if c in gdf.columns and c not in columns]
    wgs = _to_wgs84(gdf, what)
    columns_json = [_column_json(wgs[c], c) for c in props]
    geoms = _geometry_json(wgs.geometry.values)
    head, tail = '{"type":"Feature","properties":{', '},"geometry":'
    rows = zip(*columns_json, strict=True) if columns_json else ([] for _ in geoms)
    parts = [
        head + ", ".join(row) + tail + geom + "}" for row, geom in zip(rows, geoms, strict=True)
    ]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(parts) + "\n]}\n"
    return text.encode("utf-8")


def _value_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return _encode_text(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _column_json(series: pd.Series, name: str) -> list[str]:
    """``"name": value`` per row, as ``json.dumps`` writes it, a column at a time.

    The values are those of :func:`_column_values`; floats, booleans and text take
    fast paths (``float.__repr__`` is what ``json`` writes for a finite float).
    """
    key = _encode_text(str(name)) + ": "
    values = _column_values(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        return [key + ("true" if v else "false") for v in values]
    if pd.api.types.is_float_dtype(series.dtype):
        return [key + ("null" if v is None else float.__repr__(v)) for v in values]
    return [key + _value_json(v) for v in values]


# --- tables ---------------------------------------------------------------------------


#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Return a text cell that a spreadsheet cannot run; other values unchanged.

    Text beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
    leading ``'`` (https://owasp.org/www-community/attacks/CSV_Injection), and
    control characters are removed. Numbers, booleans and missing values are
    returned as they are, so a negative number stays a number.
    """
    if not isinstance(value, str):
        return value
    prefix = "'" if value.startswith(FORMULA_STARTS) else ""
    return prefix + strip_controls(value)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """Return ``df`` as CSV with a UTF-8 BOM (so Excel shows Chinese), without its index.

    Every text cell and column name goes through :func:`safe_cell`: the one place
    that neutralises formulas in the CSV files we write.
    """
    out = df.drop(
        columns=[c for c in df.columns if isinstance(df[c].dtype, gpd.array.GeometryDtype)]
    )
    text_cols = [
        c
        for c in out.columns
        if pd.api.types.is_object_dtype(out[c].dtype) or pd.api.types.is_string_dtype(out[c].dtype)
    ]
    if text_cols:
        out = out.copy()
        for c in text_cols:
            out[c] = out[c].map(safe_cell)
    out.columns = [safe_cell(str(c)) for c in out.columns]
    text: str = out.to_csv(index=False, lineterminator="\n")
    return text.encode("utf-8-sig")


def centers_table(centers: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per-center table: ids, names, ``lon``/``lat`` (EPSG:4326) and population reached.

    Returns
    -------
    pandas.DataFrame
        ``center_id``, ``name``, ``source``, ``level``, ``lon``, ``lat``,
        ``snap_distance_m``, ``population_nearest``, ``population_within_<t>``.
    """
    wgs = _to_wgs84(centers, "centers")
    cols = [c for c in CENTER_COLUMNS if c in wgs.columns]
    cols += [
        c for c in wgs.columns if c == "population_nearest" or c.startswith("population_within_")
    ]
    df = pd.DataFrame(wgs[cols]).reset_index(drop=True)
    pts = shapely.point_on_surface(np.asarray(wgs.geometry.values, dtype=object))
    df[LON] = np.round(shapely.get_x(pts), COORD_DECIMALS)
    df[LAT] = np.round(shapely.get_y(pts), COORD_DECIMALS)
    head = [c for c in (*CENTER_COLUMNS[:4], LON, LAT) if c in df.columns]
    return df[head + [c for c in df.columns if c not in head]]


# --- summary --------------------------------------------------------------------------


def _coverage_block(audit: Any) -> dict[str, Any]:
    return {
        str(key): {
            "population_covered": float(stats.population_covered),
            "share": float(stats.share),
            "units_covered": int(stats.units_covered),
        }
        for key, stats in audit.coverage.items()
    }


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    if df is None or len(df) == 0:
        return []
    plain = pd.DataFrame(df).drop(columns=["geometry"], errors="ignore")
    return [
        {str(k): _plain_text(jsonable(v)) for k, v in row.items()}
        for row in plain.to_dict(orient="records")
    ]


def _plain_text(value: Any) -> Any:
    return strip_controls(value) if isinstance(value, str) else value


def siting_block(siting: Any) -> dict[str, Any]:
    """Return the ``siting`` section of ``summary.json`` from a :class:`~coverage.siting.SitingResult`."""
    block: dict[str, Any] = {
        "method": str(siting.method),
        "k": int(siting.k),
        "share_before": float(siting.share_before),
        "share_after": float(siting.share_after),
        "upper_bound_share": float(siting.upper_bound_share),
        "gap": float(siting.gap),
    }
    params = getattr(siting, "params", None)
    if params is not None:
        block["minutes"] = float(params.minutes)
        if params.target_share is not None:
            block["target_share"] = float(params.target_share)
    for name in ("target_met", "optimal", "min_sites_proven", "n_candidates"):
        value = getattr(siting, name, None)
        if value is not None:
            block[name] = jsonable(value)
    return block


def district_coverage(
    demand: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    thresholds_min: Sequence[float],
    *,
    name_column: str = "district",
) -> pd.DataFrame:
    """Coverage per district: each demand unit counts in the district holding its point.

    Parameters
    ----------
    demand
        Audited demand (``population``, ``covered_<t>``), any CRS.
    districts
        District polygons with a `name_column` column, any CRS.
    thresholds_min
        The audit's thresholds.

    Returns
    -------
    pandas.DataFrame
        ``district``, ``units``, ``population``, ``population_covered_<t>``, ``share_<t>``.
    """
    if name_column not in districts.columns:
        msg = f"`districts` lacks the name column {name_column!r}; columns are {list(districts.columns)}."
        raise InputError(msg)
    dist = districts[[name_column, districts.geometry.name]].to_crs(demand.crs)
    pts = gpd.GeoDataFrame(
        {"population": demand["population"].to_numpy()},
        geometry=demand.geometry.representative_point().to_numpy(),
        crs=demand.crs,
    )
    for t in thresholds_min:
        col = covered_column(t)
        pts[col] = demand[col].to_numpy(dtype=bool)
    joined = gpd.sjoin(pts, dist, how="inner", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    rows: list[dict[str, Any]] = []
    for name in dist[name_column]:
        g = joined[joined[name_column] == name]
        pop = float(g["population"].sum())
        row: dict[str, Any] = {"district": name, "units": len(g), "population": pop}
        for t in thresholds_min:
            key = threshold_key(t)
            covered = float(g.loc[g[covered_column(t)], "population"].sum())
            row[f"population_covered_{key}"] = covered
            row[share_column(t)] = covered / pop if pop > 0 else None
        rows.append(row)
    return pd.DataFrame(rows)


def summary_dict(
    result: ScenarioResult, city: CityData, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the ``summary.json`` document (schema :data:`SCHEMA_VERSION`) of a result.

    Parameters
    ----------
    result
        The scenario result (:func:`coverage.pipeline.run`): audit, centers in
        force, siting and per-district table.
    city
        The city it ran on: the network (``n_nodes``, ``n_edges``,
        ``length_km``), the OSM file's name and checksum, the population model.
    extra
        Further top-level keys; ``closed_centers`` is added when the scenario
        closed any.

    Returns
    -------
    dict
        ``schema_version``, ``input``, ``params``, ``network``, ``demand``,
        ``centers``, ``coverage``, ``coverage_by_level`` and, when present,
        ``districts``, ``siting`` and ``closed_centers``.
    """
    net, audit, siting, centers = city.net, result.audit, result.siting, result.centers
    population_model, districts = city.population_model, result.districts
    closed = list(result.scenario.closed)
    extra = {**({"closed_centers": closed} if closed else {}), **(extra or {})}
    params = audit.params
    levels = getattr(params, "level_thresholds_min", None)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "input": {"file": city.source_name, "sha256": city.source_sha256},
        "params": {
            "walk_speed_kmh": float(params.speed_kmh),
            "thresholds_min": [float(t) for t in params.thresholds_min],
            "level_thresholds_min": {str(k): float(v) for k, v in levels.items()}
            if levels
            else None,
            "population_model": jsonable(dict(population_model or {})),
        },
        "network": {
            "nodes": int(net.n_nodes),
            "edges": int(net.n_edges),
            "length_km": round(float(net.length_km), 3),
            "crs": str(net.crs),
        },
        "demand": {
            "units": len(audit.demand),
            "population": float(audit.population_total),
        },
        "centers": {"count": len(audit.centers if centers is None else centers)},
        "coverage": _coverage_block(audit),
        "coverage_by_level": _records(getattr(audit, "coverage_by_level", None)),
    }
    if districts is not None:
        doc["districts"] = _records(districts)
    if siting is not None:
        doc["siting"] = siting_block(siting)
    if extra:
        doc.update({str(k): jsonable(v) for k, v in extra.items()})
    return doc


def summary_csv_bytes(audit: Any, *, scenario: str = "") -> bytes:
    """Return ``summary.csv``: the ``coverage`` block of ``summary.json`` as one row per threshold.

    Parameters
    ----------
    audit
        The audit result.
    scenario
        Name written in the ``scenario`` column (empty when the run has no scenario).

    Returns
    -------
    bytes
        CSV with a UTF-8 BOM, columns ``scenario``, ``threshold_min`` (the threshold key,
        e.g. ``5``), ``population_covered``, ``population_total``, ``share``,
        ``units_covered``.
    """
    rows = [
        {
            "scenario": scenario,
            "threshold_min": key,
            "population_covered": stats.population_covered,
            "population_total": audit.population_total,
            "share": stats.share,
            "units_covered": stats.units_covered,
        }
        for key, stats in audit.coverage.items()
    ]
    return csv_bytes(pd.DataFrame(rows))


def _scenario_name(extra: Mapping[str, Any] | None) -> str:
    """Return ``extra["scenario"]["name"]`` (as the app and :func:`summary` pass it), else ``""``."""
    scenario = (extra or {}).get("scenario")
    return str(scenario.get("name") or "") if isinstance(scenario, Mapping) else ""


# --- all files --------------------------------------------------------------------------


def _demand_frame(audit: Any, siting: Any) -> tuple[gpd.GeoDataFrame, list[str]]:
    demand = audit.demand
    cols = list(DEMAND_COLUMNS) + [covered_column(t) for t in audit.params.thresholds_min]
    if siting is not None:
        demand = demand.copy()
        after = siting.minutes_after
        demand[MINUTES_AFTER] = (
            after.reindex(demand.index).to_numpy(dtype=np.float64)
            if isinstance(after, pd.Series)
            else np.asarray(after, dtype=np.float64)
        )
        cols.append(MINUTES_AFTER)
    return demand, cols


def output_files(
    result: ScenarioResult,
    city: CityData,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    lang: str = "zh",
    report: bool = True,
    progress: ProgressFn | None = None,
) -> dict[str, bytes]:
    """Build every file of the output contract of ``result`` in memory.

    Parameters
    ----------
    result, city, extra
        As :func:`summary_dict`.
    title
        Title of ``report.html``; default "<report title> · <OSM file name>".
    lang
        Language of ``report.html`` (``zh`` or ``en``).
    report
        Write ``report.html``.
    progress
        ``progress(fraction, message)``.

    Returns
    -------
    dict
        File name → bytes: ``summary.json``, ``summary.csv``, ``centers.geojson``,
        ``service_areas.geojson``, ``demand.geojson``, ``uncovered.geojson``,
        ``centers.csv``, ``coverage_by_level.csv``; with ``siting`` also
        ``proposed_sites.geojson`` and ``coverage_curve.csv``; ``report.html``.
    """

    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    audit, siting, centers_now = result.audit, result.siting, result.centers
    if title is None:
        title = f"{i18n.t('report.title', lang)} · {city.source_name}"
    # The audit's centers carry the per-center statistics; prefer them.
    audited_centers = audit.centers if len(audit.centers) == len(centers_now) else centers_now
    doc = summary_dict(result, city, extra=extra)
    files: dict[str, bytes] = {}
    step(0.0, "writing centers")
    files[CENTERS_GEOJSON] = geojson_bytes(
        audited_centers,
        ["center_id"],
        optional=[*CENTER_COLUMNS[1:], "population_nearest"],
        what="centers",
    )
    files[CENTERS_CSV] = csv_bytes(centers_table(audited_centers))
    step(0.1, "writing service areas")
    files[SERVICE_AREAS_GEOJSON] = geojson_bytes(
        audit.service_areas, SERVICE_AREA_COLUMNS, what="service_areas"
    )
    step(0.3, "writing demand")
    demand, demand_cols = _demand_frame(audit, siting)
    files[DEMAND_GEOJSON] = geojson_bytes(
        demand, demand_cols, optional=DEMAND_EXTRA_COLUMNS, what="demand"
    )
    step(0.5, "writing uncovered areas")
    files[UNCOVERED_GEOJSON] = geojson_bytes(audit.uncovered, UNCOVERED_COLUMNS, what="uncovered")
    files[COVERAGE_BY_LEVEL_CSV] = csv_bytes(pd.DataFrame(audit.coverage_by_level))
    if siting is not None:
        files[PROPOSED_SITES_GEOJSON] = geojson_bytes(
            siting.sites, SITE_COLUMNS, optional=SITE_EXTRA_COLUMNS, what="proposed_sites"
        )
        files[COVERAGE_CURVE_CSV] = csv_bytes(pd.DataFrame(siting.curve))
    files[SUMMARY_JSON] = (
        json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    ).encode("utf-8")
    files[SUMMARY_CSV] = summary_csv_bytes(audit, scenario=_scenario_name(extra))
    if report:
        step(0.6, "writing report")
        files[REPORT_HTML] = _report(title, doc, audit, siting, centers_now, lang).encode("utf-8")
    step(1.0, "files ready")
    return files


def _report(
    title: str,
    doc: Mapping[str, Any],
    audit: Any,
    siting: Any,
    centers: gpd.GeoDataFrame,
    lang: str,
) -> str:
    layers = MapLayers(
        centers=audit.centers if len(audit.centers) == len(centers) else centers,
        service_areas=audit.service_areas if len(audit.service_areas) else None,
        demand=audit.demand,
        uncovered=audit.uncovered if len(audit.uncovered) else None,
        sites=siting.sites if siting is not None and len(siting.sites) else None,
    )
    m = coverage_map(layers, lang=lang, thresholds_min=tuple(audit.params.thresholds_min))
    tables: dict[str, pd.DataFrame] = {
        "report.table.centers": centers_table(
            audit.centers if len(audit.centers) == len(centers) else centers
        ),
    }
    if siting is not None:
        tables["report.table.sites"] = pd.DataFrame(
            siting.sites.drop(columns="geometry")[
                [c for c in (*SITE_COLUMNS, "candidate_id") if c in siting.sites.columns]
            ]
        )
    return report_html(
        title=title,
        summary=doc,
        map=m,
        tables=tables,
        lang=lang,
        curve=pd.DataFrame(siting.curve) if siting is not None else None,
    )


# --- atomic folder swap ------------------------------------------------------------------

#: Our marker file: a folder is taken for our own output only when it holds this file.
MARKER = ".coverage-planner.json"
#: Value of the marker's ``tool`` field.
TOOL_NAME = "coverage-planner"
#: Prefix of every temporary or superseded file and folder we create beside a target;
#: short and fixed, so a temporary name fits wherever the target's name fits.
TEMP_PREFIX = ".coverage-planner-"
#: Longest file name in bytes assumed where the file system cannot be asked.
NAME_MAX_BYTES = 255


class OutputInPlaceInterrupt(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) arrived after the new output was committed: it is complete in ``path``."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def marker_bytes(kind: str, files: Sequence[str] = ()) -> bytes:
    """Return the content of :data:`MARKER`: tool, schema version, kind, a fresh run id, file names.

    Parameters
    ----------
    kind
        ``"output"`` for one audit or siting folder, ``"batch"`` for a batch's ``OUT``.
    files
        The files the run wrote (a later run may replace exactly these).

    Returns
    -------
    bytes
        UTF-8 JSON.
    """
    doc = {
        "tool": TOOL_NAME,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run_id": uuid.uuid4().hex,
        "files": sorted(files),
    }
    return json_bytes(doc)


def read_marker(folder: Path) -> dict[str, Any] | None:
    """Return the marker of ``folder`` when it is ours (see :data:`MARKER`), else ``None``."""
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("tool") != TOOL_NAME:
        return None
    return doc


def _check_name_length(p: Path) -> None:
    """Refuse a path component longer than the file system allows (``ENAMETOOLONG``)."""
    for part in p.parts:
        if len(os.fsencode(part)) > NAME_MAX_BYTES:
            shown = part[:40] + "…"
            msg = f"Output folder name {shown!r} is {len(os.fsencode(part))} bytes long; file names may have at most {NAME_MAX_BYTES} bytes. Choose a shorter name with --out."
            raise InputError(msg)


def _refuse_foreign(p: Path, what: str) -> NoReturn:
    entries = sorted(e.name for e in p.iterdir())
    shown = ", ".join(strip_controls(e)[:40] for e in entries[:5])
    more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
    msg = f"Output folder {strip_controls(str(p))!r} is not empty ({shown}{more}) and holds no {what} (no {MARKER} file); refusing to replace it. Choose a new or empty folder with --out; an output of an older version without that file must be deleted first."
    raise InputError(msg)


def check_output_dir(out: Path | str, *, kind: str = "output") -> Path:
    """Check that ``out`` may receive our output; return it as an absolute path.

    ``out`` may be missing, an empty folder, or a folder holding our own
    earlier output: it has our :data:`MARKER` of the same ``kind``, and (for
    ``kind="output"``) nothing but the files that marker lists. Anything else is
    refused, so a user's file is never replaced. A symbolic link is followed: the
    output goes into the folder it points at and the link stays.

    Raises
    ------
    InputError
        ``out`` is a file, a name too long for the file system, or a non-empty
        folder that is not our own output.
    """
    p = Path(out).expanduser().absolute()
    _check_name_length(p)
    if p.is_symlink():
        p = Path(os.path.realpath(p))
        _check_name_length(p)
    try:
        exists = p.exists()
        if exists and not p.is_dir():
            msg = f"Output path {strip_controls(str(p))!r} exists and is not a folder; choose a folder name with --out."
            raise InputError(msg)
        if not exists or not any(p.iterdir()):
            return p
        marker = read_marker(p)
        what = "earlier Coverage Planner output" if kind == "output" else "earlier batch output"
        if marker is None or marker.get("kind", "output") != kind:
            _refuse_foreign(p, what)
        if kind == "output":
            listed = {str(f) for f in marker.get("files", [])} | {MARKER}
            extra = sorted(e.name for e in p.iterdir() if e.name not in listed)
            if extra:
                shown = ", ".join(strip_controls(e)[:40] for e in extra[:5])
                msg = f"Output folder {strip_controls(str(p))!r} holds files Coverage Planner did not write ({shown}); refusing to replace them. Move them away or choose another folder with --out."
                raise InputError(msg)
    except OSError as exc:
        msg = f"Cannot use the output folder {strip_controls(str(p))[:200]!r}: {exc.strerror or exc}. Check the path and its permissions."
        raise InputError(msg) from exc
    return p


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic step; ``False`` where unsupported.

    Linux ``renameat2(RENAME_EXCHANGE)`` (kernel 3.15+, glibc 2.28+): readers see the
    old folder or the new one, never no folder at all. Elsewhere, or on a file system
    without it, the caller falls back to two renames.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, so a swap and its bookkeeping happen together."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no masking; the window stays tiny
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@dataclass
class _Swap:
    """Paths of one folder swap: what to remove afterwards, and whether it was committed."""

    tmp: Path | None = None
    old: Path | None = None
    committed: bool = False


def _fill(tmp: Path, files: Mapping[str, bytes | str]) -> None:
    for name, data in files.items():
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with (tmp / name).open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; outputs are meant to be shared
    _fsync_dir(tmp)


def _swap_in(target: Path, state: _Swap) -> None:
    """Put ``state.tmp`` at ``target``; on return ``state.old`` holds what was there."""
    tmp = state.tmp
    assert tmp is not None
    with _signals_deferred():
        if target.is_dir() and _exchange(tmp, target):
            state.old, state.tmp, state.committed = tmp, None, True
            return
        if target.exists():
            old = target.parent / f"{TEMP_PREFIX}old-{uuid.uuid4().hex[:12]}"
            target.rename(old)  # a fresh random name (renaming onto a folder fails on Windows)
            state.old = old
        try:
            tmp.rename(target)
        except BaseException:
            if state.old is not None and not target.exists():
                state.old.rename(target)
                state.old = None
            raise
        state.tmp, state.committed = None, True


def _cleanup(state: _Swap) -> None:
    for p in (state.tmp, state.old):
        if p is not None:
            shutil.rmtree(p, ignore_errors=True)
    state.tmp = state.old = None


def write_outputs(out: Path | str, files: Mapping[str, bytes | str]) -> Path:
    """Write ``files`` into the folder ``out`` all-or-nothing, with our :data:`MARKER`.

    The files go to a temporary sibling folder (same file system, named
    :data:`TEMP_PREFIX` ``tmp-…``), are flushed to disk, then swapped with the
    old ``out`` in one atomic step (Linux ``renameat2``; elsewhere the old
    folder is moved aside and the new one renamed in) and the old one removed.
    On any error, including ``KeyboardInterrupt`` before the swap, the
    temporary folder is removed and ``out`` keeps its previous content; an
    interrupt after the swap raises :class:`OutputInPlaceInterrupt`.

    Parameters
    ----------
    out
        Output folder (see :func:`check_output_dir`); its parent is created if needed.
    files
        File name → content; names must be plain file names.

    Returns
    -------
    pathlib.Path
        The absolute output folder (a symbolic link's target).

    Raises
    ------
    InputError
        ``out`` cannot be used (see :func:`check_output_dir`), a file name is
        not a plain name, or the folder cannot be written.
    """
    target = check_output_dir(out)
    for name in files:
        if safe_filename(name) != name or name in {".", "..", MARKER}:
            msg = f"Output file name {name!r} is not a plain file name; use `safe_filename` to build it."
            raise InputError(msg)
    payload = {**files, MARKER: marker_bytes("output", list(files))}
    state = _Swap()
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            state.tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{TEMP_PREFIX}tmp-"))
            _fill(state.tmp, payload)
            _swap_in(target, state)
            _fsync_dir(target.parent)
        finally:
            _cleanup(state)
    except KeyboardInterrupt as exc:
        if state.committed:
            raise OutputInPlaceInterrupt(target) from exc
        raise
    except OSError as exc:
        msg = f"Cannot write the output folder {strip_controls(str(target))[:200]!r}: {exc.strerror or exc}. Check the path and its permissions."
        raise InputError(msg) from exc
    logger.info("wrote %d files to %s", len(files), target)
    return target
