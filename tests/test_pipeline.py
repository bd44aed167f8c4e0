"""Tests for coverage.pipeline: the policy decided once, and the CLI and the batch agreeing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CHENGDU, GRID, HAIDIAN

from coverage import cli, pipeline
from coverage.audit import AuditParams
from coverage.errors import InputError, PlannerWarning
from coverage.inputs import CityData, CityInputs, load_city
from coverage.scenario import AddedStation, Scenario
from coverage.siting import SitingParams


def test_tie_break_is_the_largest_threshold_below_the_siting_minutes() -> None:
    assert pipeline.tie_break_minutes((5.0, 10.0, 15.0), 15.0) == 10.0
    assert pipeline.tie_break_minutes((5.0, 15.0), 10.0) == 5.0
    assert pipeline.tie_break_minutes((15.0, 20.0), 15.0) is None


def test_siting_minutes_are_audited_and_set_the_siting_parameters() -> None:
    s = Scenario(
        audit=AuditParams(speed_kmh=4.0, thresholds_min=(5.0, 15.0)),
        siting=SitingParams(k=2, minutes=10.0, secondary_minutes=3.0, speed_kmh=9.0),
    )
    assert pipeline.audit_params(s).thresholds_min == (5.0, 10.0, 15.0)
    sp = pipeline.siting_params(s)
    assert sp is not None
    assert (sp.secondary_minutes, sp.speed_kmh, sp.k, sp.minutes) == (5.0, 4.0, 2, 10.0)
    plain = Scenario()
    assert pipeline.audit_params(plain) is plain.audit
    assert pipeline.siting_params(plain) is None


@pytest.fixture(scope="module")
def haidian_city(cache_dir: Path) -> CityData:
    return load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))


def test_run_applies_the_policy(haidian_city: CityData) -> None:
    city = haidian_city
    closed = str(city.centers["center_id"].iloc[0])
    lon, lat = city.demand.to_crs(4326).geometry.iloc[0].representative_point().coords[0]
    s = Scenario(
        audit=AuditParams(thresholds_min=(5.0, 15.0)),
        siting=SitingParams(k=1, minutes=10.0),
        closed=(closed,),
        added=(AddedStation(lon, lat, "新站"),),
    )
    res = pipeline.run(city, s, with_polygons=False)
    assert res.audit.params.thresholds_min == (5.0, 10.0, 15.0)
    assert res.siting is not None
    assert res.siting.params.secondary_minutes == 5.0
    assert closed not in set(res.centers["center_id"])
    assert (res.centers["source"] == "added").sum() == 1
    assert len(res.centers) == len(city.centers)
    assert res.districts is None
    assert res.siting.share_before == pytest.approx(res.audit.coverage["10"].share, abs=1e-12)


def test_batch_and_site_agree(tmp_path: Path, cache_dir: Path) -> None:
    """One district holding the whole city: its folder equals `site` on the city (the same
    thresholds, the same tie-break, the same sites)."""
    everything = tmp_path / "all.geojson"
    gpd.GeoDataFrame(
        {"name": ["全市"]}, geometry=[shapely.box(116.0, 39.8, 116.6, 40.2)], crs="EPSG:4326"
    ).to_file(everything, driver="GeoJSON")
    common = ["--osm", str(HAIDIAN), "--cache-dir", str(cache_dir), "--quiet", "--no-report"]
    site = ["site", "--new", "2", "--minutes", "15", "--audit-minutes", "10", *common]
    assert cli.main([*site, "--out", str(tmp_path / "site")]) == 0
    batch = ["batch", "--districts", str(everything), "--new", "2", "--minutes", "10,15", *common]
    assert cli.main([*batch, "--out", str(tmp_path / "batch")]) == 0
    a = json.loads((tmp_path / "site" / "summary.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "batch" / "全市" / "summary.json").read_text(encoding="utf-8"))
    assert a["params"]["thresholds_min"] == b["params"]["thresholds_min"] == [10.0, 15.0]
    assert a["coverage"] == b["coverage"]
    assert a["siting"] == b["siting"]
    sa = gpd.read_file(tmp_path / "site" / "proposed_sites.geojson")
    sb = gpd.read_file(tmp_path / "batch" / "全市" / "proposed_sites.geojson")
    assert list(sa["marginal_population"]) == list(sb["marginal_population"])
    np.testing.assert_array_equal(
        shapely.get_coordinates(sa.geometry.values), shapely.get_coordinates(sb.geometry.values)
    )


def _same_siting(a: pipeline.ScenarioResult, b: pipeline.ScenarioResult) -> None:
    """Assert two results propose the same sites with the same numbers and bound."""
    sa, sb = a.siting, b.siting
    assert sa is not None
    assert sb is not None
    cols = [c for c in sa.sites.columns if c != "geometry"]
    pd.testing.assert_frame_equal(sa.sites[cols], sb.sites[cols])
    assert list(shapely.to_wkb(sa.sites.geometry.values)) == list(
        shapely.to_wkb(sb.sites.geometry.values)
    )
    pd.testing.assert_frame_equal(sa.curve, sb.curve)
    pd.testing.assert_series_equal(sa.minutes_after, sb.minutes_after)
    for name in ("method", "k", "share_before", "share_after", "upper_bound_share", "gap"):
        assert getattr(sa, name) == getattr(sb, name), name
    assert sa.n_candidates == sb.n_candidates
    assert a.audit.coverage == b.audit.coverage
    pd.testing.assert_frame_equal(
        pd.DataFrame(a.audit.demand.drop(columns="geometry")),
        pd.DataFrame(b.audit.demand.drop(columns="geometry")),
    )


@pytest.fixture(scope="module")
def chengdu_city(cache_dir: Path) -> CityData:
    # the embedded city with its embedded stations, as the app opens it (one is far off a street)
    with pytest.warns(PlannerWarning, match="nearest walkable street"):
        return load_city(CityInputs(osm=CHENGDU, cache_dir=cache_dir))


@pytest.fixture(scope="module")
def grid_city() -> CityData:
    return load_city(CityInputs(osm=GRID, cache_dir=None))


@pytest.mark.parametrize("which", ["grid", "haidian", "chengdu"])
def test_reused_audit_and_coverage_sets_give_the_fresh_result(
    which: str, request: pytest.FixtureRequest
) -> None:
    city: CityData = request.getfixturevalue(f"{which}_city")
    plain = Scenario(audit=AuditParams(thresholds_min=(5.0, 15.0)))
    audited = pipeline.run(city, plain, with_polygons=False)
    # the sets of a k = 1 request serve k = 2 (and a target share) on the same limits
    first = replace(plain, siting=SitingParams(k=1, minutes=15.0))
    sets = pipeline.siting_sets_for(city, first)
    assert sets is not None
    for siting in (SitingParams(k=2, minutes=15.0), SitingParams(target_share=0.99, minutes=15.0)):
        s = replace(plain, siting=siting)
        fresh = pipeline.run(city, s, with_polygons=False)
        reused = pipeline.run(
            city, s, with_polygons=False, reuse=pipeline.Reuse(audited=audited, siting_sets=sets)
        )
        assert reused.audit is audited.audit  # not audited again
        assert reused.scenario == s
        _same_siting(reused, fresh)


def test_reuse_is_ignored_when_it_does_not_apply(haidian_city: CityData) -> None:
    plain = Scenario(audit=AuditParams(thresholds_min=(5.0, 15.0)))
    audited = pipeline.run(city := haidian_city, plain, with_polygons=False)
    # 10 minutes is not among the audited thresholds: the audit runs again, with it
    s = replace(plain, siting=SitingParams(k=1, minutes=10.0))
    res = pipeline.run(city, s, with_polygons=False, reuse=pipeline.Reuse(audited=audited))
    assert res.audit is not audited.audit
    assert res.audit.params.thresholds_min == (5.0, 10.0, 15.0)
    # another scenario's audit (a station closed) is not taken either
    closed = replace(plain, closed=(str(city.centers["center_id"].iloc[0]),))
    other = pipeline.run(city, closed, with_polygons=False)
    s15 = replace(plain, siting=SitingParams(k=1, minutes=15.0))
    res = pipeline.run(city, s15, with_polygons=False, reuse=pipeline.Reuse(audited=other))
    assert res.audit is not other.audit
    _same_siting(res, pipeline.run(city, s15, with_polygons=False))


def test_coverage_sets_of_other_limits_are_refused(haidian_city: CityData) -> None:
    city = haidian_city
    sets = pipeline.siting_sets_for(city, Scenario(siting=SitingParams(k=1, minutes=15.0)))
    assert sets is not None
    slower = Scenario(audit=AuditParams(speed_kmh=4.0), siting=SitingParams(k=1, minutes=15.0))
    with pytest.raises(InputError, match="siting_sets"):
        pipeline.run(city, slower, with_polygons=False, reuse=pipeline.Reuse(siting_sets=sets))
    assert pipeline.siting_sets_for(city, Scenario()) is None


@pytest.mark.parametrize("which", ["grid", "haidian", "chengdu"])
def test_numbers_only_is_the_audit_without_any_polygon(
    which: str, request: pytest.FixtureRequest
) -> None:
    """The app's headline run: the same numbers and tables, and no uncovered areas built."""
    city: CityData = request.getfixturevalue(f"{which}_city")
    # short thresholds: every city has residents outside them
    s = Scenario(audit=AuditParams(thresholds_min=(2.0, 5.0), thresholds_m=(150.0,)))
    full = pipeline.run(city, s, with_polygons=False)
    fast = pipeline.run(city, s, numbers_only=True)
    a, b = full.audit, fast.audit
    assert len(a.uncovered) > 0  # the gap map, built by the ordinary run
    for frame in (b.uncovered, b.distance_uncovered, b.service_areas, b.bands):
        assert len(frame) == 0
    assert list(b.uncovered.columns) == list(a.uncovered.columns)
    assert list(b.distance_uncovered.columns) == list(a.distance_uncovered.columns)
    assert b.uncovered.crs == a.uncovered.crs
    pd.testing.assert_frame_equal(pd.DataFrame(b.demand), pd.DataFrame(a.demand))
    pd.testing.assert_frame_equal(pd.DataFrame(b.centers), pd.DataFrame(a.centers))
    pd.testing.assert_frame_equal(b.coverage_by_level, a.coverage_by_level)
    assert b.coverage == a.coverage
    if full.districts is not None:
        pd.testing.assert_frame_equal(fast.districts, full.districts)
    # a proposal on the numbers run reuses it, as the app does
    sited = replace(s, siting=SitingParams(k=1, minutes=5.0))
    reused = pipeline.run(city, sited, numbers_only=True, reuse=pipeline.Reuse(audited=fast))
    assert reused.audit is fast.audit
    _same_siting(reused, pipeline.run(city, sited, with_polygons=False))
