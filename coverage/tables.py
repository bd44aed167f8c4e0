"""Planner-facing tables built from results: headline numbers, the minutes curve, sites, districts.

These are the small tables a planner reads on screen (the app's metrics, charts and tables);
each is computed here once from an audit, a siting or a scenario result, so the app only shows
them. Column names are plain identifiers (``share_15``, ``lon``); the ``*_labels`` functions
give the on-screen names from the one label table, :mod:`coverage.i18n`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.audit import AuditResult
from coverage.i18n import MESSAGES, t
from coverage.names import share_column, threshold_key, uncovered_column
from coverage.scenario import ScenarioResult

#: Longest walk, in minutes, on the x axis of :func:`minutes_curve`.
CURVE_MAX_MINUTES = 30
#: Columns of :func:`sites_frame`.
SITE_TABLE_COLUMNS = ("rank", "lon", "lat", "marginal_population", "cumulative_share")
#: Decimals kept in the sites table's lon/lat (1e-6 degree ≈ 10 cm).
SITE_COORD_DECIMALS = 6


def minutes_curve(demand: pd.DataFrame, *, max_minutes: int = CURVE_MAX_MINUTES) -> pd.DataFrame:
    """Return the share of residents within x walking minutes of a center, x = 0, 1, …, max.

    Parameters
    ----------
    demand
        Audited demand units: ``population`` and ``minutes_to_nearest`` (NaN when no center
        is reachable; such units are never within reach).
    max_minutes
        Last whole minute on the curve.

    Returns
    -------
    pandas.DataFrame
        Index ``minutes`` (0 … `max_minutes`), column ``share`` (0–1, of all residents;
        0 everywhere when nobody lives in the area).
    """
    minutes = demand["minutes_to_nearest"].to_numpy(dtype=float)
    pop = demand["population"].to_numpy(dtype=float)
    total = pop.sum() or 1.0
    xs = list(range(max_minutes + 1))
    shares = [float(pop[minutes <= x].sum() / total) for x in xs]
    return pd.DataFrame({"share": shares}, index=pd.Index(xs, name="minutes"))


def coverage_numbers(audit: AuditResult) -> dict[str, float]:
    """Return the share and the residents left uncovered for each threshold of an audit.

    Returns
    -------
    dict
        ``share_<t>`` and ``uncovered_population_<t>`` per threshold, in threshold order.
    """
    out: dict[str, float] = {}
    for minutes in audit.params.thresholds_min:
        stats = audit.coverage[threshold_key(minutes)]
        out[share_column(minutes)] = float(stats.share)
        out[uncovered_column(minutes)] = float(audit.population_total - stats.population_covered)
    return out


def headline_numbers(result: ScenarioResult) -> dict[str, float]:
    """Return a scenario's headline numbers (the app's metrics, one row of the comparison).

    Returns
    -------
    dict
        ``share_<t>`` and ``uncovered_population_<t>`` per threshold (see
        :func:`coverage_numbers`), ``centers`` (count in force), ``population`` (total);
        with a siting also ``share_after`` and ``sites_proposed``.
    """
    audit: AuditResult = result.audit
    out = coverage_numbers(audit)
    out["centers"] = float(len(result.centers))
    out["population"] = float(audit.population_total)
    if result.siting is not None:
        out["share_after"] = float(result.siting.share_after)
        out["sites_proposed"] = float(len(result.siting.sites))
    return out


def compare_scenarios(results: Mapping[str, ScenarioResult]) -> pd.DataFrame:
    """Return scenarios side by side, each share's change measured from the first scenario.

    Parameters
    ----------
    results
        Scenario name → result; the first one is the reference.

    Returns
    -------
    pandas.DataFrame
        Index ``scenario``; the :func:`headline_numbers` columns, ``<share column>_change``
        for every share column the first scenario has too, ``stations_added`` (added plus
        accepted), ``stations_closed``.
    """
    rows = []
    base: dict[str, float] | None = None
    for name, res in results.items():
        numbers = headline_numbers(res)
        if base is None:
            base = numbers
        row: dict[str, Any] = {"scenario": name, **numbers}
        for key in numbers:
            if key.startswith("share_") and key in base:
                row[f"{key}_change"] = numbers[key] - base[key]
        row["stations_added"] = len(res.scenario.added) + len(res.scenario.accepted_sites)
        row["stations_closed"] = len(res.scenario.closed)
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario")


def sites_frame(sites: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return proposed sites as a plain table in WGS-84 (for showing and for accepting them).

    Parameters
    ----------
    sites
        :attr:`coverage.siting.SitingResult.sites` (any CRS).

    Returns
    -------
    pandas.DataFrame
        ``rank`` (int), ``lon``, ``lat`` (EPSG:4326, 6 decimals), ``marginal_population``
        (rounded to whole residents), ``cumulative_share``; RangeIndex.
    """
    wgs = sites.to_crs(4326)
    return pd.DataFrame(
        {
            "rank": wgs["rank"].astype(int).to_numpy(),
            "lon": wgs.geometry.x.round(SITE_COORD_DECIMALS).to_numpy(),
            "lat": wgs.geometry.y.round(SITE_COORD_DECIMALS).to_numpy(),
            "marginal_population": wgs["marginal_population"].round(0).to_numpy(),
            "cumulative_share": np.asarray(wgs["cumulative_share"].to_numpy()),
        }
    )


def site_labels(lang: str) -> dict[str, str]:
    """Return on-screen names of the :func:`sites_frame` columns in `lang`.

    Returns
    -------
    dict
        Column → label, for :meth:`pandas.DataFrame.rename`.
    """
    return {
        "rank": t("map.field.rank", lang),
        "lon": t("table.lon", lang),
        "lat": t("table.lat", lang),
        "marginal_population": t("map.field.marginal_population", lang),
        "cumulative_share": t("map.field.cumulative_share", lang),
    }


def district_labels(thresholds_min: Sequence[float], lang: str) -> dict[str, str]:
    """Return on-screen names of the per-district table's columns in `lang`.

    The table is :func:`coverage.export.district_coverage`'s.

    Returns
    -------
    dict
        Column → label (``district``, ``population``, ``units``, ``share_<t>``,
        ``population_covered_<t>``), for :meth:`pandas.DataFrame.rename`.
    """
    names = {
        "district": t("map.field.district", lang),
        "population": t("map.field.population", lang),
        "units": t("table.units", lang),
    }
    for minutes in thresholds_min:
        names[share_column(minutes)] = t("table.share", lang, minutes=float(minutes))
        covered = f"population_covered_{threshold_key(minutes)}"  # export.district_coverage's
        names[covered] = t("table.covered", lang, minutes=float(minutes))
    return names


def compare_labels(thresholds_min: Sequence[float], lang: str) -> dict[str, str]:
    """Return on-screen names of the :func:`compare_scenarios` columns (and index) in `lang`.

    Returns
    -------
    dict
        Column → label (``scenario``, ``share_<t>``, ``share_<t>_change``,
        ``uncovered_population_<t>``, ``centers``, ``population``, ``share_after``,
        ``sites_proposed``, ``stations_added``, ``stations_closed``), for
        :meth:`pandas.DataFrame.rename`.
    """
    names = {
        key: t(f"table.{key}", lang)
        for key in (
            "scenario",
            "centers",
            "population",
            "share_after",
            "sites_proposed",
            "stations_added",
            "stations_closed",
        )
    }
    for minutes in thresholds_min:
        m = float(minutes)
        names[share_column(minutes)] = t("table.share", lang, minutes=m)
        names[f"{share_column(minutes)}_change"] = t("table.share_change", lang, minutes=m)
        names[uncovered_column(minutes)] = t("table.uncovered", lang, minutes=m)
    return names


# --- planner-ready display tables (issue 13) ----------------------------------------------

#: A share change smaller than this (half of the 0.1 % shown) is "no change".
NO_CHANGE_SHARE = 0.0005
#: Shown for a value that does not exist (a scenario without a proposal, a missing number).
MISSING = "—"
#: Station states, in the order of the legend and the stations table.
STATION_STATES = ("existing", "added", "accepted", "closed")
#: Columns of :func:`stations_frame`.
STATION_COLUMNS = ("center_id", "name", "state", "level", "lon", "lat")
#: Metres within which a center in force is the station the scenario added there.
STATION_MATCH_M = 1.0


def percent(share: float | None) -> str:
    """Return a share (0–1) as a percentage with one decimal (``0.2092`` → ``"20.9%"``).

    Missing or non-finite values are :data:`MISSING`.
    """
    if share is None or not np.isfinite(share):
        return MISSING
    return f"{float(share) * 100:.1f}%"


def people(count: float | None) -> str:
    """Return a number of residents as a whole number with thousands separators."""
    if count is None or not np.isfinite(count):
        return MISSING
    return f"{round(float(count)):,}"


def share_change(delta: float | None, lang: str) -> str:
    """Return a change of share in percentage points, or "no change" when it rounds to 0.0.

    Examples: ``+1.2 个百分点`` / ``+1.2 points``; ``无变化`` / ``no change``.
    """
    if delta is None or not np.isfinite(delta):
        return MISSING
    if abs(delta) < NO_CHANGE_SHARE:
        return t("table.no_change", lang)
    return t("table.points", lang, value=f"{delta * 100:+.1f}")


def method_label(method: str, lang: str) -> str:
    """Return the optimizer method (``"greedy+swap"``, ``"exact"``) in the planner's words."""
    key = "table.method.exact" if method == "exact" else "table.method.greedy"
    return t(key, lang)


def compare_view(results: Mapping[str, ScenarioResult], lang: str) -> pd.DataFrame:
    """Return :func:`compare_scenarios` as the planner reads it: labelled, rounded, as text.

    Shares are percentages with one decimal, changes in percentage points ("no change" when
    they round to zero), residents whole; a scenario without a proposal shows
    :data:`MISSING` in the proposal's columns (never ``None``).

    Returns
    -------
    pandas.DataFrame
        Index: the scenario names, named "方案" / "Scenario"; columns labelled by
        :func:`compare_labels`; every cell a string.
    """
    raw = compare_scenarios(results)
    ts = sorted({float(m) for r in results.values() for m in r.scenario.thresholds_min})
    out = pd.DataFrame(index=raw.index)
    for col in raw.columns:
        values = raw[col].astype(float)
        if col.endswith("_change"):
            shown = [share_change(v, lang) for v in values]
        elif col.startswith("share_"):
            shown = [percent(v) for v in values]
        else:
            shown = [people(v) for v in values]
        out[col] = shown
    labels = compare_labels(ts, lang)
    return out.rename(columns=labels).rename_axis(labels["scenario"])


def sites_view(sites: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Return a :func:`sites_frame` table for the screen: labelled, residents whole, shares in %.

    Returns
    -------
    pandas.DataFrame
        The :func:`sites_frame` columns labelled by :func:`site_labels`; ``rank`` int,
        ``lon``/``lat`` numbers, the population and share as text.
    """
    out = sites.copy()
    out["marginal_population"] = [people(v) for v in sites["marginal_population"]]
    out["cumulative_share"] = [percent(v) for v in sites["cumulative_share"]]
    return out.rename(columns=site_labels(lang))


def district_view(
    districts: pd.DataFrame, thresholds_min: Sequence[float], lang: str
) -> pd.DataFrame:
    """Return the per-district table for the screen: labelled, residents whole, shares in %.

    Parameters
    ----------
    districts
        :func:`coverage.export.district_coverage`'s table.
    thresholds_min
        The audit's thresholds.
    lang
        ``"zh"`` or ``"en"``.

    Returns
    -------
    pandas.DataFrame
        Columns labelled by :func:`district_labels`; shares and residents as text.
    """
    out = districts.copy()
    for col in out.columns:
        if col.startswith("share_"):
            out[col] = [percent(v) for v in districts[col].astype(float)]
        elif col in ("population", "units") or col.startswith("population_covered_"):
            out[col] = [people(v) for v in districts[col].astype(float)]
    return out.rename(columns=district_labels(thresholds_min, lang))


def _matches(centers: gpd.GeoDataFrame, stations: Sequence[Any]) -> dict[int, tuple[int, str]]:
    """Row position of each center in force → (index, name) of the station placed there."""
    if not len(stations) or not len(centers):
        return {}
    pts = gpd.GeoSeries(
        gpd.points_from_xy([s.lon for s in stations], [s.lat for s in stations]), crs=4326
    ).to_crs(centers.crs)
    out: dict[int, tuple[int, str]] = {}
    xy = np.column_stack([centers.geometry.x.to_numpy(), centers.geometry.y.to_numpy()])
    for i, p in enumerate(pts):
        d = np.hypot(xy[:, 0] - p.x, xy[:, 1] - p.y)
        j = int(np.argmin(d))
        if d[j] <= STATION_MATCH_M:
            out[j] = (i, str(stations[i].name or ""))
    return out


def station_states(base: gpd.GeoDataFrame, result: ScenarioResult) -> gpd.GeoDataFrame:
    """Return every station of a scenario with its state: existing, added, accepted, closed.

    Parameters
    ----------
    base
        The city's own centers (``CityData.centers``), before the scenario's edits.
    result
        The scenario's result: its centers in force and its edits.

    Returns
    -------
    geopandas.GeoDataFrame
        The centers in force plus the closed ones, in ``base.crs``: ``center_id``, ``name``,
        ``level``, ``state`` (one of :data:`STATION_STATES`), ``edit_index`` (position in
        ``scenario.added`` or ``scenario.accepted_sites``, -1 for the city's own centers),
        geometry.
    """
    s = result.scenario
    now = result.centers.reset_index(drop=True)
    own = now["center_id"].astype(str).isin(set(base["center_id"].astype(str)))
    state = np.where(own.to_numpy(), "existing", "added").astype(object)
    edit = np.full(len(now), -1, dtype=np.int64)
    names = now["name"].astype(object) if "name" in now else pd.Series([None] * len(now))
    names = names.to_numpy(copy=True)
    for kind, stations in (("added", s.added), ("accepted", s.accepted_sites)):
        for j, (i, name) in _matches(now[~own.to_numpy()], stations).items():
            pos = int(np.flatnonzero(~own.to_numpy())[j])
            state[pos], edit[pos], names[pos] = kind, i, name or names[pos]
    cols = ["center_id", "level"]
    frame = now[[c for c in cols if c in now.columns]].copy()
    frame["name"], frame["state"], frame["edit_index"] = names, state, edit
    closed_ids = {str(c) for c in s.closed}
    closed = base[base["center_id"].astype(str).isin(closed_ids)]
    shut = closed[[c for c in ("center_id", "name", "level") if c in closed.columns]].copy()
    shut["state"], shut["edit_index"] = "closed", -1
    both = pd.concat(
        [
            gpd.GeoDataFrame(frame, geometry=now.geometry.to_numpy(), crs=now.crs),
            gpd.GeoDataFrame(shut, geometry=closed.geometry.to_numpy(), crs=base.crs),
        ],
        ignore_index=True,
    )
    return gpd.GeoDataFrame(both, geometry="geometry", crs=base.crs)


def _level_label(level: object, lang: str) -> str:
    """Return a center level (``street``, …) in `lang`; :data:`MISSING` when there is none."""
    if level is None or level != level or str(level) == "":
        return MISSING
    key = f"table.level.{level}"
    return t(key, lang) if key in MESSAGES else str(level)


def stations_view(stations: gpd.GeoDataFrame, lang: str) -> pd.DataFrame:
    """Return :func:`station_states` as a table: name, state, level, lon/lat (WGS-84).

    Returns
    -------
    pandas.DataFrame
        ``center_id``, ``name`` (the id where there is none), ``state`` (translated),
        ``level``, ``lon``, ``lat``, ``edit_index``; RangeIndex. The app labels the columns
        with :func:`station_labels`.
    """
    wgs = stations.to_crs(4326)
    pts = wgs.geometry.representative_point()
    names = wgs["name"].astype(object)
    names = names.where(names.notna() & (names.astype(str) != ""), wgs["center_id"])
    levels = wgs["level"] if "level" in wgs else pd.Series([None] * len(wgs))
    return pd.DataFrame(
        {
            "center_id": wgs["center_id"].astype(str).to_numpy(),
            "name": names.astype(str).to_numpy(),
            "state": [t(f"table.state.{s}", lang) for s in wgs["state"]],
            "level": [_level_label(v, lang) for v in levels],
            "lon": pts.x.round(SITE_COORD_DECIMALS).to_numpy(),
            "lat": pts.y.round(SITE_COORD_DECIMALS).to_numpy(),
            "edit_index": wgs["edit_index"].astype(int).to_numpy(),
        }
    )


def station_labels(lang: str) -> dict[str, str]:
    """Return on-screen names of the :func:`stations_view` columns in `lang`."""
    return {
        "center_id": t("map.field.center_id", lang),
        "name": t("map.field.name", lang),
        "state": t("table.state", lang),
        "level": t("map.field.level", lang),
        "lon": t("table.lon", lang),
        "lat": t("table.lat", lang),
    }


# --- issue 15: the standard, compliance and group tables on screen ---------------------

#: Columns of the standard's per-level table shown, in order, and their label keys.
_STANDARD_VIEW: tuple[tuple[str, str], ...] = (
    ("level", "map.field.level"),
    ("name", "table.std.circle"),
    ("threshold_min", "table.std.threshold_min"),
    ("threshold_m", "table.std.threshold_m"),
    ("centers", "table.std.centers"),
    ("population_covered", "table.std.population_covered"),
    ("share", "table.std.share"),
    ("source", "table.std.source"),
)
#: Columns of the compliance table shown, in order, and their label keys.
_COMPLIANCE_VIEW: tuple[tuple[str, str], ...] = (
    ("area", "table.cmp.area"),
    ("level", "map.field.level"),
    ("threshold_min", "table.std.threshold_min"),
    ("threshold_m", "table.std.threshold_m"),
    ("residents", "table.cmp.residents"),
    ("households", "table.cmp.households"),
    ("residents_covered", "table.std.population_covered"),
    ("share", "table.std.share"),
    ("target_share", "table.cmp.target"),
    ("passed", "table.cmp.passed"),
    ("floor_area_reachable_m2", "table.cmp.reachable_m2"),
    ("floor_area_required_m2", "table.cmp.required_m2"),
    ("deficit_m2", "table.cmp.deficit_m2"),
)
#: Columns of the population-group table shown, in order, and their label keys.
_GROUPS_VIEW: tuple[tuple[str, str], ...] = (
    ("group", "table.grp.group"),
    ("speed_kmh", "table.grp.speed_kmh"),
    ("minutes", "table.grp.minutes"),
    ("population", "table.grp.population"),
    ("population_covered", "table.std.population_covered"),
    ("share", "table.std.share"),
)
_SHARES = frozenset({"share", "target_share"})
_PEOPLE = frozenset(
    {"population_covered", "residents", "households", "residents_covered", "population"}
)
_AREAS_M2 = frozenset({"floor_area_reachable_m2", "floor_area_required_m2", "deficit_m2"})
_NUMBERS = frozenset({"threshold_min", "threshold_m", "speed_kmh", "minutes"})


def _missing(value: object) -> bool:
    """Return whether a table cell holds no value (None, NaN, NA)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and value != value  # NaN (numpy floats are floats)


def _number(value: object) -> str:
    """Return a threshold, speed or floor area as text: ``5``, ``4.5``, ``1,234``."""
    if _missing(value):
        return MISSING
    f = float(str(value))
    if not np.isfinite(f):
        return MISSING
    return f"{f:,.0f}" if abs(f) >= 1000 else f"{f:g}"


def _cell(col: str, value: object, lang: str) -> str:
    """Return one cell of an on-screen table as text, by its column."""
    if _missing(value):
        return MISSING
    if col in _SHARES:
        return percent(float(str(value)))
    if col in _PEOPLE:
        return people(float(str(value)))
    if col == "passed":
        return t("table.yes" if bool(value) else "table.no", lang)
    if col == "level":
        return _level_label(value, lang)
    if col in _AREAS_M2 or col in _NUMBERS:
        return _number(value)
    return str(value)


def _view(table: pd.DataFrame, columns: Sequence[tuple[str, str]], lang: str) -> pd.DataFrame:
    """Return `table`'s known `columns`, formatted for the screen and labelled in `lang`."""
    out = pd.DataFrame(index=range(len(table)))
    for col, key in columns:
        if col in table.columns:
            out[t(key, lang)] = [_cell(col, v, lang) for v in table[col].tolist()]
    return out


def standard_view(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Return the audit's ``standard_table`` for the screen: labelled, shares in %, whole residents.

    Returns
    -------
    pandas.DataFrame
        Level, circle, threshold (min, m), centers, residents covered, share, source;
        labelled in `lang`; RangeIndex.
    """
    return _view(table, _STANDARD_VIEW, lang)


def compliance_view(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Return :func:`coverage.standards.compliance_table` for the screen, labelled in `lang`.

    Returns
    -------
    pandas.DataFrame
        Area, level, thresholds, residents, households, residents covered, share, target,
        passed (yes / no), floor area reachable, required and the deficit (m²); RangeIndex.
    """
    return _view(table, _COMPLIANCE_VIEW, lang)


def groups_view(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Return :func:`coverage.groups.group_coverage` for the screen, labelled in `lang`.

    Returns
    -------
    pandas.DataFrame
        Group, walking speed, threshold, the group's residents, covered, share; RangeIndex.
    """
    return _view(table, _GROUPS_VIEW, lang)
