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
import datetime as dt
import errno
import hashlib
import io
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
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyproj
import shapely
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from coverage import i18n
from coverage.audit import METERS_TO_NEAREST, AuditParams
from coverage.capacity import (
    HAS_FLOOR_AREA,
    HOUSEHOLDS,
    HOUSEHOLDS_NEAREST,
    HOUSEHOLDS_WITHIN,
    M2_2SFCA,
    M2_E2SFCA,
    M2_PER_100_HOUSEHOLDS,
    MEETS_STANDARD,
    REQUIRED_M2,
    SUPPLY_M2_PER_100,
    CapacityParams,
    compliance_params,
)
from coverage.centers import FLOOR_AREA_M2
from coverage.errors import InputError
from coverage.figure import (
    FigureLayers,
    FigureSpec,
    figure_key,
    figure_layers,
    map_figure,
    map_pdf_bytes,
    map_png_bytes,
    pdf_with_creation_date,
    source_label,
    stations_source,
)
from coverage.fileio import json_bytes, jsonable, strip_controls
from coverage.groups import GROUP_PREFIX, groups_block
from coverage.inputs import CityData
from coverage.maps import MapLayers, coverage_map
from coverage.names import (
    METERS_UNIT,
    MINUTES_UNIT,
    Unit,
    covered_column,
    share_column,
    threshold_key,
)
from coverage.optimize import CAPACITATED_GUARANTEE
from coverage.outcache import PieceStore, column_digest, piece_key
from coverage.progress import ProgressFn
from coverage.report import report_html, report_pdf_bytes
from coverage.scenario import ScenarioResult
from coverage.standards import NO_CAPACITY_NOTE
from coverage.tables import compare_labels, district_labels, site_labels, sites_frame

logger = logging.getLogger(__name__)

#: Version of the output contract; bump it whenever a file or field name changes. Version 2
#: (issues 14–15 and their follow-ups) adds keys and files only; docs/ARCHITECTURE.md lists them.
SCHEMA_VERSION = 2
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
STANDARD_CSV = "standard.csv"
COMPLIANCE_CSV = "compliance.csv"
#: Coverage per census area, and compliance per census area × level (with a census).
CENSUS_AREAS_CSV = "census_areas.csv"
CENSUS_COMPLIANCE_CSV = "census_compliance.csv"
REPORT_HTML = "report.html"
TABLES_XLSX = "tables.xlsx"
MAP_PNG = "map.png"
MAP_PDF = "map.pdf"
REPORT_PDF = "report.pdf"
GROUPS_CSV = "groups.csv"

#: Contract columns of each GeoJSON layer (``covered_<t>`` columns are added per threshold).
CENTER_COLUMNS = ("center_id", "name", "source", "level", "snap_distance_m")
SERVICE_AREA_COLUMNS = ("center_id", "minutes")
DEMAND_COLUMNS = ("demand_id", "population", "minutes_to_nearest", "nearest_center_id")
DEMAND_EXTRA_COLUMNS = ("kind", "name")
UNCOVERED_COLUMNS = ("minutes", "population", "area_m2")
SITE_COLUMNS = ("rank", "marginal_population", "cumulative_population", "cumulative_share")
SITE_EXTRA_COLUMNS = (
    "candidate_id",
    "snap_distance_m",
    "action",
    "added_floor_area_m2",
    "enlarged_center_id",
)
MINUTES_AFTER = "minutes_after"
#: Prefix of the per-level judgement columns of a standard (``covered_level_<level>``).
LEVEL_COVERED_PREFIX = "covered_level_"
#: Capacity columns (issue 15), written when the scenario ran the capacity audit.
CAPACITY_DEMAND_COLUMNS = (HOUSEHOLDS, M2_PER_100_HOUSEHOLDS, M2_2SFCA, M2_E2SFCA, MEETS_STANDARD)
CAPACITY_CENTER_COLUMNS = (
    FLOOR_AREA_M2,
    HAS_FLOOR_AREA,
    HOUSEHOLDS_NEAREST,
    HOUSEHOLDS_WITHIN,
    SUPPLY_M2_PER_100,
    REQUIRED_M2,
)
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
    # parts as the query side: GEOS prepares the query geometry, so each large part is
    # prepared once (points `within` an unprepared part cost O(coordinates) each: 8 s at 100k)
    owner_part, hole = shapely.STRtree(shapely.get_point(free, 0)).query(
        parts, predicate="contains"
    )
    out = []
    for k, part in enumerate(parts):
        extra = list(free[np.sort(hole[owner_part == k])]) if hole.size else []
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
    return _layer_bytes(gdf, _layer_props(gdf, columns, optional, what), what)


def _layer_props(
    gdf: gpd.GeoDataFrame, columns: Sequence[str] | None, optional: Sequence[str], what: str
) -> list[str]:
    """Return the properties :func:`geojson_bytes` writes, in order (a missing contract column raises)."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{what}` must be a GeoDataFrame; got {type(gdf).__name__}."
        raise InputError(msg)
    geom_name = gdf.geometry.name
    if columns is None:
        return [c for c in gdf.columns if c != geom_name]
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        msg = f"`{what}` lacks the contract column(s) {missing}; build it with the coverage library (see docs/ARCHITECTURE.md)."
        raise InputError(msg)
    return list(columns) + [c for c in optional if c in gdf.columns and c not in columns]


#: Features formatted and encoded at a time: the text of a whole city's layer is never held
#: as one ``str`` (2-4 bytes per character once a name is Chinese) next to its UTF-8 copy.
GEOJSON_CHUNK_ROWS = 65_536


def _layer_bytes(gdf: gpd.GeoDataFrame, props: Sequence[str], what: str) -> bytes:
    """Return the FeatureCollection of ``props`` and the geometry of ``gdf`` (see :func:`geojson_bytes`).

    Built :data:`GEOJSON_CHUNK_ROWS` features at a time, each chunk encoded at once,
    so the peak memory is about twice the file instead of about five times.
    """
    wgs = _to_wgs84(gdf, what)
    # one %-template per feature: the keys are written once, the values formatted in C
    keys = ", ".join(_encode_text(str(c)).replace("%", "%%") + ": %s" for c in props)
    template = '{"type":"Feature","properties":{' + keys + '},"geometry":%s}'
    chunks = [b'{"type":"FeatureCollection","features":[\n']
    for start in range(0, len(wgs), GEOJSON_CHUNK_ROWS):
        part = wgs.iloc[start : start + GEOJSON_CHUNK_ROWS]
        columns_json = [_column_json(part[c]) for c in props]
        geoms = _geometry_json(part.geometry.values)
        text = ",\n".join(template % row for row in zip(*columns_json, geoms, strict=True))
        chunks.append((",\n" + text if start else text).encode("utf-8"))
    chunks.append(b"\n]}\n")
    return b"".join(chunks)


def _value_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return _encode_text(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _column_json(series: pd.Series) -> list[str]:
    """Each row's value as ``json.dumps`` writes it, a column at a time.

    The values are those of :func:`_column_values`; booleans, floats and integers
    take array paths (``float.__repr__`` is what ``json`` writes for a finite float,
    ``int.__repr__`` for an integer).
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return list(np.where(series.to_numpy(dtype=bool), "true", "false").tolist())
    if pd.api.types.is_float_dtype(dtype):
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        out = list(map(float.__repr__, arr.tolist()))
        for k in np.flatnonzero(~np.isfinite(arr)).tolist():
            out[k] = "null"
        return out
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":  # numpy integers: never missing
        return list(map(int.__repr__, series.to_numpy().tolist()))
    return [_value_json(v) for v in _column_values(series)]


def _layer_key(store: PieceStore, gdf: gpd.GeoDataFrame, props: Sequence[str]) -> str | None:
    """Cache key of a layer: the frame's written columns, its geometry and CRS (and, in every key, the code)."""
    if store.folder is None:
        return None
    frame = store.digests.frame(gdf, props)
    if frame is None:
        return None
    return piece_key("geojson", {"frame": frame, "decimals": COORD_DECIMALS})


def _layer_file(
    store: PieceStore,
    name: str,
    gdf: gpd.GeoDataFrame,
    columns: Sequence[str],
    *,
    optional: Sequence[str] = (),
    what: str,
) -> bytes:
    """:func:`geojson_bytes`, from the output cache when the same layer was written before."""
    key = _layer_key(store, gdf, _layer_props(gdf, columns, optional, what))
    data = store.read(name, key)
    if data is None:
        data = geojson_bytes(gdf, columns, optional=optional, what=what)
        store.write(name, key, data)
    return data


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
        ``snap_distance_m``, ``population_nearest``, ``population_within_<t>``;
        the capacity columns (``floor_area_m2``, ``households_nearest``...) when present.
    """
    wgs = _to_wgs84(centers, "centers")
    cols = [c for c in CENTER_COLUMNS if c in wgs.columns]
    cols += [
        c for c in wgs.columns if c == "population_nearest" or c.startswith("population_within_")
    ]
    cols += [c for c in CAPACITY_CENTER_COLUMNS if c in wgs.columns]
    df = pd.DataFrame(wgs[cols]).reset_index(drop=True)
    pts = shapely.point_on_surface(np.asarray(wgs.geometry.values, dtype=object))
    df[LON] = np.round(shapely.get_x(pts), COORD_DECIMALS)
    df[LAT] = np.round(shapely.get_y(pts), COORD_DECIMALS)
    head = [c for c in (*CENTER_COLUMNS[:4], LON, LAT) if c in df.columns]
    return df[head + [c for c in df.columns if c not in head]]


# --- the workbook ---------------------------------------------------------------------

#: Excel number format of shares (0–1): a percentage with one decimal.
PERCENT_FORMAT = "0.0%"
#: Excel number format of whole residents and counts.
INTEGER_FORMAT = "#,##0"
#: Excel number format of coordinates.
COORD_FORMAT = "0.000000"
#: Columns written as whole numbers (residents, counts); shares are the ``share*`` columns.
_WHOLE = re.compile(
    r"^(population|units|centers|sites_proposed|stations_|rank|marginal_population|cumulative_population|uncovered_population)"
)
_SHARE = re.compile(r"(^|_)share(_|$)")


@dataclass(frozen=True)
class Sheet:
    """One sheet of ``tables.xlsx``: a table with plain column ids and their labels."""

    title: str
    frame: pd.DataFrame
    labels: Mapping[str, str]


def _cell_format(column: str) -> str | None:
    if _SHARE.search(column):
        return PERCENT_FORMAT
    if _WHOLE.match(column):
        return INTEGER_FORMAT
    if column in (LON, LAT):
        return COORD_FORMAT
    return None


def _excel_value(value: Any, number_format: str | None) -> Any:
    value = jsonable(value)
    if isinstance(value, str):
        return safe_cell(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if (
        number_format == INTEGER_FORMAT
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        return round(value)
    return value


def _write_sheet(wb: Any, sheet: Sheet) -> None:
    ws = wb.create_sheet(safe_cell(sheet.title)[:31])
    columns = [str(c) for c in sheet.frame.columns]
    ws.append([safe_cell(str(sheet.labels.get(c, c))) for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    formats = [_cell_format(c) for c in columns]
    for row in sheet.frame.itertuples(index=False, name=None):
        ws.append([_excel_value(v, f) for v, f in zip(row, formats, strict=True)])
    for j, (column, fmt) in enumerate(zip(columns, formats, strict=True), start=1):
        letter = get_column_letter(j)
        if fmt is not None:
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = fmt
        width = max(
            [len(str(sheet.labels.get(column, column)))]
            + [len(str(v)) for v in sheet.frame[column].head(200)]
        )
        ws.column_dimensions[letter].width = min(max(width * 1.3 + 2, 10), 60)
    ws.freeze_panes = "A2"


def workbook_sheets(
    result: ScenarioResult,
    *,
    lang: str = "zh",
    comparison: pd.DataFrame | None = None,
) -> list[Sheet]:
    """Return the sheets of ``tables.xlsx`` for a result, with headers in `lang`.

    Parameters
    ----------
    result
        The scenario result.
    lang
        ``"zh"`` (Chinese headers) or ``"en"``.
    comparison
        :func:`coverage.tables.compare_scenarios` of several scenarios (the app's), when there is one.

    Returns
    -------
    list of Sheet
        Coverage per threshold (``threshold_min``, ``population_covered``,
        ``population``, ``share``, ``units_covered``); per level when the audit
        has levels; per area when the run has districts; proposed sites
        (:func:`coverage.tables.sites_frame` plus ``cumulative_population``);
        the scenario comparison when given.
    """
    audit, siting = result.audit, result.siting
    thresholds = tuple(float(x) for x in audit.params.thresholds_min)
    base = {
        "threshold_min": i18n.t("xlsx.col.threshold", lang),
        "population_covered": i18n.t("xlsx.col.population_covered", lang),
        "population": i18n.t("table.population", lang),
        "share": i18n.t("xlsx.col.share", lang),
        "units_covered": i18n.t("xlsx.col.units_covered", lang),
        "level": i18n.t("map.field.level", lang),
        "centers": i18n.t("table.centers", lang),
        "minutes": i18n.t("xlsx.col.threshold", lang),
    }
    coverage = pd.DataFrame(
        [
            {
                "threshold_min": float(key) if key.replace(".", "", 1).isdigit() else key,
                "population_covered": float(stats.population_covered),
                "population": float(audit.population_total),
                "share": float(stats.share),
                "units_covered": int(stats.units_covered),
            }
            for key, stats in audit.coverage.items()
        ]
    )
    sheets = [Sheet(i18n.t("xlsx.sheet.coverage", lang), coverage, base)]
    by_level = getattr(audit, "coverage_by_level", None)
    if by_level is not None and len(by_level):
        labels = {**base, **district_labels(thresholds, lang)}
        sheets.append(Sheet(i18n.t("xlsx.sheet.levels", lang), pd.DataFrame(by_level), labels))
    if result.districts is not None and len(result.districts):
        sheets.append(
            Sheet(
                i18n.t("xlsx.sheet.areas", lang),
                pd.DataFrame(result.districts),
                district_labels(thresholds, lang),
            )
        )
    census_areas = getattr(result, "census_areas", None)
    if census_areas is not None and len(census_areas):
        sheets.append(_census_sheet(census_areas, audit.params, lang))
    if siting is not None:
        sites = sites_frame(siting.sites)
        sites["cumulative_population"] = siting.sites["cumulative_population"].to_numpy()
        labels = {
            **site_labels(lang),
            "cumulative_population": i18n.t("map.field.cumulative_population", lang),
        }
        sheets.append(Sheet(i18n.t("xlsx.sheet.sites", lang), sites, labels))
    if comparison is not None and len(comparison):
        frame = comparison.reset_index() if comparison.index.name else comparison
        sheets.append(
            Sheet(i18n.t("xlsx.sheet.scenarios", lang), frame, compare_labels(thresholds, lang))
        )
    return sheets


def _census_sheet(table: pd.DataFrame, params: Any, lang: str) -> Sheet:
    """Return the ``tables.xlsx`` sheet of coverage per census area (``census_areas.csv``), headed in `lang`."""
    labels = {
        "census_area": i18n.t("xlsx.col.census_area", lang),
        "area": i18n.t("xlsx.col.census_name", lang),
        "method": i18n.t("xlsx.col.census_method", lang),
        "population": i18n.t("xlsx.col.census_population", lang),
        "placed": i18n.t("xlsx.col.census_placed", lang),
        "units": i18n.t("table.units", lang),
        "residents": i18n.t("xlsx.col.census_placed", lang),
        "households": i18n.t("xlsx.col.households", lang),
        "floor_area_reachable_m2": i18n.t("xlsx.col.floor_reachable", lang),
        "floor_area_required_m2": i18n.t("xlsx.col.floor_required", lang),
        "deficit_m2": i18n.t("xlsx.col.floor_deficit", lang),
    }
    for minutes in params.thresholds_min:
        key = threshold_key(minutes)
        labels[f"share_{key}"] = i18n.t("table.share", lang, minutes=float(minutes))
        labels[f"population_covered_{key}"] = i18n.t("table.covered", lang, minutes=float(minutes))
    for meters in getattr(params, "thresholds_m", ()):
        key = threshold_key(meters, METERS_UNIT)
        labels[f"share_{key}"] = i18n.t("table.share_m", lang, meters=float(meters))
        labels[f"population_covered_{key}"] = i18n.t("table.covered_m", lang, meters=float(meters))
    # `residents` is `placed` summed over the units: one column of it is enough for a reader
    frame = pd.DataFrame(table).drop(columns=["residents"], errors="ignore")
    if not frame["floor_area_reachable_m2"].notna().any():
        frame = frame.drop(
            columns=["floor_area_reachable_m2", "floor_area_required_m2", "deficit_m2"]
        )
    return Sheet(i18n.t("xlsx.sheet.census_areas", lang), frame, labels)


def comparison_workbook_bytes(
    comparison: pd.DataFrame, thresholds_min: Sequence[float], *, lang: str = "zh"
) -> bytes:
    """Return a workbook with the one sheet of a scenario comparison (the app's download).

    Parameters
    ----------
    comparison
        :func:`coverage.tables.compare_scenarios`'s table (index ``scenario``).
    thresholds_min
        Every threshold in the compared scenarios (for the column labels).
    lang
        ``"zh"`` or ``"en"``.

    Returns
    -------
    bytes
        The ``.xlsx`` workbook (see :func:`workbook_bytes`).
    """
    sheet = Sheet(
        i18n.t("xlsx.sheet.scenarios", lang),
        comparison.reset_index() if comparison.index.name else comparison,
        compare_labels(tuple(float(m) for m in thresholds_min), lang),
    )
    return workbook_bytes([sheet])


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    """Return the sheets as one ``.xlsx`` workbook.

    Headers are the sheets' labels (bold, wrapped); shares get the Excel format
    :data:`PERCENT_FORMAT` (``12.3%``), residents and counts are whole numbers
    (:data:`INTEGER_FORMAT`), and every text cell goes through :func:`safe_cell`
    so a name such as ``=HYPERLINK(...)`` stays text.

    Returns
    -------
    bytes
        The workbook (openpyxl), one sheet per :class:`Sheet`, in order.
    """
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet in sheets:
        _write_sheet(wb, sheet)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


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
    if getattr(siting, "bound_kind", ""):
        block["bound_kind"] = str(siting.bound_kind)
    if params is not None and bool(getattr(params, "capacitated", False)):
        block["new_site_m2"] = [float(a) for a in params.new_site_m2]
        block["enlarge_m2"] = params.enlarge_m2
        block["objective"] = "residents within the threshold and served within floor area"
        block["households"] = str(getattr(siting, "households_basis", "") or "household_size")
        block["guarantee"] = CAPACITATED_GUARANTEE
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
    thresholds_m: Sequence[float] = (),
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
    thresholds_m
        The audit's distance thresholds (``covered_<d>m`` columns).

    Returns
    -------
    pandas.DataFrame
        ``district``, ``units``, ``population``, ``population_covered_<t>``, ``share_<t>``
        (then ``population_covered_<d>m``, ``share_<d>m`` per distance).
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
    limits: list[tuple[float, Unit]] = [(float(t), MINUTES_UNIT) for t in thresholds_min]
    limits += [(float(d), METERS_UNIT) for d in thresholds_m]
    for t, unit in limits:
        col = covered_column(t, unit)
        pts[col] = demand[col].to_numpy(dtype=bool)
    joined = gpd.sjoin(pts, dist, how="inner", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    rows: list[dict[str, Any]] = []
    for name in dist[name_column]:
        g = joined[joined[name_column] == name]
        pop = float(g["population"].sum())
        row: dict[str, Any] = {"district": name, "units": len(g), "population": pop}
        for t, unit in limits:
            key = threshold_key(t, unit)
            covered = float(g.loc[g[covered_column(t, unit)], "population"].sum())
            row[f"population_covered_{key}"] = covered
            row[share_column(t, unit)] = covered / pop if pop > 0 else None
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
        ``centers``, ``centers_source``, ``coverage``, ``coverage_by_level`` and, when present,
        ``districts``, ``census``, ``siting``, ``capacity``, ``groups`` and ``closed_centers``.
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
        # issue 14: where the stations come from (kind, file, attribution)
        "centers_source": jsonable(dict(city.centers_source)) or None,
        "coverage": _coverage_block(audit),
        "coverage_by_level": _records(getattr(audit, "coverage_by_level", None)),
    }
    if districts is not None:
        doc["districts"] = _records(districts)
    if city.census is not None:  # issue 14: census areas placed / unplaced
        doc["census"] = census_block(city.census, result, params)
    doc["params"]["thresholds_m"] = [float(d) for d in getattr(params, "thresholds_m", ())]
    standard = getattr(params, "standard", None)
    if standard is not None:
        doc["standard"] = standard_block(audit)
    compliance = getattr(result, "compliance", None)
    if compliance is not None:
        doc["compliance"] = {"areas": "districts", **compliance_block(compliance, result)}
    if siting is not None:
        doc["siting"] = siting_block(siting)
    capacity = getattr(result, "capacity", None)
    if capacity is not None:
        doc["capacity"] = jsonable(capacity.summary())
    groups = getattr(result, "groups", None)
    if groups is not None and len(groups):
        doc["groups"] = groups_block(groups)
    if extra:
        doc.update({str(k): jsonable(v) for k, v in extra.items()})
    return doc


def standard_block(audit: Any) -> dict[str, Any]:
    """Return the ``standard`` section of ``summary.json``: the standard and each judged level.

    ``name``, ``title``, ``source``, ``notes``, ``levels``: per judged level
    its circle, thresholds (``threshold_min``, ``threshold_m``), source, centers
    and the residents within it (by that level's centers only), and
    ``levels_not_judged``: levels of the centers the standard does not judge.
    """
    standard = audit.params.standard
    judged = {level for level, _ in standard.judged()}
    present = (
        audit.centers["level"] if "level" in audit.centers.columns else pd.Series([], dtype=object)
    )
    return {
        "name": standard.key,
        "title": standard.title,
        "source": standard.source,
        "notes": standard.notes,
        "levels": _records(getattr(audit, "standard_table", None)),
        # center levels in force that the standard does not judge (e.g. grid under gb50180)
        "levels_not_judged": sorted({str(v) for v in present.dropna()} - judged),
    }


#: Columns of the census area table copied into ``census.by_area`` rows (besides ``coverage``).
_CENSUS_AREA_FIELDS = (
    "units",
    "residents",
    "households_placed",
    "floor_area_reachable_m2",
    "floor_area_required_m2",
    "deficit_m2",
)


def census_block(census: Mapping[str, Any], result: Any, params: Any) -> dict[str, Any]:
    """Return the ``census`` section: the census report, each area's coverage, and its compliance.

    Every ``by_area`` row gains ``units``, ``residents`` (placed), ``households_placed``
    (households of its units: the census's when given, else residents / household size),
    ``coverage`` (per threshold key ``population_covered`` and ``share``) and, when the
    capacity audit ran, ``floor_area_reachable_m2``, ``floor_area_required_m2``,
    ``deficit_m2``. With a standard, ``compliance`` is as the top-level ``compliance``
    section, with ``areas: "census"`` and rows keyed by ``census_area`` (the area's number).
    """
    doc = jsonable(dict(census))
    table = getattr(result, "census_areas", None)
    if table is not None and len(table) == len(doc.get("by_area") or ()):
        keys = [c[len("share_") :] for c in table.columns if str(c).startswith("share_")]
        capacity = bool(table["floor_area_reachable_m2"].notna().any())
        plain = table.rename(columns={"households": "households_placed"})
        for row, rec in zip(doc["by_area"], _records(plain), strict=True):
            for name in _CENSUS_AREA_FIELDS:
                if capacity or not name.startswith(("floor_", "deficit")):
                    row[name] = rec.get(name)
            row["coverage"] = {
                k: {
                    "population_covered": rec.get(f"population_covered_{k}"),
                    "share": rec.get(f"share_{k}"),
                }
                for k in keys
            }
    rows = getattr(result, "census_compliance", None)
    if rows is not None:
        doc["compliance"] = {"areas": "census", **compliance_block(rows, result)}
    return dict(doc)


def compliance_block(compliance: pd.DataFrame, result: ScenarioResult) -> dict[str, Any]:
    """Return a ``compliance`` section of ``summary.json``: parameters, a note, one row per area × level.

    The parameters are those the rows were computed with
    (:func:`coverage.capacity.compliance_params`: the capacity audit's household size
    and floor-area standard when it ran).
    """
    capacity = result.capacity
    return compliance_section(
        compliance, result.audit.params, None if capacity is None else capacity.params
    )


def compliance_section(
    compliance: pd.DataFrame, params: AuditParams, capacity: CapacityParams | None
) -> dict[str, Any]:
    """Return a ``compliance`` section from the audit's and the capacity audit's parameters.

    ``household_size``, ``target_share``, ``m2_per_100_households``, ``rows`` and,
    when no row has floor-area figures, ``note``. :func:`compliance_block` (a
    scenario's) and the batch's top-level summary both build theirs here.
    """
    cparams = compliance_params(params, capacity)
    from_capacity = (
        bool(compliance["floor_area_reachable_m2"].notna().any()) if len(compliance) else False
    )
    block: dict[str, Any] = {
        "household_size": float(cparams.household_size),
        "target_share": None if cparams.target_share is None else float(cparams.target_share),
        "m2_per_100_households": float(cparams.m2_per_100_households),
        "rows": _records(compliance),
    }
    if not from_capacity:
        block["note"] = NO_CAPACITY_NOTE
    return block


def summary_csv_bytes(audit: Any, *, scenario: str = "", lang: str | None = None) -> bytes:
    """Return ``summary.csv``: the ``coverage`` block of ``summary.json`` as one row per threshold.

    Parameters
    ----------
    audit
        The audit result.
    scenario
        Name written in the ``scenario`` column (empty when the run has no scenario).
    lang
        None (the output contract): the column names below and full-precision numbers.
        ``"zh"`` or ``"en"`` (the app's download, for a planner): the same columns in the
        same order, headed by their labels in that language (:mod:`coverage.i18n`
        ``table.summary.*``), residents rounded to whole people and the share in percent
        with one decimal.

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
    df = pd.DataFrame(rows)
    if lang is not None and len(df):
        for col in ("population_covered", "population_total"):
            df[col] = df[col].astype(float).round(0).astype("int64")
        df["share"] = (df["share"].astype(float) * 100).round(1)
        df = df.rename(columns={c: i18n.t(f"table.summary.{c}", lang) for c in df.columns})
    return csv_bytes(df)


def _scenario_name(extra: Mapping[str, Any] | None) -> str:
    """Return ``extra["scenario"]["name"]`` (as the app and :func:`summary` pass it), else ``""``."""
    scenario = (extra or {}).get("scenario")
    return str(scenario.get("name") or "") if isinstance(scenario, Mapping) else ""


# --- all files --------------------------------------------------------------------------


def _demand_frame(
    audit: Any, siting: Any, capacity: Any = None
) -> tuple[gpd.GeoDataFrame, list[str]]:
    demand = audit.demand if capacity is None else capacity.demand
    cols = list(DEMAND_COLUMNS) + [covered_column(t) for t in audit.params.thresholds_min]
    # issue 15: distances and the per-level judgement of a standard (additive)
    if METERS_TO_NEAREST in demand.columns:
        cols.append(METERS_TO_NEAREST)
    cols += [covered_column(d, METERS_UNIT) for d in getattr(audit.params, "thresholds_m", ())]
    cols += [c for c in demand.columns if str(c).startswith(LEVEL_COVERED_PREFIX)]
    if capacity is not None:
        cols += list(CAPACITY_DEMAND_COLUMNS)
    elif HOUSEHOLDS in demand.columns:  # a census's households, without the capacity audit
        cols.append(HOUSEHOLDS)
    cols += [c for c in demand.columns if str(c).startswith(GROUP_PREFIX)]
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


@dataclass(frozen=True, eq=False)
class Documents:
    """Which documents an output holds besides the data files.

    Parameters
    ----------
    workbook
        Write ``tables.xlsx`` (:func:`workbook_bytes`).
    figure
        Size of ``map.png`` / ``map.pdf`` (:mod:`coverage.figure`); ``None``: no figure.
    pdf
        Print ``report.pdf`` with headless Chromium (the CLI's ``--pdf``). Without
        Chromium a warning says so, the run still succeeds and ``summary.json`` notes it
        under ``documents``.
    comparison
        The scenario comparison (:func:`coverage.tables.compare_scenarios`) for the
        workbook, when several scenarios were run (the app).
    stations_source
        Where the stations come from, for the figure and the report (default: from
        the centers' ``source``).
    cache_dir
        Keep the finished GeoJSON layers, ``map.png``, ``map.pdf`` and ``report.html`` in
        this folder and reuse them when the same files are asked for again (:mod:`coverage.outcache`:
        keyed by content, so a changed input never reuses a stale file); ``None``:
        build every file (the default; :func:`coverage.pipeline.write` passes the
        city's cache folder).
    """

    workbook: bool = True
    figure: FigureSpec | None = field(default_factory=FigureSpec)
    pdf: bool = False
    comparison: pd.DataFrame | None = None
    stations_source: str = ""
    cache_dir: Path | None = None


#: What :func:`output_files` writes by default.
DEFAULT_DOCUMENTS = Documents()


def _documents_note(files: Mapping[str, bytes], documents: Documents) -> dict[str, Any]:
    note: dict[str, Any] = {
        "files": sorted(n for n in (TABLES_XLSX, MAP_PNG, MAP_PDF, REPORT_PDF) if n in files)
    }
    if documents.pdf and REPORT_PDF not in files:
        note["report_pdf"] = (
            "not written: no headless Chromium found (install Debian's chromium, e.g. scripts/install_chromium.sh) or it failed; report.html prints on A4 from any browser"
        )
    return note


def _service_areas(audit: Any) -> gpd.GeoDataFrame:
    """Return the service areas of the minutes, then those of the distances (``meters``, minutes null)."""
    return _with_distances(audit.service_areas, getattr(audit, "distance_areas", None))


def _with_distances(by_minutes: gpd.GeoDataFrame, by_meters: Any) -> gpd.GeoDataFrame:
    """Return rows of the minute thresholds, then rows of the distances (``meters`` set, ``minutes`` null)."""
    if by_meters is None or len(by_meters) == 0:
        return by_minutes
    both = pd.concat(
        [by_minutes.assign(meters=np.nan), by_meters.assign(minutes=np.nan)], ignore_index=True
    )
    return gpd.GeoDataFrame(both, geometry="geometry", crs=by_minutes.crs)


def output_files(
    result: ScenarioResult,
    city: CityData,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    lang: str = "zh",
    report: bool = True,
    progress: ProgressFn | None = None,
    documents: Documents | None = None,
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
    documents
        The documents besides the data (:class:`Documents`; default
        :data:`DEFAULT_DOCUMENTS`: ``tables.xlsx``, ``map.png``, ``map.pdf``).

    Returns
    -------
    dict
        File name → bytes: ``summary.json``, ``summary.csv``, ``centers.geojson``,
        ``service_areas.geojson``, ``demand.geojson``, ``uncovered.geojson``,
        ``centers.csv``, ``coverage_by_level.csv``; with ``siting`` also
        ``proposed_sites.geojson`` and ``coverage_curve.csv``; with a standard
        ``standard.csv`` and, when the city has districts, ``compliance.csv``;
        ``report.html``; ``tables.xlsx``, ``map.png``, ``map.pdf`` and (on request)
        ``report.pdf``.
    """

    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    audit, siting, centers_now = result.audit, result.siting, result.centers
    capacity = getattr(result, "capacity", None)
    if title is None:
        title = f"{i18n.t('report.title', lang)} · {city.source_name}"
    # The audit's centers carry the per-center statistics; prefer them.
    audited_centers = audit.centers if len(audit.centers) == len(centers_now) else centers_now
    if capacity is not None and len(capacity.centers) == len(centers_now):
        audited_centers = capacity.centers
    doc = summary_dict(result, city, extra=extra)
    documents = DEFAULT_DOCUMENTS if documents is None else documents
    store = PieceStore(None if documents.cache_dir is None else Path(documents.cache_dir))
    files: dict[str, bytes] = {}
    step(0.0, "writing centers")
    files[CENTERS_GEOJSON] = _layer_file(
        store,
        CENTERS_GEOJSON,
        audited_centers,
        ["center_id"],
        optional=[*CENTER_COLUMNS[1:], "population_nearest", *CAPACITY_CENTER_COLUMNS],
        what="centers",
    )
    files[CENTERS_CSV] = csv_bytes(centers_table(audited_centers))
    step(0.1, "writing service areas")
    files[SERVICE_AREAS_GEOJSON] = _layer_file(
        store,
        SERVICE_AREAS_GEOJSON,
        _service_areas(audit),
        SERVICE_AREA_COLUMNS,
        optional=["meters"],
        what="service_areas",
    )
    step(0.3, "writing demand")
    demand, demand_cols = _demand_frame(audit, siting, capacity)
    files[DEMAND_GEOJSON] = _layer_file(
        store, DEMAND_GEOJSON, demand, demand_cols, optional=DEMAND_EXTRA_COLUMNS, what="demand"
    )
    step(0.5, "writing uncovered areas")
    files[UNCOVERED_GEOJSON] = _layer_file(
        store,
        UNCOVERED_GEOJSON,
        _with_distances(audit.uncovered, getattr(audit, "distance_uncovered", None)),
        UNCOVERED_COLUMNS,
        optional=["meters"],
        what="uncovered",
    )
    files.update(_table_files(result))
    files[SUMMARY_CSV] = summary_csv_bytes(audit, scenario=_scenario_name(extra))
    step(0.55, "writing documents")
    files.update(_document_files(result, city, title, lang, documents, store))
    if report:
        step(0.6, "writing report")
        files[REPORT_HTML] = _report_file(
            store,
            title,
            _report_summary(doc, result, city, documents, lang),
            result,
            lang,
            files.get(MAP_PNG),
        )
        if documents.pdf:
            step(0.8, "printing report.pdf")
            pdf = report_pdf_bytes(files[REPORT_HTML].decode("utf-8"))
            if pdf is None:
                warnings.warn(
                    "report.pdf was not written: no headless Chromium was found (or it failed). Install Debian's chromium (scripts/install_chromium.sh) and run again, or print report.html to PDF from a browser.",
                    stacklevel=2,
                )
            else:
                files[REPORT_PDF] = pdf
    if documents.pdf or documents.workbook or documents.figure is not None:
        doc["documents"] = _documents_note(files, documents)
    files[SUMMARY_JSON] = (
        json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    ).encode("utf-8")
    step(1.0, "files ready")
    return files


def _table_files(result: ScenarioResult) -> dict[str, bytes]:
    """Return the CSV tables: per level, the standard, compliance, the proposal's sites and curve, groups."""
    audit, siting = result.audit, result.siting
    files: dict[str, bytes] = {}
    files[COVERAGE_BY_LEVEL_CSV] = csv_bytes(pd.DataFrame(audit.coverage_by_level))
    standard_table = getattr(audit, "standard_table", None)
    if getattr(audit.params, "standard", None) is not None and standard_table is not None:
        files[STANDARD_CSV] = csv_bytes(pd.DataFrame(standard_table))
    if result.compliance is not None:
        files[COMPLIANCE_CSV] = csv_bytes(pd.DataFrame(result.compliance))
    census_areas = getattr(result, "census_areas", None)
    if census_areas is not None:
        files[CENSUS_AREAS_CSV] = csv_bytes(pd.DataFrame(census_areas))
    census_compliance = getattr(result, "census_compliance", None)
    if census_compliance is not None:
        files[CENSUS_COMPLIANCE_CSV] = csv_bytes(pd.DataFrame(census_compliance))
    if siting is not None:
        files[PROPOSED_SITES_GEOJSON] = geojson_bytes(
            siting.sites, SITE_COLUMNS, optional=SITE_EXTRA_COLUMNS, what="proposed_sites"
        )
        files[COVERAGE_CURVE_CSV] = csv_bytes(pd.DataFrame(siting.curve))
    groups = getattr(result, "groups", None)
    if groups is not None and len(groups):
        files[GROUPS_CSV] = csv_bytes(pd.DataFrame(groups))
    return files


def _document_files(
    result: ScenarioResult,
    city: CityData,
    title: str,
    lang: str,
    documents: Documents,
    store: PieceStore,
) -> dict[str, bytes]:
    """``tables.xlsx``, ``map.png`` and ``map.pdf`` as asked by ``documents``."""
    files: dict[str, bytes] = {}
    if documents.workbook:
        sheets = workbook_sheets(result, lang=lang, comparison=documents.comparison)
        files[TABLES_XLSX] = workbook_bytes(sheets)
    if documents.figure is not None:
        layers = figure_layers(result, city, source=documents.stations_source)
        files.update(_figure_files(layers, title, lang, documents.figure, store))
    return files


def _figure_files(
    layers: FigureLayers, title: str, lang: str, spec: FigureSpec, store: PieceStore
) -> dict[str, bytes]:
    """``map.png`` and ``map.pdf``, from the output cache when the same figure was drawn before.

    A cached ``map.pdf`` gets the creation date a fresh one would have (the only
    bytes a new drawing of the same figure changes).
    """
    date = dt.datetime.now(dt.UTC).date()
    key = None
    if store.folder is not None:
        key = figure_key(
            layers, title=title, lang=lang, spec=spec, date=date, digests=store.digests
        )
    png, pdf = store.read(MAP_PNG, key), store.read(MAP_PDF, key)
    fresh_pdf = None if pdf is None else pdf_with_creation_date(pdf)
    if png is not None and fresh_pdf is not None:
        return {MAP_PNG: png, MAP_PDF: fresh_pdf}
    fig = map_figure(layers, title=title, lang=lang, spec=spec, date=date)
    files = {MAP_PNG: map_png_bytes(fig), MAP_PDF: map_pdf_bytes(fig)}
    for name, data in files.items():
        store.write(name, key, data)
    return files


def _report_summary(
    doc: Mapping[str, Any], result: ScenarioResult, city: CityData, documents: Documents, lang: str
) -> dict[str, Any]:
    """Return the summary as the report shows it: plus the scenario's name and the stations' source."""
    out = dict(doc)
    if not isinstance(out.get("scenario"), Mapping):
        out["scenario"] = {"name": result.scenario.name}
    source = documents.stations_source or stations_source(city.centers, result.centers)
    out["stations_source"] = source_label(source, lang)
    return out


def _report(
    title: str,
    doc: Mapping[str, Any],
    result: ScenarioResult,
    lang: str,
    map_image: bytes | None,
) -> str:
    audit, siting, centers = result.audit, result.siting, result.centers
    capacity = result.capacity
    layers = MapLayers(
        centers=audit.centers if len(audit.centers) == len(centers) else centers,
        service_areas=audit.service_areas if len(audit.service_areas) else None,
        demand=audit.demand,
        uncovered=audit.uncovered if len(audit.uncovered) else None,
        sites=siting.sites if siting is not None and len(siting.sites) else None,
        capacity=None if capacity is None else capacity.demand,
        capacity_standard_m2=30.0
        if capacity is None
        else capacity.params.standard_m2_per_100_households,
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
        map_image=map_image,
    )


def _report_file(
    store: PieceStore,
    title: str,
    doc: Mapping[str, Any],
    result: ScenarioResult,
    lang: str,
    map_image: bytes | None,
) -> bytes:
    """``report.html`` (UTF-8), from the output cache when the same report was written before.

    A cached page equals a fresh one but for the random element ids folium gives the map.
    """
    key = _report_key(store, title, doc, result, lang, map_image)
    data = store.read(REPORT_HTML, key)
    if data is None:
        data = _report(title, doc, result, lang, map_image).encode("utf-8")
        store.write(REPORT_HTML, key, data)
    return data


def _report_frames(result: ScenarioResult, store: PieceStore) -> dict[str, str | None] | None:
    """Digests of every frame the report draws or tabulates (``None``: one cannot be keyed)."""
    audit, siting, capacity = result.audit, result.siting, result.capacity
    frames = {
        "audit_centers": audit.centers,
        "centers": result.centers,
        "service_areas": audit.service_areas,
        "demand": audit.demand,
        "uncovered": audit.uncovered,
        "sites": None if siting is None else siting.sites,
        "capacity": None if capacity is None else capacity.demand,
    }
    out: dict[str, str | None] = {}
    for name, gdf in frames.items():
        if gdf is not None:
            digest = store.digests.frame(gdf, [c for c in gdf.columns if c != gdf.geometry.name])
            if digest is None:
                return None
            out[name] = digest
    if siting is not None:
        curve = pd.DataFrame(siting.curve)
        parts = [column_digest(curve[c]) for c in curve.columns]
        if any(p is None for p in parts):
            return None
        head = json.dumps([str(c) for c in curve.columns]).encode()
        out["curve"] = hashlib.sha256(head + b"".join(p for p in parts if p)).hexdigest()
    return out


def _report_key(
    store: PieceStore,
    title: str,
    doc: Mapping[str, Any],
    result: ScenarioResult,
    lang: str,
    map_image: bytes | None,
) -> str | None:
    """Cache key of ``report.html``: the summary shown, every frame drawn, the texts, the date, the map image."""
    if store.folder is None:
        return None
    frames = _report_frames(result, store)
    try:
        summary = json.dumps(doc, sort_keys=True, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
    if frames is None:
        return None
    capacity = result.capacity
    parts = {
        "title": title,
        "lang": lang,
        "date": dt.datetime.now(dt.UTC).date().isoformat(),  # the report's default date
        "summary": hashlib.sha256(summary.encode()).hexdigest(),
        "frames": frames,
        "map_image": None if map_image is None else hashlib.sha256(map_image).hexdigest(),
        "thresholds_min": [float(t) for t in result.audit.params.thresholds_min],
        "standard_m2": None
        if capacity is None
        else float(capacity.params.standard_m2_per_100_households),
    }
    return piece_key("report", parts)


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
    tag: str = ""


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
            old = target.parent / f"{TEMP_PREFIX}old-{state.tag}{uuid.uuid4().hex[:12]}"
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


def write_outputs(out: Path | str, files: Mapping[str, bytes | str], *, tag: str = "") -> Path:
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
    tag
        Put into the temporary siblings' names after ``tmp-`` / ``old-`` (a batch
        run's tag, see :func:`coverage.batch.run_districts`).

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
    state = _Swap(tag=tag)
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            state.tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{TEMP_PREFIX}tmp-{tag}"))
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
