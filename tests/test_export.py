"""Tests for coverage.export: GeoJSON per RFC 7946, summary.json, atomic folder swap."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, Polygon

from coverage import export
from coverage.errors import InputError

UTM50 = "EPSG:32650"  # Beijing


def _utm_frame() -> gpd.GeoDataFrame:
    # A clockwise square (RFC 7946 wants counter-clockwise exteriors), a point, nothing.
    x0, y0 = 442_000.0, 4_427_000.0
    cw = Polygon([(x0, y0), (x0, y0 + 100), (x0 + 100, y0 + 100), (x0 + 100, y0)])
    return gpd.GeoDataFrame(
        {
            "demand_id": ["a", "b", "c"],
            "name": ["中国农业大学", None, "x"],
            "population": [10.5, np.nan, 3.0],
            "covered_5": [True, False, True],
            "units": np.array([1, 2, 3], dtype=np.int64),
        },
        geometry=[cw, Point(x0, y0), None],
        crs=UTM50,
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != export.MARKER}


def _leftovers(parent: Path, name: str) -> list[str]:
    return [
        p.name for p in parent.iterdir() if p.name.startswith((f".{name}.", export.TEMP_PREFIX))
    ]


# --- GeoJSON ------------------------------------------------------------------------------


def test_geojson_is_rfc7946_wgs84_lonlat(tmp_path: Path) -> None:
    data = export.geojson_bytes(_utm_frame(), ["demand_id", "population", "covered_5"])
    doc = json.loads(data)
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    f0, f1, f2 = doc["features"]
    lon, lat = f1["geometry"]["coordinates"]
    assert 115 < lon < 118
    assert 39 < lat < 41
    assert f2["geometry"] is None
    ring = np.array(f0["geometry"]["coordinates"][0])
    assert shapely.Polygon(ring).exterior.is_ccw
    # every coordinate has at most 7 decimals
    for value in ring.ravel():
        assert round(float(value), 7) == float(value)
    path = tmp_path / "layer.geojson"
    path.write_bytes(data)
    back = gpd.read_file(path)
    assert back.crs is not None
    assert back.crs.to_epsg() == 4326
    assert list(back.columns) == ["demand_id", "population", "covered_5", "geometry"]


def test_geojson_values_nan_null_chinese_types() -> None:
    data = export.geojson_bytes(_utm_frame(), None)
    text = data.decode("utf-8")
    assert "中国农业大学" in text
    assert "\\u" not in text
    assert "NaN" not in text
    props = [f["properties"] for f in json.loads(data)["features"]]
    assert props[1]["population"] is None
    assert props[1]["name"] is None
    assert props[0]["covered_5"] is True
    assert props[1]["covered_5"] is False
    assert props[2]["units"] == 3
    assert isinstance(props[2]["units"], int)


def test_geojson_keeps_wgs84_input_and_optional_columns() -> None:
    gdf = gpd.GeoDataFrame(
        {"center_id": ["c1"], "name": ["党群服务中心"]},
        geometry=[Point(116.123456789, 39.987654321)],
        crs="EPSG:4326",
    )
    doc = json.loads(export.geojson_bytes(gdf, ["center_id"], optional=["name", "level"]))
    feature = doc["features"][0]
    assert feature["geometry"]["coordinates"] == [116.1234568, 39.9876543]
    assert feature["properties"] == {"center_id": "c1", "name": "党群服务中心"}


def test_geojson_refuses_missing_columns_and_crs() -> None:
    gdf = _utm_frame()
    with pytest.raises(InputError, match="minutes_to_nearest"):
        export.geojson_bytes(gdf, ["demand_id", "minutes_to_nearest"], what="demand")
    with pytest.raises(InputError, match="no CRS"):
        export.geojson_bytes(gdf.set_crs(None, allow_override=True), ["demand_id"])
    with pytest.raises(InputError, match="GeoDataFrame"):
        export.geojson_bytes(pd.DataFrame({"a": [1]}), None)  # type: ignore[arg-type]


def test_geojson_empty_layer_reads_back(tmp_path: Path) -> None:
    empty = gpd.GeoDataFrame(
        {"minutes": pd.Series(dtype=float)}, geometry=gpd.GeoSeries([], crs=UTM50), crs=UTM50
    )
    path = tmp_path / "empty.geojson"
    path.write_bytes(export.geojson_bytes(empty, ["minutes"]))
    assert json.loads(path.read_bytes())["features"] == []
    assert len(gpd.read_file(path)) == 0


# --- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("海淀区", "海淀区"),
        ("a/b\\c", "a_b_c"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..", "unnamed"),
        ("", "unnamed"),
        ("tab\there\nnewline", "tab_here_newline"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("what?*:<>|", "what_"),
        ("name. ", "name"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert export.safe_filename(raw) == expected
    assert "/" not in export.safe_filename(raw)
    assert "\\" not in export.safe_filename(raw)


def test_safe_filename_is_bounded() -> None:
    assert len(export.safe_filename("社" * 500)) == 100


# --- atomic writes ---------------------------------------------------------------------------


def test_write_outputs_creates_and_replaces(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "out"
    export.write_outputs(out, {"summary.json": b"{}", "a.csv": "x\n"})
    assert _snapshot(out) == {"a.csv": b"x\n", "summary.json": b"{}"}
    export.write_outputs(out, {"summary.json": b'{"v": 2}'})
    assert _snapshot(out) == {"summary.json": b'{"v": 2}'}  # a.csv is gone: no mix
    assert _leftovers(out.parent, "out") == []


def test_write_outputs_into_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    export.write_outputs(out, {"summary.json": b"{}"})
    assert (out / "summary.json").is_file()


def test_write_outputs_refuses_foreign_folder_and_file(tmp_path: Path) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.docx").write_bytes(b"precious")
    with pytest.raises(InputError, match="refusing"):
        export.write_outputs(mine, {"summary.json": b"{}"})
    assert _snapshot(mine) == {"chapter1.docx": b"precious"}
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        export.write_outputs(a_file, {"summary.json": b"{}"})


@pytest.mark.parametrize("name", ["../escape.json", "sub/x.json", "", ".."])
def test_write_outputs_refuses_path_like_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="plain file name"):
        export.write_outputs(tmp_path / "out", {name: b"x"})
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.json").exists()


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_write_outputs_failure_midway_keeps_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    out = tmp_path / "out"
    export.write_outputs(out, {"summary.json": b"old", "demand.geojson": b"old"})
    before = _snapshot(out)
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # after the first file, before the second
            raise exc
        real_fsync(fd)

    monkeypatch.setattr(export.os, "fsync", failing_fsync)
    new = {"summary.json": b"new", "demand.geojson": b"new", "centers.geojson": b"new"}
    expected: type[BaseException] = (
        KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else InputError
    )
    with pytest.raises(expected):
        export.write_outputs(out, new)
    assert _snapshot(out) == before
    assert _leftovers(tmp_path, "out") == []


def test_write_outputs_rename_failure_restores_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    export.write_outputs(out, {"summary.json": b"old"})
    monkeypatch.setattr(export, "_exchange", lambda a, b: False)  # the two-rename fallback
    real_rename = Path.rename

    def rename(self: Path, target: Any) -> Path:
        if self.name.startswith(f"{export.TEMP_PREFIX}tmp-"):
            msg = "simulated"
            raise OSError(5, msg)
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(InputError, match="Cannot write"):
        export.write_outputs(out, {"summary.json": b"new"})
    assert _snapshot(out) == {"summary.json": b"old"}
    assert _leftovers(tmp_path, "out") == []


def _can_exchange(tmp: Path) -> bool:
    a, b = tmp / "xa", tmp / "xb"
    a.mkdir()
    b.mkdir()
    (a / "f").write_text("a")
    ok = export._exchange(a, b)
    if ok:
        assert (b / "f").read_text() == "a"
        assert not (a / "f").exists()
    return ok


def test_write_outputs_swaps_in_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the OS can exchange two folders, `out` is never missing, not even for an instant."""
    if not _can_exchange(tmp_path):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    out = tmp_path / "out"
    export.write_outputs(out, {"summary.json": b"old", "a.csv": b"old"})

    def no_rename(self: Path, target: Any) -> Path:
        msg = f"a rename of {self.name} would leave a moment without {target}"
        raise AssertionError(msg)

    monkeypatch.setattr(Path, "rename", no_rename)
    export.write_outputs(out, {"summary.json": b"new"})
    assert _snapshot(out) == {"summary.json": b"new"}
    assert _leftovers(tmp_path, "out") == []


# --- whole output on the real extract ----------------------------------------------------------


@pytest.fixture(scope="module")
def haidian_result(haidian_extract, haidian_net):  # type: ignore[no-untyped-def]
    from coverage.audit import AuditParams, audit
    from coverage.centers import centers_from_osm
    from coverage.demand import demand_units
    from coverage.siting import SitingParams, propose_sites

    centers = centers_from_osm(haidian_extract, haidian_net)
    demand = demand_units(haidian_extract, haidian_net)
    result = audit(haidian_net, centers, demand, AuditParams(thresholds_min=(5.0, 15.0)))
    siting = propose_sites(haidian_net, demand, centers, params=SitingParams(k=2))
    return haidian_net, result, siting


def _result_and_city(  # type: ignore[no-untyped-def]
    net, result, siting=None, *, source_name: str = "", source_sha256: str = "", model=None
):
    """A ScenarioResult and the CityData it ran on, from an audit and a siting made by hand."""
    from coverage.inputs import CityData
    from coverage.scenario import Scenario, ScenarioResult

    city = CityData(
        source_name=source_name,
        source_sha256=source_sha256,
        net=net,
        centers=result.centers,
        demand=result.demand,
        population_model=model or {},
    )
    res = ScenarioResult(
        scenario=Scenario(audit=result.params), centers=result.centers, audit=result, siting=siting
    )
    return res, city


@pytest.mark.figure
def test_output_files_contract(haidian_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net, result, siting = haidian_result
    res, city = _result_and_city(
        net,
        result,
        siting,
        source_name="beijing_haidian_cau.osm.bz2",
        source_sha256="0" * 64,
        model={"source": "osm"},
    )
    files = export.output_files(res, city, lang="en")
    assert set(files) == {
        "summary.json",
        "summary.csv",
        "centers.geojson",
        "centers.csv",
        "service_areas.geojson",
        "demand.geojson",
        "uncovered.geojson",
        "coverage_by_level.csv",
        "proposed_sites.geojson",
        "coverage_curve.csv",
        "report.html",
        "tables.xlsx",
        "map.png",
        "map.pdf",
    }
    doc = json.loads(files["summary.json"])
    assert doc["schema_version"] == export.SCHEMA_VERSION
    assert doc["input"] == {"file": "beijing_haidian_cau.osm.bz2", "sha256": "0" * 64}
    assert doc["params"]["walk_speed_kmh"] == 4.5
    assert doc["params"]["thresholds_min"] == [5.0, 15.0]
    assert doc["network"]["nodes"] == net.n_nodes
    assert doc["network"]["edges"] == net.n_edges
    assert doc["demand"]["units"] == len(result.demand)
    assert set(doc["coverage"]) == {"5", "15"}
    for block in doc["coverage"].values():
        assert set(block) == {"population_covered", "share", "units_covered"}
    assert doc["coverage"]["5"]["share"] <= doc["coverage"]["15"]["share"]
    s = doc["siting"]
    assert {"method", "k", "share_before", "share_after", "upper_bound_share", "gap"} <= set(s)
    assert s["share_before"] <= s["share_after"] <= s["upper_bound_share"] + 1e-12
    assert s["share_before"] == pytest.approx(doc["coverage"]["15"]["share"])

    out = export.write_outputs(tmp_path / "out", files)
    demand = gpd.read_file(out / "demand.geojson")
    assert demand.crs.to_epsg() == 4326
    assert len(demand) == len(result.demand)
    after = demand["minutes_after"].to_numpy(dtype=float)
    base = demand["minutes_to_nearest"].to_numpy(dtype=float)
    finite = np.isfinite(base)
    assert (after[finite] <= base[finite] + 1e-9).all()  # adding stations never lowers access
    covered = demand.loc[demand["covered_15"].astype(bool), "population"].sum()
    assert covered == pytest.approx(doc["coverage"]["15"]["population_covered"], rel=1e-9)
    sites = gpd.read_file(out / "proposed_sites.geojson")
    assert list(sites["rank"]) == list(range(1, len(sites) + 1))
    curve = pd.read_csv(out / "coverage_curve.csv", encoding="utf-8-sig")
    assert {"k", "share"} <= set(curve.columns)
    table = pd.read_csv(out / "summary.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(table.columns) == [
        "scenario",
        "threshold_min",
        "population_covered",
        "population_total",
        "share",
        "units_covered",
    ]
    assert table["scenario"].tolist() == ["", ""]  # no scenario: a CLI run
    assert [str(k) for k in table["threshold_min"]] == ["5", "15"]
    for row in table.itertuples():
        block = doc["coverage"][str(row.threshold_min)]
        assert row.population_covered == pytest.approx(block["population_covered"], rel=1e-12)
        assert row.share == pytest.approx(block["share"], rel=1e-12)
        assert row.units_covered == block["units_covered"]
        assert row.population_total == pytest.approx(doc["demand"]["population"], rel=1e-12)
    centers_csv = pd.read_csv(out / "centers.csv", encoding="utf-8-sig")
    assert {"center_id", "lon", "lat", "population_within_5", "population_within_15"} <= set(
        centers_csv.columns
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")


def test_output_files_without_siting_or_report(haidian_result) -> None:  # type: ignore[no-untyped-def]
    net, result, _ = haidian_result
    files = export.output_files(
        *_result_and_city(net, result), report=False, extra={"scenario": {"name": "方案 A"}}
    )
    assert "proposed_sites.geojson" not in files
    assert "report.html" not in files
    doc = json.loads(files["summary.json"])
    assert "siting" not in doc
    assert "districts" not in doc
    assert doc["input"] == {"file": "", "sha256": ""}
    props = json.loads(files["demand.geojson"])["features"][0]["properties"]
    assert "minutes_after" not in props
    assert {"demand_id", "population", "minutes_to_nearest", "nearest_center_id"} <= set(props)
    assert {"covered_5", "covered_15"} <= set(props)
    lines = files["summary.csv"].decode("utf-8-sig").splitlines()
    assert (
        lines[0] == "scenario,threshold_min,population_covered,population_total,share,units_covered"
    )
    assert [line.split(",")[:2] for line in lines[1:]] == [["方案 A", "5"], ["方案 A", "15"]]


def test_district_coverage_sums_to_total(haidian_result) -> None:  # type: ignore[no-untyped-def]
    _, result, _ = haidian_result
    bounds = result.demand.to_crs(4326).total_bounds
    west = shapely.box(
        bounds[0] - 0.01, bounds[1] - 0.01, (bounds[0] + bounds[2]) / 2, bounds[3] + 0.01
    )
    east = shapely.box(
        (bounds[0] + bounds[2]) / 2, bounds[1] - 0.01, bounds[2] + 0.01, bounds[3] + 0.01
    )
    districts = gpd.GeoDataFrame(
        {"district": ["西区", "东区"]}, geometry=[west, east], crs="EPSG:4326"
    )
    table = export.district_coverage(result.demand, districts, (5.0, 15.0))
    assert list(table["district"]) == ["西区", "东区"]
    assert table["population"].sum() == pytest.approx(result.population_total, rel=1e-9)
    assert table["population_covered_15"].sum() == pytest.approx(
        result.coverage["15"].population_covered, rel=1e-9
    )
    with pytest.raises(InputError, match="name column"):
        export.district_coverage(result.demand, districts.rename(columns={"district": "x"}), (5.0,))


def test_summary_and_write_for_a_scenario(cache_dir: Path, tmp_path: Path) -> None:
    from conftest import HAIDIAN

    from coverage import pipeline
    from coverage.audit import AuditParams
    from coverage.inputs import CityInputs, load_city
    from coverage.scenario import Scenario

    city = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    closed = str(city.centers["center_id"].iloc[0])
    scenario = Scenario(audit=AuditParams(thresholds_min=(10.0,)), closed=(closed,))
    res = pipeline.run(city, scenario, with_polygons=False)
    doc = export.summary_dict(res, city, extra={"scenario": {"name": scenario.name}})
    assert doc["input"]["file"] == HAIDIAN.name
    assert doc["input"]["sha256"] == city.source_sha256
    assert set(doc["coverage"]) == {"10"}
    assert doc["scenario"]["name"] == "baseline"
    assert doc["closed_centers"] == [closed]
    assert doc["params"]["population_model"]["source"] == "osm"
    out = pipeline.write(res, city, tmp_path / "out", report=False)
    assert (
        json.loads((out / "summary.json").read_text(encoding="utf-8"))["coverage"]
        == doc["coverage"]
    )
    areas = gpd.read_file(out / "service_areas.geojson")
    assert len(areas) == 0


# --- issue 17: never lose a user's file; output injection -------------------------------


def test_folder_with_foreign_summary_json_is_refused(tmp_path: Path) -> None:
    """Another tool's summary.json does not make a folder ours: nothing of the user's is lost."""
    mine = tmp_path / "thesis"
    (mine / "photos").mkdir(parents=True)
    (mine / "summary.json").write_text('{"other": "tool"}')
    (mine / "thesis.docx").write_bytes(b"precious")
    (mine / "photos" / "a.jpg").write_bytes(b"jpg")
    with pytest.raises(InputError, match=r"no \.coverage-planner\.json"):
        export.write_outputs(mine, {"summary.json": b"{}"})
    assert sorted(p.name for p in mine.iterdir()) == ["photos", "summary.json", "thesis.docx"]
    assert (mine / "thesis.docx").read_bytes() == b"precious"
    assert _leftovers(tmp_path, "thesis") == []


def test_marker_names_tool_schema_and_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export.write_outputs(out, {"summary.json": b"{}"})
    first = json.loads((out / export.MARKER).read_text(encoding="utf-8"))
    assert first["tool"] == "coverage-planner"
    assert first["schema_version"] == export.SCHEMA_VERSION
    assert first["files"] == ["summary.json"]
    export.write_outputs(out, {"summary.json": b"{}"})  # ours: replaced
    second = json.loads((out / export.MARKER).read_text(encoding="utf-8"))
    assert len(second["run_id"]) == 32
    assert second["run_id"] != first["run_id"]


def test_our_folder_with_a_user_file_added_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export.write_outputs(out, {"summary.json": b"{}"})
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"notes\.txt"):
        export.write_outputs(out, {"summary.json": b"new"})
    assert (out / "notes.txt").read_text() == "mine"


def test_output_without_marker_from_an_older_version_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "summary.json").write_text("{}")
    (old / "demand.geojson").write_text("{}")
    with pytest.raises(InputError, match="deleted first"):
        export.check_output_dir(old)


def test_symlinked_out_writes_into_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert export.write_outputs(link, {"summary.json": b"one"}) == real
    export.write_outputs(link, {"summary.json": b"two"})
    assert link.is_symlink()
    assert (real / "summary.json").read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]  # no .old-* left


def test_long_names_legal_one_works_too_long_one_is_refused(tmp_path: Path) -> None:
    ok = tmp_path / ("a" * 250)
    export.write_outputs(ok, {"summary.json": b"{}"})
    assert (ok / "summary.json").is_file()
    with pytest.raises(InputError, match="at most 255 bytes"):
        export.write_outputs(tmp_path / ("b" * 300), {"summary.json": b"{}"})
    assert [p.name for p in tmp_path.iterdir()] == ["a" * 250]


def test_interrupt_after_the_swap_reports_the_new_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    export.write_outputs(out, {"summary.json": b"old"})
    real = export._fsync_dir

    def interrupt_on_parent(path: Path) -> None:
        if path == tmp_path:  # only after the swap, when the parent is flushed
            raise KeyboardInterrupt
        real(path)

    monkeypatch.setattr(export, "_fsync_dir", interrupt_on_parent)
    with pytest.raises(export.OutputInPlaceInterrupt) as info:
        export.write_outputs(out, {"summary.json": b"new"})
    assert info.value.path == out
    assert _snapshot(out) == {"summary.json": b"new"}
    assert _leftovers(tmp_path, "out") == []


@pytest.mark.parametrize(
    "name", ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(x)"]
)
def test_csv_cells_that_start_a_formula_are_prefixed(name: str) -> None:
    df = pd.DataFrame({"name": [name, "ok"], "share": [-0.5, 1.0], "n": [-3, 4]})
    text = export.csv_bytes(df).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][0].startswith("'")
    assert not rows[1][0][1:].startswith(("\t", "\r"))
    assert rows[1][1:] == ["-0.5", "-3"]  # numbers stay numbers
    assert rows[2] == ["ok", "1.0", "4"]


def test_control_characters_are_stripped_from_names() -> None:
    df = pd.DataFrame({"name": ["a\x1b[31mb\x00c"]})
    assert export.csv_bytes(df).decode("utf-8-sig") == "name\na[31mbc\n"
    gdf = gpd.GeoDataFrame({"name": ["x\x1by\x07"]}, geometry=[Point(0, 0)], crs="EPSG:4326")
    doc = json.loads(export.geojson_bytes(gdf))
    assert doc["features"][0]["properties"]["name"] == "xy"


# --- issue 16: large shapes are checked and repaired ring by ring --------------------


def _holey(n: int, gap: float) -> shapely.Polygon:
    """A 1°-ish square with an n × n grid of square holes; two pairs of holes ``gap`` apart."""
    step = 0.9 / n
    holes = []
    for i in range(n):
        for j in range(n):
            x, y = 0.05 + i * step, 0.05 + j * step
            holes.append(
                [(x, y), (x + step / 2, y), (x + step / 2, y + step / 2), (x, y + step / 2)]
            )
    # neighbours within `gap`: rounding to 7 decimals makes them share an edge
    x, y = holes[0][1]
    holes[1] = [(x + gap, y), (x + gap + 0.01, y), (x + gap + 0.01, y + 0.01), (x + gap, y + 0.01)]
    a, b = 0.05 + 3 * step, 0.05 + 2 * step
    c = a + step / 2 + gap
    holes.append([(c, b), (c + 0.01, b), (c + 0.01, b + 0.001), (c, b + 0.001)])
    return shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)], holes)


@pytest.mark.parametrize("multi", [False, True])
def test_large_shapes_repaired_as_geos_does(multi: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from coverage import export as ex

    poly = _holey(12, 3e-8)
    geom = (
        shapely.MultiPolygon([poly, shapely.box(2, 2, 3, 3), shapely.box(3 + 3e-8, 2, 4, 3)])
        if multi
        else poly
    )
    assert geom.is_valid
    rounded = shapely.transform(geom, lambda c: np.round(c, ex.COORD_DECIMALS))
    assert not rounded.is_valid
    expected = shapely.make_valid(rounded, method="structure", keep_collapsed=False)
    monkeypatch.setattr(ex, "LARGE_COORDS", 10)
    ok, fixed = ex._repaired_large(rounded, repair=True)
    assert not ok
    assert ex._repaired_large(geom, repair=False)[0]
    assert fixed.is_valid
    assert shapely.equals_exact(shapely.normalize(fixed), shapely.normalize(expected), tolerance=0)
    # the whole column path gives the same GeoJSON as the GEOS path
    arr = np.array([geom, shapely.box(0, 0, 1, 1)], dtype=object)
    small = ex._geometry_json(arr)
    monkeypatch.setattr(ex, "LARGE_COORDS", 10**9)
    big = ex._geometry_json(arr)
    a = shapely.normalize(shapely.from_geojson(small))
    b = shapely.normalize(shapely.from_geojson(big))
    assert shapely.equals_exact(a, b, tolerance=0).all()


def test_large_valid_shape_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from coverage import export as ex

    poly = _holey(10, 0.002)  # far apart: rounding breaks nothing
    monkeypatch.setattr(ex, "LARGE_COORDS", 10)
    assert ex._repaired_large(poly, repair=True) == (True, poly)


# --- schema 2: every key written is in the contract doc -------------------------------------

ARCHITECTURE_MD = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"
#: Top-level keys of schema 1 (../shared/DESIGN.md's output contract).
SCHEMA_1_KEYS = {
    "schema_version",
    "input",
    "params",
    "network",
    "demand",
    "centers",
    "coverage",
    "districts",
    "siting",
}


def documented_summary_keys() -> set[str]:
    """Top-level summary.json keys listed in docs/ARCHITECTURE.md's schema-2 table."""
    text = ARCHITECTURE_MD.read_text(encoding="utf-8")
    section = text.split("### `summary.json`: keys added since schema 1", 1)[1]
    section = section.split("\n### ", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        first = line.split("|")[1] if line.startswith("|") else ""
        for name in re.findall(r"`([a-z_]+)", first):
            keys.add(name)
    return keys


def test_schema_2_keys_are_documented(haidian_result) -> None:  # type: ignore[no-untyped-def]
    assert export.SCHEMA_VERSION == 2  # issues 14-15 added keys: DESIGN.md asks for a bump
    documented = documented_summary_keys()
    for key in ("census", "standard", "compliance", "capacity", "groups", "documents"):
        assert key in documented
    assert {"centers_source", "coverage_by_level", "closed_centers", "district"} <= documented
    net, result, siting = haidian_result
    res, city = _result_and_city(net, result, siting, source_name="x.osm", source_sha256="0")
    files = export.output_files(res, city, report=False)
    doc = json.loads(files["summary.json"])
    assert doc["schema_version"] == 2
    assert set(doc) <= SCHEMA_1_KEYS | documented
    marker = json.loads(export.marker_bytes("output"))
    assert marker["schema_version"] == 2


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_geojson_in_chunks_is_the_same_bytes(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Formatting a layer chunk by chunk writes the bytes of one pass, whatever the chunk size.

    Columns whose JSON could depend on the whole column (a nullable integer with a
    missing value in one chunk only, text, floats with NaN, booleans) and missing or
    empty geometries are spread over several chunks.
    """
    n = 7
    gdf = gpd.GeoDataFrame(
        {
            "name": ["社区 A", "=cmd", None, "B\u0007", "街道", "x", "y"],
            "count": pd.array([1, 2, None, 4, 5, 6, 7], dtype="Int64"),
            "share": [0.5, np.nan, 1 / 3, np.inf, 0.0, -0.0, 2.5],
            "ok": [True, False, True, True, False, False, True],
            "n": np.arange(n, dtype=np.int64),
        },
        geometry=[
            Point(104.06 + i * 1e-3, 30.66).buffer(1e-4) if i not in (2, 5) else None
            for i in range(n)
        ],
        crs="EPSG:4326",
    )
    gdf.loc[5, "geometry"] = Polygon()
    monkeypatch.setattr(export, "GEOJSON_CHUNK_ROWS", 10**6)
    whole = export.geojson_bytes(gdf)
    monkeypatch.setattr(export, "GEOJSON_CHUNK_ROWS", chunk)
    assert export.geojson_bytes(gdf) == whole
    features = json.loads(whole)["features"]
    assert len(features) == n
    assert features[2]["properties"]["count"] is None
    assert features[0]["properties"]["name"] == "社区 A"
    assert features[2]["geometry"] is None
    empty = gdf.iloc[:0]
    monkeypatch.setattr(export, "GEOJSON_CHUNK_ROWS", 1)
    assert json.loads(export.geojson_bytes(empty)) == {"type": "FeatureCollection", "features": []}
