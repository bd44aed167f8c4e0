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
from typing import Any

import geopandas as gpd
import shapely

from coverage.centers import CenterColumns, centers_from_file, centers_from_osm
from coverage.coords import CRS_NAMES
from coverage.demand import PopulationFile, PopulationModel, demand_units
from coverage.errors import InputError
from coverage.netcache import DEFAULT_CACHE_DIR, cache_key, walk_network
from coverage.network import WalkNetwork
from coverage.osm import DEFAULT_CENTER_TAGS, OsmExtract, check_osm_file, file_sha256, read_osm
from coverage.osmcache import derived_key, derived_path, load_frame, save_frame
from coverage.progress import ProgressFn, sub_progress
from coverage.siting import candidates_from_file
from coverage.userfiles import check_regular_file, read_points, read_polygons

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
#: The embedded demo city (central Chengdu), used when no OSM file is given.
DEFAULT_CITY = ROOT / "data" / "chengdu_central.osm.bz2"
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
        Existing centers file; ``None`` takes centers tagged ``center_tags`` in OSM.
    center_columns
        Column names of the centers file.
    center_tags
        OSM tags of existing centers (used without a centers file).
    population
        Population polygons, points or a GeoTIFF raster replacing the OSM estimate.
    population_column
        Population column of a polygon or point file.
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
        Refuse OSM files that would need more memory than this.
    """

    osm: Path = DEFAULT_CITY
    crs: str = "wgs84"
    centers: FileInput | None = None
    center_columns: CenterColumns = field(default_factory=CenterColumns)
    center_tags: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_CENTER_TAGS)
    )
    population: FileInput | None = None
    population_column: str = "population"
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
        for name in ("centers", "population", "districts", "candidates", "exclusions"):
            object.__setattr__(self, name, FileInput.of(getattr(self, name)))
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
                ("districts", self.districts),
                ("candidates", self.candidates),
                ("exclusions", self.exclusions),
            )
        }
        parts = {
            "osm": str(osm.expanduser().resolve()),
            "osm_size": stat.st_size if stat else None,
            "osm_mtime_ns": stat.st_mtime_ns if stat else None,
            "crs": self.crs,
            "files": files,
            "center_columns": asdict(self.center_columns),
            "center_tags": {k: list(v) for k, v in sorted(self.center_tags.items())},
            "population_column": self.population_column,
            "district_name_column": self.district_name_column,
            "admin_level": self.admin_level,
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            "memory_budget_bytes": self.memory_budget_bytes,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


# --- districts -------------------------------------------------------------------------


def districts_from_file(
    source: Path | str | bytes,
    *,
    name_column: str = "name",
    filename: str | None = None,
    crs: str = "wgs84",
) -> gpd.GeoDataFrame:
    """Read district boundaries (GeoJSON / GeoPackage) into a ``district`` column.

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

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``district`` (unique name) and geometry (polygons).

    Raises
    ------
    InputError
        No column ``name_column``, features that are not polygons, no features.
    """
    gdf = read_polygons(source, filename=filename, crs=crs)
    if name_column not in gdf.columns:
        cols = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        msg = f"The districts file has no column {name_column!r}; columns found: {cols}. Pass the name column with `--district-name-column`."
        raise InputError(msg)
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
            f"The OSM file has administrative boundaries at levels {', '.join(levels)}; "
            f"using admin_level={chosen} (the most boundaries). Choose with `--admin-level`.",
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
        raise InputError(msg)
    types = set(gdf.geometry.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        msg = f"Districts must be polygons; found {', '.join(sorted(types))}. Use the polygon layer of the boundaries."
        raise InputError(msg)
    names = gdf[DISTRICT]
    if names.isna().any():
        msg = f"{int(names.isna().sum())} district(s) have no name; fill the name column."
        raise InputError(msg)
    gdf[DISTRICT] = names.astype(str).str.strip()
    if gdf[DISTRICT].duplicated().any():
        # Several polygons of one district (islands): one row each.
        gdf = gdf.dissolve(by=DISTRICT, as_index=False, sort=False)
    gdf.geometry = shapely.make_valid(gdf.geometry.values)
    return gdf.reset_index(drop=True)


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
    districts: gpd.GeoDataFrame | None = None
    candidates: gpd.GeoDataFrame | None = None
    exclusions: gpd.GeoDataFrame | None = None
    cache_dir: Path | None = None  # the inputs' cache folder (derived data of re-runs)


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
    )


def _centers(inputs: CityInputs, extract: OsmExtract, net: WalkNetwork) -> gpd.GeoDataFrame:
    f = inputs.centers
    if f is None:
        return centers_from_osm(extract, net)
    return centers_from_file(
        f.source, net, crs=inputs.crs, columns=inputs.center_columns, filename=f.name
    )


def _demand(
    inputs: CityInputs, extract: OsmExtract, net: WalkNetwork
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    f = inputs.population
    if f is None:
        model = PopulationModel()
        demand = demand_units(extract, net, model=model)
        return demand, {"source": "osm", **asdict(model)}
    spec = PopulationFile(
        f.source, filename=f.name, column=inputs.population_column, crs=inputs.crs
    )
    demand = demand_units(extract, net, population=spec)
    return demand, {"source": "file", "file": f.name, "column": inputs.population_column}


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
    OsmExtract | None, str, WalkNetwork, gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, Any]
]


def _derived_files(inputs: CityInputs, sha: str) -> dict[str, Path]:
    """Cache files of the OSM-derived frames this run may reuse (``{}``: none)."""
    if inputs.cache_dir is None:
        return {}
    files = {}
    if inputs.centers is None:
        key = derived_key(sha, "centers", {"center_tags": inputs.center_tags})
        files["centers"] = derived_path(inputs.cache_dir, "centers", key)
    if inputs.population is None:
        key = derived_key(sha, "demand", asdict(PopulationModel()))
        files["demand"] = derived_path(inputs.cache_dir, "demand", key)
    return files


def _cached_city(inputs: CityInputs, districts: gpd.GeoDataFrame | None) -> _CityParts | None:
    """Return the network, OSM centers and demand from the caches, without reading the OSM file.

    Only when every part that would need the extract is cached: OSM centers and
    OSM demand, and districts that do not come from OSM boundaries.
    """
    if inputs.cache_dir is None or inputs.centers is not None or inputs.population is not None:
        return None
    if districts is None and inputs.admin_level is not None:
        return None
    path = check_osm_file(inputs.osm, memory_budget_bytes=inputs.memory_budget_bytes)
    sha = file_sha256(path)
    if not (Path(inputs.cache_dir) / f"walk-{cache_key(sha)}.npz").exists():
        return None
    files = _derived_files(inputs, sha)
    centers, demand = load_frame(files["centers"]), load_frame(files["demand"])
    if centers is None or demand is None:
        return None
    net = walk_network(path, cache_dir=inputs.cache_dir, sha256=sha)
    if centers.crs != net.crs or demand.crs != net.crs:
        return None
    logger.info("loaded centers and demand of %s from the cache", path.name)
    return None, sha, net, centers, demand, {"source": "osm", **asdict(PopulationModel())}


def _built_city(inputs: CityInputs, progress: ProgressFn | None) -> _CityParts:
    """Read the OSM file, build (or load) the network, derive centers and demand; cache them."""
    extract = read_osm(
        inputs.osm,
        center_tags=inputs.center_tags,
        memory_budget_bytes=inputs.memory_budget_bytes,
        progress=sub_progress(progress, 0.0, 0.3),
    )
    net = walk_network(
        extract.path,
        cache_dir=inputs.cache_dir,
        extract=extract,
        progress=sub_progress(progress, 0.3, 0.8),
    )
    centers = _centers(inputs, extract, net)
    if progress:
        progress(0.85, "estimating residents")
    demand, model = _demand(inputs, extract, net)
    files = _derived_files(inputs, extract.sha256)
    for kind, frame in (("centers", centers), ("demand", demand)):
        if kind in files:
            try:
                save_frame(frame, files[kind])
            except OSError as exc:
                logger.warning("could not write the %s cache %s: %s", kind, files[kind], exc)
    return extract, extract.sha256, net, centers, demand, model


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
        (``source`` ``"osm"`` with the model's figures, or ``"file"`` with
        ``file`` and ``column``), and ``districts`` (``district``, geometry),
        ``candidates``, ``exclusions`` in ``net.crs`` when given.
    """
    districts = _districts(inputs)  # a bad districts file fails before the slow steps
    cached = _cached_city(inputs, districts)
    if cached is not None:
        extract, sha, net, centers, demand, model = cached
    else:
        extract, sha, net, centers, demand, model = _built_city(inputs, progress)
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
        districts=None if districts is None else districts.to_crs(net.crs),
        candidates=_candidates(inputs, net),
        exclusions=_exclusions(inputs, net),
        cache_dir=inputs.cache_dir,
    )
    if progress:
        progress(1.0, "city loaded")
    logger.info(
        "loaded city %s: %d centers, %d demand units", city.source_name, len(centers), len(demand)
    )
    return city
