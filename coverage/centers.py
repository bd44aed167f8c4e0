"""Existing service centers: from OSM tags or a user file, deduplicated, snapped."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from coverage.coords import Crs, to_wgs84
from coverage.errors import InputError, PlannerWarning, ResourceLimitError
from coverage.network import WalkNetwork
from coverage.osm import OsmExtract
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, snap_frame
from coverage.userfiles import Source, check_lonlat, echo_list, read_points

logger = logging.getLogger(__name__)

#: Column names of a centers GeoDataFrame (see docs/ARCHITECTURE.md).
CENTER_ID = "center_id"
NAME = "name"
SOURCE = "source"
LEVEL = "level"
#: Floor area of a center in m² (``NaN`` when unknown); present when the centers file has one.
FLOOR_AREA_M2 = "floor_area_m2"
#: Spellings of the floor-area column tried when none is named (issue 15).
FLOOR_AREA_COLUMNS = (FLOOR_AREA_M2, "建筑面积", "建筑面积_m2", "面积_m2")

#: Columns of a centers GeoDataFrame, in order.
COLUMNS = (CENTER_ID, NAME, SOURCE, LEVEL, "geometry", SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M)
#: Normalised center levels, from the largest administrative unit to the smallest.
LEVELS = ("district", "street", "community", "grid")

#: Spellings accepted in a level column (compared after stripping and lower-casing).
LEVEL_ALIASES: dict[str, str] = {
    **{v: v for v in LEVELS},
    "区": "district",
    "区级": "district",
    "县": "district",
    "县级": "district",
    "区县": "district",
    "街道": "street",
    "街道级": "street",
    "街": "street",
    "街办": "street",
    "乡镇": "street",
    "镇": "street",
    "乡": "street",
    "社区": "community",
    "社区级": "community",
    "村": "community",
    "居委会": "community",
    "网格": "grid",
    "小区": "grid",
    "院落": "grid",
}

#: ``(keyword, level)`` tried in order on center names by :func:`level_from_name`;
#: the smallest unit comes first, so "XX街道XX社区党群服务中心" is a community center.
NAME_LEVEL_RULES: tuple[tuple[str, str], ...] = (
    ("网格", "grid"),
    ("小区", "grid"),
    ("社区", "community"),
    ("居委会", "community"),
    ("村委会", "community"),
    ("街道", "street"),
    ("街办", "street"),
    ("镇政府", "street"),
    ("乡政府", "street"),
    ("区委", "district"),
    ("区政府", "district"),
    ("区人民政府", "district"),
    ("县委", "district"),
    ("县政府", "district"),
    ("县人民政府", "district"),
)

LevelRule = Callable[[str | None, str | None], str | None]
"""``rule(name, osm_tags) -> level or None`` used by :func:`centers_from_osm`."""

Source_ = Literal["osm", "file", "added"]

DEFAULT_DEDUPE_M = 5.0
DEFAULT_MAX_SNAP_M = 300.0
DEFAULT_EXTENT_MARGIN_M = 1000.0
#: Most centers (or candidate sites) one file may hold. A city of 20 million has a few
#: thousand community service centers; every center costs one walking search per run.
#: Raise it with the environment variable ``COVERAGE_PLANNER_MAX_CENTERS``.
MAX_CENTERS = 50_000
MAX_CENTERS_ENV = "COVERAGE_PLANNER_MAX_CENTERS"


@dataclass(frozen=True)
class CenterColumns:
    """Column names of a centers file (``None``: detected, see :func:`centers_from_file`)."""

    lon: str | None = None
    lat: str | None = None
    name: str | None = None
    id: str | None = None
    level: str | None = None
    floor_area: str | None = None


@dataclass(frozen=True)
class SnapRules:
    """How center points are accepted and snapped to the walking network.

    Attributes
    ----------
    dedupe_m
        Centers closer than this to one another are merged (the first is kept).
    max_snap_m
        Centers farther than this from a walkable street are refused (files,
        added centers) or warned about (OSM).
    extent_margin_m
        Margin around the bounding box of the network's nodes within which
        centers are accepted.
    outside
        ``"raise"`` refuses centers outside the extent, listing them; ``"drop"``
        leaves them out with a warning.
    """

    dedupe_m: float = DEFAULT_DEDUPE_M
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    extent_margin_m: float = DEFAULT_EXTENT_MARGIN_M
    outside: Literal["raise", "drop"] = "raise"

    def __post_init__(self) -> None:
        """Refuse distances that are not finite and ≥ 0, and unknown ``outside`` values."""
        _check_params(self.dedupe_m, self.max_snap_m, self.extent_margin_m, self.outside)


def check_count(count: int, what: str, label: str) -> None:
    """Refuse more than :data:`MAX_CENTERS` centers or candidates, saying how to raise it.

    Raises
    ------
    ResourceLimitError
        ``count`` exceeds the limit.
    """
    raw = os.environ.get(MAX_CENTERS_ENV, "")
    limit = int(raw) if raw.strip().isdigit() else MAX_CENTERS
    if count > limit:
        msg = f"{label!r} holds {count:,} {what}, more than the limit of {limit:,} (each costs one walking search per run). Keep the {what} of the area you plan for, or raise the limit with the environment variable {MAX_CENTERS_ENV}."
        raise ResourceLimitError(msg)


def level_from_name(name: str | None, tags: str | None = None) -> str | None:
    """Guess a center's level from its name (default rule of :func:`centers_from_osm`).

    Returns
    -------
    str or None
        ``"grid"``, ``"community"``, ``"street"`` or ``"district"`` by the first
        keyword of :data:`NAME_LEVEL_RULES` found in ``name``; None otherwise.
    """
    if not isinstance(name, str):
        return None
    for keyword, level in NAME_LEVEL_RULES:
        if keyword in name:
            return level
    return None


def normalise_levels(values: Iterable[Any], *, what: str = "`level`") -> list[str | None]:
    """Map level spellings (English or Chinese, e.g. 街道, 社区级) to :data:`LEVELS`.

    Missing values become None; unknown values become None with a warning that
    lists them.

    Returns
    -------
    list of str or None
        One normalised level per input value.
    """
    out: list[str | None] = []
    unknown: set[str] = set()
    for value in values:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append(None)
            continue
        key = str(value).strip().lower()
        if not key or key in ("nan", "none"):
            out.append(None)
            continue
        level = LEVEL_ALIASES.get(key)
        if level is None:
            unknown.add(str(value))
        out.append(level)
    if unknown:
        values_s = ", ".join(sorted(unknown)[:10])
        warnings.warn(
            PlannerWarning(
                f"{what} has values that are not a known level: {values_s}; "
                f"they are left empty. Use one of {', '.join(LEVELS)} (or 区, 街道, 社区, 网格).",
                code="centers.unknown_levels",
                params={
                    "values": values_s,
                    "levels": ", ".join(LEVELS),
                    "aliases": "区, 街道, 社区, 网格",
                },
            ),
            stacklevel=3,
        )
    return out


def _empty_frame(crs: str) -> gpd.GeoDataFrame:
    data = {
        CENTER_ID: pd.Series([], dtype=object),
        NAME: pd.Series([], dtype=object),
        SOURCE: pd.Series([], dtype=object),
        LEVEL: pd.Series([], dtype=object),
        SNAP_EDGE: pd.Series([], dtype=np.int64),
        SNAP_OFFSET_M: pd.Series([], dtype=np.float64),
        SNAP_DISTANCE_M: pd.Series([], dtype=np.float64),
    }
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return gdf[list(COLUMNS)]


def _objects(values: Iterable[Any]) -> NDArray[np.object_]:
    """Return an object array with None for missing values (names and levels stay str-or-None)."""
    items = [
        None
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or str(v) == ""
        else str(v)
        for v in values
    ]
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def _attributes(
    ids: Sequence[str], names: Sequence[Any], source: str, levels: Sequence[str | None]
) -> pd.DataFrame:
    """Return the attribute columns of new centers (str or None values)."""
    return pd.DataFrame(
        {
            CENTER_ID: _objects(ids),
            NAME: _objects(names),
            SOURCE: _objects([source] * len(ids)),
            LEVEL: _objects(levels),
        }
    )


def _build(
    net: WalkNetwork,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    data: pd.DataFrame,
    *,
    rules: SnapRules,
    what: str,
) -> gpd.GeoDataFrame:
    """WGS-84 points → projected, extent-checked, deduplicated, snapped centers."""
    gdf = gpd.GeoDataFrame(data, geometry=shapely.points(lon, lat), crs="EPSG:4326").to_crs(net.crs)
    gdf = _check_extent(gdf, net, rules.extent_margin_m, rules.outside, what)
    gdf = _dedupe(gdf, rules.dedupe_m, what)
    return _snap(gdf, net, rules.max_snap_m, what)


def _check_params(dedupe_m: float, max_snap_m: float, extent_margin_m: float, outside: str) -> None:
    for label, value in (
        ("dedupe_m", dedupe_m),
        ("max_snap_m", max_snap_m),
        ("extent_margin_m", extent_margin_m),
    ):
        if not (np.isfinite(value) and value >= 0):
            msg = f"`{label}` must be a finite distance ≥ 0 m; got {value!r}."
            raise InputError(msg)
    if outside not in ("raise", "drop"):
        msg = f"`outside` must be 'raise' or 'drop'; got {outside!r}."
        raise InputError(msg)


def _describe(gdf: gpd.GeoDataFrame, rows: NDArray[np.intp]) -> str:
    pts = gdf.geometry.to_crs("EPSG:4326").values[rows[:10]]
    items = [
        f"{cid} ({name or 'unnamed'}, {x:.5f}, {y:.5f})"
        for cid, name, x, y in zip(
            gdf[CENTER_ID].values[rows[:10]],
            gdf[NAME].values[rows[:10]],
            shapely.get_x(pts),
            shapely.get_y(pts),
            strict=True,
        )
    ]
    more = f" and {rows.size - 10} more" if rows.size > 10 else ""
    return "; ".join(items) + more


def _check_extent(
    gdf: gpd.GeoDataFrame, net: WalkNetwork, margin_m: float, outside: str, what: str
) -> gpd.GeoDataFrame:
    x = shapely.get_x(gdf.geometry.values)
    y = shapely.get_y(gdf.geometry.values)
    x0, y0, x1, y1 = net.extent_m(margin_m)
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    if inside.all():
        return gdf
    rows = np.flatnonzero(~inside)
    listing = _describe(gdf, rows)
    if outside == "raise":
        msg = (
            f"{rows.size} of {len(gdf)} {what} lie outside the walking network's extent "
            f"(its bounding box plus {margin_m:.0f} m): {listing}. Check the coordinate "
            "system (`crs='gcj02'` for Amap/高德, `'bd09'` for Baidu/百度), that longitude "
            "and latitude are not swapped, and that the OSM extract covers these centers; "
            "or pass `outside='drop'` to leave them out."
        )
        raise InputError(msg)
    warnings.warn(
        PlannerWarning(
            f"dropped {rows.size} of {len(gdf)} {what} outside the walking network's extent: {listing}.",
            code="centers.outside",
            params={"n": int(rows.size), "total": len(gdf), "listing": listing},
        ),
        stacklevel=4,
    )
    kept = gdf.loc[inside].reset_index(drop=True)
    if len(kept) == 0:
        msg = f"None of the {what} lie within the walking network's extent; check the coordinate system and the OSM extract."
        raise InputError(msg)
    return kept


def _dedupe(gdf: gpd.GeoDataFrame, dedupe_m: float, what: str) -> gpd.GeoDataFrame:
    """Keep the first center of every group of centers chained within ``dedupe_m``."""
    n = len(gdf)
    if n < 2 or dedupe_m <= 0:
        return gdf
    geoms = gdf.geometry.values
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=dedupe_m)
    graph = sparse.coo_array((np.ones(i.size), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    _, first = np.unique(label, return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[first] = True
    dropped = n - int(keep.sum())
    if dropped:
        logger.info("merged %d duplicate %s closer than %.1f m to another", dropped, what, dedupe_m)
    return gdf.loc[keep].reset_index(drop=True)


def _snap(
    gdf: gpd.GeoDataFrame, net: WalkNetwork, max_snap_m: float, what: str
) -> gpd.GeoDataFrame:
    out = snap_frame(net, gdf)
    far = np.flatnonzero(out[SNAP_DISTANCE_M].to_numpy() > max_snap_m)
    if far.size:
        listing = _describe(out, far)
        warnings.warn(
            PlannerWarning(
                f"{far.size} {what} are more than {max_snap_m:.0f} m from the nearest walkable "
                f"street: {listing}. Their walking times include that straight-line "
                "walk; check their positions.",
                code="centers.far_from_street",
                params={"n": int(far.size), "m": float(max_snap_m), "listing": listing},
            ),
            stacklevel=4,
        )
    out = out[_kept_columns(out)].reset_index(drop=True)
    return _as_contract(gpd.GeoDataFrame(out, geometry="geometry", crs=net.crs))


def _kept_columns(gdf: pd.DataFrame) -> list[str]:
    """Return the contract columns, plus the floor area when the centers carry one."""
    return list(COLUMNS) + ([FLOOR_AREA_M2] if FLOOR_AREA_M2 in gdf.columns else [])


def _as_contract(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Text columns as object dtype with None for missing (not pandas' NaN-filled str)."""
    out = gdf.copy()
    for col in (CENTER_ID, NAME, SOURCE, LEVEL):
        out[col] = pd.Series(_objects(out[col]), index=out.index, dtype=object)
    return out


def _unique_ids(ids: Sequence[str], what: str) -> None:
    s = pd.Series(list(ids), dtype=object)
    dup = s[s.duplicated(keep=False)]
    if len(dup):
        shown = ", ".join(sorted(set(map(str, dup)))[:10])
        msg = f"{what} ids must be unique; repeated: {shown}. Give each center its own id or leave `id_column` unset to number them."
        raise InputError(msg)


# --- public API ---------------------------------------------------------------


def centers_from_osm(
    extract: OsmExtract,
    net: WalkNetwork,
    *,
    level_rule: LevelRule | None = None,
    dedupe_m: float = DEFAULT_DEDUPE_M,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    extent_margin_m: float = DEFAULT_EXTENT_MARGIN_M,
    outside: Literal["raise", "drop"] = "drop",
) -> gpd.GeoDataFrame:
    """Existing centers from the OSM extract's center features, snapped to ``net``.

    Parameters
    ----------
    extract
        The OSM extract (``extract.center_features``).
    net
        The walking network; output is in ``net.crs``.
    level_rule
        ``rule(name, tags) -> level``; None uses :func:`level_from_name`
        (name contains 社区 → community, 街道 → street, ...).
    dedupe_m
        Centers closer than this to one another are merged (the first is kept).
    max_snap_m
        Warn about centers farther than this from a walkable street.
    extent_margin_m
        Margin around the bounding box of the network's nodes within which
        centers are accepted.
    outside
        ``"drop"`` (default for OSM, whose complete ways reach past the network)
        drops centers outside the extent with a warning; ``"raise"`` refuses them.

    Returns
    -------
    geopandas.GeoDataFrame
        ``center_id`` (``"osm-<type letter><id>"``), ``name``, ``source``
        (``"osm"``), ``level``, Point ``geometry``, ``snap_edge``,
        ``snap_offset_m``, ``snap_distance_m``; RangeIndex; CRS ``net.crs``.

    Raises
    ------
    InputError
        No center features in the extract, or none within the network's extent.
    """
    feats = extract.center_features
    if len(feats) == 0:
        msg = (
            f"{extract.path.name!r} has no service-center features (office=government, "
            "amenity=townhall/community_centre/social_facility/social_centre). Upload the "
            "centers as a CSV or GeoJSON file instead (`centers_from_file`)."
        )
        raise InputError(msg)
    rule = level_from_name if level_rule is None else level_rule
    names = feats["name"].tolist()
    tags = feats["tags"].tolist() if "tags" in feats.columns else [None] * len(feats)
    levels = [rule(n if isinstance(n, str) else None, t) for n, t in zip(names, tags, strict=True)]
    bad = sorted({str(lv) for lv in levels if lv is not None and lv not in LEVELS})
    if bad:
        msg = f"`level_rule` returned unknown levels {', '.join(bad)}; return one of {', '.join(LEVELS)} or None."
        raise InputError(msg)
    ids = [
        f"osm-{str(t)[:1]}{int(i)}" for t, i in zip(feats["osm_type"], feats["osm_id"], strict=True)
    ]
    pts = feats.geometry.values
    out = _build(
        net,
        shapely.get_x(pts),
        shapely.get_y(pts),
        _attributes(ids, names, "osm", levels),
        rules=SnapRules(dedupe_m, max_snap_m, extent_margin_m, outside),
        what="OSM centers",
    )
    logger.info("returned %d centers from OSM", len(out))
    return out


def centers_from_file(
    source: Source,
    net: WalkNetwork,
    *,
    crs: Crs | str = "wgs84",
    columns: CenterColumns = CenterColumns(),
    filename: str | None = None,
    rules: SnapRules = SnapRules(),
) -> gpd.GeoDataFrame:
    """Existing centers from a user file (CSV, GeoJSON, GeoPackage), snapped to ``net``.

    Parameters
    ----------
    source
        Path, or bytes / binary file object of an upload (then give ``filename``).
    net
        The walking network; output is in ``net.crs``.
    crs
        ``"wgs84"``, ``"gcj02"`` (Amap/高德) or ``"bd09"`` (Baidu/百度).
    columns
        Column names (:class:`CenterColumns`): ``lon``/``lat`` for a CSV (detected
        by default, see :mod:`coverage.userfiles`); ``name`` (default
        ``name``/``名称``/``名字``/``中心名称`` if present); ``id`` of unique center
        ids (default: ``file-1``, ``file-2``...); ``level`` (district/street/
        community/grid or 区/街道/社区/网格; default ``level``/``级别``/``层级`` if
        present, else levels are guessed from names).
    filename
        Name of an upload (its extension selects the format).
    rules
        :class:`SnapRules`; by default centers outside the network's extent are
        refused, listing them (``outside="drop"`` leaves them out with a warning).

    Returns
    -------
    geopandas.GeoDataFrame
        ``center_id``, ``name``, ``source`` (``"file"``), ``level``, Point
        ``geometry``, ``snap_edge``, ``snap_offset_m``, ``snap_distance_m``;
        RangeIndex; CRS ``net.crs``.
    """
    pts = read_points(
        source, filename=filename, crs=crs, lon_column=columns.lon, lat_column=columns.lat
    )
    label = filename or (str(source) if isinstance(source, str) else getattr(source, "name", ""))
    label = str(label).replace("\\", "/").rsplit("/", 1)[-1] or "file"
    check_count(len(pts), "centers", label)
    present = [c for c in pts.columns if c != "geometry"]
    name_col = _pick(present, columns.name, ("name", "名称", "名字", "中心名称", "站点名称"), label)
    level_col = _pick(present, columns.level, ("level", "级别", "层级", "等级"), label)
    id_col = _pick(present, columns.id, ("center_id",), label) if columns.id else None
    n = len(pts)
    names = pts[name_col].tolist() if name_col else [None] * n
    if id_col:
        ids = [str(v).strip() for v in pts[id_col]]
        _unique_ids(ids, f"{label!r} column {id_col!r}:")
    else:
        ids = [f"file-{i + 1}" for i in range(n)]
    if level_col:
        levels = normalise_levels(pts[level_col], what=f"{label} column {level_col!r}")
    else:
        levels = [level_from_name(v if isinstance(v, str) else None) for v in names]
    geoms = pts.geometry.values
    data = _attributes(ids, names, "file", levels)
    area_col = _pick(present, columns.floor_area, FLOOR_AREA_COLUMNS, label)
    if area_col:
        data[FLOOR_AREA_M2] = floor_area_values(pts[area_col], f"{label} column {area_col!r}")
    out = _build(
        net,
        shapely.get_x(geoms),
        shapely.get_y(geoms),
        data,
        rules=rules,
        what=f"centers in {label}",
    )
    logger.info("returned %d centers from %s", len(out), label)
    return out


def floor_area_values(values: pd.Series, what: str) -> NDArray[np.float64]:
    """Return floor areas in m² (``NaN`` for blanks), refusing text and negative numbers.

    Raises
    ------
    InputError
        A value that is neither blank nor a finite number >= 0; the message lists rows.
    """
    raw = pd.Series(values).reset_index(drop=True)
    text = raw.astype(object).where(raw.notna(), None)
    blank = text.map(lambda v: v is None or (isinstance(v, str) and not v.strip()))
    num = np.array(pd.to_numeric(text.where(~blank, None), errors="coerce"), dtype=np.float64)
    bad = ~blank.to_numpy() & ~(np.isfinite(num) & (num >= 0))
    if bad.any():
        rows = [f"row {i + 1}: {raw.iloc[i]!r}" for i in np.flatnonzero(bad)[:5]]
        msg = f"{what} must hold floor areas in m² (numbers >= 0, or blank when unknown); got {'; '.join(rows)}. Fix those cells or leave them blank."
        raise InputError(msg)
    num[blank.to_numpy()] = np.nan
    return num


def _pick(
    columns: list[str], wanted: str | None, defaults: Sequence[str], label: str
) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            msg = f"{label!r} has no column {wanted!r}; its columns are: {', '.join(columns)}."
            raise InputError(msg)
        return wanted
    lookup = {str(c).strip().lower(): c for c in columns}
    return next((lookup[d] for d in defaults if d in lookup), None)


def add_centers(
    centers: gpd.GeoDataFrame,
    net: WalkNetwork,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    names: Sequence[str | None] | str | None = None,
    level: str | None = None,
    crs: Crs | str = "wgs84",
    rules: SnapRules = SnapRules(),
) -> gpd.GeoDataFrame:
    """Return ``centers`` plus new centers at ``lon``/``lat`` (e.g. map clicks).

    A new center within ``dedupe_m`` of an existing one is not added (logged).
    ``centers`` is not modified.

    Parameters
    ----------
    centers
        Existing centers (the centers contract, in ``net.crs``); may be empty.
    net
        The walking network.
    lon, lat
        Longitude(s) and latitude(s) of the new centers in ``crs``.
    names
        One name per new center, or one name for a single center.
    level
        Level of the new centers (district/street/community/grid or Chinese).
    crs
        Datum of ``lon``/``lat``; ``"gcj02"`` for clicks on an Amap/高德 base map.
    rules
        :class:`SnapRules` (``outside`` is ignored: a new center outside the
        network's extent is always refused).

    The new centers' ``source`` is ``"added"``.

    Returns
    -------
    geopandas.GeoDataFrame
        The centers contract (``center_id``, ``name``, ``source``, ``level``,
        geometry, snap columns); new ids are ``added-1``, ``added-2``... not
        already used; RangeIndex; CRS ``net.crs``.
    """
    _check_centers(centers, net)
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    if x.shape != y.shape or x.ndim != 1:
        msg = f"`lon` and `lat` must be numbers or 1-D sequences of equal length; got shapes {x.shape} and {y.shape}."
        raise InputError(msg)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        msg = "`lon` and `lat` must be finite numbers (degrees); got NaN or infinity."
        raise InputError(msg)
    check_lonlat(x, y, name="new centers", offset=1)
    x, y = to_wgs84(x, y, crs)
    n = x.size
    if names is None:
        name_list: list[str | None] = [None] * n
    elif isinstance(names, str):
        name_list = [names] * n
    else:
        name_list = list(names)
    if len(name_list) != n:
        msg = f"`names` must give one name per new center ({n}); got {len(name_list)}."
        raise InputError(msg)
    levels = normalise_levels([level] * n, what="`level`") if level is not None else [None] * n
    source = "added"
    used = set(map(str, centers[CENTER_ID])) if len(centers) else set()
    ids: list[str] = []
    k = 0
    while len(ids) < n:
        k += 1
        cid = f"{source}-{k}"
        if cid not in used:
            ids.append(cid)
    rules = SnapRules(rules.dedupe_m, rules.max_snap_m, rules.extent_margin_m, "raise")
    new = _build(
        net, x, y, _attributes(ids, name_list, source, levels), rules=rules, what="new centers"
    )
    dedupe_m = rules.dedupe_m
    if len(centers):
        near = shapely.STRtree(centers.geometry.values).query(
            new.geometry.values, predicate="dwithin", distance=dedupe_m
        )
        dup = np.unique(near[0])
        if dup.size:
            logger.info(
                "%d new centers are within %.1f m of an existing one; not added", dup.size, dedupe_m
            )
            new = new.drop(index=new.index[dup])
        parts = [centers[_kept_columns(centers)], new]
        out = pd.concat([p for p in parts if len(p)], ignore_index=True)
    else:
        out = new
    out = _as_contract(gpd.GeoDataFrame(out, geometry="geometry", crs=net.crs))
    logger.info("returned %d centers (%d added)", len(out), len(out) - len(centers))
    return out


def close_centers(centers: gpd.GeoDataFrame, ids: Iterable[str]) -> gpd.GeoDataFrame:
    """Return ``centers`` without the centers whose ``center_id`` is in ``ids``.

    Closing every center is allowed (the result is empty, same columns).

    Returns
    -------
    geopandas.GeoDataFrame
        The remaining centers, same columns and CRS, RangeIndex.

    Raises
    ------
    InputError
        Some ``ids`` are not center ids (they are listed).
    """
    if isinstance(ids, str):
        ids = [ids]
    wanted = [str(i) for i in ids]
    known = set(map(str, centers[CENTER_ID]))
    unknown = [i for i in dict.fromkeys(wanted) if i not in known]
    if unknown:
        sample = echo_list(sorted(known))
        msg = f"Cannot close {len(unknown):,} unknown centers: {echo_list(unknown)}. Known center ids include: {sample}."
        raise InputError(msg)
    keep = ~centers[CENTER_ID].astype(str).isin(set(wanted)).to_numpy()
    out = centers.loc[keep].reset_index(drop=True)
    logger.info("closed %d centers; %d remain", len(centers) - len(out), len(out))
    return out


def _check_centers(centers: gpd.GeoDataFrame, net: WalkNetwork) -> None:
    if not isinstance(centers, gpd.GeoDataFrame):
        msg = f"`centers` must be a centers GeoDataFrame; got {type(centers).__name__}."
        raise InputError(msg)
    missing = [c for c in COLUMNS if c not in centers.columns]
    if missing:
        msg = f"`centers` lacks columns {', '.join(missing)}; build it with `centers_from_osm` or `centers_from_file`."
        raise InputError(msg)
    if len(centers) and (centers.crs is None or not centers.crs.equals(net.crs)):
        msg = f"`centers` is in {centers.crs}, the network in {net.crs}; project it first (`centers.to_crs(net.crs)`)."
        raise InputError(msg)


def empty_centers(net: WalkNetwork) -> gpd.GeoDataFrame:
    """Return an empty centers GeoDataFrame in ``net.crs`` (to start from map clicks only).

    Returns
    -------
    geopandas.GeoDataFrame
        No rows; the columns of the centers contract.
    """
    return _empty_frame(net.crs)
