"""Tests for the ``coverage-planner`` command line (run in-process via ``coverage.cli.main``)."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import HAIDIAN

from coverage import cli, export

CONTRACT = {
    "centers.geojson": {"center_id", "name", "source", "snap_distance_m"},
    "service_areas.geojson": {"center_id", "minutes"},
    "demand.geojson": {
        "demand_id",
        "population",
        "minutes_to_nearest",
        "nearest_center_id",
        "covered_5",
        "covered_15",
    },
    "uncovered.geojson": {"minutes", "population", "area_m2"},
}
SITE_CONTRACT = {
    **CONTRACT,
    "proposed_sites.geojson": {
        "rank",
        "marginal_population",
        "cumulative_population",
        "cumulative_share",
    },
}
SUMMARY_KEYS = {
    "schema_version",
    "input",
    "params",
    "network",
    "demand",
    "centers",
    "coverage",
    "coverage_by_level",
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _haidian(cache_dir: Path, *extra: str) -> list[str]:
    return ["--osm", str(HAIDIAN), "--cache-dir", str(cache_dir), *extra]


def _check_geojson(out: Path, contract: dict[str, set[str]]) -> dict[str, gpd.GeoDataFrame]:
    layers = {}
    for name, columns in contract.items():
        path = out / name
        raw = json.loads(path.read_bytes())
        assert raw["type"] == "FeatureCollection"
        gdf = gpd.read_file(path, engine="pyogrio")
        assert gdf.crs is not None
        assert gdf.crs.to_epsg() == 4326, name
        assert columns <= set(gdf.columns), (name, columns - set(gdf.columns))
        geoms = gdf.geometry[gdf.geometry.notna()]
        assert geoms.is_valid.all(), name
        if len(geoms):
            minx, miny, maxx, maxy = geoms.total_bounds
            assert 73 < minx <= maxx < 136, name  # longitudes in China first (lon/lat order)
            assert 18 < miny <= maxy < 54, name
        layers[name] = gdf
    return layers


@pytest.fixture(scope="module")
def haidian_audit(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "out"
    assert cli.main(["audit", *_haidian(cache_dir), "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def haidian_site(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "out"
    argv = ["site", *_haidian(cache_dir), "--new", "2", "--lang", "en", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    return out


@pytest.fixture
def previous_output(haidian_audit: Path, tmp_path: Path) -> Path:
    """A folder holding an earlier complete output, to check that failures leave it alone."""
    out = tmp_path / "out"
    shutil.copytree(haidian_audit, out)
    return out


# --- audit and site end to end --------------------------------------------------------------


def test_audit_writes_the_contract(haidian_audit: Path) -> None:
    names = {p.name for p in haidian_audit.iterdir()}
    assert set(CONTRACT) | {"summary.json", "centers.csv", "report.html"} <= names
    assert "proposed_sites.geojson" not in names
    layers = _check_geojson(haidian_audit, CONTRACT)
    doc = json.loads((haidian_audit / "summary.json").read_text(encoding="utf-8"))
    assert set(doc) >= SUMMARY_KEYS
    assert "siting" not in doc
    assert doc["input"]["file"] == HAIDIAN.name
    assert len(doc["input"]["sha256"]) == 64
    assert doc["params"]["walk_speed_kmh"] == 4.5
    assert doc["params"]["thresholds_min"] == [5.0, 15.0]
    assert doc["params"]["population_model"]["source"] == "osm"
    assert {"nodes", "edges", "length_km"} <= set(doc["network"])
    assert doc["demand"]["units"] == len(layers["demand.geojson"])
    assert doc["centers"]["count"] == len(layers["centers.geojson"])
    assert set(doc["coverage"]) == {"5", "15"}
    c5, c15 = doc["coverage"]["5"], doc["coverage"]["15"]
    for block in (c5, c15):
        assert set(block) == {"population_covered", "share", "units_covered"}
        assert 0 <= block["share"] <= 1
    assert c5["population_covered"] <= c15["population_covered"]
    demand = layers["demand.geojson"]
    assert demand.loc[demand["covered_5"].astype(bool), "population"].sum() == pytest.approx(
        c5["population_covered"]
    )
    assert int(demand["covered_15"].astype(bool).sum()) == c15["units_covered"]
    # the 5-minute service area lies inside the 15-minute one
    areas = layers["service_areas.geojson"].to_crs(3857)
    union = areas[areas["center_id"] == "all"].set_index("minutes").geometry
    assert union.loc[5.0].difference(union.loc[15.0].buffer(0.5)).area < 1.0


def test_audit_geojson_text_is_plain_utf8(haidian_audit: Path) -> None:
    text = (haidian_audit / "centers.geojson").read_text(encoding="utf-8")
    assert "多用厅" in text  # the OSM name, not \u escapes
    assert "NaN" not in (haidian_audit / "demand.geojson").read_text(encoding="utf-8")


def test_site_writes_baseline_and_proposal(haidian_site: Path, haidian_audit: Path) -> None:
    layers = _check_geojson(haidian_site, SITE_CONTRACT)
    doc = json.loads((haidian_site / "summary.json").read_text(encoding="utf-8"))
    base = json.loads((haidian_audit / "summary.json").read_text(encoding="utf-8"))
    assert doc["coverage"] == base["coverage"]  # the baseline, not the proposal
    s = doc["siting"]
    assert {"method", "k", "share_before", "share_after", "upper_bound_share", "gap"} <= set(s)
    assert s["k"] == 2
    assert s["share_before"] == pytest.approx(doc["coverage"]["15"]["share"])
    assert s["share_before"] <= s["share_after"] <= s["upper_bound_share"] + 1e-12
    assert s["gap"] == pytest.approx(s["upper_bound_share"] - s["share_after"], abs=1e-12)
    sites = layers["proposed_sites.geojson"]
    assert list(sites["rank"]) == [1, 2]
    assert np.all(np.diff(sites["cumulative_share"]) >= 0)
    assert sites["cumulative_share"].iloc[-1] == pytest.approx(s["share_after"])
    demand = layers["demand.geojson"]
    assert "minutes_after" in demand.columns
    before = demand["minutes_to_nearest"].to_numpy(dtype=float)
    after = demand["minutes_after"].to_numpy(dtype=float)
    reach = np.isfinite(before)
    assert (after[reach] <= before[reach] + 1e-9).all()
    curve = pd.read_csv(haidian_site / "coverage_curve.csv", encoding="utf-8-sig")
    assert list(curve["k"]) == [0, 1, 2]
    assert curve["share"].iloc[0] == pytest.approx(s["share_before"])
    html = (haidian_site / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html


def _centers_csv(folder: Path) -> Path:
    centers = folder / "中心.csv"
    centers.write_text(
        "编号,名称,经度,纬度,级别\nA1,马连洼社区党群服务中心,116.3500,39.9980,社区\n"
        "B2,街道党群服务中心,116.3530,39.9965,街道\n",
        encoding="utf-8-sig",
    )
    return centers


def test_site_target_share_and_close(
    cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["site", *_haidian(cache_dir), "--centers", str(_centers_csv(tmp_path))]
    argv += ["--id-column", "编号", "--target-share", "0.6", "--minutes", "10", "--close", "A1"]
    argv += ["--no-polygons", "--no-report", "--out", str(out)]
    code, stdout, err = _run(argv, capsys)
    assert code == 0, err
    assert "wrote" in stdout
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["closed_centers"] == ["A1"]
    assert doc["centers"]["count"] == 1
    assert list(gpd.read_file(out / "centers.geojson")["center_id"]) == ["B2"]
    assert doc["params"]["thresholds_min"] == [5.0, 10.0, 15.0]
    assert doc["siting"]["minutes"] == 10.0
    assert doc["siting"]["share_before"] == pytest.approx(doc["coverage"]["10"]["share"])
    assert doc["siting"]["share_after"] >= 0.6
    assert doc["siting"]["target_met"] is True
    assert not (out / "report.html").exists()
    assert len(gpd.read_file(out / "service_areas.geojson")) == 0


def test_site_with_every_center_closed(
    cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A district with no station left: baseline 0 %, the optimizer still proposes sites."""
    out = tmp_path / "out"
    argv = ["site", *_haidian(cache_dir), "--centers", str(_centers_csv(tmp_path))]
    argv += ["--id-column", "编号", "--new", "2", "--close", "A1,B2", "--out", str(out)]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    assert "warning" not in err
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["centers"]["count"] == 0
    assert doc["coverage"]["15"]["share"] == 0.0
    assert doc["siting"]["share_before"] == 0.0
    assert 0.0 < doc["siting"]["share_after"] <= doc["siting"]["upper_bound_share"] + 1e-9
    assert len(gpd.read_file(out / "proposed_sites.geojson")) == 2
    unc = gpd.read_file(out / "uncovered.geojson")
    assert unc.loc[unc["minutes"] == 15, "population"].sum() == pytest.approx(
        doc["demand"]["population"]
    )
    assert (out / "report.html").exists()


def test_centers_from_a_chinese_csv(
    cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    centers = _centers_csv(tmp_path)
    out = tmp_path / "out"
    argv = ["audit", *_haidian(cache_dir), "--centers", str(centers), "--id-column", "编号"]
    argv += ["--level-minutes", "community=5,street=15", "--minutes", "5,10,15", "--no-report"]
    code, _, err = _run([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    layers = _check_geojson(out, {"centers.geojson": CONTRACT["centers.geojson"]})
    gdf = layers["centers.geojson"]
    assert set(gdf["name"]) == {"马连洼社区党群服务中心", "街道党群服务中心"}
    assert set(gdf["center_id"]) == {"A1", "B2"}
    assert set(gdf["source"]) == {"file"}
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(doc["coverage"]) == {"5", "10", "15"}
    assert doc["params"]["level_thresholds_min"] == {"community": 5.0, "street": 15.0}
    assert {r["level"] for r in doc["coverage_by_level"]} >= {"community", "street", "all"}
    demand = gpd.read_file(out / "demand.geojson")
    assert {"covered_5", "covered_10", "covered_15"} <= set(demand.columns)


def test_rerun_replaces_previous_output(
    previous_output: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", *_haidian(cache_dir), "--minutes", "7", "--no-polygons", "--no-report"]
    code, _, err = _run([*argv, "--out", str(previous_output)], capsys)
    assert code == 0, err
    doc = json.loads((previous_output / "summary.json").read_text(encoding="utf-8"))
    assert set(doc["coverage"]) == {"7"}
    assert not (previous_output / "report.html").exists()  # nothing left from the old run
    assert [p.name for p in previous_output.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_default_city_with_only_out(
    cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --cache-dir keeps the test away from the user's cache; the city is the embedded default
    out = tmp_path / "out"
    code, stdout, err = _run(["audit", "--cache-dir", str(cache_dir), "--out", str(out)], capsys)
    assert code == 0, err
    assert "within 15 min" in stdout
    _check_geojson(out, CONTRACT)
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["input"]["file"] == "chengdu_central.osm.bz2"
    assert doc["centers"]["count"] >= 1


# --- bad input: exit 2, one line, nothing touched ----------------------------------------------


def _bad_cases(tmp: Path) -> dict[str, list[str]]:
    text_file = tmp / "city.txt"
    text_file.write_text("not osm")
    no_coords = tmp / "centers.csv"
    no_coords.write_text("名称,地址\n党群服务中心,海淀区\n", encoding="utf-8")
    return {
        "missing osm": ["audit", "--osm", str(tmp / "missing.osm.pbf")],
        "unsupported extension": ["audit", "--osm", str(text_file)],
        "centers without coordinates": [
            "audit",
            "--osm",
            str(HAIDIAN),
            "--centers",
            str(no_coords),
        ],
        "missing centers file": ["audit", "--osm", str(HAIDIAN), "--centers", str(tmp / "x.csv")],
        "thresholds unsorted": ["audit", "--osm", str(HAIDIAN), "--minutes", "15,5"],
        "thresholds duplicated": ["audit", "--osm", str(HAIDIAN), "--minutes", "5,5"],
        "threshold zero": ["audit", "--osm", str(HAIDIAN), "--minutes", "0,15"],
        "threshold negative": ["audit", "--osm", str(HAIDIAN), "--minutes", "-3"],
        "threshold not a number": ["audit", "--osm", str(HAIDIAN), "--minutes", "five"],
        "speed zero": ["audit", "--osm", str(HAIDIAN), "--speed-kmh", "0"],
        "speed negative": ["audit", "--osm", str(HAIDIAN), "--speed-kmh", "-4"],
        "bad level minutes": ["audit", "--osm", str(HAIDIAN), "--level-minutes", "community"],
        "new zero": ["site", "--osm", str(HAIDIAN), "--new", "0"],
        "target share 1.5": ["site", "--osm", str(HAIDIAN), "--target-share", "1.5"],
        "new and target": ["site", "--osm", str(HAIDIAN), "--new", "2", "--target-share", "0.9"],
        "neither new nor target": ["site", "--osm", str(HAIDIAN)],
        "unknown closed center": ["site", "--osm", str(HAIDIAN), "--new", "1", "--close", "nope"],
        "unknown option": ["audit", "--osm", str(HAIDIAN), "--frobnicate"],
        "bad crs": ["audit", "--osm", str(HAIDIAN), "--crs", "utm"],
    }


BAD_CASE_NAMES = [
    "missing osm",
    "unsupported extension",
    "centers without coordinates",
    "missing centers file",
    "thresholds unsorted",
    "thresholds duplicated",
    "threshold zero",
    "threshold negative",
    "threshold not a number",
    "speed zero",
    "speed negative",
    "bad level minutes",
    "new zero",
    "target share 1.5",
    "new and target",
    "neither new nor target",
    "unknown closed center",
    "unknown option",
    "bad crs",
]


@pytest.mark.parametrize("case", BAD_CASE_NAMES)
def test_bad_input_exits_2_with_one_line(
    case: str,
    previous_output: Path,
    cache_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _bad_cases(tmp_path)[case]
    before = _snapshot(previous_output)
    code, _, err = _run(
        [*argv, "--cache-dir", str(cache_dir), "--out", str(previous_output)], capsys
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    assert _snapshot(previous_output) == before
    assert [p.name for p in previous_output.parent.iterdir() if p.name.startswith(".")] == []


def test_refuses_to_replace_a_foreign_folder(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = _run(["audit", *_haidian(cache_dir), "--out", str(mine)], capsys)
    assert code == 2
    assert "refusing" in err
    assert _snapshot(mine) == {"notes.txt": b"keep me"}


def test_console_script_exit_code(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "coverage-planner"
    assert script.is_file(), "install the package (make test) to get the console script"
    proc = subprocess.run(
        [
            str(script),
            "audit",
            "--osm",
            str(tmp_path / "missing.osm"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: OSM file not found")
    assert not (tmp_path / "o").exists()


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--version"], capsys)
    assert code == 0
    assert out.startswith("coverage-planner ")
    code, out, _ = _run(["site", "--help"], capsys)
    assert code == 0
    assert "--target-share" in out
    code, _, err = _run([], capsys)
    assert code == 2
    assert err.startswith("error: ")


# --- failures midway: the previous output survives ---------------------------------------------


def test_writer_failure_keeps_previous_output(
    previous_output: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = export.geojson_bytes

    def failing(gdf: Any, columns: Any = None, **kwargs: Any) -> bytes:
        if kwargs.get("what") == "uncovered":
            msg = "disk on fire"
            raise RuntimeError(msg)
        return real(gdf, columns, **kwargs)

    monkeypatch.setattr(export, "geojson_bytes", failing)
    # the layer is built, not taken from the output cache an earlier run may have filled
    monkeypatch.setattr(export.PieceStore, "read", lambda self, kind, key: None)
    before = _snapshot(previous_output)
    argv = ["audit", *_haidian(cache_dir), "--minutes", "3", "--out", str(previous_output)]
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert "Traceback" not in err
    assert "disk on fire" in err
    assert "--debug" in err
    assert _snapshot(previous_output) == before

    code, _, err = _run([*argv, "--debug"], capsys)
    assert code == 1
    assert "Traceback" in err
    assert _snapshot(previous_output) == before


def test_failure_while_writing_files_keeps_previous_output(
    previous_output: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls = {"n": 0}
    real_fsync = export.os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(export.os, "fsync", fsync)
    before = _snapshot(previous_output)
    argv = ["audit", *_haidian(cache_dir), "--minutes", "3", "--no-report"]
    code, _, err = _run([*argv, "--out", str(previous_output)], capsys)
    assert code == 2
    assert "No space left" in err
    assert _snapshot(previous_output) == before
    assert [p.name for p in previous_output.parent.iterdir() if p.name.startswith(".")] == []


def test_keyboard_interrupt_exits_130_without_partial_output(
    previous_output: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "csv_bytes", interrupted)
    before = _snapshot(previous_output)
    argv = ["audit", *_haidian(cache_dir), "--no-report", "--out", str(previous_output)]
    code, _, err = _run(argv, capsys)
    assert code == 130
    assert "Traceback" not in err
    assert _snapshot(previous_output) == before


# --- batch slot ------------------------------------------------------------------------------


def test_batch_passes_every_option_to_run_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage.audit import AuditParams
    from coverage.batch import BatchParams, BatchResult
    from coverage.centers import CenterColumns
    from coverage.inputs import CityInputs, FileInput

    seen: dict[str, Any] = {}

    def fake_run_batch(inputs: CityInputs, **kwargs: Any) -> BatchResult:
        seen.update(kwargs, inputs=inputs)
        return BatchResult(summary=pd.DataFrame({"district": ["a"]}), out_dir=tmp_path / "b")

    monkeypatch.setattr(cli, "run_batch", fake_run_batch)
    districts = tmp_path / "districts.geojson"
    argv = ["batch", "--osm", str(HAIDIAN), "--districts", str(districts)]
    argv += ["--district-name-column", "区名", "--crs", "gcj02", "--centers", "c.csv"]
    argv += ["--name-column", "名称", "--population", "p.geojson", "--minutes", "5,10"]
    argv += ["--speed-kmh", "4", "--level-minutes", "community=5", "--close", "x,y"]
    argv += ["--scheduler", "tcp://127.0.0.1:8786", "--new", "3", "--exact", "--force"]
    argv += ["--lang", "en", "--no-polygons", "--no-report", "--quiet"]
    code, _, err = _run([*argv, "--out", str(tmp_path / "b")], capsys)
    assert code == 0, err
    inputs: CityInputs = seen["inputs"]
    assert inputs.osm == HAIDIAN
    assert inputs.crs == "gcj02"
    assert inputs.districts == FileInput(districts)
    assert inputs.district_name_column == "区名"
    assert inputs.centers == FileInput(Path("c.csv"))
    assert inputs.center_columns == CenterColumns(name="名称")
    assert inputs.population == FileInput(Path("p.geojson"))
    assert inputs.admin_level is None
    params: BatchParams = seen["params"]
    assert params.scenario.audit == AuditParams(
        speed_kmh=4.0, thresholds_min=(5.0, 10.0), level_thresholds_min={"community": 5.0}
    )
    assert params.scenario.closed == ("x", "y")
    siting = params.scenario.siting
    assert siting is not None
    assert (siting.k, siting.minutes, siting.exact) == (3, 10.0, True)
    assert (params.with_polygons, params.with_report, params.lang) == (False, False, "en")
    assert seen["scheduler"] == "tcp://127.0.0.1:8786"
    assert seen["force"] is True
    assert seen["out"] == tmp_path / "b"
    assert callable(seen["progress"])
    code, _, err = _run(
        ["batch", "--workers", "2", "--scheduler", "tcp://x:1", "--out", str(tmp_path / "b")],
        capsys,
    )
    assert code == 2
    assert "not allowed with" in err


def test_batch_name_column_without_centers_says_which_column_names_districts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage.batch import BatchResult

    seen: dict[str, Any] = {}

    def fake_run_batch(inputs: Any, **kwargs: Any) -> BatchResult:
        seen["inputs"] = inputs
        return BatchResult(summary=pd.DataFrame({"district": []}), out_dir=tmp_path / "b")

    monkeypatch.setattr(cli, "run_batch", fake_run_batch)
    argv = ["batch", "--name-column", "NAME", "--out", str(tmp_path / "b")]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    assert "--district-name-column" in err
    assert seen["inputs"].district_name_column == "name"


def _option_strings(parser: Any) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def test_batch_help_offers_every_option_of_audit_and_site(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    audit, site, batch = (_option_strings(commands[c]) for c in ("audit", "site", "batch"))
    assert (audit | site) - batch == set()
    assert {"--districts", "--district-name-column", "--admin-level", "--workers"} <= batch
    assert {"--scheduler", "--force"} <= batch
    code, out, _ = _run(["batch", "--help"], capsys)
    assert code == 0
    for option in audit | site:
        assert option in out, option


def test_run_from_args_policy() -> None:
    """One function turns every subcommand's arguments into inputs and a scenario."""
    parser = cli.build_parser()
    _, site = cli.run_from_args(
        parser.parse_args(["site", "--new", "2", "--minutes", "10", "--out", "o"])
    )
    assert site.audit.thresholds_min == (5.0, 10.0, 15.0)
    assert site.siting is not None
    assert site.siting.minutes == 10.0
    _, batch = cli.run_from_args(parser.parse_args(["batch", "--new", "2", "--out", "o"]))
    assert batch.audit.thresholds_min == (5.0, 15.0)
    assert batch.siting is not None
    assert batch.siting.minutes == 15.0
    _, audit = cli.run_from_args(parser.parse_args(["audit", "--minutes", "3,7", "--out", "o"]))
    assert audit.audit.thresholds_min == (3.0, 7.0)
    assert audit.siting is None


# --- value parsers ---------------------------------------------------------------------------


def test_minutes_list_parser() -> None:
    assert cli.minutes_list("5,15") == (5.0, 15.0)
    assert cli.minutes_list(" 2.5 , 10 ") == (2.5, 10.0)
    assert cli.level_minutes("community=5,street=15") == {"community": 5.0, "street": 15.0}


# --- issue 17: values, long names, interrupts, one-line errors ------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["audit", "--minutes", "5,5.0000000001"], "both be written as '5'"),
        (["audit", "--minutes", "5", "--level-minutes", "community=5,community=10"], "twice"),
        (["site", "--new", "1000000"], "at most 10,000"),
        (["batch", "--scheduler", "tcp://127.0.0.1"], "no port"),
    ],
)
def test_clashing_or_capped_values_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    code, _, err = _run([*argv, "--osm", str(tmp_path / "x.osm"), "--out", str(out)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    assert not out.exists()
    assert not (out / ".work").exists()


def test_audit_and_level_thresholds_whose_keys_clash_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["site", "--new", "1", "--minutes", "5", "--audit-minutes", "5.0000000001"]
    code, _, err = _run([*argv, "--osm", str(HAIDIAN), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "'5'" in err
    assert len(err.strip().splitlines()) == 1


def test_out_name_too_long_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", "--osm", str(HAIDIAN), "--out", str(tmp_path / ("x" * 300))]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert "at most 255 bytes" in err
    assert len(err.strip().splitlines()) == 1
    assert len(err) < 400


def test_one_line_strips_escapes_and_caps_length() -> None:
    line = cli._one_line(ValueError("id \x1b[31m" + "x" * 5000 + "\x07\nend"))
    assert "\x1b" not in line
    assert "\x07" not in line
    assert "\n" not in line
    assert len(line) <= cli.MAX_ERROR_CHARS


def test_interrupt_after_the_swap_says_the_output_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def committed(*args: Any, **kwargs: Any) -> Path:
        raise export.OutputInPlaceInterrupt(tmp_path / "out")

    monkeypatch.setattr(cli, "_audit_or_site", committed)
    code, _, err = _run(["audit", "--out", str(tmp_path / "out")], capsys)
    assert code == 130
    assert "nothing was written" not in err
    assert f"it is in {tmp_path / 'out'}" in err


def test_level_minutes_parser_refuses_duplicates() -> None:
    assert cli.level_minutes("community=5,street=15") == {"community": 5.0, "street": 15.0}
    with pytest.raises(argparse.ArgumentTypeError, match="twice"):
        cli.level_minutes("community=5,community=10")


def test_fewer_sites_than_asked_prints_a_warning(tmp_path: Path) -> None:
    from types import SimpleNamespace

    stats = SimpleNamespace(share=0.5, population_covered=10.0)
    siting = SimpleNamespace(
        k=3,
        method="greedy",
        share_before=0.5,
        share_after=0.9,
        upper_bound_share=0.95,
        n_candidates=3,
        params=SimpleNamespace(k=1000, minutes=15.0, capacitated=False),
    )
    result = SimpleNamespace(
        audit=SimpleNamespace(population_total=20.0, demand=[1, 2], coverage={"15": stats}),
        centers=[1],
        siting=siting,
    )
    buf = io.StringIO()
    cli._print_summary(buf, result, tmp_path)  # type: ignore[arg-type]
    text = buf.getvalue()
    assert "warning: --new 1000 asked; 3 sites placed (3 candidates" in text
    assert "the others would cover nobody new)" in text
    # capacitated sites are judged by the residents they serve within capacity
    siting.params.capacitated = True
    buf = io.StringIO()
    cli._print_summary(buf, result, tmp_path)  # type: ignore[arg-type]
    assert "the others would serve nobody more within capacity)" in buf.getvalue()
