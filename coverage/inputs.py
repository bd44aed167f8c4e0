"""The inputs of a run, described once, and the city loaded from them.

:class:`CityInputs` is the one frozen description of what a run reads: the OSM
extract; the existing centers (a user file with its coordinate system and
column names, or OSM tags); population; districts; candidate sites; areas
where no site may go; the network cache. The CLI, the batch and the app all
build one and hand it to :func:`load_city`, which reads every file, converts
GCJ-02 / BD-09 coordinates to WGS-84 with the same ``crs`` for every user file,
and validates and snaps centers, demand and candidates to the walking network
ONCE. Later code (audit, siting, batch, export) relies on that contract.

:meth:`CityInputs.key` is a stable hash of the file contents (uploads) or file
stats (paths) and the options: the app caches a loaded city on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from coverage.census import CensusFile, census_demand, check_census
from coverage.centers import CenterColumns, centers_from_file, centers_from_osm
from coverage.coords import CRS_NAMES
from coverage.demand import PopulationFile, PopulationModel, demand_units
from coverage.errors import InputError, PlannerWarning
from coverage.i18n import MESSAGES, t
from coverage.netcache import DEFAULT_CACHE_DIR, cache_key, walk_network
from coverage.network import WalkNetwork
from coverage.osm import (
    DEFAULT_CENTER_TAGS,
    MAX_PLACES,
    OsmExtract,
    check_osm_file,
    default_memory_budget_bytes,
    file_sha256,
    named_places,
    read_osm,
)
from coverage.osmcache import derived_key, derived_path, load_frame, save_frame
from coverage.progress import ProgressFn, sub_progress
from coverage.siting import candidates_from_file
from coverage.userfiles import check_regular_file, read_points, read_polygons

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
#: The embedded demo city (central Chengdu), used when no OSM file is given.
DEFAULT_CITY = ROOT / "data" / "chengdu_central.osm.bz2"
#: The real station sites of the embedded city: 22 street offices (街道办事处) and 69
#: community committees (社区居委会) inside the extract, where street- and community-level
#: 党群服务中心 are usually housed. GCJ-02 (Amap) coordinates. Source: github Vonng/adcode,
#: commit b755d6e4 (NBS division codes, 2016 release; Amap geocoding), CC BY 4.0; see
#: data/README.md.
DEFAULT_STATIONS = ROOT / "data" / "chengdu_central_communities_gcj02.csv"
#: Datum of :data:`DEFAULT_STATIONS` (whatever the run's ``crs``).
DEFAULT_STATIONS_CRS = "gcj02"
#: Columns of :data:`DEFAULT_STATIONS` (longitude/latitude ``经度``/``纬度`` are detected).
DEFAULT_STATIONS_COLUMNS = CenterColumns(id="编码", name="名称", level="级别")
#: Attribution the license of :data:`DEFAULT_STATIONS` asks for.
DEFAULT_STATIONS_ATTRIBUTION = "Vonng/adcode, CC BY 4.0"
#: Walking standard per level of the default stations, after GB 50180-2018 (城市居住区规划
#: 设计标准): the facilities of its 15-minute life circle (十五分钟生活圈居住区, 800–1000 m
#: on foot, 50,000–100,000 residents) include the street office (街道办事处) and a community
#: service center; those of its 5-minute life circle (五分钟生活圈居住区, about 300 m,
#: 5,000–12,000 residents) are the community services (社区服务设施, e.g. 社区服务站).
#: The standard's distances are shorter than 15 and 5 minutes at 4.5 km/h (1,125 m and
#: 375 m): it assumes a slower walk. ``--level-minutes`` overrides these.
DEFAULT_LEVEL_MINUTES: Mapping[str, float] = MappingProxyType({"street": 15.0, "community": 5.0})
#: ``centers_source.kind`` values: the embedded stations, OSM tags, a user file.
CENTERS_EMBEDDED, CENTERS_OSM, CENTERS_FILE = "embedded", "osm", "file"
#: Name column of a district layer (:func:`districts_from_file`, :func:`districts_from_osm`).
DISTRICT = "district"


# --- the description -------------------------------------------------------------------


@dataclass(frozen=True)
class FileInput:
    """A user file: a path on disk, or uploaded bytes with the upload's file name.

    Parameters
    ----------
    source
        The path, or the file's bytes.
    name
        File name (its extension selects the format); default: the path's name.
    """

    source: Path | bytes
    name: str = ""

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if isinstance(self.source, str):
            object.__setattr__(self, "source", Path(self.source))
        if not isinstance(self.source, (Path, bytes)):
            msg = f"A user file must be a path or bytes; got {type(self.source).__name__}."
            raise InputError(msg)
        if not self.name:
            if isinstance(self.source, bytes):
                msg = "An uploaded file (bytes) needs its file name, e.g. `FileInput(data, 'centers.csv')`."
                raise InputError(msg)
            object.__setattr__(self, "name", self.source.name)

    @classmethod
    def of(cls, value: FileInput | Path | str | None) -> FileInput | None:
        """``value`` as a :class:`FileInput` (a path is wrapped, ``None`` stays ``None``)."""
        if value is None or isinstance(value, FileInput):
            return value
        return cls(Path(value))

    def fingerprint(self) -> dict[str, Any]:
        """Return what identifies the file's content: sha256 of bytes, or path, size and mtime."""
        if isinstance(self.source, bytes):
            return {"name": self.name, "sha256": hashlib.sha256(self.source).hexdigest()}
        p = self.source
        stat = p.stat() if p.exists() else None
        return {
            "path": str(p.expanduser().resolve()),
            "size": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None,
        }

    def check(self, what: str) -> None:
        """Raise ``InputError`` when a path is missing or not a regular file (FIFO, device, folder)."""
        if isinstance(self.source, Path):
            check_regular_file(self.source, what)


@dataclass(frozen=True)
class CityInputs:
    """Everything that decides which city a run loads.

    Parameters
    ----------
    osm
        Local OSM extract (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``).
    crs
        Coordinate system of every user file (centers, population, districts,
        candidates, exclusions): ``wgs84`` (GPS, OSM), ``gcj02`` (Amap/高德,
        Tencent) or ``bd09`` (Baidu/百度).
    centers
        Existing centers file; ``None``: the embedded station list
        (:data:`DEFAULT_STATIONS`) when ``osm`` is the embedded city, else the
        centers tagged ``center_tags`` in OSM.
    osm_centers
        Take the centers tagged ``center_tags`` in OSM even for the embedded
        city (the CLI's ``--centers osm``); ignored when ``centers`` is given.
    center_columns
        Column names of the centers file.
    center_tags
        OSM tags of existing centers (used without a centers file).
    population
        Population polygons, points or a GeoTIFF raster replacing the OSM estimate.
    population_column
        Population column of a polygon or point file.
    census
        Census polygons with counts per area (街道 / 社区), spread over the
        residential land inside each area (:mod:`coverage.census`); replaces
        the OSM estimate. Not together with ``population``.
    census_column
        Census population column (``None``: ``population`` / ``人口`` / ``常住人口`` …).
    census_households_column
        Household column of the census file (``None``: ``households`` / ``户数`` if present).
    census_group_columns
        Census columns passed through to the ``census`` report (e.g. ``街道``).
    population_groups
        Columns of population groups in the population or census file (e.g.
        ``60岁及以上``), reported per group (:mod:`coverage.groups`).
    districts
        District polygons (audited per district; the batch's districts).
    district_name_column
        Name column of the districts file.
    admin_level
        Without a districts file: OSM ``boundary=administrative`` at this
        ``admin_level`` as districts (``None``: no districts).
    candidates
        Candidate sites (points) for siting; default: points along the streets.
    exclusions
        Polygons where no new site may go.
    cache_dir
        Walking-network cache folder (``None`` disables it).
    memory_budget_bytes
        Memory budget (``--max-memory-gb``) of every guard: the OSM read, the
        population cells and raster window (:func:`coverage.demand.demand_units`)
        and the districts' vertices (:func:`districts_from_file`); default 80 %
        of the memory available when the run starts.
    """

    osm: Path = DEFAULT_CITY
    crs: str = "wgs84"
    centers: FileInput | None = None
    osm_centers: bool = False
    center_columns: CenterColumns = field(default_factory=CenterColumns)
    center_tags: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_CENTER_TAGS)
    )
    population: FileInput | None = None
    population_column: str = "population"
    census: FileInput | None = None
    census_column: str | None = None
    census_households_column: str | None = None
    census_group_columns: tuple[str, ...] = ()
    population_groups: tuple[str, ...] = ()
    districts: FileInput | None = None
    district_name_column: str = "name"
    admin_level: str | None = None
    candidates: FileInput | None = None
    exclusions: FileInput | None = None
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    memory_budget_bytes: int | None = None

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        object.__setattr__(self, "osm", Path(self.osm))
        crs = str(self.crs).lower().replace("-", "").replace("_", "")
        if crs not in CRS_NAMES:
            msg = f"`crs` must be one of {', '.join(CRS_NAMES)}; got {self.crs!r}. Use 'gcj02' for Amap/高德 or Tencent coordinates, 'bd09' for Baidu/百度, 'wgs84' for GPS or OpenStreetMap."
            raise InputError(msg)
        object.__setattr__(self, "crs", crs)
        object.__setattr__(self, "population_groups", tuple(map(str, self.population_groups)))
        for name in ("centers", "population", "census", "districts", "candidates", "exclusions"):
            object.__setattr__(self, name, FileInput.of(getattr(self, name)))
        if self.population is not None and self.census is not None:
            msg = "Give either a population file (`--population`) or a census file (`--census`), not both: each replaces the OSM estimate."
            raise InputError(msg)
        object.__setattr__(
            self, "census_group_columns", tuple(str(c) for c in self.census_group_columns)
        )
        tags = {str(k): tuple(str(v) for v in vals) for k, vals in dict(self.center_tags).items()}
        object.__setattr__(self, "center_tags", tags)
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.admin_level is not None:
            object.__setattr__(self, "admin_level", str(self.admin_level))

    def key(self) -> str:
        """Return a stable hash of the files (content or stat) and every option; the app's cache key."""
        osm = self.osm
        stat = osm.stat() if osm.exists() else None
        files = {
            name: None if f is None else f.fingerprint()
            for name, f in (
                ("centers", self.centers),
                ("population", self.population),
                ("census", self.census),
                ("districts", self.districts),
                ("candidates", self.candidates),
                ("exclusions", self.exclusions),
            )
        }
        parts: dict[str, Any] = {
            "osm": str(osm.expanduser().resolve()),
            "osm_size": stat.st_size if stat else None,
            "osm_mtime_ns": stat.st_mtime_ns if stat else None,
            "crs": self.crs,
            "files": files,
            "osm_centers": self.osm_centers,
            "center_columns": {
                k: v
                for k, v in asdict(self.center_columns).items()
                if v is not None or k != "floor_area"  # earlier keys stay valid
            },
            "center_tags": {k: list(v) for k, v in sorted(self.center_tags.items())},
            "population_column": self.population_column,
            "census_columns": [
                self.census_column,
                self.census_households_column,
                list(self.census_group_columns),
            ],
            "district_name_column": self.district_name_column,
            "admin_level": self.admin_level,
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            "memory_budget_bytes": self.memory_budget_bytes,
        }
        if self.population_groups:  # only then, so earlier keys stay valid
            parts["population_groups"] = list(self.population_groups)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


# --- districts -------------------------------------------------------------------------


#: Memory one vertex of a district polygon costs while it is read, checked and repaired
#: (GDAL's parse, shapely, ``make_valid``): an upper estimate, about twice the ~500 B
#: measured on a polygon of 10^6 vertices.
BYTES_PER_DISTRICT_VERTEX = 1_000
#: Districts are cut to the network's extent grown by this margin before anything else
#: uses them: farther than any batch walking buffer (15 min at 4.5 km/h is 1.1 km) and
#: than the 1 km within which centers may lie outside the network, so no answer changes.
DISTRICT_MARGIN_M = 20_000.0


def max_district_vertices(memory_budget_bytes: int | None = None) -> int:
    """Most vertices a districts file may hold within a memory budget.

    Parameters
    ----------
    memory_budget_bytes
        The budget; default :func:`coverage.osm.default_memory_budget_bytes`.

    Returns
    -------
    int
        ``budget // BYTES_PER_DISTRICT_VERTEX``, at least 100,000.
    """
    budget = (
        default_memory_budget_bytes() if memory_budget_bytes is None else int(memory_budget_bytes)
    )
    return max(budget // BYTES_PER_DISTRICT_VERTEX, 100_000)


def districts_from_file(
    source: Path | str | bytes,
    *,
    name_column: str = "name",
    filename: str | None = None,
    crs: str = "wgs84",
    memory_budget_bytes: int | None = None,
) -> gpd.GeoDataFrame:
    """Read district boundaries (GeoJSON / GeoPackage) into a ``district`` column.

    Their vertices are counted before they are repaired or dissolved: more than
    :func:`max_district_vertices` of the budget is refused. :func:`load_city`
    then cuts them to the network's extent (:func:`clip_districts`).

    Parameters
    ----------
    source
        Path or bytes (then give ``filename``).
    name_column
        Column of district names.
    filename
        Name of an upload.
    crs
        Coordinate system of the file's coordinates (``wgs84``, ``gcj02``, ``bd09``).
    memory_budget_bytes
        Memory budget; default :func:`coverage.osm.default_memory_budget_bytes`.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``district`` (unique name) and geometry (polygons).

    Raises
    ------
    InputError
        No column ``name_column``, features that are not polygons, no features.
    ResourceLimitError
        More vertices than the budget allows.
    """
    gdf = read_polygons(
        source,
        filename=filename,
        crs=crs,
        max_vertices=max_district_vertices(memory_budget_bytes),
    )
    if name_column not in gdf.columns:
        cols = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        msg = f"The districts file has no column {name_column!r}; columns found: {cols}. Pass the name column with `--district-name-column`."
        params = {"column": name_column, "columns": cols}
        raise InputError(msg, code="districts.no_column", params=params)
    out = gdf[[name_column, gdf.geometry.name]].rename(columns={name_column: DISTRICT})
    return normalise_districts(out)


def districts_from_osm(
    extract: OsmExtract, *, admin_level: str | int | None = None
) -> gpd.GeoDataFrame:
    """District polygons from ``boundary=administrative`` in the OSM extract.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``district`` (the boundary's name, else its OSM id) and geometry.
    """
    b = extract.boundaries
    levels = sorted(set(b["admin_level"].dropna().astype(str))) if len(b) else []
    if admin_level is not None:
        b = b[b["admin_level"].astype(str) == str(admin_level)]
    elif len(levels) > 1:
        # Levels nest (city ⊃ district ⊃ street): mixing them would double count.
        counts = b["admin_level"].astype(str).value_counts()
        chosen = max(levels, key=lambda lv: (int(counts.get(lv, 0)), _level_number(lv)))
        warnings.warn(
            PlannerWarning(
                f"The OSM file has administrative boundaries at levels {', '.join(levels)}; "
                f"using admin_level={chosen} (the most boundaries). Choose with `--admin-level`.",
                code="districts.admin_levels",
                params={"levels": ", ".join(levels), "chosen": chosen},
            ),
            stacklevel=2,
        )
        b = b[b["admin_level"].astype(str) == chosen]
    if b.empty:
        msg = (
            f"The OSM file has no administrative boundaries at admin_level={admin_level!r} "
            f"(levels present: {', '.join(levels) or 'none'}). Give a districts file with `--districts`."
        )
        raise InputError(msg)
    gdf = b.rename(columns={"name": DISTRICT})
    gdf[DISTRICT] = gdf[DISTRICT].where(gdf[DISTRICT].notna(), gdf["osm_id"].astype(str))
    return normalise_districts(gdf[[DISTRICT, gdf.geometry.name]])


def _level_number(level: str) -> float:
    try:
        return float(level)
    except ValueError:
        return -1.0


def normalise_districts(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Check and tidy a district layer: polygons, names as text, one row per name.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``district`` and geometry, RangeIndex; rows of one name dissolved.
    """
    if not isinstance(gdf, gpd.GeoDataFrame) or DISTRICT not in gdf.columns:
        msg = f"`districts` must be a GeoDataFrame with a {DISTRICT!r} column; read it with `districts_from_file`."
        raise InputError(msg)
    if gdf.crs is None:
        msg = "`districts` has no CRS; set it (e.g. `gdf.set_crs('EPSG:4326')`)."
        raise InputError(msg)
    gdf = gdf[[DISTRICT, gdf.geometry.name]].copy()
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        msg = "The districts layer holds no polygons; check the file and its name column."
        raise InputError(msg, code="districts.empty")
    types = set(gdf.geometry.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        msg = f"Districts must be polygons; found {', '.join(sorted(types))}. Use the polygon layer of the boundaries."
        params = {"types": ", ".join(sorted(types))}
        raise InputError(msg, code="districts.not_polygons", params=params)
    names = gdf[DISTRICT]
    if names.isna().any():
        msg = f"{int(names.isna().sum())} district(s) have no name; fill the name column."
        raise InputError(msg, code="districts.unnamed", params={"n": int(names.isna().sum())})
    gdf[DISTRICT] = names.astype(str).str.strip()
    if gdf[DISTRICT].duplicated().any():
        # Several polygons of one district (islands): one row each.
        gdf = gdf.dissolve(by=DISTRICT, as_index=False, sort=False)
    gdf.geometry = shapely.make_valid(gdf.geometry.values)
    return gdf.reset_index(drop=True)


def clip_districts(
    districts: gpd.GeoDataFrame, net: WalkNetwork, *, margin_m: float = DISTRICT_MARGIN_M
) -> gpd.GeoDataFrame:
    """Cut districts to the network's extent (plus ``margin_m``) and project them to ``net.crs``.

    The cut is made in the districts' own CRS, on the extent's bounding box there
    (which contains the projected box), before projecting: a country-sized polygon
    costs what its part around the city costs. A district wholly outside the box
    is kept as it is (it has no residents; the per-district table still lists it).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``district`` and geometry in ``net.crs``, same index as ``districts``.
    """
    if districts.crs is None:
        msg = "`districts` has no CRS; set it (e.g. `gdf.set_crs('EPSG:4326')`)."
        raise InputError(msg)
    box = Transformer.from_crs(net.crs, districts.crs, always_xy=True).transform_bounds(
        *net.extent_m(margin_m), densify_pts=21
    )
    geoms = np.asarray(districts.geometry.values)
    cut = shapely.clip_by_rect(geoms, *box)
    polygonal = np.isin(
        shapely.get_type_id(cut),
        [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON],
    ) & ~shapely.is_empty(cut)
    changed = polygonal & (shapely.get_num_coordinates(cut) != shapely.get_num_coordinates(geoms))
    if changed.any():
        logger.info("%d districts reach beyond the network's extent; cut to it", int(changed.sum()))
    kept = np.where(polygonal, cut, geoms)
    bad = ~shapely.is_valid(kept)
    kept[bad] = shapely.make_valid(kept[bad])
    out = districts.set_geometry(gpd.GeoSeries(kept, index=districts.index, crs=districts.crs))
    return out.to_crs(net.crs)


# --- loading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CityData:
    """Heavy, read-only inputs shared by every scenario of one city.

    ``centers``, ``demand`` and ``candidates`` are validated and snapped to
    ``net`` (docs/ARCHITECTURE.md, data contracts); ``districts`` and
    ``exclusions`` are in ``net.crs``. ``extract`` is ``None`` for a city
    clipped from another one (the batch's districts).
    """

    source_name: str
    source_sha256: str
    net: WalkNetwork
    centers: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    extract: OsmExtract | None = None
    population_model: Mapping[str, Any] = field(default_factory=dict)
    centers_source: Mapping[str, Any] = field(default_factory=dict)
    census: Mapping[str, Any] | None = None
    districts: gpd.GeoDataFrame | None = None
    candidates: gpd.GeoDataFrame | None = None
    exclusions: gpd.GeoDataFrame | None = None
    cache_dir: Path | None = None  # the inputs' cache folder (derived data of re-runs)
    #: The offline map's place labels (``name``, points, EPSG:4326; :func:`coverage.osm.named_places`),
    #: from the extract or, on a warm cache, from the cache; None when neither has them.
    places: gpd.GeoDataFrame | None = None


def check_inputs(inputs: CityInputs) -> None:
    """Cheap checks of every input before the slow steps (nothing is snapped here).

    The OSM file's header, every user file's presence, and the point and
    polygon files read once (their warnings are left to :func:`load_city`).

    Raises
    ------
    InputError
        A missing or unreadable file, named with what to fix.
    """
    check_osm_file(inputs.osm)
    if inputs.population is not None:
        inputs.population.check("Population file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load_city reports them once
        if inputs.census is not None:
            inputs.census.check("Census file")
            check_census(_census_spec(inputs, inputs.census))
        if inputs.centers is not None:
            inputs.centers.check("Centers file")
            read_points(
                inputs.centers.source,
                filename=inputs.centers.name,
                crs=inputs.crs,
                lon_column=inputs.center_columns.lon,
                lat_column=inputs.center_columns.lat,
            )
        if inputs.candidates is not None:
            inputs.candidates.check("Candidates file")
            read_points(inputs.candidates.source, filename=inputs.candidates.name, crs=inputs.crs)
        if inputs.exclusions is not None:
            inputs.exclusions.check("Exclude file")
            read_polygons(inputs.exclusions.source, filename=inputs.exclusions.name, crs=inputs.crs)
        if inputs.districts is not None:
            inputs.districts.check("Districts file")
            _districts(inputs)


def _districts(inputs: CityInputs) -> gpd.GeoDataFrame | None:
    if inputs.districts is None:
        return None
    return districts_from_file(
        inputs.districts.source,
        name_column=inputs.district_name_column,
        filename=inputs.districts.name,
        crs=inputs.crs,
        memory_budget_bytes=inputs.memory_budget_bytes,
    )


def uses_default_stations(inputs: CityInputs) -> bool:
    """Whether ``inputs`` take the embedded station list (:data:`DEFAULT_STATIONS`).

    True for the embedded city with no centers file and without ``osm_centers``.
    """
    if inputs.centers is not None or inputs.osm_centers:
        return False
    return inputs.osm.expanduser().resolve() == DEFAULT_CITY.resolve()


def centers_source(inputs: CityInputs) -> dict[str, Any]:
    """Where the centers of ``inputs`` come from (``summary.json`` ``centers_source``).

    Returns
    -------
    dict
        ``kind`` (``"embedded"``, ``"osm"`` or ``"file"``) and, by kind, ``file``,
        ``crs``, ``attribution`` and ``level_minutes`` (embedded), ``tags`` (osm),
        ``file`` and ``crs`` (file).
    """
    if uses_default_stations(inputs):
        return {
            "kind": CENTERS_EMBEDDED,
            "file": DEFAULT_STATIONS.name,
            "crs": DEFAULT_STATIONS_CRS,
            "attribution": DEFAULT_STATIONS_ATTRIBUTION,
            "level_minutes": dict(DEFAULT_LEVEL_MINUTES),
        }
    if inputs.centers is None:
        return {"kind": CENTERS_OSM, "tags": {k: list(v) for k, v in inputs.center_tags.items()}}
    return {"kind": CENTERS_FILE, "file": inputs.centers.name, "crs": inputs.crs}


def centers_source_label(source: Mapping[str, Any] | None, lang: str = "zh") -> str:
    """One line saying where the stations come from (report, app caption); ``""`` when unknown.

    Parameters
    ----------
    source
        A ``centers_source`` (:func:`centers_source`, ``summary.json``).
    lang
        ``"zh"`` or ``"en"``.
    """
    kind = (source or {}).get("kind")
    if source is None or kind not in (CENTERS_EMBEDDED, CENTERS_OSM, CENTERS_FILE):
        return ""
    if kind == CENTERS_EMBEDDED:
        levels = source.get("level_minutes") or {}
        standard = ("，" if lang == "zh" else ", ").join(
            t("centers_source.standard", lang, level=_level_label(str(k), lang), minutes=float(v))
            for k, v in levels.items()
        )
        return t(
            "centers_source.embedded",
            lang,
            attribution=source.get("attribution", ""),
            standard=standard,
        )
    if kind == CENTERS_OSM:
        tags = "; ".join(
            f"{k}={'|'.join(str(x) for x in v)}" for k, v in (source.get("tags") or {}).items()
        )
        return t("centers_source.osm", lang, tags=tags)
    return t("centers_source.file", lang, file=source.get("file", ""), crs=source.get("crs", ""))


def _level_label(level: str, lang: str) -> str:
    key = f"centers_source.level.{level}"
    return t(key, lang) if key in MESSAGES else level


def _default_stations(net: WalkNetwork) -> gpd.GeoDataFrame:
    return centers_from_file(
        DEFAULT_STATIONS, net, crs=DEFAULT_STATIONS_CRS, columns=DEFAULT_STATIONS_COLUMNS
    )


def _centers(inputs: CityInputs, extract: OsmExtract, net: WalkNetwork) -> gpd.GeoDataFrame:
    f = inputs.centers
    if uses_default_stations(inputs):
        return _default_stations(net)
    if f is None:
        return centers_from_osm(extract, net)
    return centers_from_file(
        f.source, net, crs=inputs.crs, columns=inputs.center_columns, filename=f.name
    )


def _census_spec(inputs: CityInputs, f: FileInput) -> CensusFile:
    return CensusFile(
        f.source,
        filename=f.name,
        column=inputs.census_column,
        households_column=inputs.census_households_column,
        group_columns=inputs.census_group_columns,
        crs=inputs.crs,
        population_groups=inputs.population_groups,
    )


def _census(
    inputs: CityInputs, extract: OsmExtract, net: WalkNetwork, f: FileInput
) -> tuple[gpd.GeoDataFrame, dict[str, Any], dict[str, Any]]:
    result = census_demand(extract, net, _census_spec(inputs, f))
    model: dict[str, Any] = {"source": "census", "file": f.name, "column": result.report["column"]}
    if inputs.population_groups:  # only then, as for a population file
        model["groups"] = list(inputs.population_groups)
    return result.demand, model, result.report


def _demand(
    inputs: CityInputs, extract: OsmExtract, net: WalkNetwork
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    f = inputs.population
    if f is None:
        model = PopulationModel()
        demand = demand_units(
            extract, net, model=model, memory_budget_bytes=inputs.memory_budget_bytes
        )
        return demand, {"source": "osm", **asdict(model)}
    spec = PopulationFile(
        f.source,
        filename=f.name,
        column=inputs.population_column,
        crs=inputs.crs,
        group_columns=inputs.population_groups,
    )
    demand = demand_units(
        extract, net, population=spec, memory_budget_bytes=inputs.memory_budget_bytes
    )
    described: dict[str, Any] = {
        "source": "file",
        "file": f.name,
        "column": inputs.population_column,
    }
    if inputs.population_groups:
        described["groups"] = list(inputs.population_groups)
    return demand, described


def _candidates(inputs: CityInputs, net: WalkNetwork) -> gpd.GeoDataFrame | None:
    f = inputs.candidates
    if f is None:
        return None
    return candidates_from_file(net, read_points(f.source, filename=f.name, crs=inputs.crs))


def _exclusions(inputs: CityInputs, net: WalkNetwork) -> gpd.GeoDataFrame | None:
    f = inputs.exclusions
    if f is None:
        return None
    return read_polygons(f.source, filename=f.name, crs=inputs.crs).to_crs(net.crs)


_CityParts = tuple[
    OsmExtract | None,
    str,
    WalkNetwork,
    gpd.GeoDataFrame,
    gpd.GeoDataFrame,
    dict[str, Any],
    dict[str, Any] | None,
]


def _derived_files(inputs: CityInputs, sha: str) -> dict[str, Path]:
    """Cache files of the OSM-derived frames this run may reuse (``{}``: none)."""
    if inputs.cache_dir is None:
        return {}
    files = {}
    if inputs.centers is None and not uses_default_stations(inputs):  # OSM-tagged centers only
        key = derived_key(sha, "centers", {"center_tags": inputs.center_tags})
        files["centers"] = derived_path(inputs.cache_dir, "centers", key)
    if inputs.population is None and inputs.census is None:
        key = derived_key(sha, "demand", asdict(PopulationModel()))
        files["demand"] = derived_path(inputs.cache_dir, "demand", key)
    return files


def _cached_city(
    inputs: CityInputs, districts: gpd.GeoDataFrame | None
) -> tuple[_CityParts | None, str | None]:
    """Return the network, OSM centers and demand from the caches, without reading the OSM file.

    Only when every part that would need the extract is cached: OSM centers and
    OSM demand, and districts that do not come from OSM boundaries. The second
    item is the file's SHA-256 when it was computed (a cache miss hands it on to
    :func:`_built_city`, so the file is hashed once).
    """
    default_stations = uses_default_stations(inputs)
    if inputs.cache_dir is None or inputs.population is not None or inputs.census is not None:
        return None, None  # a population or census file is read with the extract's residential land
    if inputs.centers is not None and not default_stations:
        return None, None
    if districts is None and inputs.admin_level is not None:
        return None, None
    path = check_osm_file(inputs.osm, memory_budget_bytes=inputs.memory_budget_bytes)
    sha = file_sha256(path)
    if not (Path(inputs.cache_dir) / f"walk-{cache_key(sha)}.npz").exists():
        return None, sha
    places = _places_path(inputs, sha)
    if places is None or not places.exists():
        return None, sha  # a cache from before the place labels were cached: read the file once
    files = _derived_files(inputs, sha)
    demand = load_frame(files["demand"])
    centers = None if default_stations else load_frame(files["centers"])
    if demand is None or (centers is None and not default_stations):
        return None, sha
    net = walk_network(path, cache_dir=inputs.cache_dir, sha256=sha)
    if default_stations:  # the embedded station list needs only the network
        centers = _default_stations(net)
    assert centers is not None
    if centers.crs != net.crs or demand.crs != net.crs:
        return None, sha
    logger.info("loaded centers and demand of %s from the cache", path.name)
    model = {"source": "osm", **asdict(PopulationModel())}
    return (None, sha, net, centers, demand, model, None), sha


def _built_city(inputs: CityInputs, progress: ProgressFn | None, sha: str | None) -> _CityParts:
    """Read the OSM file, build (or load) the network, derive centers and demand; cache them."""
    extract = read_osm(
        inputs.osm,
        center_tags=inputs.center_tags,
        memory_budget_bytes=inputs.memory_budget_bytes,
        progress=sub_progress(progress, 0.0, 0.3),
        sha256=sha,
    )
    net = walk_network(
        extract.path,
        cache_dir=inputs.cache_dir,
        extract=extract,
        progress=sub_progress(progress, 0.3, 0.8),
    )
    if progress:
        progress(0.8, "reading and snapping centers")
    centers = _centers(inputs, extract, net)
    if progress:
        progress(0.85, "estimating residents")
    census = None
    if inputs.census is not None:
        demand, model, census = _census(inputs, extract, net, inputs.census)
    else:
        demand, model = _demand(inputs, extract, net)
    files = _derived_files(inputs, extract.sha256)
    for kind, frame in (("centers", centers), ("demand", demand)):
        if kind in files:
            try:
                save_frame(frame, files[kind])
            except OSError as exc:
                logger.warning("could not write the %s cache %s: %s", kind, files[kind], exc)
    return extract, extract.sha256, net, centers, demand, model, census


def _places_path(inputs: CityInputs, sha: str) -> Path | None:
    """Cache file of the place labels (None without a cache folder)."""
    if inputs.cache_dir is None:
        return None
    key = derived_key(sha, "places", {"max_places": MAX_PLACES})
    return derived_path(inputs.cache_dir, "places", key)


def _places(inputs: CityInputs, sha: str, extract: OsmExtract | None) -> gpd.GeoDataFrame | None:
    """Return the place labels: from the extract (and cache them), else from the cache."""
    path = _places_path(inputs, sha)
    if extract is None:
        return None if path is None else load_frame(path)
    places = named_places(extract)
    if path is not None and not path.exists():
        try:
            save_frame(places, path)
        except OSError as exc:
            logger.warning("could not write the places cache %s: %s", path, exc)
    return places


def load_city(inputs: CityInputs, *, progress: ProgressFn | None = None) -> CityData:
    """Load a city: OSM extract, walking network, centers, demand and the optional layers.

    Every user file is converted from ``inputs.crs`` to WGS-84 first, then to
    the network's CRS. Centers, demand and candidates are validated and
    snapped here, once.

    Parameters
    ----------
    inputs
        What to read.
    progress
        ``progress(fraction, message)``.

    Returns
    -------
    CityData
        The network, the snapped ``centers`` and ``demand``, ``population_model``
        (``source`` ``"osm"`` with the model's figures, ``"file"`` or
        ``"census"`` with ``file`` and ``column``), ``centers_source``
        (:func:`centers_source`), ``census`` (the census report, with a census file), and ``districts`` (``district``, geometry),
        ``candidates``, ``exclusions`` in ``net.crs`` when given.
    """
    districts = _districts(inputs)  # a bad districts file fails before the slow steps
    cached, known_sha = _cached_city(inputs, districts)
    if cached is None:
        cached = _built_city(inputs, progress, known_sha)
    extract, sha, net, centers, demand, model, census = cached
    if progress:
        progress(0.95, "reading districts, candidates and exclusions")
    if districts is None and inputs.admin_level is not None:
        if extract is None:  # _cached_city only serves cities that need no extract
            extract = read_osm(inputs.osm, center_tags=inputs.center_tags)
        districts = districts_from_osm(extract, admin_level=inputs.admin_level)
    city = CityData(
        source_name=Path(inputs.osm).name,
        source_sha256=sha,
        net=net,
        centers=centers,
        demand=demand,
        extract=extract,
        population_model=model,
        centers_source=centers_source(inputs),
        census=census,
        districts=None if districts is None else clip_districts(districts, net),
        candidates=_candidates(inputs, net),
        exclusions=_exclusions(inputs, net),
        cache_dir=inputs.cache_dir,
        places=_places(inputs, sha, extract),
    )
    if progress:
        progress(1.0, "city loaded")
    logger.info(
        "loaded city %s: %d centers, %d demand units", city.source_name, len(centers), len(demand)
    )
    return city
