"""Read the planner's own files into validated GeoDataFrames in EPSG:4326.

The files are centers, candidates, districts and population. Accepted formats are GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``,
read with pyogrio), CSV with longitude/latitude columns, and Excel workbooks (``.xlsx``, read
with openpyxl; the first sheet, or the one named after ``#`` as in ``stations.xlsx#Sheet2``)
whose columns are detected as in a CSV. CSV text may be
UTF-8, UTF-8 with a byte-order mark (Excel's "CSV UTF-8") or GBK/GB18030 (Excel
on Chinese Windows). Coordinates may be WGS-84, GCJ-02 (Amap/高德, Tencent) or
BD-09 (Baidu/百度); they are converted to WGS-84.

A source is a path, or the bytes / binary file object of an upload together
with its ``filename`` (the extension decides the format).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import stat
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pyproj
import shapely
from numpy.typing import NDArray

from coverage.coords import CRS_NAMES, Crs, to_wgs84
from coverage.errors import InputError, ResourceLimitError
from coverage.fileio import strip_controls

logger = logging.getLogger(__name__)

Source = Path | str | bytes | IO[bytes]
"""A path, or the raw bytes or binary file object of an upload."""

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg")
CSV_SUFFIXES = (".csv", ".txt")
XLSX_SUFFIXES = (".xlsx",)
SUPPORTED_SUFFIXES = VECTOR_SUFFIXES + CSV_SUFFIXES + XLSX_SUFFIXES
#: Separator between a workbook's path and a sheet name (``stations.xlsx#Sheet2``).
SHEET_SEPARATOR = "#"
#: Most members of an ``.xlsx`` zip archive (a real workbook has a few dozen).
XLSX_MAX_MEMBERS = 2_000
#: Most bytes an ``.xlsx`` may expand to (sum of its members' uncompressed sizes).
XLSX_MAX_UNCOMPRESSED_BYTES = 256_000_000
#: Most data rows read from one sheet (Excel itself holds 1,048,576).
XLSX_MAX_ROWS = 1_048_576
#: Most columns read from one sheet.
XLSX_MAX_COLUMNS = 500

#: Column names recognised (case-insensitively) as longitude and latitude in a CSV.
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "wgs84_lon", "gcj02_lon", "bd09_lon")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "wgs84_lat", "gcj02_lat", "bd09_lat")
#: Column names recognised as polygon geometry (WKT) in a CSV.
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom")

#: Text encodings tried, in order, for CSV files.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
DEFAULT_MAX_BYTES = 200_000_000
_MAX_LISTED = 10


# --- names --------------------------------------------------------------------

#: Longest name or id echoed in a message, in characters.
ECHO_CHARS = 80
#: Most ids listed in a message.
ECHO_IDS = 5


def _clean_name(text: str, limit: int = 200) -> str:
    cleaned = strip_controls(text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


def echo(value: object) -> str:
    """Return one value as shown in a message: cleaned, at most ``ECHO_CHARS`` characters, quoted."""
    text = strip_controls(value)
    if len(text) > ECHO_CHARS:
        text = f"{text[:ECHO_CHARS]}… ({len(text):,} characters)"
    return repr(text)


def echo_list(values: Sequence[object]) -> str:
    """Return at most ``ECHO_IDS`` values for a message, each :func:`echo`-ed, and how many more."""
    shown = ", ".join(echo(v) for v in values[:ECHO_IDS])
    more = f" and {len(values) - ECHO_IDS:,} more" if len(values) > ECHO_IDS else ""
    return shown + more


# --- loading ------------------------------------------------------------------


def _load(source: Source, filename: str | None, max_bytes: int) -> tuple[str, str, bytes]:
    """Return ``(display name, lower-case suffix, bytes)`` of a source."""
    if isinstance(source, (str, Path)):
        p = Path(source)
        check_regular_file(p, "File")
        name = filename or p.name
        size = p.stat().st_size
        if size > max_bytes:
            _too_big(name, size, max_bytes)
        data = p.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = filename or ""
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            msg = f"The upload must be opened in binary mode (read() returned {type(data).__name__}); open it with 'rb'."
            raise InputError(msg)
        data = bytes(data)
        name = filename or str(getattr(source, "name", "") or "")
    else:
        msg = f"Expected a path, bytes or a binary file object; got {type(source).__name__}."
        raise InputError(msg)
    if not name:
        msg = "Uploaded bytes need a `filename` (e.g. 'centers.csv') so the format can be told from its extension."
        raise InputError(msg)
    name = Path(name).name
    if len(data) > max_bytes:
        _too_big(name, len(data), max_bytes)
    suffix = _suffix(name)
    if suffix not in SUPPORTED_SUFFIXES:
        msg = f"Unsupported file {name!r}: expected one of {', '.join(SUPPORTED_SUFFIXES)}. Save it from your GIS or spreadsheet as GeoJSON, GeoPackage, CSV or Excel .xlsx (with longitude/latitude columns)."
        raise InputError(
            msg,
            code="file.unsupported",
            params={"name": name, "suffixes": ", ".join(SUPPORTED_SUFFIXES)},
        )
    if not data.strip(b"\xef\xbb\xbf \t\r\n"):
        msg = f"{name!r} is empty. Export the data again, with at least one feature or row."
        raise InputError(msg, code="file.empty", params={"name": name})
    return name, suffix, data


def _kind_of(p: Path) -> str | None:
    """Return what an existing path that is not a regular file is (None: missing)."""
    try:
        mode = p.stat().st_mode
    except OSError:
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((label for test, label in kinds if test(mode)), "not a regular file")


def check_regular_file(p: Path, what: str) -> None:
    """Refuse a path that is missing or is not a regular file, saying which.

    Parameters
    ----------
    p
        The path (a symbolic link is followed).
    what
        What the file is for, e.g. ``"Centers file"``. A workbook path may name a
        sheet (``stations.xlsx#Sheet2``, see :func:`split_sheet`).

    Raises
    ------
    InputError
        Missing path, or a folder, FIFO, device or socket (named as such).
    """
    p = split_sheet(p)[0]
    if p.is_file():
        return
    kind = _kind_of(p)
    shown = _clean_name(str(p))
    if kind is None:
        msg = f"{what} not found: {shown!r}. Check the path and the file name."
    else:
        link = " (through a symbolic link)" if p.is_symlink() else ""
        msg = (
            f"{what} {shown!r} is {kind}{link}, not a regular file. Give the path of a saved file."
        )
    raise InputError(msg)


def _suffix(name: str) -> str:
    lower = name.lower()
    for s in SUPPORTED_SUFFIXES:
        if lower.endswith(s):
            return s
    return Path(lower).suffix


def _too_big(name: str, size: int, max_bytes: int) -> None:
    msg = f"{name!r} is {size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.0f} MB allowed. Split it or keep only the area you plan for."
    raise ResourceLimitError(msg)


def _rows(positions: Sequence[int] | NDArray[Any], *, offset: int) -> str:
    """Human row numbers (1-based plus ``offset``), at most ``_MAX_LISTED`` of them."""
    nums = [int(i) + offset for i in positions]
    shown = ", ".join(map(str, nums[:_MAX_LISTED]))
    more = f" and {len(nums) - _MAX_LISTED} more" if len(nums) > _MAX_LISTED else ""
    return shown + more


# --- CSV ----------------------------------------------------------------------


def decode_text(data: bytes, *, name: str = "file") -> str:
    """Decode CSV or GeoJSON bytes as UTF-8 (with or without BOM), else GB18030 (a superset of GBK).

    Returns
    -------
    str
        The decoded text; the encoding used is logged.
    """
    for encoding in CSV_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        used = (
            "utf-8 with BOM"
            if encoding == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf")
            else encoding
        )
        if encoding == "utf-8-sig" and used != "utf-8 with BOM":
            used = "utf-8"
        logger.info("read %s as %s text", name, used)
        return text
    msg = f"{name!r} is neither UTF-8 nor GBK/GB18030 text. Save it again as 'CSV UTF-8' (Excel: 另存为 → CSV UTF-8)."
    raise InputError(msg, code="file.encoding", params={"name": name})


def _read_csv_table(name: str, data: bytes) -> pd.DataFrame:
    text = decode_text(data, name=name)
    try:
        df = pd.read_csv(io.StringIO(text), sep=None, engine="python", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        msg = f"{name!r} could not be read as CSV ({exc}). Expected a header row and comma-separated values."
        raise InputError(msg, code="file.csv_unreadable", params={"name": name}) from exc
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        msg = f"{name!r} has a header ({', '.join(df.columns)}) but no data rows."
        raise InputError(msg, code="file.no_rows", params={"name": name})
    return df


def _find_column(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, name: str
) -> str:
    if wanted is not None:
        if wanted in columns:
            return wanted
        msg = (
            f"{name!r} has no column {wanted!r} for {what}; its columns are: {', '.join(columns)}."
        )
        raise InputError(msg)
    lookup = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lookup:
            return lookup[cand]
    msg = (
        f"{name!r} has no {what} column: expected one named {' / '.join(candidates[:5])}; "
        f"found columns: {', '.join(columns)}. Rename the column or pass `{'lon' if what == 'longitude' else 'lat'}_column`."
    )
    raise InputError(
        msg, code="file.no_coordinates", params={"name": name, "columns": ", ".join(columns)}
    )


def _numeric(df: pd.DataFrame, column: str, name: str) -> NDArray[np.float64]:
    values: NDArray[np.float64] = np.asarray(
        pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
        dtype=np.float64,
    )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        msg = (
            f"{name!r}: column {column!r} must hold finite numbers, but rows "
            f"{_rows(bad, offset=2)} (counting the header as row 1) are empty, text, NaN or infinite. "
            "Fix or delete those rows."
        )
        raise InputError(msg)
    return values


def check_lonlat(
    lon: NDArray[np.float64], lat: NDArray[np.float64], *, name: str, offset: int = 2
) -> None:
    """Refuse out-of-range coordinates, saying when longitude and latitude look swapped.

    Raises
    ------
    InputError
        Latitude outside ±90° or longitude outside ±180°.
    """
    bad_lat = np.abs(lat) > 90
    if bad_lat.any():
        rows = np.flatnonzero(bad_lat)
        if np.all(np.abs(lon) <= 90):
            msg = (
                f"{name!r}: latitudes outside ±90° in rows {_rows(rows, offset=offset)} (e.g. {lat[rows[0]]}) "
                "while every longitude is within ±90°: longitude and latitude look swapped. "
                "Swap the two columns (or pass `lon_column`/`lat_column`)."
            )
        else:
            msg = f"{name!r}: latitudes must lie within ±90°; rows {_rows(rows, offset=offset)} do not (e.g. {lat[rows[0]]}). Check the coordinate columns; projected coordinates (meters) are not accepted in CSV."
        raise InputError(
            msg, code="file.lat_range", params={"name": name, "rows": _rows(rows, offset=offset)}
        )
    bad_lon = np.abs(lon) > 180
    if bad_lon.any():
        rows = np.flatnonzero(bad_lon)
        msg = f"{name!r}: longitudes must lie within ±180°; rows {_rows(rows, offset=offset)} do not (e.g. {lon[rows[0]]}). Projected coordinates (meters) are not accepted in CSV; export longitude/latitude in degrees."
        raise InputError(
            msg, code="file.lon_range", params={"name": name, "rows": _rows(rows, offset=offset)}
        )


def _read_csv(
    name: str,
    data: bytes,
    *,
    crs: Crs | str,
    lon_column: str | None,
    lat_column: str | None,
    want_points: bool,
) -> gpd.GeoDataFrame:
    return _table_frame(
        name,
        _read_csv_table(name, data),
        crs=crs,
        lon_column=lon_column,
        lat_column=lat_column,
        want_points=want_points,
    )


def _table_frame(
    name: str,
    df: pd.DataFrame,
    *,
    crs: Crs | str,
    lon_column: str | None,
    lat_column: str | None,
    want_points: bool,
) -> gpd.GeoDataFrame:
    """Geometry from a table's columns: longitude/latitude, or WKT polygons (CSV and Excel alike)."""
    columns = list(df.columns)
    if not want_points and lon_column is None and lat_column is None:
        lookup = {c.lower(): c for c in columns}
        wkt_col = next((lookup[c] for c in WKT_NAMES if c in lookup), None)
        if wkt_col is not None:
            return _read_wkt_csv(name, df, wkt_col, crs)
    lon_col = _find_column(columns, lon_column, LON_NAMES, "longitude", name)
    lat_col = _find_column(columns, lat_column, LAT_NAMES, "latitude", name)
    lon = _numeric(df, lon_col, name)
    lat = _numeric(df, lat_col, name)
    check_lonlat(lon, lat, name=name)
    x, y = to_wgs84(lon, lat, crs)
    attrs = df.drop(columns=[lon_col, lat_col]).reset_index(drop=True)
    return gpd.GeoDataFrame(attrs, geometry=shapely.points(x, y), crs="EPSG:4326")


def _read_wkt_csv(name: str, df: pd.DataFrame, column: str, crs: Crs | str) -> gpd.GeoDataFrame:
    # A mis-split row can leave numbers in the WKT column; shapely wants str or None.
    text = np.array(
        [str(v) if isinstance(v, str) or not pd.isna(v) else None for v in df[column]],
        dtype=object,
    )
    try:
        geoms = shapely.from_wkt(text, on_invalid="raise")
    except (shapely.errors.GEOSException, TypeError) as exc:
        msg = (
            f"{name!r}: column {column!r} must hold WKT geometries (e.g. 'POLYGON ((...))'); {exc}."
        )
        raise InputError(msg) from exc
    gdf = gpd.GeoDataFrame(
        df.drop(columns=[column]).reset_index(drop=True), geometry=geoms, crs="EPSG:4326"
    )
    _check_geographic_range(gdf, name)
    return _convert_datum(gdf, crs)


# --- Excel workbooks ------------------------------------------------------------


def split_sheet(path: Path | str) -> tuple[Path, str | None]:
    """Split ``stations.xlsx#Sheet2`` into the workbook's path and the sheet name.

    A path that exists as it is (even with a ``#`` in its name) is not split, and
    only a workbook (``.xlsx``) takes a sheet name.

    Returns
    -------
    tuple
        ``(path, sheet)``; ``sheet`` is ``None`` when no sheet is named (the first sheet).
    """
    p = Path(path)
    text = str(path)
    if SHEET_SEPARATOR not in text or p.exists():
        return p, None
    base, sheet = text.rsplit(SHEET_SEPARATOR, 1)
    if not base.lower().endswith(XLSX_SUFFIXES):
        return p, None
    return Path(base), sheet or None


def check_xlsx_archive(name: str, data: bytes) -> None:
    """Refuse a workbook whose zip archive is broken or would expand beyond the limits.

    An ``.xlsx`` is a zip archive: a few kilobytes can expand to gigabytes. The
    members' count and declared uncompressed sizes are checked before any parsing
    (Python's zip reader never inflates a member past its declared size).

    Raises
    ------
    InputError
        Not a zip archive (not an ``.xlsx``).
    ResourceLimitError
        More than :data:`XLSX_MAX_MEMBERS` members or more than
        :data:`XLSX_MAX_UNCOMPRESSED_BYTES` once expanded.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        msg = f"{name!r} is not a readable Excel workbook (.xlsx is a zip archive: {exc}). Save it again from Excel or WPS as .xlsx, or as CSV UTF-8."
        raise InputError(msg, code="xlsx.unreadable", params={"name": name}) from exc
    if len(infos) > XLSX_MAX_MEMBERS:
        msg = f"{name!r} holds {len(infos):,} parts, more than the {XLSX_MAX_MEMBERS:,} a workbook may have here. Save only the table's sheet as a new .xlsx, or as CSV UTF-8."
        raise ResourceLimitError(msg, code="xlsx.too_large", params={"name": name})
    total = sum(max(int(i.file_size), 0) for i in infos)
    if total > XLSX_MAX_UNCOMPRESSED_BYTES:
        msg = f"{name!r} expands to {total / 1e6:,.0f} MB, more than the {XLSX_MAX_UNCOMPRESSED_BYTES / 1e6:.0f} MB allowed for a workbook ({len(data) / 1e6:.1f} MB on disk). Save only the table's sheet as a new .xlsx, or as CSV UTF-8."
        raise ResourceLimitError(msg, code="xlsx.too_large", params={"name": name})


def _sheet_rows(name: str, ws: Any) -> list[tuple[Any, ...]]:
    """Return the sheet's rows as values (cached results of formulas, never evaluated), capped."""
    rows: list[tuple[Any, ...]] = []
    for row in ws.iter_rows(values_only=True, max_col=XLSX_MAX_COLUMNS + 1):
        if len(row) > XLSX_MAX_COLUMNS and any(v is not None for v in row[XLSX_MAX_COLUMNS:]):
            msg = f"{name!r}: the sheet has more than {XLSX_MAX_COLUMNS} columns. Keep only the table's columns."
            params = {"name": name, "n": XLSX_MAX_COLUMNS}
            raise ResourceLimitError(msg, code="xlsx.too_many_columns", params=params)
        rows.append(tuple(row[:XLSX_MAX_COLUMNS]))
        if len(rows) > XLSX_MAX_ROWS + 1:
            msg = f"{name!r}: the sheet has more than {XLSX_MAX_ROWS:,} rows. Split the table or keep only the area you plan for."
            params = {"name": name, "n": XLSX_MAX_ROWS}
            raise ResourceLimitError(msg, code="xlsx.too_many_rows", params=params)
    return rows


def _pick_sheet(name: str, wb: Any, sheet: str | int | None) -> Any:
    names = list(wb.sheetnames)
    if sheet is None:
        if not names:  # pragma: no cover - openpyxl refuses a workbook without sheets
            msg = f"{name!r} has no sheets."
            raise InputError(msg)
        return wb[names[0]]
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if 0 <= sheet < len(names):
            return wb[names[sheet]]
    elif str(sheet) in names:
        return wb[str(sheet)]
    msg = f"{name!r} has no sheet {strip_controls(sheet)!r}; its sheets are: {', '.join(strip_controls(n) for n in names)}. Name one after '#', e.g. 'stations.xlsx#{strip_controls(names[0]) if names else 'Sheet1'}'."
    params = {
        "name": name,
        "sheet": strip_controls(sheet),
        "sheets": ", ".join(strip_controls(n) for n in names),
    }
    raise InputError(msg, code="xlsx.no_sheet", params=params)


def _header(row: tuple[Any, ...]) -> list[str]:
    names: list[str] = []
    for i, v in enumerate(row):
        text = "" if v is None else str(v).strip()
        names.append(text or f"column_{i + 1}")
    return names


def read_xlsx_table(name: str, data: bytes, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Return one sheet of an ``.xlsx`` workbook as a table, as :func:`pandas.read_csv` would.

    The first non-empty row is the header; empty rows and unnamed empty columns are
    dropped. Formula cells give the value Excel saved with them (openpyxl's
    ``data_only``); nothing is evaluated, and a formula without a saved value is empty.

    Parameters
    ----------
    name
        File name, for messages.
    data
        The workbook's bytes (checked by :func:`check_xlsx_archive` first).
    sheet
        Sheet name or 0-based position; the first sheet by default.

    Returns
    -------
    pandas.DataFrame
        One column per header cell, RangeIndex.

    Raises
    ------
    InputError
        Not a workbook, no such sheet, no header or no data rows.
    ResourceLimitError
        Too many parts, bytes, rows or columns.
    """
    check_xlsx_archive(name, data)
    try:
        with warnings.catch_warnings():
            # openpyxl warns about features it drops (data validation, print areas); values stay
            warnings.simplefilter("ignore", UserWarning)
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                rows = _sheet_rows(name, _pick_sheet(name, wb, sheet))
            finally:
                wb.close()
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        if isinstance(exc, InputError):
            raise
        msg = f"{name!r} could not be read as an Excel workbook ({type(exc).__name__}: {strip_controls(exc)[:200]}). Save it again as .xlsx, or as CSV UTF-8."
        raise InputError(msg, code="xlsx.unreadable", params={"name": name}) from exc
    rows = [r for r in rows if any(v is not None and str(v).strip() != "" for v in r)]
    if not rows:
        msg = f"{name!r}: the sheet is empty. Put a header row (e.g. 名称, 经度, 纬度) and data rows in the first sheet, or name the sheet after '#'."
        raise InputError(msg, code="xlsx.empty_sheet", params={"name": name})
    header = _header(rows[0])
    df = pd.DataFrame([list(r) + [None] * (len(header) - len(r)) for r in rows[1:]], columns=header)
    unnamed = [
        c for c, v in zip(df.columns, rows[0], strict=False) if v is None and df[c].isna().all()
    ]
    df = df.drop(columns=unnamed)
    if len(df) == 0:
        msg = f"{name!r} has a header ({', '.join(df.columns)}) but no data rows."
        raise InputError(msg, code="file.no_rows", params={"name": name})
    return df.infer_objects()


# --- vector files -------------------------------------------------------------


_SURROGATE_PAIR = re.compile(
    rb"(?<!\\)\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
)


def _unescape_surrogates(data: bytes) -> bytes:
    r"""Turn JSON ``\uD8xx\uDCxx`` escapes into UTF-8 before GDAL reads the text.

    GDAL's JSON parser turns escaped surrogate pairs (how ``json.dumps`` and
    ``GeoDataFrame.to_json`` write characters beyond U+FFFF, e.g. CJK Extension B
    place-name characters such as 𠀀) into U+FFFD; UTF-8 text is read correctly.
    """
    if data[:16].startswith(b"SQLite format 3") or _SURROGATE_PAIR.search(data) is None:
        return data

    def utf8(m: re.Match[bytes]) -> bytes:
        hi, lo = int(m.group(1), 16), int(m.group(2), 16)
        return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).encode("utf-8")

    return _SURROGATE_PAIR.sub(utf8, data)


def _as_utf8_json(name: str, data: bytes) -> bytes:
    """GeoJSON text as UTF-8: GBK/GB18030 text (and a BOM) are recoded as for CSV."""
    if data[:16].startswith(b"SQLite format 3"):
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return decode_text(data, name=name).encode("utf-8")
        except InputError:  # not text at all: GDAL says it cannot read it
            return data
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _read_vector(name: str, data: bytes, layer: str | int | None) -> gpd.GeoDataFrame:
    data = _unescape_surrogates(_as_utf8_json(name, data))

    try:
        with warnings.catch_warnings():
            # GDAL reports recoverable oddities (e.g. an unknown CRS) as RuntimeWarnings;
            # the checks below turn the consequences into clear errors.
            warnings.simplefilter("ignore", RuntimeWarning)
            # a column mixing numbers and text stays text; the readers refuse such values
            warnings.filterwarnings("ignore", "Could not parse column", UserWarning)
            gdf = pyogrio.read_dataframe(io.BytesIO(data), layer=layer)
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        UnicodeDecodeError,
    ) as exc:
        msg = f"{name!r} could not be read as GeoJSON/GeoPackage ({exc}). Check that the file is complete and in the format its extension says."
        raise InputError(msg, code="file.geo_unreadable", params={"name": name}) from exc
    except pyogrio.errors.GeometryError as exc:  # pragma: no cover - depends on GDAL
        msg = f"{name!r} has geometries GDAL cannot read ({exc})."
        raise InputError(msg) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        msg = f"{name!r} has no geometry column. For a table with coordinates, save it as CSV with longitude/latitude columns."
        raise InputError(msg, code="file.no_geometry", params={"name": name})
    if len(gdf) == 0:
        msg = f"{name!r} contains no features. Export the layer again with at least one feature."
        raise InputError(msg, code="file.no_features", params={"name": name})
    gdf = gdf.rename_geometry("geometry") if gdf.geometry.name != "geometry" else gdf
    gdf = _keep_json_booleans(gdf, data)
    _check_degrees_declared_projected(gdf, name)
    gdf = _to_wgs84_frame(gdf, name)
    _check_declared_crs(name, data)  # after the range check: metre coordinates were refused
    return gdf


_JSON_BOOLEAN = re.compile(rb":\s*(?:true|false)\b")


def _keep_json_booleans(gdf: gpd.GeoDataFrame, data: bytes) -> gpd.GeoDataFrame:
    """Keep JSON ``true``/``false`` in columns that also hold numbers.

    GDAL reads ``[5, true, 7]`` as the integers ``5, 1, 7``; a ``true`` in a
    population column would then count as one resident. Such columns get the
    file's own values back (an object column) so that readers can refuse them.
    """
    if data[:16].startswith(b"SQLite format 3") or _JSON_BOOLEAN.search(data) is None:
        return gdf
    try:
        features = json.loads(data).get("features")
    except (ValueError, AttributeError):
        return gdf
    if not isinstance(features, list) or len(features) != len(gdf):
        return gdf
    props = [f.get("properties") or {} if isinstance(f, dict) else {} for f in features]
    out = gdf
    for column in gdf.columns:
        if column == "geometry" or gdf[column].dtype == bool:
            continue
        raw = [p.get(column) if isinstance(p, dict) else None for p in props]
        if any(isinstance(v, bool) for v in raw):
            out = out.copy() if out is gdf else out
            out[column] = pd.Series(raw, index=gdf.index, dtype=object)
    return out


_GEOJSON_CRS = re.compile(
    rb'"crs"\s*:\s*\{[^{}]*"properties"\s*:\s*\{[^{}]*"name"\s*:\s*"([^"]{1,200})"'
)


def _check_declared_crs(name: str, data: bytes) -> None:
    """Warn about a GeoJSON ``crs`` member naming a CRS that does not exist.

    GDAL's GeoJSON driver silently falls back to WGS-84 for a CRS it does not
    know; say so. Coordinates that are not degrees are then refused by the
    range check.
    """
    if data[:16].startswith(b"SQLite format 3"):
        return
    m = _GEOJSON_CRS.search(data[: 1 << 16])
    if m is None:
        return
    declared = m.group(1).decode("utf-8", errors="replace")
    try:
        pyproj.CRS.from_user_input(declared)
    except pyproj.exceptions.CRSError:
        warnings.warn(
            f"{name}: declares the unknown coordinate system {declared!r}; reading its coordinates as WGS-84 longitude/latitude. Set the layer's real CRS in your GIS if that is wrong.",
            stacklevel=5,
        )


def _check_degrees_declared_projected(gdf: gpd.GeoDataFrame, name: str) -> None:
    """Refuse longitude/latitude values in a layer that declares a projected CRS.

    Real projected coordinates (meters) of a city are never all within ±180 / ±90
    of the projection's origin; such a layer has a wrong CRS declaration and
    reprojecting it would move every feature by hundreds of kilometres.
    """
    if gdf.crs is None or not pyproj.CRS.from_user_input(gdf.crs).is_projected:
        return
    coords = shapely.get_coordinates(gdf.geometry.values)
    coords = coords[np.isfinite(coords).all(axis=1)] if coords.size else coords
    if coords.size and (np.abs(coords[:, 0]) <= 180).all() and (np.abs(coords[:, 1]) <= 90).all():
        crs = pyproj.CRS.from_user_input(gdf.crs)
        msg = f"{name!r} declares the projected coordinate system {crs.to_string()} (meters), but its coordinates look like longitude/latitude degrees (e.g. {coords[0, 0]:.6g}, {coords[0, 1]:.6g}). Fix the layer's CRS in your GIS (EPSG:4326 for degrees) and export again."
        raise InputError(msg)


def _is_wgs84(crs: pyproj.CRS) -> bool:
    if not crs.is_geographic:
        return False
    try:
        datum = crs.datum.name if crs.datum is not None else ""
    except pyproj.exceptions.CRSError:  # pragma: no cover
        return False
    datum = datum.upper()
    return "WORLD GEODETIC SYSTEM 1984" in datum or ("WGS" in datum and "84" in datum)


def _to_wgs84_frame(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        logger.info("%s declares no CRS; assuming WGS-84 longitude/latitude", name)
        gdf = gdf.set_crs("EPSG:4326")
    crs = pyproj.CRS.from_user_input(gdf.crs)
    if _is_wgs84(crs):
        gdf = gdf.set_crs("EPSG:4326", allow_override=True)
    else:
        _check_finite(gdf, name)
        logger.info("%s is in %s; reprojecting to WGS-84 (EPSG:4326)", name, crs.to_string())
        try:
            gdf = gdf.to_crs("EPSG:4326")
        except pyproj.exceptions.ProjError as exc:  # pragma: no cover - depends on PROJ
            msg = f"{name!r} declares CRS {crs.to_string()}, which cannot be converted to WGS-84 ({exc}). Reproject it to EPSG:4326 first."
            raise InputError(msg) from exc
    _check_geographic_range(gdf, name)
    return gdf


def _check_finite(gdf: gpd.GeoDataFrame, name: str) -> None:
    coords = shapely.get_coordinates(gdf.geometry.values)
    if coords.size and not np.isfinite(coords).all():
        msg = (
            f"{name!r} has geometries with NaN or infinite coordinates. Repair them in a GIS first."
        )
        raise InputError(msg)


def _check_geographic_range(gdf: gpd.GeoDataFrame, name: str) -> None:
    _check_finite(gdf, name)
    geoms = gdf.geometry.values
    bounds = shapely.bounds(geoms)
    ok = ~np.isnan(bounds[:, 0])
    if not ok.any():
        return
    outside = ok & (
        (np.abs(bounds[:, 0]) > 180)
        | (np.abs(bounds[:, 2]) > 180)
        | (np.abs(bounds[:, 1]) > 90)
        | (np.abs(bounds[:, 3]) > 90)
    )
    if outside.any():
        rows = np.flatnonzero(outside)
        sample = bounds[rows[0]]
        swapped = np.all(np.abs(bounds[ok][:, [0, 2]]) <= 90) and not np.any(
            np.abs(bounds[ok][:, [1, 3]]) > 180
        )
        hint = (
            "Longitude and latitude look swapped (x within ±90°, y beyond): swap the axes."
            if swapped
            else "The coordinates look projected (meters) while the file declares WGS-84 or no CRS: set the file's real CRS in your GIS and export again."
        )
        msg = f"{name!r}: features {_rows(rows, offset=1)} have coordinates outside longitude ±180° / latitude ±90° (e.g. x {sample[0]:.6g}, y {sample[1]:.6g}). {hint}"
        raise InputError(msg)


def _convert_datum(gdf: gpd.GeoDataFrame, crs: Crs | str) -> gpd.GeoDataFrame:
    if str(crs).lower().replace("-", "").replace("_", "") == "wgs84":
        return gdf

    def convert(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = to_wgs84(xy[:, 0], xy[:, 1], crs)
        return np.column_stack([x, y])

    out = gdf.copy()
    out["geometry"] = shapely.transform(out.geometry.values, convert)
    return out


# --- geometry clean-up --------------------------------------------------------


def _clean_geometries(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """Drop Z, drop empty geometries (warning), repair invalid ones (warning)."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    geoms = shapely.force_2d(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.all():
        msg = f"{name!r} has no features with a geometry. Export the layer again."
        raise InputError(msg)
    if empty.any():
        rows = np.flatnonzero(empty)
        warnings.warn(
            f"{name}: dropped {rows.size} features with no geometry (features {_rows(rows, offset=1)}).",
            stacklevel=3,
        )
    invalid = ~empty & ~shapely.is_valid(geoms)
    if invalid.any():
        rows = np.flatnonzero(invalid)
        reasons = shapely.is_valid_reason(geoms[rows[:1]])[0]
        warnings.warn(
            f"{name}: repaired {rows.size} invalid geometries with make_valid (features {_rows(rows, offset=1)}; first problem: {reasons}).",
            stacklevel=3,
        )
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    out = gdf.copy()
    out["geometry"] = geoms
    out = out.loc[~empty].reset_index(drop=True)
    if len(out) == 0:
        msg = f"{name!r} has no features with a geometry. Export the layer again."
        raise InputError(msg)
    return out


def _polygons_only(geom: shapely.Geometry) -> shapely.Geometry | None:
    """Keep the polygonal parts of a (repaired) geometry; None if there are none."""
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if shapely.get_type_id(p) in (3, 6)]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.union_all(polys)


# --- public API ---------------------------------------------------------------


def read_features(
    source: Source,
    *,
    filename: str | None = None,
    crs: Crs | str = "wgs84",
    lon_column: str | None = None,
    lat_column: str | None = None,
    layer: str | int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> gpd.GeoDataFrame:
    """Read a user file with any geometry type into a clean EPSG:4326 GeoDataFrame.

    Parameters
    ----------
    source
        A path, or the bytes / binary file object of an upload.
    filename
        Name of the upload (its extension selects the format); defaults to the path's name.
    crs
        Datum of the coordinates: ``"wgs84"``, ``"gcj02"`` (Amap/高德) or ``"bd09"`` (Baidu).
        A GeoJSON/GeoPackage declaring a projected CRS is reprojected first; ``crs``
        then applies to the resulting longitude/latitude.
    lon_column, lat_column
        CSV coordinate columns; by default detected among ``lon``/``lng``/
        ``longitude``/``x``/``经度`` and ``lat``/``latitude``/``y``/``纬度``.
    layer
        Layer of a GeoPackage, or sheet (name or 0-based position) of an ``.xlsx``
        workbook; the first by default. A path may also name the sheet after ``#``:
        ``stations.xlsx#Sheet2``.
    max_bytes
        Larger files are refused with :class:`~coverage.errors.ResourceLimitError`.

    Returns
    -------
    geopandas.GeoDataFrame
        The file's attribute columns plus ``geometry`` (2D, valid, non-empty) in
        EPSG:4326, with a RangeIndex.
    """
    return _read(source, filename, crs, lon_column, lat_column, layer, max_bytes, want_points=None)


def read_points(
    source: Source,
    *,
    filename: str | None = None,
    crs: Crs | str = "wgs84",
    lon_column: str | None = None,
    lat_column: str | None = None,
    layer: str | int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> gpd.GeoDataFrame:
    """Read a point file (GeoJSON, GeoPackage or CSV with lon/lat columns).

    MultiPoints are split into points; polygons and lines are replaced by a
    point inside them, with a warning. Parameters are those of :func:`read_features`.

    Returns
    -------
    geopandas.GeoDataFrame
        The file's attribute columns plus Point ``geometry`` in EPSG:4326, RangeIndex.
    """
    gdf = _read(source, filename, crs, lon_column, lat_column, layer, max_bytes, want_points=True)
    name = _display_name(source, filename)
    types = shapely.get_type_id(gdf.geometry.values)
    if (types == shapely.GeometryType.MULTIPOINT).any():
        gdf = gdf.explode(index_parts=False, ignore_index=True)
        types = shapely.get_type_id(gdf.geometry.values)
    other = types != shapely.GeometryType.POINT
    if other.any():
        warnings.warn(
            f"{name}: {int(other.sum())} features are not points (features {_rows(np.flatnonzero(other), offset=1)}); using a point inside each.",
            stacklevel=2,
        )
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        geoms[other] = shapely.point_on_surface(geoms[other])
        gdf = gdf.copy()
        gdf["geometry"] = geoms
    logger.info("read %d points from %s", len(gdf), name)
    return gdf.reset_index(drop=True)


def read_polygons(
    source: Source,
    *,
    filename: str | None = None,
    crs: Crs | str = "wgs84",
    layer: str | int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_vertices: int | None = None,
) -> gpd.GeoDataFrame:
    """Read a polygon file (GeoJSON, GeoPackage, or CSV with a WKT ``geometry`` column).

    Parameters are those of :func:`read_features`, and ``max_vertices``: refuse
    more vertices than this (:func:`check_vertex_count`; GeoJSON is counted in
    its text, before it is parsed).

    Returns
    -------
    geopandas.GeoDataFrame
        The file's attribute columns plus Polygon/MultiPolygon ``geometry`` in
        EPSG:4326, RangeIndex.

    Raises
    ------
    InputError
        Features that are points or lines (listed by number).
    ResourceLimitError
        More than ``max_vertices`` vertices.
    """
    name = _display_name(source, filename)
    if max_vertices is not None and _suffix(name) in (".geojson", ".json"):
        # a parse costs ~500 B per vertex: count GeoJSON's positions in its text first
        name, _, data = _load(source, filename, max_bytes)
        check_vertex_count(name, len(_POSITION.findall(data)), max_vertices)
        source, filename = data, name
    gdf = _read(source, filename, crs, None, None, layer, max_bytes, want_points=False)
    if max_vertices is not None:
        counts = shapely.get_num_coordinates(np.asarray(gdf.geometry.values, dtype=object))
        check_vertex_count(name, int(counts.sum()), max_vertices)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    types = shapely.get_type_id(geoms)
    collection = types == shapely.GeometryType.GEOMETRYCOLLECTION
    if collection.any():  # make_valid can return collections; keep their polygon parts
        geoms[collection] = [_polygons_only(g) for g in geoms[collection]]
        types = shapely.get_type_id(geoms)
    bad = ~np.isin(types, [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    if bad.any():
        rows = np.flatnonzero(bad)
        kinds = sorted({shapely.get_type_id(g) for g in geoms[rows] if g is not None})
        names = ", ".join(shapely.GeometryType(k).name.title() for k in kinds) or "empty"
        msg = f"{name!r}: expected polygons, but features {_rows(rows, offset=1)} are {names}. Use a polygon layer (areas), or read points with `read_points`."
        params = {"name": name, "rows": _rows(rows, offset=1), "types": names}
        raise InputError(msg, code="file.not_polygons", params=params)
    out = gdf.copy()
    out["geometry"] = geoms
    logger.info("read %d polygons from %s", len(out), name)
    return out


#: A GeoJSON position: ``[`` then a number (rings and lists open with ``[[``).
_POSITION = re.compile(rb"\[\s*[-+.\d]")


def check_vertex_count(name: str, count: int, limit: int) -> None:
    """Refuse a polygon file with more than ``limit`` vertices (the memory budget's share).

    Raises
    ------
    ResourceLimitError
        Naming the count, the limit and what to do.
    """
    if count > limit:
        msg = (
            f"{name!r} holds {count:,} polygon vertices, more than the {limit:,} the memory "
            "budget allows. Simplify the boundaries (e.g. `ogr2ogr -simplify 0.0001`), keep "
            "only the areas you plan for, or raise the budget (--max-memory-gb)."
        )
        raise ResourceLimitError(msg)


def _display_name(source: Source, filename: str | None) -> str:
    if filename:
        return Path(filename).name
    if isinstance(source, (str, Path)):
        return Path(source).name
    return str(getattr(source, "name", "upload"))


def _read(
    source: Source,
    filename: str | None,
    crs: Crs | str,
    lon_column: str | None,
    lat_column: str | None,
    layer: str | int | None,
    max_bytes: int,
    *,
    want_points: bool | None,
) -> gpd.GeoDataFrame:
    if str(crs).lower().replace("-", "").replace("_", "") not in CRS_NAMES:
        msg = f"`crs` must be one of {', '.join(CRS_NAMES)}; got {crs!r}. Use 'gcj02' for Amap/高德 coordinates, 'bd09' for Baidu/百度, 'wgs84' for GPS/OpenStreetMap."
        raise InputError(msg)
    sheet: str | None = None
    if isinstance(source, (str, Path)):
        source, sheet = split_sheet(source)
    if filename is not None:
        named, named_sheet = split_sheet(filename)
        if named_sheet is not None:
            filename, sheet = str(named), sheet or named_sheet
    name, suffix, data = _load(source, filename, max_bytes)
    if suffix in XLSX_SUFFIXES:
        gdf = _table_frame(
            name,
            read_xlsx_table(name, data, sheet=layer if layer is not None else sheet),
            crs=crs,
            lon_column=lon_column,
            lat_column=lat_column,
            want_points=want_points is not False,
        )
    elif suffix in CSV_SUFFIXES:
        gdf = _read_csv(
            name,
            data,
            crs=crs,
            lon_column=lon_column,
            lat_column=lat_column,
            want_points=want_points is not False,
        )
    else:
        gdf = _read_vector(name, data, layer)
        gdf = _clean_geometries(gdf, name)
        gdf = _convert_datum(gdf, crs)
        return _tidy(gdf)
    return _tidy(_clean_geometries(gdf, name))


def _tidy(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.reset_index(drop=True)
    out = _clean_text_columns(out)
    return out.set_crs("EPSG:4326", allow_override=True)


def _clean_text_columns(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Apply :func:`coverage.fileio.strip_controls` to every text value (names and ids of every user file)."""
    out = gdf
    for column in gdf.columns:
        dtype = gdf[column].dtype
        if column == "geometry" or not (
            pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
        ):
            continue
        values = gdf[column].to_numpy(dtype=object)
        dirty = [i for i, v in enumerate(values) if isinstance(v, str) and not v.isprintable()]
        if dirty:
            out = out.copy() if out is gdf else out
            cleaned = values.copy()
            cleaned[dirty] = [strip_controls(values[i]) for i in dirty]
            out[column] = pd.Series(cleaned, index=gdf.index, dtype=object)
            logger.info(
                "removed control characters from %d values of column %r", len(dirty), column
            )
    return out
