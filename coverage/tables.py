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
from coverage.i18n import t
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
