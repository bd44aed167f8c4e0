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
  threshold is always in the summary; the standard per level is the
  scenario's, else the one that comes with the city's centers;
- the siting's walking speed (the audit's) and its tie-break minutes: the
  largest audited threshold below the siting minutes (:func:`tie_break_minutes`);
- a capacitated siting's household size and floor-area standard: the capacity
  audit's (:func:`siting_params`);
- whether the capacity audit runs: when the scenario asks for it, or with the
  default parameters when the city's centers carry floor areas
  (:func:`capacity_params`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from coverage import export
from coverage.audit import AuditParams, audit, audit_numbers
from coverage.capacity import CapacityParams, capacity_audit, compliance_params
from coverage.centers import FLOOR_AREA_M2, add_centers, close_centers
from coverage.groups import group_coverage, group_names
from coverage.inputs import CityData
from coverage.names import METERS_UNIT, covered_column, threshold_key
from coverage.progress import ProgressFn, sub_progress
from coverage.scenario import Scenario, ScenarioResult
from coverage.siting import (
    SitingParams,
    SitingResult,
    SitingSets,
    propose_sites,
    propose_sites_with,
    siting_sets,
)
from coverage.standards import (
    ComplianceParams,
    census_area_table,
    census_labels,
    compliance_rows,
    compliance_table,
)

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


def audit_params(scenario: Scenario, city: CityData | None = None) -> AuditParams:
    """Return the audit's parameters: the scenario's, plus the siting minutes when siting.

    When the scenario sets no standard per level, the one that comes with the
    city's centers applies (``city.centers_source["level_minutes"]``: the
    embedded stations' street=15, community=5 minutes), unless the audit has a
    standard, which judges every level itself.
    """
    params = scenario.audit
    standard = (city.centers_source.get("level_minutes") if city is not None else None) or None
    # a standard judges the levels itself: the stations' own minutes apply only without one
    if params.level_thresholds_min is None and params.standard is None and standard is not None:
        params = replace(params, level_thresholds_min=dict(standard))
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
    siting = replace(
        scenario.siting,
        speed_kmh=audited.speed_kmh,
        secondary_minutes=tie_break_minutes(audited.thresholds_min, scenario.siting.minutes),
    )
    if scenario.capacity is None:
        return siting
    # one household size and floor-area standard for the capacity audit and the siting
    return replace(
        siting,
        household_size=scenario.capacity.household_size,
        standard_m2_per_100_households=scenario.capacity.standard_m2_per_100_households,
    )


def capacity_params(city: CityData, scenario: Scenario) -> CapacityParams | None:
    """Return the capacity audit's parameters: the scenario's, else the defaults when centers carry floor areas."""
    if scenario.capacity is not None:
        return scenario.capacity
    centers = city.centers
    if FLOOR_AREA_M2 in centers.columns and centers[FLOOR_AREA_M2].notna().any():
        return CapacityParams()
    return None


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


# --- reuse between scenarios -----------------------------------------------------------


@dataclass(frozen=True)
class Reuse:
    """Work of earlier runs on the same city that :func:`run` may take instead of redoing it.

    Parameters
    ----------
    audited
        A result of the same scenario without its siting request (``with_polygons=False``):
        when the siting minutes are among its audited thresholds, its audit and tables
        are the run's, and only the sites are proposed.
    siting_sets
        The candidates and coverage sets of the scenario's siting limits
        (:func:`siting_sets_for`): another ``k`` or target share is not searched again.
    """

    audited: ScenarioResult | None = None
    siting_sets: SitingSets | None = None


def siting_sets_for(
    city: CityData, scenario: Scenario, progress: ProgressFn | None = None
) -> SitingSets | None:
    """Return the candidates and coverage sets of the scenario's siting, for :class:`Reuse`.

    ``None`` when the scenario proposes no sites or a capacitated siting (it builds its
    own). They depend on the city and :func:`coverage.siting.siting_sets_key` of
    :func:`siting_params` only: key a cache of them by both.
    """
    sp = siting_params(scenario)
    if sp is None or sp.capacitated:
        return None
    return siting_sets(
        city.net,
        city.demand,
        sp,
        candidates=city.candidates,
        exclude=city.exclusions,
        progress=progress,
    )


def _reused_audit(
    scenario: Scenario, params: AuditParams, reuse: Reuse | None
) -> ScenarioResult | None:
    """Return ``reuse.audited`` when it is this scenario's audit with these parameters."""
    base = reuse.audited if reuse is not None else None
    if base is None:
        return None
    same = replace(base.scenario, siting=None).to_json() == replace(scenario, siting=None).to_json()
    return base if same and base.audit.params == params else None


def _propose(
    city: CityData,
    centers: gpd.GeoDataFrame,
    sp: SitingParams,
    reuse: Reuse | None,
    progress: ProgressFn | None,
) -> SitingResult:
    """Propose sites for `sp` on `city` with `centers` in force (the reused sets if any)."""
    sets = reuse.siting_sets if reuse is not None else None
    if sets is not None and not sp.capacitated:
        return propose_sites_with(
            city.net, city.demand, centers, params=sp, sets=sets, progress=progress
        )
    return propose_sites(
        city.net,
        city.demand,
        centers,
        params=sp,
        candidates=city.candidates,
        exclude=city.exclusions,
        progress=progress,
    )


# --- the run ---------------------------------------------------------------------------


def run(
    city: CityData,
    scenario: Scenario,
    *,
    with_polygons: bool = True,
    per_center_polygons: bool | None = None,
    progress: ProgressFn | None = None,
    cache_polygons: bool = False,
    reuse: Reuse | None = None,
    numbers_only: bool = False,
) -> ScenarioResult:
    """Audit ``scenario`` on ``city`` and, if it asks, propose new sites.

    Parameters
    ----------
    city
        The loaded city (never modified).
    scenario
        Parameters and edits.
    with_polygons
        Build the service-area polygons (the slowest step). The uncovered areas are
        built either way (``audit --no-polygons`` still writes the gap map).
    per_center_polygons
        With ``with_polygons``, also each center's own service areas
        (:func:`coverage.audit.audit`'s parameter: ``None`` does so up to
        ``audit.PER_CENTER_POLYGONS_MAX`` centers). The app's map passes ``False``
        unless the planner asks for those layers.
    progress
        ``progress(fraction, message)``.
    cache_polygons
        Keep the service areas in ``city.cache_dir`` and reuse them when the same
        command runs again (the CLI; the app keeps results in memory instead).
    reuse
        Earlier work on the same city (:class:`Reuse`): without polygons, the audit of
        the same scenario without its siting request, and the siting's coverage sets.
        The result equals a run without it.
    numbers_only
        Build no polygon at all, neither service areas nor uncovered areas
        (:func:`coverage.audit.audit_numbers`; ``with_polygons`` is then ignored): the
        app's headline numbers. A ``reuse.audited`` for such a run must be one too.

    Returns
    -------
    ScenarioResult
        The centers in force, the audit (thresholds of :func:`audit_params`),
        the siting (:func:`siting_params`, with ``city.candidates`` and
        ``city.exclusions``), the per-district table when the city has
        districts, and the compliance table per district and level when the
        audit has a standard too.
    """
    params = audit_params(scenario, city)
    sp = siting_params(scenario)
    split = _AUDIT_SHARE_WITH_SITING if sp is not None else 1.0
    base = None if with_polygons and not numbers_only else _reused_audit(scenario, params, reuse)
    if base is not None and sp is not None:
        logger.info("running scenario %r on the audit of its run without siting", scenario.name)
        return replace(
            base, scenario=scenario, siting=_propose(city, base.centers, sp, reuse, progress)
        )
    centers = scenario_centers(city, scenario)
    audit_progress = sub_progress(progress, 0.0, split)
    result = (
        audit_numbers(city.net, centers, city.demand, params, progress=audit_progress)
        if numbers_only
        else audit(
            city.net,
            centers,
            city.demand,
            params,
            with_polygons=with_polygons,
            per_center_polygons=per_center_polygons,
            progress=audit_progress,
            polygon_cache_dir=city.cache_dir if cache_polygons else None,
        )
    )
    districts = (
        export.district_coverage(
            result.demand, city.districts, params.thresholds_min, thresholds_m=params.thresholds_m
        )
        if city.districts is not None
        else None
    )
    cp = capacity_params(city, scenario)
    capacity = capacity_audit(city.net, result, cp) if cp is not None else None
    # speeds given for groups the population lacks are refused there, not ignored
    wants_groups = bool(group_names(city.demand) or scenario.groups.speeds_kmh)
    groups = group_coverage(result, scenario.groups) if wants_groups else None
    cparams = compliance_params(params, cp)
    demand = capacity.demand if capacity is not None else result.demand
    compliance = None
    if city.districts is not None and params.standard is not None:
        compliance = compliance_table(demand, city.districts, params.standard, cparams)
    census_areas, census_compliance = _census_tables(city, params, demand, cparams)
    siting = None
    if sp is not None:
        siting = _propose(city, centers, sp, reuse, sub_progress(progress, split, 1.0))
    logger.info(
        "ran scenario %r: %d centers, %d thresholds%s",
        scenario.name,
        len(centers),
        len(params.thresholds_min),
        f", {len(siting.sites)} sites proposed" if siting is not None else "",
    )
    return ScenarioResult(
        scenario=scenario,
        centers=centers,
        audit=result,
        siting=siting,
        districts=districts,
        compliance=compliance,
        capacity=capacity,
        groups=groups,
        census_areas=census_areas,
        census_compliance=census_compliance,
    )


def threshold_limits(params: AuditParams) -> list[tuple[str, str]]:
    """Return ``(summary key, covered column)`` of every audited threshold, minutes then meters."""
    out = [(threshold_key(t), covered_column(t)) for t in params.thresholds_min]
    out += [
        (threshold_key(d, METERS_UNIT), covered_column(d, METERS_UNIT)) for d in params.thresholds_m
    ]
    return out


def _census_tables(
    city: CityData, params: AuditParams, demand: gpd.GeoDataFrame, cparams: ComplianceParams
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Coverage per census area and, with a standard, compliance per census area and level."""
    census = city.census
    if census is None or not census.get("by_area"):
        return None, None
    areas = list(census["by_area"])
    table = census_area_table(demand, areas, threshold_limits(params), cparams)
    if params.standard is None:
        return table, None
    numbers = list(range(1, len(areas) + 1))
    rows = compliance_rows(demand, census_labels(demand), numbers, params.standard, cparams)
    # rows are keyed by the area's number (names may repeat); name them for the reader
    names = {i: a.get("name") for i, a in enumerate(areas, start=1)}
    rows.insert(0, "census_area", rows["area"])
    rows["area"] = rows["census_area"].map(names)
    return table, rows


def area_compliance(
    result: ScenarioResult, labels: Sequence[Any], names: Sequence[Any]
) -> pd.DataFrame | None:
    """Return compliance of ``result`` per area given per demand unit (``None`` without a standard).

    The same parameters as the run's own compliance table (:func:`compliance_params`);
    ``batch`` calls it with every unit of a district labelled by the district.
    """
    params = result.audit.params
    if params.standard is None:
        return None
    cp = result.capacity.params if result.capacity is not None else None
    demand = result.capacity.demand if result.capacity is not None else result.audit.demand
    return compliance_rows(demand, labels, names, params.standard, compliance_params(params, cp))


# --- the output contract ---------------------------------------------------------------


def write(
    result: ScenarioResult,
    city: CityData,
    out: Path | str,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    lang: str = "zh",
    report: bool | export.Documents = True,
    progress: ProgressFn | None = None,
) -> Path:
    """Write the output contract of ``result`` into the folder ``out``, all-or-nothing.

    The files are those of :func:`coverage.export.output_files` (same
    parameters); ``out`` is replaced as a whole (:func:`coverage.export.write_outputs`).
    ``report`` may be an :class:`coverage.export.Documents` (``report.html`` is then
    written, with those documents: ``tables.xlsx``, ``map.png``/``map.pdf``, ``report.pdf``).
    The GeoJSON layers and the figure are kept in ``city.cache_dir`` and reused when a
    later run asks for the same bytes (:attr:`coverage.export.Documents.cache_dir`).

    Returns
    -------
    pathlib.Path
        The absolute output folder.
    """
    documents = report if isinstance(report, export.Documents) else export.DEFAULT_DOCUMENTS
    built = export.output_files(
        result,
        city,
        title=title,
        extra=extra,
        lang=lang,
        report=isinstance(report, export.Documents) or bool(report),
        progress=progress,
        documents=replace(documents, cache_dir=city.cache_dir),
    )
    return export.write_outputs(out, built)
