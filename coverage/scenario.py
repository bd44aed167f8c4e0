"""Scenarios: the loaded city data plus a planner's edits and parameters → one result.

A :class:`Scenario` is small, frozen and JSON-serialisable (walking speed,
thresholds, stations added or closed, an optional siting request). The heavy
inputs (network, centers, demand) live in :class:`CityData`, loaded once by
:func:`load_city` and shared read-only between scenarios. :func:`run_scenario`
never modifies ``CityData``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd

from coverage.errors import InputError
from coverage.netcache import DEFAULT_CACHE_DIR, walk_network
from coverage.network import DEFAULT_SPEED_KMH, WalkNetwork
from coverage.osm import DEFAULT_CENTER_TAGS, OsmExtract, read_osm
from coverage.progress import ProgressFn, sub_progress

logger = logging.getLogger(__name__)

SCENARIO_SCHEMA_VERSION = 1
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CITY = ROOT / "data" / "chengdu_central.osm.bz2"


@dataclass(frozen=True)
class AddedStation:
    """A station the planner adds, in WGS-84."""

    lon: float
    lat: float
    name: str = ""
    level: str | None = None


@dataclass(frozen=True)
class SitingRequest:
    """Ask the optimizer for ``k`` new sites or enough sites to reach ``target_share``."""

    k: int | None = None
    target_share: float | None = None
    max_k: int = 50
    minutes: float = 15.0
    secondary_minutes: float | None = 5.0
    spacing_m: float = 100.0
    exact: bool = False
    time_limit_s: float = 60.0

    def __post_init__(self) -> None:
        if (self.k is None) == (self.target_share is None):
            msg = "Give exactly one of `k` (number of new stations) or `target_share` (e.g. 0.95)."
            raise InputError(msg)
        if self.k is not None and self.k <= 0:
            msg = f"`k` must be a positive number of new stations; got {self.k}."
            raise InputError(msg)
        if self.target_share is not None and not 0 < self.target_share <= 1:
            msg = f"`target_share` must be in (0, 1], e.g. 0.95; got {self.target_share}."
            raise InputError(msg)
        if self.max_k <= 0:
            msg = f"`max_k` must be positive; got {self.max_k}."
            raise InputError(msg)


@dataclass(frozen=True)
class Scenario:
    """A planner's scenario: parameters and edits on top of the loaded city."""

    name: str = "baseline"
    speed_kmh: float = DEFAULT_SPEED_KMH
    thresholds_min: tuple[float, ...] = (5.0, 15.0)
    level_thresholds_min: Mapping[str, float] | None = None
    added: tuple[AddedStation, ...] = ()
    closed: tuple[str, ...] = ()
    siting: SitingRequest | None = None
    accepted_sites: tuple[AddedStation, ...] = field(default=())

    def with_added(self, station: AddedStation) -> Scenario:
        return replace(self, added=(*self.added, station))

    def with_closed(self, center_id: str) -> Scenario:
        if center_id in self.closed:
            return self
        return replace(self, closed=(*self.closed, center_id))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema_version"] = SCENARIO_SCHEMA_VERSION
        d["thresholds_min"] = list(self.thresholds_min)
        d["level_thresholds_min"] = dict(self.level_thresholds_min or {}) or None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scenario:
        if not isinstance(d, Mapping):
            msg = "A scenario file must hold a JSON object (as written by 'Save scenario')."
            raise InputError(msg)
        version = d.get("schema_version", SCENARIO_SCHEMA_VERSION)
        if version != SCENARIO_SCHEMA_VERSION:
            msg = f"Scenario schema_version {version} is not supported (expected {SCENARIO_SCHEMA_VERSION})."
            raise InputError(msg)
        try:
            siting = d.get("siting")
            scenario = cls(
                name=str(d.get("name", "scenario")),
                speed_kmh=float(d.get("speed_kmh", DEFAULT_SPEED_KMH)),
                thresholds_min=tuple(float(t) for t in d.get("thresholds_min", (5.0, 15.0))),
                level_thresholds_min=(
                    {str(k): float(v) for k, v in d["level_thresholds_min"].items()}
                    if d.get("level_thresholds_min")
                    else None
                ),
                added=tuple(AddedStation(**a) for a in d.get("added", ())),
                closed=tuple(str(c) for c in d.get("closed", ())),
                siting=SitingRequest(**siting) if siting else None,
                accepted_sites=tuple(AddedStation(**a) for a in d.get("accepted_sites", ())),
            )
            scenario.validate()
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InputError):
                raise
            msg = f"Scenario file is malformed: {exc}. Save it again from the app or fix the field named."
            raise InputError(msg) from exc
        return scenario

    def validate(self) -> None:
        """Check every value a scenario file can carry; raise ``InputError`` naming the bad one.

        Speed, thresholds and per-level standards are checked as an audit would
        check them; stations need finite WGS-84 coordinates; a siting request
        needs positive, finite minutes, spacing and time limit.
        """
        import math

        from coverage.audit import AuditParams

        AuditParams(
            speed_kmh=self.speed_kmh,
            thresholds_min=tuple(self.thresholds_min),
            level_thresholds_min=dict(self.level_thresholds_min)
            if self.level_thresholds_min
            else None,
        )
        for what, stations in (("added", self.added), ("accepted_sites", self.accepted_sites)):
            for i, st in enumerate(stations, start=1):
                try:
                    lon, lat = float(st.lon), float(st.lat)
                except (TypeError, ValueError) as exc:
                    msg = f"Scenario `{what}` station {i} needs numeric `lon`/`lat`; got {st.lon!r}, {st.lat!r}."
                    raise InputError(msg) from exc
                if not (
                    math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90
                ):
                    msg = f"Scenario `{what}` station {i} has coordinates outside longitude ±180° / latitude ±90° (lon {lon!r}, lat {lat!r}); check the order and the values."
                    raise InputError(msg)
        req = self.siting
        if req is not None:
            for name in ("minutes", "spacing_m", "time_limit_s"):
                value = getattr(req, name)
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                    msg = f"Scenario siting `{name}` must be a positive number; got {value!r}."
                    raise InputError(msg)
            sec = req.secondary_minutes
            if sec is not None and not (
                isinstance(sec, (int, float)) and math.isfinite(sec) and sec > 0
            ):
                msg = f"Scenario siting `secondary_minutes` must be a positive number or null; got {sec!r}."
                raise InputError(msg)

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"Scenario file is not valid JSON: {exc}."
            raise InputError(msg) from exc
        except RecursionError as exc:
            msg = "Scenario file is nested too deeply to be a saved scenario; save it again from the app."
            raise InputError(msg) from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class CityData:
    """Heavy, read-only inputs shared by every scenario of one city."""

    source_name: str
    source_sha256: str
    extract: OsmExtract
    net: WalkNetwork
    centers: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    population_model: Mapping[str, Any] = field(default_factory=dict)
    districts: gpd.GeoDataFrame | None = None


def load_city(
    osm_path: Path | str = DEFAULT_CITY,
    *,
    centers_file: Path | str | bytes | None = None,
    centers_filename: str | None = None,
    centers_crs: str = "wgs84",
    center_columns: Mapping[str, str] | None = None,
    center_tags: Mapping[str, tuple[str, ...]] = DEFAULT_CENTER_TAGS,
    population_file: Path | str | bytes | None = None,
    population_filename: str | None = None,
    population_column: str = "population",
    cache_dir: Path | str | None = DEFAULT_CACHE_DIR,
    memory_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
) -> CityData:
    """Load a city: OSM extract, walking network, existing centers and demand.

    Parameters
    ----------
    osm_path
        Local OSM file; the embedded Chengdu extract by default.
    centers_file
        User file of existing centers (GeoJSON, GeoPackage or CSV; path or bytes);
        ``None`` takes centers from OSM tags ``center_tags``.
    centers_crs
        Coordinate system of ``centers_file``: ``wgs84``, ``gcj02`` or ``bd09``.
    center_columns
        Optional column names: ``lon``, ``lat``, ``name``, ``id``, ``level``.
    population_file
        Optional polygons or points with a population column.
    cache_dir
        Network cache folder (``None`` disables it).
    """
    from coverage.centers import centers_from_file, centers_from_osm
    from coverage.demand import demand_units

    extract = read_osm(
        osm_path,
        center_tags=center_tags,
        memory_budget_bytes=memory_budget_bytes,
        progress=sub_progress(progress, 0.0, 0.3),
    )
    net = walk_network(
        extract.path,
        cache_dir=cache_dir,
        extract=extract,
        progress=sub_progress(progress, 0.3, 0.8),
    )
    cols = dict(center_columns or {})
    if centers_file is not None:
        centers = centers_from_file(
            centers_file,
            net,
            crs=centers_crs,
            filename=centers_filename,
            lon_column=cols.get("lon"),
            lat_column=cols.get("lat"),
            name_column=cols.get("name"),
            id_column=cols.get("id"),
            level_column=cols.get("level"),
        )
    else:
        centers = centers_from_osm(extract, net)
    if progress:
        progress(0.85, "estimating residents")
    demand = demand_units(
        extract,
        net,
        population=population_file,
        population_column=population_column,
        filename=population_filename,
    )
    if progress:
        progress(1.0, "city loaded")
    return CityData(
        source_name=extract.path.name,
        source_sha256=extract.sha256,
        extract=extract,
        net=net,
        centers=centers,
        demand=demand,
    )


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario produces: the centers in force, the audit and the siting."""

    scenario: Scenario
    centers: gpd.GeoDataFrame
    audit: Any  # coverage.audit.AuditResult
    siting: Any | None = None  # coverage.siting.SitingResult


def scenario_centers(city: CityData, scenario: Scenario) -> gpd.GeoDataFrame:
    """Return the centers in force in ``scenario``: base − closed + added + accepted."""
    from coverage.centers import add_centers, close_centers

    centers = (
        close_centers(city.centers, list(scenario.closed)) if scenario.closed else city.centers
    )
    extra = (*scenario.added, *scenario.accepted_sites)
    for level in sorted({s.level or "" for s in extra}):
        group = [s for s in extra if (s.level or "") == level]
        centers = add_centers(
            centers,
            city.net,
            [s.lon for s in group],
            [s.lat for s in group],
            names=[s.name for s in group],
            level=level or None,
            source="added",
        )
    return centers


def run_scenario(
    city: CityData,
    scenario: Scenario,
    *,
    with_polygons: bool = True,
    progress: ProgressFn | None = None,
) -> ScenarioResult:
    """Audit ``scenario`` on ``city`` and, if it asks, propose new sites."""
    from coverage.audit import AuditParams, audit
    from coverage.siting import SitingParams, propose_sites

    params = AuditParams(
        speed_kmh=scenario.speed_kmh,
        thresholds_min=tuple(scenario.thresholds_min),
        level_thresholds_min=dict(scenario.level_thresholds_min)
        if scenario.level_thresholds_min
        else None,
    )
    centers = scenario_centers(city, scenario)
    result = audit(
        city.net, centers, city.demand, params, with_polygons=with_polygons, progress=progress
    )
    siting = None
    if scenario.siting is not None:
        req = scenario.siting
        siting = propose_sites(
            city.net,
            city.demand,
            centers,
            params=SitingParams(
                k=req.k,
                target_share=req.target_share,
                max_k=req.max_k,
                minutes=req.minutes,
                secondary_minutes=req.secondary_minutes,
                speed_kmh=scenario.speed_kmh,
                spacing_m=req.spacing_m,
                exact=req.exact,
                time_limit_s=req.time_limit_s,
            ),
        )
    return ScenarioResult(scenario=scenario, centers=centers, audit=result, siting=siting)
