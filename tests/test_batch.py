"""Tests for coverage.batch: clipping at borders, statuses, failures, resume, Dask."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import GRID

import coverage.pipeline
from coverage import batch, export, inputs
from coverage.audit import AuditParams
from coverage.batch import BatchParams, run_districts
from coverage.centers import CenterColumns
from coverage.errors import InputError
from coverage.inputs import CityData, CityInputs, FileInput, load_city
from coverage.netcache import walk_network
from coverage.scenario import Scenario
from coverage.siting import SitingParams
from coverage.snapping import snap_frame
from coverage.standards import Circle, Standard

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = (440_000.0, 4_428_000.0)  # tests/data/make_grid.py: grid origin in EPSG:32650

sys.path.insert(0, str(ROOT / "benchmarks"))
from synth_city import generate_city  # noqa: E402  (benchmarks/ is not a package)

NUMBERS = ["population", "share_5", "share_15", "uncovered_population_5", "uncovered_population_15"]


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(ORIGIN[0] + x0, ORIGIN[1] + y0, ORIGIN[0] + x1, ORIGIN[1] + y1)


def _pt(x: float, y: float) -> shapely.Point:
    return shapely.Point(ORIGIN[0] + x, ORIGIN[1] + y)


# --- the hand-made grid: 5 x 5 streets, 100 m apart, x and y in 0..400 m -----------------


@pytest.fixture(scope="module")
def grid_city() -> CityData:
    net = walk_network(GRID, cache_dir=None)
    # Residents: "border" 50 m west of the W/E border (x = 250), served only by the
    # center across it; "east" next to that center; "block" inside a block, in a
    # district with no street of its own.
    demand = gpd.GeoDataFrame(
        {
            "demand_id": ["border", "east", "block"],
            "population": [100.0, 50.0, 30.0],
            "kind": ["file"] * 3,
            "name": [None] * 3,
        },
        geometry=[_pt(200, 210).buffer(5), _pt(330, 190).buffer(5), _pt(150, 350).buffer(5)],
        crs=net.crs,
    )
    centers = gpd.GeoDataFrame(
        {"center_id": ["c1"], "name": ["东区中心"], "source": ["file"], "level": [None]},
        geometry=[_pt(300, 210)],
        crs=net.crs,
    )
    return CityData(
        source_name=GRID.name,
        source_sha256=net.source_sha256,
        net=net,
        centers=snap_frame(net, centers),
        demand=snap_frame(net, demand),
    )


@pytest.fixture(scope="module")
def grid_districts(grid_city: CityData) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"district": ["街区", "西区", "东区", "空区"]},
        geometry=[
            _box(
                120, 320, 180, 380
            ),  # inside one block: no street; listed first, so it owns "block"
            _box(-50, -50, 250, 450),
            _box(250, -50, 450, 450),
            _box(2000, 2000, 2300, 2300),  # far away: nobody lives there
        ],
        crs=grid_city.net.crs,
    ).to_crs("EPSG:4326")


FAST = BatchParams(with_polygons=False, with_report=False)


def _row(summary: pd.DataFrame, name: str) -> pd.Series:
    return summary.set_index("district").loc[name]


def test_border_resident_served_across_border(grid_city, grid_districts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = run_districts(grid_city, grid_districts, tmp_path / "out", params=BatchParams())
    west = _row(res.summary, "西区")
    assert west["status"] == batch.STATUS_OK
    assert west["population"] == 100.0
    # 10 m access + 100 m street + 10 m access = 120 m = 1.6 min at 4.5 km/h
    assert west["share_5"] == 1.0
    assert west["share_15"] == 1.0
    assert west["uncovered_population_5"] == 0.0
    assert west["centers"] == 0
    assert west["centers_used"] == 1
    demand = gpd.read_file(tmp_path / "out" / "西区" / "demand.geojson")
    assert demand.crs.to_epsg() == 4326
    assert list(demand["demand_id"]) == ["border"]
    assert bool(demand["covered_5"].iloc[0])
    assert demand["minutes_to_nearest"].iloc[0] == pytest.approx(120 / 75, abs=0.01)
    doc = json.loads((tmp_path / "out" / "西区" / "summary.json").read_text(encoding="utf-8"))
    assert doc["coverage"]["5"]["share"] == 1.0
    assert doc["district"] == "西区"


def test_statuses_and_batch_outputs(grid_city, grid_districts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    res = run_districts(grid_city, grid_districts, out, params=FAST)
    s = res.summary
    assert list(s["district"]) == ["街区", "西区", "东区", "空区"]
    block, empty = _row(s, "街区"), _row(s, "空区")
    assert block["status"] == batch.STATUS_NO_NETWORK
    assert block["population"] == 30.0
    assert empty["status"] == batch.STATUS_NO_RESIDENTS
    assert empty["population"] == 0.0
    assert np.isnan(empty["share_5"])
    assert _row(s, "东区")["share_5"] == 1.0
    # Each resident is counted once, in the first district holding it.
    assert s["population"].sum() == pytest.approx(grid_city.demand["population"].sum())
    csv = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert list(csv.columns[:5]) == ["district", "status", "population", "share_5", "share_15"]
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [d["district"] for d in doc["districts"]] == list(s["district"])
    layer = gpd.read_file(out / "districts.geojson")
    assert layer.crs.to_epsg() == 4326
    assert len(layer) == 4
    assert set(layer.geom_type) == {"Polygon"}
    page = (out / "report.html").read_text(encoding="utf-8")
    # ranked by uncovered population at 15 minutes; districts without an audit last
    assert batch.STATUS_NO_NETWORK in page
    assert page.index("西区") < page.index("街区")
    for name in ("街区", "空区"):
        assert (out / name / "summary.json").is_file()
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_district_without_centers_gets_its_gap_map(grid_city, grid_districts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No center within reach: status says so, shares are 0, and the audit's uncovered
    areas (every resident of the district) are written for the GIS team."""
    city = replace(grid_city, centers=grid_city.centers.iloc[:0])
    out = tmp_path / "out"
    s = run_districts(city, grid_districts, out, params=FAST).summary
    west = _row(s, "西区")
    assert west["status"] == batch.STATUS_NO_CENTERS
    assert west["share_15"] == 0.0
    assert west["uncovered_population_15"] == west["population"] == 100.0
    unc = gpd.read_file(out / "西区" / "uncovered.geojson")
    assert unc.loc[unc["minutes"] == 15, "population"].sum() == pytest.approx(100.0)
    doc = json.loads((out / "西区" / "summary.json").read_text(encoding="utf-8"))
    assert doc["coverage"]["15"]["share"] == 0.0


def test_failing_district_is_recorded(grid_city, grid_districts, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = coverage.pipeline.audit

    def flaky(net, centers, demand, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "east" in set(demand["demand_id"]):
            msg = "boom"
            raise RuntimeError(msg)
        return real(net, centers, demand, *args, **kwargs)

    monkeypatch.setattr(coverage.pipeline, "audit", flaky)
    out = tmp_path / "out"
    s = run_districts(grid_city, grid_districts, out, params=FAST).summary
    east = _row(s, "东区")
    assert east["status"] == batch.STATUS_ERROR
    assert "RuntimeError: boom" in east["error"]
    assert _row(s, "西区")["status"] == batch.STATUS_OK
    assert not (out / "东区").exists()
    monkeypatch.setattr(coverage.pipeline, "audit", real)
    s2 = run_districts(grid_city, grid_districts, out, params=FAST).summary
    assert list(s2.loc[s2["recomputed"], "district"]) == ["东区"]
    assert _row(s2, "东区")["share_5"] == 1.0


def test_resume_after_damage_and_interrupt(
    grid_city, grid_districts, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    first = run_districts(grid_city, grid_districts, out, params=FAST).summary
    assert first["recomputed"].all()
    again = run_districts(grid_city, grid_districts, out, params=FAST).summary
    assert not again["recomputed"].any()
    pd.testing.assert_frame_equal(first[NUMBERS], again[NUMBERS])

    # A damaged file and a deleted folder are redone; the rest is skipped.
    with (out / "东区" / "demand.geojson").open("ab") as fh:
        fh.write(b" ")
    (out / "西区" / "summary.json").unlink()
    s = run_districts(grid_city, grid_districts, out, params=FAST).summary
    assert set(s.loc[s["recomputed"], "district"]) == {"西区", "东区"}

    # Ctrl-C in the middle of a run with new parameters (so every district is due):
    # what was done stays, nothing half-written is left.
    slower = BatchParams(
        scenario=Scenario(audit=AuditParams(speed_kmh=4.0)), with_polygons=False, with_report=False
    )
    real = coverage.pipeline.audit

    def interrupted(net, centers, demand, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "east" in set(demand["demand_id"]):
            raise KeyboardInterrupt
        return real(net, centers, demand, *args, **kwargs)

    monkeypatch.setattr(coverage.pipeline, "audit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_districts(grid_city, grid_districts, out, params=slower)
    monkeypatch.setattr(coverage.pipeline, "audit", real)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
    (out / f"{export.TEMP_PREFIX}tmp-left-by-a-killed-worker").mkdir()  # as after kill -9
    (out / ".thesis.old-draft").write_text("the user's")  # not our prefix: never swept
    s = run_districts(grid_city, grid_districts, out, params=slower).summary
    # 街区 and 西区 were redone before the interrupt; 东区 and 空区 remain.
    assert set(s.loc[s["recomputed"], "district"]) == {"东区", "空区"}
    assert not (out / f"{export.TEMP_PREFIX}tmp-left-by-a-killed-worker").exists()
    assert (out / ".thesis.old-draft").read_text() == "the user's"

    forced = run_districts(grid_city, grid_districts, out, params=slower, force=True).summary
    assert forced["recomputed"].all()


# --- bad inputs ---------------------------------------------------------------------------


def test_districts_file_without_name_column(tmp_path: Path) -> None:
    path = tmp_path / "d.geojson"
    gpd.GeoDataFrame(
        {"NAME_CN": ["甲"]}, geometry=[shapely.box(116, 39, 116.1, 39.1)], crs="EPSG:4326"
    ).to_file(path, driver="GeoJSON")
    with pytest.raises(InputError, match="--district-name-column"):
        inputs.districts_from_file(path, name_column="name")
    assert list(inputs.districts_from_file(path, name_column="NAME_CN")["district"]) == ["甲"]


def test_point_districts_refused(tmp_path, grid_city) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "d.geojson"
    gpd.GeoDataFrame({"name": ["甲"]}, geometry=[shapely.Point(116, 39)], crs="EPSG:4326").to_file(
        path, driver="GeoJSON"
    )
    with pytest.raises(InputError, match="polygon"):
        inputs.districts_from_file(path)
    points = gpd.GeoDataFrame({"district": ["甲"]}, geometry=[_pt(0, 0)], crs=grid_city.net.crs)
    with pytest.raises(InputError, match="polygons"):
        run_districts(grid_city, points, tmp_path / "out")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_scheduler(grid_city, grid_districts, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(batch, "SCHEDULER_TIMEOUT_S", 1.0)
    with pytest.raises(InputError, match="Cannot reach the Dask scheduler"):
        run_districts(
            grid_city,
            grid_districts,
            tmp_path / "out",
            params=FAST,
            scheduler=f"tcp://127.0.0.1:{_free_port()}",
        )
    with pytest.raises(InputError, match="scheduler address"):
        run_districts(grid_city, grid_districts, tmp_path / "out", scheduler="localhost:8786")
    with pytest.raises(InputError, match="workers"):
        run_districts(grid_city, grid_districts, tmp_path / "out", workers=0)


def test_bad_params() -> None:
    with pytest.raises(InputError):
        BatchParams(scenario=Scenario(audit=AuditParams(thresholds_min=(15.0, 5.0))))
    with pytest.raises(InputError, match="`k`"):
        BatchParams(scenario=Scenario(siting=SitingParams(k=0)))
    with pytest.raises(InputError, match="margin_m"):
        BatchParams(margin_m=-1.0)
    assert BatchParams().buffer_m == pytest.approx(15 * 75 + 300)
    # the siting minutes are audited too, so the buffer covers them
    far = Scenario(siting=SitingParams(k=1, minutes=20.0))
    assert BatchParams(scenario=far).thresholds_min == (5.0, 15.0, 20.0)
    assert BatchParams(scenario=far).buffer_m == pytest.approx(20 * 75 + 300)


def test_folder_names_are_safe_and_unique() -> None:
    assert batch.district_folders(["a/b", "A/B", "..", "区1", ".work"]) == [
        "a_b",
        "A_B_2",
        "district",
        "区1",
        "work",
    ]


# --- a synthetic city split into districts ------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, gpd.GeoDataFrame]:
    folder = tmp_path_factory.mktemp("synth")
    osm = folder / "city.osm.pbf"
    generate_city(osm, nodes=3000, seed=11, districts=4, districts_out=folder / "d.geojson")
    city = load_city(CityInputs(osm=osm, cache_dir=folder / "cache"))
    return city, inputs.districts_from_file(folder / "d.geojson")


def test_districts_from_osm_boundaries(synth) -> None:  # type: ignore[no-untyped-def]
    city, from_file = synth
    from_osm = inputs.districts_from_osm(city.extract, admin_level=6)
    assert sorted(from_osm["district"]) == sorted(from_file["district"])
    with pytest.raises(InputError, match="admin_level"):
        inputs.districts_from_osm(city.extract, admin_level=9)


def test_clipped_equals_whole_city_audit(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from coverage.audit import AuditParams, audit

    city, districts = synth
    s = run_districts(city, districts, tmp_path / "out", params=FAST).summary
    assert (s["status"] == batch.STATUS_OK).all()
    whole = audit(city.net, city.centers, city.demand, AuditParams(), with_polygons=False)
    owner = batch.assign_demand(city.demand, districts.to_crs(city.net.crs))
    d = whole.demand.assign(owner=owner)
    for i, name in enumerate(districts["district"]):
        mine = d[d["owner"] == i]
        pop = mine["population"].sum()
        row = _row(s, name)
        assert row["population"] == pytest.approx(pop)
        for t in ("5", "15"):
            covered = mine.loc[mine[f"covered_{t}"], "population"].sum()
            assert row[f"share_{t}"] == pytest.approx(covered / pop, abs=1e-12)


@pytest.mark.slow
def test_local_cluster_matches_serial(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    city, districts = synth
    params = BatchParams(
        scenario=Scenario(siting=SitingParams(k=1)), with_polygons=False, with_report=False
    )
    serial = run_districts(city, districts, tmp_path / "serial", params=params).summary
    seen: list[float] = []
    parallel = run_districts(
        city,
        districts,
        tmp_path / "dask",
        params=params,
        workers=2,
        progress=lambda f, m: seen.append(f),
    ).summary
    cols = [*NUMBERS, "centers", "centers_used", "sites_proposed", "share_after"]
    pd.testing.assert_frame_equal(serial[cols], parallel[cols])
    assert (parallel["status"] == batch.STATUS_OK).all()
    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    assert (
        tmp_path / "dask" / str(parallel["folder"].iloc[0]) / "proposed_sites.geojson"
    ).is_file()


# --- an existing scheduler in separate processes -------------------------------------------


@pytest.fixture
def dask_scheduler(tmp_path: Path):  # type: ignore[no-untyped-def]
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = [(tmp_path / f"{n}.log").open("wb") for n in ("scheduler", "worker")]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            cwd=tmp_path,
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    pytest.fail("the dask scheduler did not start")
                time.sleep(0.2)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                ],
                cwd=tmp_path,
                env=env,
                stdout=logs[1],
                stderr=subprocess.STDOUT,
            )
        )
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        if len(procs) == 2:
            with contextlib.suppress(Exception), Client(address, timeout="10s") as client:
                client.shutdown()  # stops the scheduler and its workers cleanly
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs:
            f.close()


@pytest.mark.slow
def test_existing_scheduler(grid_city, grid_districts, tmp_path, dask_scheduler) -> None:  # type: ignore[no-untyped-def]
    serial = run_districts(grid_city, grid_districts, tmp_path / "serial", params=FAST).summary
    remote = run_districts(
        grid_city, grid_districts, tmp_path / "remote", params=FAST, scheduler=dask_scheduler
    ).summary
    pd.testing.assert_frame_equal(
        serial[["district", "status", *NUMBERS]], remote[["district", "status", *NUMBERS]]
    )
    assert (tmp_path / "remote" / "西区" / "demand.geojson").is_file()


# --- the command line ------------------------------------------------------------------------


def test_cli_batch(tmp_path: Path) -> None:
    cli = pytest.importorskip("coverage.cli")
    districts = tmp_path / "districts.geojson"
    net = walk_network(GRID, cache_dir=None)
    gpd.GeoDataFrame(
        {"名称": ["西区", "东区"]},
        geometry=[_box(-50, -50, 250, 450), _box(250, -50, 450, 450)],
        crs=net.crs,
    ).to_crs("EPSG:4326").to_file(districts, driver="GeoJSON")
    out = tmp_path / "out"
    base = ["batch", "--osm", str(GRID), "--districts", str(districts), "--out", str(out)]
    base += ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert cli.main([*base, "--district-name-column", "名称"]) == 0
    s = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert list(s["district"]) == ["西区", "东区"]
    assert s["population"].sum() > 0
    assert cli.main([*base, "--district-name-column", "NAME"]) == 2


def test_osm_levels_choice() -> None:
    boxes = [shapely.box(i, 0, i + 1, 1) for i in range(4)]
    extract = SimpleNamespace(
        boundaries=gpd.GeoDataFrame(
            {
                "osm_id": [1, 2, 3, 4],
                "name": ["市", "甲区", "乙区", None],
                "admin_level": ["4", "6", "6", "6"],
            },
            geometry=boxes,
            crs="EPSG:4326",
        )
    )
    with pytest.warns(UserWarning, match="admin_level=6"):
        d = inputs.districts_from_osm(extract)
    assert list(d["district"]) == ["甲区", "乙区", "4"]  # unnamed: its OSM id
    assert list(inputs.districts_from_osm(extract, admin_level=4)["district"]) == ["市"]


def test_run_batch_refuses_unreachable_scheduler_before_loading(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Cannot reach the Dask scheduler"):
        batch.run_batch(
            CityInputs(osm=tmp_path / "never-read.osm.pbf"),
            out=tmp_path / "out",
            scheduler=f"tcp://127.0.0.1:{_free_port()}",
        )


# --- GCJ-02 districts and centers: the batch equals audits clipped to each district ---------

CHENGDU = ROOT / "data" / "chengdu_central.osm.bz2"
COMMUNITIES_CSV = "chengdu_central_communities_gcj02.csv"
#: The GCJ-02 station list (README of ../shared/data): the golden fixtures' copy, else shared/.
COMMUNITIES = [
    ROOT / "tests" / "data" / "golden" / "audit_communities_gcj02" / "input" / COMMUNITIES_CSV,
    ROOT.parent / "shared" / "data" / COMMUNITIES_CSV,
]
CENTER_OPTIONS = ("--id-column", "编码", "--name-column", "名称", "--level-column", "级别")


def _dense_box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle with a vertex every ~100 m, so converting its vertices follows its edges."""
    t = np.linspace(0.0, 1.0, 91)[:-1]
    xs = np.concatenate(
        [x0 + (x1 - x0) * t, np.full(t.size, x1), x1 - (x1 - x0) * t, np.full(t.size, x0)]
    )
    ys = np.concatenate(
        [np.full(t.size, y0), y0 + (y1 - y0) * t, np.full(t.size, y1), y1 - (y1 - y0) * t]
    )
    return shapely.Polygon(np.column_stack([xs, ys]))


def _gcj_districts() -> gpd.GeoDataFrame:
    """A 2 x 2 split of the Chengdu extract (104.0421-104.1296 E, 30.6528-30.7279 N), in GCJ-02."""
    from coverage.coords import wgs84_to_gcj02

    x0, x1, y0, y1 = 104.03, 104.14, 30.64, 30.74
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    boxes = [(x0, y0, xm, ym), (xm, y0, x1, ym), (x0, ym, xm, y1), (xm, ym, x1, y1)]
    wgs = [_dense_box(*b) for b in boxes]
    gcj = shapely.transform(
        np.asarray(wgs, dtype=object), lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1]))
    )
    return gpd.GeoDataFrame(
        {"name": ["西南", "东南", "西北", "东北"]}, geometry=list(gcj), crs="EPSG:4326"
    )


def _clipped_audits(city: CityData, districts_wgs84: gpd.GeoDataFrame) -> dict[str, Any]:
    """Each district's audit as defined: its own demand units, all centers, the whole network."""
    from coverage.audit import audit

    owner = batch.assign_demand(city.demand, districts_wgs84.to_crs(city.net.crs))
    out = {}
    for i, name in enumerate(districts_wgs84["name"]):
        own = city.demand[owner == i].reset_index(drop=True)
        out[name] = audit(city.net, city.centers, own, AuditParams(), with_polygons=False)
    return out


def test_gcj02_batch_equals_audits_clipped_to_each_district(
    tmp_path: Path, cache_dir: Path
) -> None:
    from coverage import cli
    from coverage.coords import to_wgs84

    gcj_csv = next((p for p in COMMUNITIES if p.is_file()), None)
    if gcj_csv is None:
        pytest.skip(f"{COMMUNITIES_CSV} is in neither tests/data/golden nor ../shared/data")
    gcj = _gcj_districts()
    gcj_file = tmp_path / "districts_gcj02.geojson"
    gcj.to_file(gcj_file, driver="GeoJSON")
    out = tmp_path / "out"
    argv = ["batch", "--districts", str(gcj_file), "--district-name-column", "name"]
    argv += ["--centers", str(gcj_csv), "--crs", "gcj02", *CENTER_OPTIONS]
    argv += ["--no-report", "--no-polygons", "--cache-dir", str(cache_dir), "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv", encoding="utf-8-sig").set_index("district")

    # The reference, computed independently of the batch's reading of GCJ-02 files: the
    # stations converted here and read as WGS-84, the districts converted back here.
    table = pd.read_csv(gcj_csv, dtype={"编码": str})
    lon, lat = to_wgs84(table["经度"].to_numpy(), table["纬度"].to_numpy(), "gcj02")
    wgs_csv = tmp_path / "centers_wgs84.csv"
    table.assign(经度=lon, 纬度=lat).to_csv(wgs_csv, index=False, float_format="%.17g")
    columns = CenterColumns(id="编码", name="名称", level="级别")
    with pytest.warns(UserWarning, match="二仙桥街道"):  # > 300 m from a street (README)
        city = load_city(
            CityInputs(centers=FileInput(wgs_csv), center_columns=columns, cache_dir=cache_dir)
        )
    back = gcj.set_geometry(
        shapely.transform(
            np.asarray(gcj.geometry.values, dtype=object),
            lambda c: np.column_stack(to_wgs84(c[:, 0], c[:, 1], "gcj02")),
        )
    )
    reference = _clipped_audits(city, back)
    assert sum(len(r.demand) for r in reference.values()) == len(city.demand)  # all assigned
    for name, res in reference.items():
        row = summary.loc[name]
        assert row["status"] == batch.STATUS_OK
        assert row["demand_units"] == len(res.demand)
        assert row["population"] == pytest.approx(res.population_total, rel=1e-9, abs=1e-9)
        for t in ("5", "15"):
            stats = res.coverage[t]
            assert row[f"share_{t}"] == pytest.approx(stats.share, rel=1e-9, abs=1e-9)
            uncovered = res.population_total - stats.population_covered
            assert row[f"uncovered_population_{t}"] == pytest.approx(uncovered, rel=1e-9, abs=1e-9)
        folder = out / str(row["folder"])
        minutes = gpd.read_file(folder / "demand.geojson").set_index("demand_id")
        mine = res.demand.set_index("demand_id")["minutes_to_nearest"]
        np.testing.assert_allclose(
            minutes.loc[mine.index, "minutes_to_nearest"].to_numpy(dtype=float),
            mine.to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
        )

    # The same files read as WGS-84 (no conversion) give other numbers: the test can tell.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # stations off the streets, as expected
        unconverted = load_city(
            CityInputs(centers=FileInput(gcj_csv), center_columns=columns, cache_dir=cache_dir)
        )
    wrong = _clipped_audits(unconverted, gcj)
    moved = [abs(wrong[n].coverage["5"].share - summary.loc[n, "share_5"]) for n in wrong]
    assert max(moved) > 1e-3


# --- issue 17: batch --out ownership, workers, scheduler address --------------------------


def test_batch_refuses_a_user_folder(grid_city, grid_districts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.csv").write_text("my,table\n")
    (out / "report.html").write_text("<p>my report</p>")
    with pytest.raises(InputError, match="refusing to replace"):
        run_districts(grid_city, grid_districts, out, params=FAST)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "summary.csv"]
    assert (out / "summary.csv").read_text() == "my,table\n"


def test_batch_folder_carries_its_marker_and_an_audit_folder_is_not_a_batch(
    grid_city, grid_districts, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    run_districts(grid_city, grid_districts, out, params=FAST)
    assert export.read_marker(out)["kind"] == "batch"  # type: ignore[index]
    assert export.read_marker(out / "西区")["kind"] == "output"  # type: ignore[index]
    single = tmp_path / "single"
    export.write_outputs(single, {"summary.json": b"{}"})
    with pytest.raises(InputError, match="no earlier batch output"):
        run_districts(grid_city, grid_districts, single, params=FAST)


def test_workers_are_capped_at_cores_and_districts(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level("WARNING", logger="coverage.batch"):
        assert batch.capped_workers(24, 3) == min(3, batch.usable_cores())
    assert "--workers 24 capped" in caplog.text
    assert batch.capped_workers(1, 3) == 1


@pytest.mark.parametrize("address", ["tcp://127.0.0.1", "tcp://127.0.0.1:", "tcp://h:99999"])
def test_scheduler_without_a_usable_port_is_refused_before_anything_is_written(
    tmp_path, address
) -> None:  # type: ignore[no-untyped-def]
    inputs_ = CityInputs(osm=tmp_path / "missing.osm")
    with pytest.raises(InputError, match="port"):
        batch.run_batch(inputs_, out=tmp_path / "out", scheduler=address)
    assert not (tmp_path / "out").exists()


def test_control_characters_are_removed_from_district_names(
    grid_city, grid_districts, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    hostile = grid_districts.copy()
    hostile[inputs.DISTRICT] = [f"=HYPERLINK({n})\x1b[31m\x07" for n in hostile[inputs.DISTRICT]]
    out = tmp_path / "out"
    s = run_districts(grid_city, hostile, out, params=FAST).summary
    assert all("\x1b" not in n and "\x07" not in n for n in s["district"])
    text = (out / "summary.csv").read_text(encoding="utf-8-sig")
    assert "\x1b" not in text
    assert "\n'=HYPERLINK(" in text  # a name starting a formula is prefixed in the CSV


def test_run_batch_refuses_a_user_folder_before_loading(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.csv").write_text("mine")

    def no_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the city must not be loaded for a refused --out")

    monkeypatch.setattr(batch, "load_city", no_load)
    monkeypatch.setattr(batch, "check_inputs", lambda inputs: None)
    with pytest.raises(InputError, match="refusing"):
        batch.run_batch(CityInputs(osm=tmp_path / "x.osm"), out=out)
    assert [p.name for p in out.iterdir()] == ["summary.csv"]


# --- issue 14: documents per district and a top-level workbook ---------------------------


@pytest.mark.figure
def test_batch_writes_workbooks_and_maps(grid_city, grid_districts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    res = run_districts(grid_city, grid_districts, tmp_path / "out", params=BatchParams(lang="en"))
    out = tmp_path / "out"
    west = openpyxl.load_workbook(out / "西区" / export.TABLES_XLSX)
    assert west.sheetnames[0] == "Coverage"
    rows = list(west["Coverage"].iter_rows(values_only=True))
    assert rows[1][0] == 5.0
    assert rows[1][3] == pytest.approx(_row(res.summary, "西区")["share_5"])
    assert west["Coverage"]["D2"].number_format == "0.0%"
    assert (out / "西区" / export.MAP_PNG).read_bytes().startswith(b"\x89PNG")
    assert (out / "西区" / export.MAP_PDF).read_bytes().startswith(b"%PDF")
    top = openpyxl.load_workbook(out / export.TABLES_XLSX)
    sheet = top[top.sheetnames[0]]
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][0] == "District"
    assert sorted(r[0] for r in table[1:]) == sorted(res.summary["district"])
    share = table[0].index("Share within 15 min")
    by_name = {r[0]: r[share] for r in table[1:]}
    assert by_name["东区"] == pytest.approx(_row(res.summary, "东区")["share_15"])
    assert sheet.cell(row=2, column=share + 1).number_format == "0.0%"


def test_batch_compliance_across_districts(grid_city, grid_districts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """compliance.csv: every district × judged level, numbers by hand on the grid."""
    centers = grid_city.centers.assign(level="community")
    city = replace(grid_city, centers=centers)
    standard = Standard(
        key="local",
        title="local",
        source="test",
        circles=(Circle(key="community", name="社区", meters=100.0),),
        center_levels=(("community", "community"),),
    )
    audit = AuditParams(standard=standard, compliance_target=0.9)
    params = replace(FAST, scenario=Scenario(audit=audit))
    out = tmp_path / "out"
    run_districts(city, grid_districts, out, params=params)
    table = pd.read_csv(out / batch.COMPLIANCE_CSV, encoding="utf-8-sig")
    assert list(table["district"]) == ["街区", "西区", "东区", "空区"]
    assert set(table["level"]) == {"community"}
    rows = table.set_index("district")
    # 西区: "border" walks 120 m > 100 m; 东区: "east" walks 10 + 30 + 10 = 50 m
    assert rows.loc["西区", "residents"] == 100.0
    assert rows.loc["西区", "residents_covered"] == 0.0
    assert not rows.loc["西区", "passed"]
    assert rows.loc["东区", "share"] == 1.0
    assert rows.loc["东区", "passed"]
    assert rows.loc["东区", "households"] == pytest.approx(50 / 2.62, rel=1e-12)
    # no street in 街区: its 30 residents are counted, none within reach
    assert rows.loc["街区", "status"] == batch.STATUS_NO_NETWORK
    assert rows.loc["街区", "residents"] == 30.0
    assert rows.loc["街区", "share"] == 0.0
    assert rows.loc["空区", "residents"] == 0.0
    assert np.isnan(rows.loc["空区", "share"])
    assert (table["target_share"] == 0.9).all()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    section = doc["compliance"]
    assert section["standard"] == "local"
    assert section["districts_passed"] == {"community": {"passed": 1, "failed": 2, "not_judged": 1}}
    assert [r["district"] for r in section["rows"]] == list(table["district"])
    # the same block as a scenario's (export.compliance_section): parameters and the note
    assert section["target_share"] == 0.9
    assert section["household_size"] == 2.62
    assert section["m2_per_100_households"] == 30.0
    assert "capacity audit" in section["note"]  # no floor areas: the floor-area columns are null
    # per-district files stay as they were: no districts table of their own
    assert (out / "东区" / "standard.csv").is_file()
    assert not (out / "东区" / batch.COMPLIANCE_CSV).exists()
    # without a standard there is no compliance table
    run_districts(grid_city, grid_districts, tmp_path / "plain", params=FAST)
    assert not (tmp_path / "plain" / batch.COMPLIANCE_CSV).exists()
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text(encoding="utf-8"))
    assert "compliance" not in plain
