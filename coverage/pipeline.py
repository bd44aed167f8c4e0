"""The one path from a loaded city and a scenario to a result, and from a result to files.

:func:`run` audits the centers in force (per threshold, per level, per district
when the city has districts) and, when the scenario asks, proposes new sites.
:func:`write` writes the output contract of a result
(:func:`coverage.export.output_files`) into a folder. The CLI's ``audit`` and ``site``, each
district of ``batch`` (on the city clipped with its walking buffer) and the app
all go through these, so the policy below is decided here, once:

- which centers are in force: the city's, minus ``scenario.closed``, plus the
  added stations and accepted sites (:func:`scenario_centers`);
- which thresholds are audited when siting: the scenario's, plus the siting
  minutes (:func:`audit_params`), so the baseline share of the siting
  threshold is always in the summary;
- the siting's walking speed (the audit's) and its tie-break minutes: the
  largest audited threshold below the siting minutes (:func:`tie_break_minutes`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd

from coverage import export
from coverage.audit import AuditParams, audit
from coverage.centers import add_centers, close_centers
from coverage.inputs import CityData
from coverage.progress import ProgressFn, sub_progress
from coverage.scenario import Scenario, ScenarioResult
from coverage.siting import SitingParams, propose_sites

logger = logging.getLogger(__name__)

#: Share of the progress range the audit takes when sites are proposed too.
_AUDIT_SHARE_WITH_SITING = 0.64


# --- policy ----------------------------------------------------------------------------


def tie_break_minutes(thresholds_min: Sequence[float], minutes: float) -> float | None:
    """Return the largest threshold below ``minutes`` (``None`` when there is none).

    Between new sites that cover as many residents within ``minutes``, the one
    covering more within this shorter time wins.
    """
    below = [float(x) for x in thresholds_min if float(x) < float(minutes)]
    return max(below) if below else None


def audit_params(scenario: Scenario) -> AuditParams:
    """Return the audit's parameters: the scenario's, plus the siting minutes when siting."""
    params = scenario.audit
    if scenario.siting is None:
        return params
    thresholds = tuple(sorted({*params.thresholds_min, float(scenario.siting.minutes)}))
    if thresholds == tuple(params.thresholds_min):
        return params
    return replace(params, thresholds_min=thresholds)


def siting_params(scenario: Scenario) -> SitingParams | None:
    """Return the siting's parameters: the audit's speed, tie-break minutes from the audited thresholds."""
    if scenario.siting is None:
        return None
    audited = audit_params(scenario)
    return replace(
        scenario.siting,
        speed_kmh=audited.speed_kmh,
        secondary_minutes=tie_break_minutes(audited.thresholds_min, scenario.siting.minutes),
    )


def scenario_centers(city: CityData, scenario: Scenario) -> gpd.GeoDataFrame:
    """Return the centers in force in ``scenario``: base − closed + added + accepted.

    Returns
    -------
    geopandas.GeoDataFrame
        The centers contract (``center_id``, ``name``, ``source``, ``level``,
        geometry, snap columns) in ``city.net.crs``.
    """
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
        )
    return centers


# --- the run ---------------------------------------------------------------------------


def run(
    city: CityData,
    scenario: Scenario,
    *,
    with_polygons: bool = True,
    progress: ProgressFn | None = None,
    cache_polygons: bool = False,
) -> ScenarioResult:
    """Audit ``scenario`` on ``city`` and, if it asks, propose new sites.

    Parameters
    ----------
    city
        The loaded city (never modified).
    scenario
        Parameters and edits.
    with_polygons
        Build service-area and uncovered polygons (the slowest step).
    progress
        ``progress(fraction, message)``.
    cache_polygons
        Keep the service areas in ``city.cache_dir`` and reuse them when the same
        command runs again (the CLI; the app keeps results in memory instead).

    Returns
    -------
    ScenarioResult
        The centers in force, the audit (thresholds of :func:`audit_params`),
        the siting (:func:`siting_params`, with ``city.candidates`` and
        ``city.exclusions``) and the per-district table when the city has
        districts.
    """
    params = audit_params(scenario)
    sp = siting_params(scenario)
    split = _AUDIT_SHARE_WITH_SITING if sp is not None else 1.0
    centers = scenario_centers(city, scenario)
    result = audit(
        city.net,
        centers,
        city.demand,
        params,
        with_polygons=with_polygons,
        progress=sub_progress(progress, 0.0, split),
        polygon_cache_dir=city.cache_dir if cache_polygons else None,
    )
    districts = (
        export.district_coverage(result.demand, city.districts, params.thresholds_min)
        if city.districts is not None
        else None
    )
    siting = None
    if sp is not None:
        siting = propose_sites(
            city.net,
            city.demand,
            centers,
            params=sp,
            candidates=city.candidates,
            exclude=city.exclusions,
            progress=sub_progress(progress, split, 1.0),
        )
    logger.info(
        "ran scenario %r: %d centers, %d thresholds%s",
        scenario.name,
        len(centers),
        len(params.thresholds_min),
        f", {len(siting.sites)} sites proposed" if siting is not None else "",
    )
    return ScenarioResult(
        scenario=scenario, centers=centers, audit=result, siting=siting, districts=districts
    )


# --- the output contract ---------------------------------------------------------------


def write(
    result: ScenarioResult,
    city: CityData,
    out: Path | str,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    lang: str = "zh",
    report: bool = True,
    progress: ProgressFn | None = None,
) -> Path:
    """Write the output contract of ``result`` into the folder ``out``, all-or-nothing.

    The files are those of :func:`coverage.export.output_files` (same
    parameters); ``out`` is replaced as a whole (:func:`coverage.export.write_outputs`).

    Returns
    -------
    pathlib.Path
        The absolute output folder.
    """
    built = export.output_files(
        result, city, title=title, extra=extra, lang=lang, report=report, progress=progress
    )
    return export.write_outputs(out, built)
