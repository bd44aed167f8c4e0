"""Scenarios: a planner's parameters and edits on top of a loaded city, and their result.

A :class:`Scenario` is small, frozen and JSON-serialisable. It carries the
library's own parameter dataclasses, :class:`~coverage.audit.AuditParams` and
an optional :class:`~coverage.siting.SitingParams` (both validate themselves),
plus stations added or closed, accepted sites and a name. The heavy inputs live
in :class:`~coverage.inputs.CityData`; :func:`coverage.pipeline.run` turns a
city and a scenario into a :class:`ScenarioResult` and never modifies the city.

Scenario files: ``schema_version`` 2 stores ``audit`` and ``siting`` as the
dataclasses' fields; version 1 files (flat ``speed_kmh``, ``thresholds_min``,
``level_thresholds_min`` and a ``siting`` request) are still read.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import geopandas as gpd
import pandas as pd

from coverage.audit import AuditParams, AuditResult
from coverage.capacity import CapacityParams, CapacityResult, Decay
from coverage.errors import InputError
from coverage.groups import GroupParams
from coverage.siting import SitingParams, SitingResult
from coverage.standards import Standard

logger = logging.getLogger(__name__)

SCENARIO_SCHEMA_VERSION = 2
#: Versions :meth:`Scenario.from_dict` reads.
READABLE_VERSIONS = (1, 2)
#: Top-level fields of every version; version 2 adds ``audit``, version 1 the flat audit fields.
_TOP_FIELDS = {
    "schema_version",
    "name",
    "siting",
    "added",
    "closed",
    "accepted_sites",
    "capacity",
    "groups",
}
_V1_AUDIT_FIELDS = ("speed_kmh", "thresholds_min", "level_thresholds_min")
#: Siting fields a version 1 file could carry (its ``SitingRequest``).
_V1_SITING_FIELDS = (
    "k",
    "target_share",
    "max_k",
    "minutes",
    "secondary_minutes",
    "spacing_m",
    "exact",
    "time_limit_s",
)


@dataclass(frozen=True)
class AddedStation:
    """A station the planner adds, in WGS-84 (validated on creation)."""

    lon: float
    lat: float
    name: str = ""
    level: str | None = None

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        try:
            lon, lat = float(self.lon), float(self.lat)
        except (TypeError, ValueError) as exc:
            msg = f"A station needs numeric `lon`/`lat`; got {self.lon!r}, {self.lat!r}."
            raise InputError(msg) from exc
        if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
            msg = f"A station has coordinates outside longitude ±180° / latitude ±90° (lon {lon!r}, lat {lat!r}); check the order and the values."
            raise InputError(msg)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "lat", lat)


@dataclass(frozen=True)
class Scenario:
    """A planner's scenario: parameters and edits on top of the loaded city.

    Parameters
    ----------
    name
        Shown in the app and written to exports.
    audit
        Walking speed, thresholds and per-level standards.
    siting
        New sites to propose (``None``: audit only). Its tie-break minutes and
        speed are set by :func:`coverage.pipeline.siting_params`.
    added
        Stations the planner adds.
    closed
        ``center_id`` values of existing centers to close.
    accepted_sites
        Proposed sites the planner accepted (they count as stations).
    capacity
        Floor-area capacity audit (2SFCA; ``None``: none), issue 15.
    groups
        Walking speed per population group, issue 15.
    """

    name: str = "baseline"
    audit: AuditParams = field(default_factory=AuditParams)
    siting: SitingParams | None = None
    added: tuple[AddedStation, ...] = ()
    closed: tuple[str, ...] = ()
    accepted_sites: tuple[AddedStation, ...] = ()
    capacity: CapacityParams | None = None
    groups: GroupParams = field(default_factory=GroupParams)

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if self.capacity is not None and not isinstance(self.capacity, CapacityParams):
            msg = (
                f"`capacity` must be a CapacityParams or None; got {type(self.capacity).__name__}."
            )
            raise InputError(msg)
        if not isinstance(self.groups, GroupParams):
            msg = f"`groups` must be a GroupParams; got {type(self.groups).__name__}."
            raise InputError(msg)
        if not isinstance(self.audit, AuditParams):
            msg = f"`audit` must be an AuditParams; got {type(self.audit).__name__}."
            raise InputError(msg)
        if self.siting is not None and not isinstance(self.siting, SitingParams):
            msg = f"`siting` must be a SitingParams or None; got {type(self.siting).__name__}."
            raise InputError(msg)
        object.__setattr__(self, "added", tuple(self.added))
        object.__setattr__(self, "closed", tuple(str(c) for c in self.closed))
        object.__setattr__(self, "accepted_sites", tuple(self.accepted_sites))

    @property
    def speed_kmh(self) -> float:
        """Walking speed of the audit (``audit.speed_kmh``)."""
        return float(self.audit.speed_kmh)

    @property
    def thresholds_min(self) -> tuple[float, ...]:
        """Thresholds of the audit (``audit.thresholds_min``)."""
        return tuple(self.audit.thresholds_min)

    def with_added(self, station: AddedStation) -> Scenario:
        """Return this scenario with one more added station."""
        return replace(self, added=(*self.added, station))

    def with_closed(self, center_id: str) -> Scenario:
        """Return this scenario with ``center_id`` closed too."""
        if center_id in self.closed:
            return self
        return replace(self, closed=(*self.closed, center_id))

    def to_dict(self) -> dict[str, Any]:
        """Return the scenario as plain JSON values (``schema_version`` 2)."""
        audit = asdict(self.audit)
        audit["thresholds_min"] = list(self.audit.thresholds_min)
        audit["level_thresholds_min"] = dict(self.audit.level_thresholds_min or {}) or None
        audit["thresholds_m"] = list(self.audit.thresholds_m)
        standard = self.audit.standard
        audit["standard"] = None if standard is None else standard.to_dict()
        out: dict[str, Any] = {
            "schema_version": SCENARIO_SCHEMA_VERSION,
            "name": self.name,
            "audit": audit,
            "siting": None if self.siting is None else asdict(self.siting),
            "added": [asdict(s) for s in self.added],
            "closed": list(self.closed),
            "accepted_sites": [asdict(s) for s in self.accepted_sites],
        }
        # written only when set, so files (and batch keys) of scenarios without them are unchanged
        if self.capacity is not None:
            out["capacity"] = asdict(self.capacity)
        if self.groups.speeds_kmh:
            out["groups"] = {"speeds_kmh": dict(self.groups.speeds_kmh)}
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text (Chinese kept)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scenario:
        """Read a scenario written by :meth:`to_dict` (version 2) or by version 1.

        Raises
        ------
        InputError
            Not an object, an unknown version, or a field that does not validate.
        """
        if not isinstance(d, Mapping):
            msg = "A scenario file must hold a JSON object (as written by 'Save scenario')."
            raise InputError(msg)
        version = d.get("schema_version", 1 if set(d) & set(_V1_AUDIT_FIELDS) else 2)
        if version not in READABLE_VERSIONS:
            msg = f"Scenario schema_version {version!r} is not supported (this version reads {', '.join(map(str, READABLE_VERSIONS))}); save it again from the app."
            raise InputError(msg)
        known = _TOP_FIELDS | (set(_V1_AUDIT_FIELDS) if version == 1 else {"audit"})
        unknown = sorted(str(k) for k in set(d) - known)
        if unknown:
            msg = f"Scenario file (schema_version {version}) has unknown field(s) {unknown}; known: {', '.join(sorted(known))}."
            raise InputError(msg)
        try:
            audit, siting = _params_v1(d) if version == 1 else _params_v2(d)
            return cls(
                name=str(d.get("name", "scenario")),
                audit=audit,
                siting=siting,
                added=tuple(_station(a) for a in d.get("added") or ()),
                closed=tuple(str(c) for c in d.get("closed") or ()),
                accepted_sites=tuple(_station(a) for a in d.get("accepted_sites") or ()),
                capacity=_capacity(d.get("capacity")),
                groups=GroupParams(**_known(d.get("groups") or {}, GroupParams, "groups")),
            )
        except InputError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            msg = f"Scenario file is malformed: {exc}. Save it again from the app or fix the field named."
            raise InputError(msg) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        """Read a scenario file's text (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"Scenario file is not valid JSON: {exc}."
            raise InputError(msg) from exc
        except RecursionError as exc:
            msg = "Scenario file is nested too deeply to be a saved scenario; save it again from the app."
            raise InputError(msg) from exc
        return cls.from_dict(data)


def _station(d: Any) -> AddedStation:
    if not isinstance(d, Mapping):
        msg = f"A scenario station must be an object with `lon` and `lat`; got {d!r}."
        raise InputError(msg)
    return AddedStation(**d)


def _known(d: Mapping[str, Any], cls: type[Any], what: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        msg = (
            f"Scenario `{what}` has unknown field(s) {unknown}; known: {', '.join(sorted(names))}."
        )
        raise InputError(msg)
    return dict(d)


def _capacity(d: Any) -> CapacityParams | None:
    """Read the ``capacity`` object of a scenario file (``None`` when absent)."""
    if d is None:
        return None
    if not isinstance(d, Mapping):
        msg = f"Scenario `capacity` must be an object or null; got {d!r}."
        raise InputError(msg)
    kw = _known(d, CapacityParams, "capacity")
    for name in ("decay", "enhanced"):
        if isinstance(kw.get(name), Mapping):
            kw[name] = Decay(**_known(kw[name], Decay, f"capacity.{name}"))
    return CapacityParams(**kw)


def _audit_params(d: Mapping[str, Any]) -> AuditParams:
    kw = _known(d, AuditParams, "audit")
    if "thresholds_min" in kw:
        kw["thresholds_min"] = tuple(float(t) for t in kw["thresholds_min"])
    if kw.get("level_thresholds_min"):
        kw["level_thresholds_min"] = {str(k): v for k, v in kw["level_thresholds_min"].items()}
    else:
        kw["level_thresholds_min"] = None
    # files written before distance thresholds and standards have neither field
    kw["thresholds_m"] = tuple(float(d) for d in kw.get("thresholds_m") or ())
    if kw.get("standard") is not None:
        kw["standard"] = Standard.from_dict(kw["standard"])
    return AuditParams(**kw)


def _params_v2(d: Mapping[str, Any]) -> tuple[AuditParams, SitingParams | None]:
    audit = d.get("audit") or {}
    siting = d.get("siting")
    if not isinstance(audit, Mapping) or not (siting is None or isinstance(siting, Mapping)):
        msg = "Scenario `audit` and `siting` must be objects (or `siting` null)."
        raise InputError(msg)
    return _audit_params(audit), (
        SitingParams(**_known(siting, SitingParams, "siting")) if siting else None
    )


def _params_v1(d: Mapping[str, Any]) -> tuple[AuditParams, SitingParams | None]:
    """Version 1: flat audit fields and a ``SitingRequest`` (speed taken from the audit)."""
    flat = {k: d[k] for k in _V1_AUDIT_FIELDS if k in d}
    audit = _audit_params(flat)
    req = d.get("siting")
    if not req:
        return audit, None
    if not isinstance(req, Mapping):
        msg = f"Scenario `siting` must be an object; got {req!r}."
        raise InputError(msg)
    unknown = sorted(set(req) - set(_V1_SITING_FIELDS))
    if unknown:
        msg = f"Scenario `siting` has unknown field(s) {unknown}; known: {', '.join(_V1_SITING_FIELDS)}."
        raise InputError(msg)
    return audit, SitingParams(**dict(req), speed_kmh=audit.speed_kmh)


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario produces.

    Parameters
    ----------
    scenario
        The scenario that was run.
    centers
        The centers in force (base − closed + added + accepted), snapped.
    audit
        The audit of those centers.
    siting
        Proposed sites, when the scenario asked for them.
    districts
        Coverage per district (``district``, ``units``, ``population``,
        ``population_covered_<t>``, ``share_<t>``) when the city has districts.
    compliance
        Compliance per district and judged level
        (:func:`coverage.standards.compliance_table`) when the audit has a
        standard and the city has districts.
    capacity
        The floor-area capacity audit, when the scenario asked for it.
    groups
        Coverage per population group (:func:`coverage.groups.group_coverage`),
        when the population carries groups.
    census_areas
        Coverage per census area (:func:`coverage.standards.census_area_table`),
        when the population came from a census (issue 14/15 follow-up).
    census_compliance
        Compliance per census area and judged level
        (:func:`coverage.standards.compliance_rows`), with a census and a standard.
    """

    scenario: Scenario
    centers: gpd.GeoDataFrame
    audit: AuditResult
    siting: SitingResult | None = None
    districts: pd.DataFrame | None = None
    compliance: pd.DataFrame | None = None
    capacity: CapacityResult | None = None
    groups: pd.DataFrame | None = None
    census_areas: pd.DataFrame | None = None
    census_compliance: pd.DataFrame | None = None
