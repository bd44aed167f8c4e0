"""Planning standards as data: life circles, their walking thresholds, and compliance per area.

A :class:`Standard` is a small frozen description of a national or local
standard: its life circles (:class:`Circle`: walking time and/or distance,
population range, facility kinds, each figure with its clause or table) and
which level of our centers (the ``level`` column: ``district``, ``street``,
``community``, ``grid``) each circle judges. Two presets ship
(:data:`PRESETS`): GB 50180-2018 and TD/T 1062-2021; docs/STANDARDS.md lists
every figure, its source and whether it could be checked against the text. A
planner's local standard is read from a small TOML, JSON or CSV file
(:func:`standard_from_file`).

The audit (:mod:`coverage.audit`) judges each level by its own centers and
its own circle's threshold; :func:`compliance_table` turns the audited demand
into a table per area and level (residents, households, share within the
standard, pass/fail against a target share, floor area reachable and deficit
when the demand units carry the capacity columns).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from coverage.census import CENSUS_AREA
from coverage.demand import POPULATION
from coverage.errors import InputError
from coverage.names import HOUSEHOLDS, MAX_THRESHOLD_MIN, level_covered_column

logger = logging.getLogger(__name__)

#: Persons per family household, China 2020: 第七次全国人口普查公报（第二号）, 国家统计局,
#: 2021-05-11, §三 户别人口: "平均每个家庭户的人口为2.62人". `coverage.capacity` imports it.
DEFAULT_HOUSEHOLD_SIZE = 2.62
#: Community service floor area per 100 households: 住房和城乡建设部办公厅、民政部办公厅
#: 《关于开展完整社区建设试点工作的通知》(2022): "每百户居民拥有综合服务设施面积不低于30平方米"
#: (as 人民日报 quotes it; the notice's document number was not verified, see docs/STANDARDS.md).
DEFAULT_M2_PER_100_HOUSEHOLDS = 30.0
#: Share of residents an area must have within its standard when neither the command line
#: nor the standard gives one: 上海市城市总体规划（2017—2035年）, 15-minute community life
#: circle coverage target 99 % (社区公共服务设施15分钟步行可达覆盖率, as quoted in 人文地理 2024
#: No.2, html.rhhz.net/RWDL/html/20240207.htm; the plan text itself was not read).
DEFAULT_COMPLIANCE_TARGET = 0.99
#: Longest distance threshold accepted, in meters (a two-hour walk at 4.5 km/h is 9 km).
MAX_DISTANCE_M = 10_000.0

#: Persons per household accepted wherever one is given (audit, compliance, capacity, siting).
HOUSEHOLD_SIZE_RANGE = (0.5, 20.0)

#: Output columns of :func:`compliance_table`.
AREA = "area"
LEVEL = "level"
CIRCLE = "circle"
THRESHOLD_MIN = "threshold_min"
THRESHOLD_M = "threshold_m"
UNITS = "units"
RESIDENTS = "residents"
RESIDENTS_COVERED = "residents_covered"
SHARE = "share"
TARGET_SHARE = "target_share"
PASSED = "passed"
FLOOR_AREA_REACHABLE_M2 = "floor_area_reachable_m2"
FLOOR_AREA_REQUIRED_M2 = "floor_area_required_m2"
DEFICIT_M2 = "deficit_m2"
#: Demand columns written by the capacity branch (2SFCA) that the floor-area columns need.
M2_PER_100_HOUSEHOLDS = "m2_per_100_households"
COMPLIANCE_COLUMNS = (
    AREA,
    LEVEL,
    CIRCLE,
    THRESHOLD_MIN,
    THRESHOLD_M,
    UNITS,
    RESIDENTS,
    HOUSEHOLDS,
    RESIDENTS_COVERED,
    SHARE,
    TARGET_SHARE,
    PASSED,
    FLOOR_AREA_REACHABLE_M2,
    FLOOR_AREA_REQUIRED_M2,
    DEFICIT_M2,
)
#: Note written when the demand units lack the capacity columns.
NO_CAPACITY_NOTE = (
    "floor area reachable and deficit need the demand columns `households` and "
    "`m2_per_100_households` (the capacity audit); they are null here"
)


# --- the data -----------------------------------------------------------------------------


def _positive(value: Any, what: str, limit: float, unit: str) -> float | None:
    """Return ``value`` as a float in (0, limit], or ``None`` when missing; raise otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        msg = f"`{what}` must be a number of {unit}; got {value!r}."
        raise InputError(msg) from None
    if math.isnan(v):
        return None
    if not math.isfinite(v) or v <= 0 or v > limit:
        msg = f"`{what}` must be in (0, {limit:g}] {unit}; got {value!r}."
        raise InputError(msg)
    return v


def check_household_size(value: Any) -> float:
    """Return persons per household as a float; the one check every parameter set uses.

    Raises
    ------
    InputError
        Not a number in :data:`HOUSEHOLD_SIZE_RANGE`.
    """
    lo, hi = HOUSEHOLD_SIZE_RANGE
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and lo <= value <= hi):
        msg = f"`household_size` must be persons per household in [{lo:g}, {hi:g}] (the 2020 census: {DEFAULT_HOUSEHOLD_SIZE}); got {value!r}."
        raise InputError(msg)
    return float(value)


def check_m2_per_100_households(value: Any) -> float:
    """Return a floor-area standard in m² per 100 households as a float; the one check.

    Raises
    ------
    InputError
        Not a positive finite number.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        msg = f"the capacity standard must be a positive floor area in m² per 100 households (default {DEFAULT_M2_PER_100_HOUSEHOLDS:g}); got {value!r}."
        raise InputError(msg)
    return float(value)


def _range(value: Any, what: str) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        msg = f"`{what}` must be two numbers [low, high]; got {value!r}."
        raise InputError(msg) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        msg = f"`{what}` must be 0 <= low <= high; got {value!r}."
        raise InputError(msg)
    return (lo, hi)


@dataclass(frozen=True)
class Circle:
    """One level of a standard (a life circle) and the walking threshold that defines it.

    Parameters
    ----------
    key
        Short identifier, e.g. ``"15min"``.
    name
        Name as the standard gives it, e.g. ``"十五分钟生活圈居住区"``.
    minutes
        Walking time limit (``None``: the circle is defined by distance only).
    meters
        Network walking distance limit (``None``: by time only). With both, a
        resident is within the circle when the walk meets both limits.
    source
        Clause or table of the standard that gives the threshold.
    meters_range
        The distance range the standard gives when it gives one (``800–1000``);
        ``meters`` is its upper end.
    population_range
        Residents per circle the standard gives.
    dwellings_range
        Dwellings per circle the standard gives.
    facilities
        Facility kinds the standard names for the circle (where it does).
    target_share
        Share of residents the standard asks to be within the circle (``None``:
        the standard gives none).
    notes
        Anything a planner should know: what could not be checked, choices made.
    """

    key: str
    name: str
    minutes: float | None = None
    meters: float | None = None
    source: str = ""
    meters_range: tuple[float, float] | None = None
    population_range: tuple[float, float] | None = None
    dwellings_range: tuple[float, float] | None = None
    facilities: tuple[str, ...] = ()
    target_share: float | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        """Validate: a key, at least one limit, limits and ranges in bounds."""
        if not isinstance(self.key, str) or not self.key.strip():
            msg = (
                f"A circle of a standard needs a non-empty `key` (e.g. '15min'); got {self.key!r}."
            )
            raise InputError(msg)
        minutes = _positive(self.minutes, f"{self.key}.minutes", MAX_THRESHOLD_MIN, "minutes")
        meters = _positive(self.meters, f"{self.key}.meters", MAX_DISTANCE_M, "meters")
        share = self.target_share
        if share is not None:
            share = float(share)
            if not 0 < share <= 1:
                msg = f"`{self.key}.target_share` must be a share in (0, 1], e.g. 0.9; got {self.target_share!r}."
                raise InputError(msg)
        object.__setattr__(self, "minutes", minutes)
        object.__setattr__(self, "meters", meters)
        object.__setattr__(self, "target_share", share)
        object.__setattr__(self, "name", str(self.name or self.key))
        object.__setattr__(self, "source", str(self.source or ""))
        for name in ("meters_range", "population_range", "dwellings_range"):
            object.__setattr__(self, name, _range(getattr(self, name), f"{self.key}.{name}"))
        object.__setattr__(self, "facilities", tuple(str(f) for f in self.facilities))

    @property
    def has_limit(self) -> bool:
        """Whether the circle has a walking limit (a circle without one judges no level)."""
        return self.minutes is not None or self.meters is not None

    def within(self, dist_m: NDArray[np.float64], speed_ms: float) -> NDArray[np.bool_]:
        """Return which walks of ``dist_m`` meters (at ``speed_ms``) meet every limit of the circle."""
        ok = np.isfinite(dist_m)
        if self.meters is not None:
            ok &= dist_m <= self.meters
        if self.minutes is not None:
            ok &= dist_m / speed_ms / 60.0 <= self.minutes
        return np.asarray(ok, dtype=bool)


@dataclass(frozen=True)
class Standard:
    """A planning standard: its circles and which center level each circle judges.

    Parameters
    ----------
    key
        Short identifier (``"gb50180"``, a file's name).
    title
        Full title.
    source
        Where it comes from (the standard's number, a file path).
    circles
        Its levels, largest first.
    center_levels
        ``(center level, circle key)`` pairs: centers of that ``level`` are
        judged only against that circle. A circle may judge no level of ours.
    notes
        How the levels were mapped and what could not be verified.
    """

    key: str
    title: str
    source: str
    circles: tuple[Circle, ...]
    center_levels: tuple[tuple[str, str], ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        """Validate: circles with unique keys, each center level mapped once to a known circle."""
        circles = tuple(c if isinstance(c, Circle) else Circle(**dict(c)) for c in self.circles)
        if not circles:
            msg = f"Standard {self.key!r} has no levels; give at least one (level, minutes and/or meters)."
            raise InputError(msg)
        keys = [c.key for c in circles]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            msg = f"Standard {self.key!r} gives the level(s) {dup} more than once; give each level once."
            raise InputError(msg)
        pairs = tuple((str(a), str(b)) for a, b in self.center_levels)
        seen: set[str] = set()
        for level, circle in pairs:
            if circle not in keys:
                msg = f"Standard {self.key!r} maps center level {level!r} to {circle!r}, which is not one of its levels {keys}."
                raise InputError(msg)
            if not self.circle(circle).has_limit:
                msg = f"Standard {self.key!r} maps center level {level!r} to {circle!r}, which has no walking limit; give it `minutes` and/or `meters`."
                raise InputError(msg)
            if level in seen:
                msg = f"Standard {self.key!r} maps center level {level!r} twice; a level has one threshold."
                raise InputError(msg)
            seen.add(level)
        object.__setattr__(self, "circles", circles)
        object.__setattr__(self, "center_levels", pairs)

    def circle(self, key: str) -> Circle:
        """Return the circle ``key``."""
        for c in self.circles:
            if c.key == key:
                return c
        msg = f"Standard {self.key!r} has no level {key!r}; its levels are {[c.key for c in self.circles]}."
        raise InputError(msg)

    def judged(self) -> list[tuple[str, Circle]]:
        """Return ``(center level, circle)`` for every level of ours the standard judges."""
        return [(level, self.circle(key)) for level, key in self.center_levels]

    def to_dict(self) -> dict[str, Any]:
        """Return the standard as plain JSON values (read back by :meth:`from_dict`)."""
        return {
            "key": self.key,
            "title": self.title,
            "source": self.source,
            "circles": [_circle_dict(c) for c in self.circles],
            "center_levels": [list(p) for p in self.center_levels],
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Standard:
        """Read a standard written by :meth:`to_dict` (or a preset key as ``{"key": "gb50180"}``)."""
        if not isinstance(d, Mapping):
            msg = f"A standard must be an object with `key` and `circles`; got {d!r}."
            raise InputError(msg)
        if set(d) == {"key"}:
            return preset(str(d["key"]))
        known = {"key", "title", "source", "circles", "center_levels", "notes"}
        unknown = sorted(str(k) for k in set(d) - known)
        if unknown:
            msg = f"A standard has unknown field(s) {unknown}; known: {', '.join(sorted(known))}."
            raise InputError(msg)
        circles = []
        for c in d.get("circles") or ():
            if not isinstance(c, Mapping):
                msg = f"A level of a standard must be an object; got {c!r}."
                raise InputError(msg)
            circles.append(_circle_from(c))
        return cls(
            key=str(d.get("key") or "standard"),
            title=str(d.get("title") or d.get("key") or ""),
            source=str(d.get("source") or ""),
            circles=tuple(circles),
            center_levels=_pairs(d.get("center_levels") or ()),
            notes=str(d.get("notes") or ""),
        )


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """Return ``center_levels`` as ``(center level, circle key)`` pairs, or raise."""
    out = []
    for p in value:
        if isinstance(p, str) or not isinstance(p, Sequence) or len(p) != 2:
            msg = f"`center_levels` must be pairs [center level, circle key]; got {p!r}."
            raise InputError(msg)
        out.append((str(p[0]), str(p[1])))
    return tuple(out)


_CIRCLE_FIELDS = (
    "key",
    "name",
    "minutes",
    "meters",
    "source",
    "meters_range",
    "population_range",
    "dwellings_range",
    "facilities",
    "target_share",
    "notes",
)


def _circle_dict(c: Circle) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _CIRCLE_FIELDS:
        v = getattr(c, name)
        out[name] = list(v) if isinstance(v, tuple) else v
    return out


def _circle_from(d: Mapping[str, Any]) -> Circle:
    unknown = sorted(str(k) for k in set(d) - set(_CIRCLE_FIELDS))
    if unknown:
        msg = f"A level of a standard has unknown field(s) {unknown}; known: {', '.join(_CIRCLE_FIELDS)}."
        raise InputError(msg)
    kw = dict(d)
    if "facilities" in kw:
        kw["facilities"] = tuple(kw["facilities"] or ())
    return Circle(**kw)


# --- presets ------------------------------------------------------------------------------

_GB = "GB 50180-2018 城市居住区规划设计标准"
#: The terms are §2.0.2 (15-minute) to §2.0.5 (居住街坊), as a public evaluation set quoting the
#: text gives them; the table number 3.0.4 is not verified (docs/STANDARDS.md).
_GB_TABLE = f"{_GB}, 表3.0.4 居住区分级控制规模 (and §2.0.2–2.0.5 术语)"

#: GB 50180-2018: the 15-, 10- and 5-minute life circles and the 居住街坊, by walking distance.
GB50180 = Standard(
    key="gb50180",
    title="GB 50180-2018 城市居住区规划设计标准 (Standard for urban residential area planning and design)",
    source=_GB,
    circles=(
        Circle(
            key="15min",
            name="十五分钟生活圈居住区",
            meters=1000.0,
            meters_range=(800.0, 1000.0),
            population_range=(50_000, 100_000),
            dwellings_range=(17_000, 32_000),
            facilities=(
                "社区服务中心（街道级）",
                "街道办事处",
                "文化活动中心",
                "卫生服务中心（社区医院）",
                "养老院",
                "初中",
                "大型多功能运动场地",
            ),
            source=f"{_GB_TABLE}: 步行距离 800～1000 m, 居住人口 50000～100000 人; facilities: 附录B 表B.0.1",
            notes="threshold = the upper end (1000 m) of the 800–1000 m range",
        ),
        Circle(
            key="10min",
            name="十分钟生活圈居住区",
            meters=500.0,
            population_range=(15_000, 25_000),
            dwellings_range=(5_000, 8_000),
            facilities=("小学", "中型多功能运动场地", "菜市场或生鲜超市"),
            source=f"{_GB_TABLE}: 步行距离 500 m, 居住人口 15000～25000 人; facilities: 附录B 表B.0.1",
        ),
        Circle(
            key="5min",
            name="五分钟生活圈居住区",
            meters=300.0,
            population_range=(5_000, 12_000),
            dwellings_range=(1_500, 4_000),
            facilities=(
                "社区服务站（含居委会）",
                "文化活动站",
                "社区卫生服务站",
                "老年人日间照料中心（托老所）",
                "幼儿园",
                "社区商业网点",
            ),
            source=f"{_GB_TABLE}: 步行距离 300 m, 居住人口 5000～12000 人; facilities: 附录B 表B.0.2",
        ),
        Circle(
            key="block",
            name="居住街坊",
            population_range=(1_000, 3_000),
            dwellings_range=(300, 1_000),
            facilities=("物业管理与服务", "儿童、老年人活动场地", "便利店"),
            source=f"{_GB_TABLE}: 居住人口 1000～3000 人 (the table gives no walking distance); facilities: 附录B 表B.0.3",
            notes="the standard gives no walking distance for the 居住街坊: it judges no level here; judge grid centers with a local standard file",
        ),
    ),
    center_levels=(
        ("district", "15min"),
        ("street", "15min"),
        ("community", "5min"),
    ),
    notes=(
        "street-level 党群服务中心 are housed with the 街道办事处 that 表B.0.1 places in the "
        "15-minute circle; community-level ones with the 社区服务站（含居委会）of 表B.0.2 (5-minute "
        "circle). The standard has no circle above 15 minutes: district centers are judged as the "
        "15-minute circle. Grid (网格) centers would map to the 居住街坊, for which the table gives no "
        "walking distance, so they are not judged by this preset."
    ),
)

_TDT = "TD/T 1062-2021 社区生活圈规划技术指南"

#: TD/T 1062-2021: the 15-minute (town/street) and 5–10-minute (community) levels, by walking time.
TDT1062 = Standard(
    key="tdt1062",
    title="TD/T 1062-2021 社区生活圈规划技术指南 (Technical guideline for community life circle planning)",
    source=_TDT,
    circles=(
        Circle(
            key="15min",
            name="15分钟社区生活圈（乡镇、街道层级）",
            minutes=15.0,
            population_range=(50_000, 100_000),
            source=f"{_TDT}, 城镇社区生活圈 配置层级: 15分钟层级 宜对应乡镇、街道管理范围",
            notes="population 5–10万 as quoted by secondary sources; not checked against the text",
        ),
        Circle(
            key="5-10min",
            name="5～10分钟社区生活圈（社区层级）",
            minutes=10.0,
            population_range=(5_000, 12_000),
            source=f"{_TDT}, 城镇社区生活圈 配置层级: 5～10分钟层级 宜对应社区（居委）管理范围",
            notes="threshold = the upper end (10 min) of the 5–10 minute level; population 0.5–1.2万 not checked against the text",
        ),
    ),
    center_levels=(
        ("district", "15min"),
        ("street", "15min"),
        ("community", "5-10min"),
        ("grid", "5-10min"),
    ),
    notes=(
        "The guideline gives walking times, not distances, and no numeric coverage target; the "
        "compliance target defaults to DEFAULT_COMPLIANCE_TARGET unless --compliance-target is given."
    ),
)

#: Preset standards by key.
PRESETS: Mapping[str, Standard] = {"gb50180": GB50180, "tdt1062": TDT1062}


def _preset_key(text: str) -> str:
    """Return the preset key of ``text``: ``"GB 50180-2018"`` → ``"gb50180"`` (a year may follow)."""
    norm = "".join(ch for ch in text.lower() if ch.isalnum())
    for key in PRESETS:
        if norm.startswith(key) and len(norm) - len(key) in (0, 4):
            return key
    return norm


def preset(name: str) -> Standard:
    """Return the preset ``name`` (``gb50180``, ``tdt1062``; ``GB 50180-2018`` works too).

    Raises
    ------
    InputError
        Unknown name; the message lists the presets.
    """
    key = _preset_key(str(name))
    if key in PRESETS:
        return PRESETS[key]
    msg = f"Unknown standard {str(name)[:60]!r}; the presets are {', '.join(PRESETS)}, or give a TOML/JSON/CSV file (see docs/STANDARDS.md)."
    params = {"name": str(name)[:60], "presets": ", ".join(PRESETS)}
    raise InputError(msg, code="standard.unknown", params=params)


# --- local standards from a file ------------------------------------------------------------

#: Largest standard file read (a standard is a few lines).
MAX_FILE_BYTES = 1_000_000
_ROW_FIELDS = ("level", "name", "minutes", "meters", "source", "target_share", "notes")


def _rows_standard(
    key: str, title: str, source: str, rows: Sequence[Mapping[str, Any]]
) -> Standard:
    """Build a local standard: one row per center level, each its own circle."""
    circles: list[Circle] = []
    if not rows:
        msg = f"Standard file {source!r} has no levels; give at least one (level, minutes and/or meters)."
        raise InputError(msg, code="standard.no_levels", params={"name": source})
    for i, row in enumerate(rows, start=1):
        unknown = sorted(str(k) for k in set(row) - set(_ROW_FIELDS) if k not in ("", None))
        if unknown:
            msg = f"Standard file {source!r}, level {i}: unknown field(s) {unknown}; known: {', '.join(_ROW_FIELDS)}."
            params = {"name": source, "row": i, "fields": ", ".join(unknown)}
            raise InputError(msg, code="standard.unknown_field", params=params)
        level = str(row.get("level") or "").strip()
        if not level:
            msg = f"Standard file {source!r}, level {i}: `level` is missing; name the center level it judges (e.g. community)."
            raise InputError(msg, code="standard.no_level", params={"name": source, "row": i})
        if level in (c.key for c in circles):
            msg = f"Standard file {source!r} gives the level {level!r} more than once; give each level once."
            raise InputError(
                msg, code="standard.duplicate_level", params={"name": source, "level": level}
            )
        if all(row.get(k) in (None, "") for k in ("minutes", "meters")):
            msg = f"Standard file {source!r}, level {level!r}: give `minutes` and/or `meters` (e.g. meters = 300)."
            raise InputError(msg, code="standard.no_limit", params={"name": source, "level": level})
        circles.append(_row_circle(row, level, source, i))
    return Standard(
        key=key,
        title=title or key,
        source=source,
        circles=tuple(circles),
        center_levels=tuple((c.key, c.key) for c in circles),
    )


def _row_circle(row: Mapping[str, Any], level: str, source: str, i: int) -> Circle:
    """Return the circle of one level of a file; a bad value names the file and the level."""
    share = row.get("target_share")
    try:
        return Circle(
            key=level,
            name=str(row.get("name") or level),
            minutes=row.get("minutes"),
            meters=row.get("meters"),
            source=str(row.get("source") or source),
            target_share=None if share in (None, "") else _share(share, source, i),
            notes=str(row.get("notes") or ""),
        )
    except InputError as exc:
        if exc.code is not None:
            raise
        params = {
            "name": source,
            "level": level,
            "max_min": f"{MAX_THRESHOLD_MIN:g}",
            "max_m": f"{MAX_DISTANCE_M:g}",
        }
        msg = f"Standard file {source!r}, level {level!r}: {exc}"
        raise InputError(msg, code="standard.bad_value", params=params) from exc


def _share(value: Any, source: str, i: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        msg = f"Standard file {source!r}, level {i}: `target_share` must be a share such as 0.9; got {value!r}."
        raise InputError(msg) from None


def _parse_mapping(doc: Any, key: str, source: str) -> Standard:
    if not isinstance(doc, Mapping):
        msg = f"Standard file {source!r} must hold an object with a `levels` list (see docs/STANDARDS.md)."
        raise InputError(msg, code="standard.structure", params={"name": source})
    unknown = sorted(str(k) for k in set(doc) - {"name", "title", "source", "levels"})
    if unknown:
        msg = f"Standard file {source!r} has unknown field(s) {unknown}; known: levels, name, source, title."
        params = {"name": source, "row": 0, "fields": ", ".join(unknown)}
        raise InputError(msg, code="standard.unknown_field", params=params)
    rows = doc.get("levels")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        msg = f"Standard file {source!r} needs `levels`: a list of objects with `level` and `minutes` and/or `meters`."
        raise InputError(msg, code="standard.structure", params={"name": source})
    return _rows_standard(
        str(doc.get("name") or key),
        str(doc.get("title") or ""),
        str(doc.get("source") or source),
        rows,
    )


def _csv_rows(text: str, source: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "level" not in [f.strip() for f in reader.fieldnames]:
        msg = f"Standard file {source!r} (CSV) needs a header with `level` and `minutes` and/or `meters`; got {reader.fieldnames}."
        raise InputError(msg, code="standard.structure", params={"name": source})
    return [
        {str(k).strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        for row in reader
    ]


def standard_from_text(text: str, *, fmt: str, key: str = "local", source: str = "") -> Standard:
    """Read a local standard from the text of a TOML, JSON or CSV file.

    TOML/JSON: ``name``, ``title``, ``source`` and ``levels`` (a list of
    ``level``, ``minutes`` and/or ``meters``, ``source``, ``target_share``,
    ``name``, ``notes``). CSV: one row per level with those columns.

    Raises
    ------
    InputError
        A file that does not parse or does not validate; the message says what to fix.
    """
    source = source or f"<{fmt}>"
    fmt = fmt.lower().lstrip(".")
    try:
        if fmt == "toml":
            return _parse_mapping(tomllib.loads(text), key, source)
        if fmt == "json":
            return _parse_mapping(json.loads(text), key, source)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        msg = f"Standard file {source!r} is not valid {fmt.upper()}: {exc}."
        params = {"name": source, "format": fmt.upper()}
        raise InputError(msg, code="standard.invalid", params=params) from exc
    if fmt == "csv":
        return _rows_standard(key, "", source, _csv_rows(text, source))
    msg = f"Standard file {source!r}: unknown format {fmt!r}; use .toml, .json or .csv."
    raise InputError(msg, code="standard.format", params={"name": source})


def standard_from_file(path: Path | str) -> Standard:
    """Read a local standard file (``.toml``, ``.json``, ``.csv``; UTF-8), see :func:`standard_from_text`."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json", "csv"):
        msg = f"Standard file {p.name!r} must end in .toml, .json or .csv (or name a preset: {', '.join(PRESETS)})."
        raise InputError(msg, code="standard.format", params={"name": p.name})
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            msg = f"Standard file {p.name!r} is larger than {MAX_FILE_BYTES:,} bytes; a standard is a few lines."
            raise InputError(msg, code="standard.too_large", params={"name": p.name})
        data = p.read_bytes()
    except OSError as exc:
        msg = f"Cannot read the standard file {str(p)[:200]!r}: {exc.strerror or exc}."
        raise InputError(msg) from exc
    return standard_from_bytes(data, name=p.name)


def standard_from_bytes(data: bytes, *, name: str) -> Standard:
    """Read a local standard from a file's bytes (an upload), named by the file's own ``name``.

    The format comes from the name's suffix (``.toml``, ``.json``, ``.csv``); the text
    is UTF-8 (a BOM is accepted), at most :data:`MAX_FILE_BYTES`. Every refusal carries
    a ``code`` and ``params`` (``name``: the file's name, never a path) for a translation.

    Raises
    ------
    InputError
        A file that is too large, not UTF-8, of another format, or does not validate.
    """
    label = Path(str(name)).name or "standard"
    p = Path(label)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json", "csv"):
        msg = f"Standard file {label!r} must end in .toml, .json or .csv (or name a preset: {', '.join(PRESETS)})."
        raise InputError(msg, code="standard.format", params={"name": label})
    if len(data) > MAX_FILE_BYTES:
        msg = f"Standard file {label!r} is larger than {MAX_FILE_BYTES:,} bytes; a standard is a few lines."
        raise InputError(msg, code="standard.too_large", params={"name": label})
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"Standard file {label!r} is not UTF-8 text; save it as UTF-8."
        raise InputError(msg, code="standard.encoding", params={"name": label}) from exc
    return standard_from_text(text, fmt=fmt, key=p.stem, source=label)


def resolve_standard(value: str | Path | Standard | None) -> Standard | None:
    """Return the standard a command line or widget names: a preset key, a file, or as given."""
    if value is None or isinstance(value, Standard):
        return value
    text = str(value)
    if Path(text).suffix.lower() in (".toml", ".json", ".csv"):
        return standard_from_file(text)
    return preset(text)


# --- compliance per area ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComplianceParams:
    """Parameters of the compliance table.

    Parameters
    ----------
    household_size
        Persons per household (default :data:`DEFAULT_HOUSEHOLD_SIZE`, 2020 census).
    target_share
        Share of residents each area must have within its standard; ``None``:
        the circle's own target, else :data:`DEFAULT_COMPLIANCE_TARGET`.
    m2_per_100_households
        Floor area standard for the deficit (default :data:`DEFAULT_M2_PER_100_HOUSEHOLDS`).
    """

    household_size: float = DEFAULT_HOUSEHOLD_SIZE
    target_share: float | None = None
    m2_per_100_households: float = DEFAULT_M2_PER_100_HOUSEHOLDS

    def __post_init__(self) -> None:
        """Validate the parameters."""
        check_household_size(self.household_size)
        if self.target_share is not None and not 0 < float(self.target_share) <= 1:
            msg = f"`target_share` must be in (0, 1], e.g. 0.9; got {self.target_share!r}."
            raise InputError(msg)
        check_m2_per_100_households(self.m2_per_100_households)

    def target_of(self, circle: Circle) -> float:
        """Return the target share an area must reach for ``circle``."""
        if self.target_share is not None:
            return float(self.target_share)
        if circle.target_share is not None:
            return float(circle.target_share)
        return DEFAULT_COMPLIANCE_TARGET


def has_capacity_columns(demand: pd.DataFrame) -> bool:
    """Return whether ``demand`` carries the capacity columns the floor-area figures need."""
    return HOUSEHOLDS in demand.columns and M2_PER_100_HOUSEHOLDS in demand.columns


def area_of_units(
    demand: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, name_column: str
) -> NDArray[np.object_]:
    """Return, per demand unit, the name of the area holding its representative point (None outside)."""
    if name_column not in areas.columns:
        msg = f"`areas` lacks the name column {name_column!r}; columns are {list(areas.columns)}."
        raise InputError(msg)
    zones = areas[[name_column, areas.geometry.name]].to_crs(demand.crs)
    pts = gpd.GeoDataFrame(
        {"_unit": np.arange(len(demand))},
        geometry=demand.geometry.representative_point().to_numpy(),
        crs=demand.crs,
    )
    joined = gpd.sjoin(pts, zones, how="inner", predicate="within")
    joined = joined[~joined["_unit"].duplicated(keep="first")]
    out = np.full(len(demand), None, dtype=object)
    out[joined["_unit"].to_numpy(dtype=np.int64)] = joined[name_column].to_numpy(dtype=object)
    return out


def unit_households(demand: pd.DataFrame, household_size: float) -> NDArray[np.float64]:
    """Return households per demand unit: its ``households`` column where known, else population / household size.

    A census with a household column gives every unit its area's households in
    proportion to its residents (:mod:`coverage.census`); those figures win over
    the household size. Units without one (no such column, or an area without a
    household count) get ``population / household_size``.
    """
    pop = demand[POPULATION].to_numpy(dtype=np.float64)
    estimate: NDArray[np.float64] = pop / float(household_size)
    if HOUSEHOLDS not in demand.columns:
        return estimate
    given = pd.to_numeric(demand[HOUSEHOLDS], errors="coerce").to_numpy(dtype=np.float64)
    return np.asarray(np.where(np.isfinite(given), given, estimate), dtype=np.float64)


def compliance_table(
    demand: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    standard: Standard,
    params: ComplianceParams | None = None,
    *,
    name_column: str = "district",
) -> pd.DataFrame:
    """Return compliance per area and judged level: who is within the standard, and floor area.

    Parameters
    ----------
    demand
        Audited demand (``population`` and ``covered_level_<level>`` per judged
        level, as :func:`coverage.audit.audit` writes them with a standard);
        with the capacity columns ``households`` and ``m2_per_100_households``
        also the floor-area figures.
    areas
        Area polygons (districts, 街道, 社区) with ``name_column``; a unit counts
        in the area that holds its representative point.
    standard
        The standard audited.
    params
        Household size, target share, floor-area standard.
    name_column
        Name column of ``areas``.

    Returns
    -------
    pandas.DataFrame
        As :func:`compliance_rows`, one row per area (in their order) and judged level.
    """
    where = area_of_units(demand, areas, name_column)
    return compliance_rows(demand, where, list(areas[name_column]), standard, params)


def compliance_rows(
    demand: pd.DataFrame,
    labels: NDArray[Any] | Sequence[Any],
    names: Sequence[Any],
    standard: Standard,
    params: ComplianceParams | None = None,
) -> pd.DataFrame:
    """Return compliance per area and judged level, the area of each unit given as a label.

    Parameters
    ----------
    demand
        Audited demand, as for :func:`compliance_table`.
    labels
        Per demand unit, the area it counts in (``None``: none).
    names
        The areas, in the order of the rows; each is compared with ``labels``.
    standard, params
        As for :func:`compliance_table`.

    Returns
    -------
    pandas.DataFrame
        One row per area and judged level: ``area``, ``level``, ``circle``,
        ``threshold_min``, ``threshold_m``, ``units``, ``residents``,
        ``households`` (:func:`unit_households`: the ``households`` column where
        known, else residents / household size), ``residents_covered``,
        ``share`` (NaN for an area without residents), ``target_share``,
        ``passed``, ``floor_area_reachable_m2`` (Σ m2_per_100_households ×
        households / 100), ``floor_area_required_m2`` (standard × households /
        100) and ``deficit_m2`` (max(0, required − reachable)); the last three
        NaN without the capacity columns.
    """
    params = params or ComplianceParams()
    judged = standard.judged()
    missing = [
        level_covered_column(lv)
        for lv, _ in judged
        if level_covered_column(lv) not in demand.columns
    ]
    if missing:
        msg = f"`demand` lacks {missing}; audit it with the standard first (AuditParams(standard=...))."
        raise InputError(msg)
    where = np.asarray(labels, dtype=object)
    if where.shape != (len(demand),):
        msg = f"`labels` must give one area per demand unit ({len(demand)}); got {where.shape}."
        raise InputError(msg)
    pop = demand[POPULATION].to_numpy(dtype=np.float64)
    capacity = has_capacity_columns(demand)
    hh = unit_households(demand, params.household_size)
    if capacity:
        reach = np.nan_to_num(demand[M2_PER_100_HOUSEHOLDS].to_numpy(dtype=np.float64)) * hh / 100.0
    else:
        reach = np.full(len(demand), np.nan)
    rows: list[dict[str, Any]] = []
    for name in names:
        inside = where == name
        residents, households = float(pop[inside].sum()), float(hh[inside].sum())
        floor = _floor_area(reach[inside], households, params, capacity)
        for level, circle in judged:
            covered = float(
                pop[inside & demand[level_covered_column(level)].to_numpy(dtype=bool)].sum()
            )
            share = covered / residents if residents > 0 else math.nan
            target = params.target_of(circle)
            rows.append(
                {
                    AREA: name,
                    LEVEL: level,
                    CIRCLE: circle.key,
                    THRESHOLD_MIN: math.nan if circle.minutes is None else circle.minutes,
                    THRESHOLD_M: math.nan if circle.meters is None else circle.meters,
                    UNITS: int(inside.sum()),
                    RESIDENTS: residents,
                    HOUSEHOLDS: households,
                    RESIDENTS_COVERED: covered,
                    SHARE: share,
                    TARGET_SHARE: target,
                    PASSED: bool(share >= target) if residents > 0 else None,
                    **floor,
                }
            )
    logger.info("compliance: %d areas x %d levels", len(names), len(judged))
    return pd.DataFrame(rows, columns=list(COMPLIANCE_COLUMNS))


def _floor_area(
    reach: NDArray[np.float64], households: float, params: ComplianceParams, capacity: bool
) -> dict[str, float]:
    if not capacity:
        return {
            FLOOR_AREA_REACHABLE_M2: math.nan,
            FLOOR_AREA_REQUIRED_M2: math.nan,
            DEFICIT_M2: math.nan,
        }
    reachable = float(reach.sum())
    required = params.m2_per_100_households * households / 100.0
    return {
        FLOOR_AREA_REACHABLE_M2: reachable,
        FLOOR_AREA_REQUIRED_M2: required,
        DEFICIT_M2: max(0.0, required - reachable),
    }


# --- coverage and compliance per census area ---------------------------------------------


def census_labels(demand: pd.DataFrame) -> NDArray[np.object_]:
    """Return, per demand unit, the number of its census area (``None`` for a unit of no area)."""
    out = np.full(len(demand), None, dtype=object)
    if CENSUS_AREA not in demand.columns:
        return out
    values = pd.to_numeric(demand[CENSUS_AREA], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values)
    out[ok] = values[ok].astype(np.int64)
    return out


def census_area_table(
    demand: pd.DataFrame,
    areas: Sequence[Mapping[str, Any]],
    limits: Sequence[tuple[str, str]],
    params: ComplianceParams | None = None,
) -> pd.DataFrame:
    """Return coverage per census area: residents placed, households, share within each threshold.

    Parameters
    ----------
    demand
        Audited demand of a census run (``census_area``, ``population``, the
        ``covered_<key>`` columns of ``limits``; with the capacity columns also
        the floor area within reach).
    areas
        The census report's ``by_area`` rows, in the file's order (``name``,
        ``population``, ``placed``, ``method``).
    limits
        ``(key, covered column)`` per audited threshold, e.g. ``("5", "covered_5")``,
        ``("300m", "covered_300m")``.
    params
        Household size and floor-area standard.

    Returns
    -------
    pandas.DataFrame
        One row per census area, in the file's order: ``census_area`` (its
        number), ``area`` (name), ``method``, ``population`` (the census count),
        ``placed``, ``units``, ``residents`` (Σ of its units: ``placed`` to
        rounding), ``households`` (:func:`unit_households`),
        ``population_covered_<key>`` and ``share_<key>`` per threshold (share NaN
        without residents), ``floor_area_reachable_m2``,
        ``floor_area_required_m2``, ``deficit_m2`` (NaN without the capacity columns).
    """
    params = params or ComplianceParams()
    where = census_labels(demand)
    pop = demand[POPULATION].to_numpy(dtype=np.float64)
    hh = unit_households(demand, params.household_size)
    capacity = has_capacity_columns(demand)
    reach = (
        np.nan_to_num(demand[M2_PER_100_HOUSEHOLDS].to_numpy(dtype=np.float64)) * hh / 100.0
        if capacity
        else np.full(len(demand), np.nan)
    )
    covered = {key: demand[col].to_numpy(dtype=bool) for key, col in limits}
    rows: list[dict[str, Any]] = []
    for i, area in enumerate(areas, start=1):
        inside = where == i
        residents, households = float(pop[inside].sum()), float(hh[inside].sum())
        row: dict[str, Any] = {
            CENSUS_AREA: i,
            AREA: area.get("name"),
            "method": area.get("method"),
            "population": float(area.get("population") or 0.0),
            "placed": float(area.get("placed") or 0.0),
            UNITS: int(inside.sum()),
            RESIDENTS: residents,
            HOUSEHOLDS: households,
        }
        for key, mask in covered.items():
            people = float(pop[inside & mask].sum())
            row[f"population_covered_{key}"] = people
            row[f"share_{key}"] = people / residents if residents > 0 else math.nan
        row.update(_floor_area(reach[inside], households, params, capacity))
        rows.append(row)
    logger.info("coverage per census area: %d areas, %d thresholds", len(rows), len(limits))
    return pd.DataFrame(rows)
