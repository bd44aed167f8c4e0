"""Smoke tests of the benchmark tools: the synthetic city and the suite runner."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
TARGET_NODES = 3_000

sys.path.insert(0, str(BENCH))

from synth_city import generate_city  # noqa: E402  (benchmarks/ is not a package)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("synth") / "city.osm.pbf"
    districts = out.with_name("districts.geojson")
    stats = generate_city(out, nodes=TARGET_NODES, seed=7, districts_out=districts)
    return stats, districts


@pytest.fixture(scope="module")
def extract(city):  # type: ignore[no-untyped-def]
    from coverage.osm import read_osm

    return read_osm(city[0].path)


@pytest.fixture(scope="module")
def net(city, extract):  # type: ignore[no-untyped-def]
    from coverage.netcache import walk_network

    return walk_network(city[0].path, cache_dir=None, extract=extract)


def test_network_size_near_target(net) -> None:  # type: ignore[no-untyped-def]
    assert 0.7 * TARGET_NODES <= net.n_nodes <= 1.3 * TARGET_NODES
    assert net.crs == "EPSG:32649"  # UTM 49N: the city sits at Taiyuan


def test_generator_predicts_network_size(city, net) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    assert abs(net.n_nodes - stats.expected_network_nodes) <= 0.05 * stats.expected_network_nodes


def test_non_walkable_ways_are_filtered(net) -> None:  # type: ignore[no-untyped-def]
    highways = {h for value in net.edge_highway for h in str(value).split(";")}
    assert "footway" in highways
    assert highways.isdisjoint({"motorway", "motorway_link", "cycleway", "construction"})


def test_districts_present(city, extract) -> None:  # type: ignore[no-untyped-def]
    import geopandas as gpd

    stats, districts_path = city
    b = extract.boundaries
    assert len(b) == stats.districts >= 4
    assert set(b["admin_level"]) == {"6"}
    assert sorted(b["name"]) == sorted(f"区{k}" for k in range(1, stats.districts + 1))
    d = gpd.read_file(districts_path)
    assert d.crs.to_epsg() == 4326
    assert sorted(d["name"]) == sorted(b["name"])
    # The districts tile the city: every street lies in one of them.
    assert d.union_all().covers(extract.residential.union_all())


def test_centers_and_residential_present(city, extract) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    c = extract.center_features
    assert len(c) >= stats.centers  # a few offices are mapped twice, as in real data
    assert c["name"].str.contains("社区").all()
    kinds = set(extract.residential["kind"])
    assert kinds == {"landuse", "building"}
    levels = extract.residential["building_levels"]
    assert levels.notna().any()


def test_same_seed_same_bytes(city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    again = generate_city(tmp_path / "again.osm.pbf", nodes=TARGET_NODES, seed=7)
    other = generate_city(tmp_path / "other.osm.pbf", nodes=TARGET_NODES, seed=8)
    assert _sha256(again.path) == _sha256(stats.path)
    assert _sha256(other.path) != _sha256(stats.path)


def test_bz2_output_reads_the_same(city, extract, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from coverage.osm import read_osm

    stats = generate_city(tmp_path / "city.osm.bz2", nodes=TARGET_NODES, seed=7)
    xml = read_osm(stats.path)
    assert len(xml.ways) == len(extract.ways)
    assert len(xml.residential) == len(extract.residential)
    assert len(xml.boundaries) == len(extract.boundaries)


def test_cli_writes_city_and_districts(tmp_path: Path) -> None:
    out, districts = tmp_path / "c.osm.pbf", tmp_path / "d.geojson"
    proc = subprocess.run(
        [
            *(sys.executable, str(BENCH / "synth_city.py"), "--nodes", "1000", "--seed", "1"),
            *("--out", str(out), "--districts-out", str(districts)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
    assert districts.stat().st_size > 0


def test_generator_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`nodes`"):
        generate_city(tmp_path / "x.osm.pbf", nodes=10)
    with pytest.raises(ValueError, match="`out`"):
        generate_city(tmp_path / "x.shp", nodes=5_000)


def test_growth_exponent() -> None:
    from run import growth_exponent

    assert growth_exponent([1e4, 1e5, 3e5], [1.0, 10.0, 30.0]) == pytest.approx(1.0)
    assert growth_exponent([1e4], [1.0]) is None


@pytest.mark.slow
def test_suite_smoke(tmp_path: Path) -> None:
    out = tmp_path / "suite.md"
    proc = subprocess.run(
        [
            *(sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out)),
            *("--workdir", str(tmp_path / "work")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "## Machine" in text
    assert "| stage | median |" in text
    assert "|---|" in text
    for stage in ("load", "network (cold)", "network (cached)"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {stage} |"))
        assert " s |" in row or " ms |" in row, row  # timed, not skipped or failed


def test_guards_benchmark_switches_real_guards() -> None:
    """bench_guards switches functions that exist, and puts every original back (issue 17)."""
    import importlib

    import bench_guards

    originals = {}
    for module_name, name, _ in bench_guards.GUARDS:
        module = importlib.import_module(module_name)
        assert callable(getattr(module, name)), f"{module_name}.{name}"
        originals[module_name, name] = getattr(module, name)
    with bench_guards.guards("off"):
        from coverage import demand

        assert (
            demand.check_population_values
            is not originals["coverage.demand", "check_population_values"]
        )
    for (module_name, name), fn in originals.items():
        assert getattr(importlib.import_module(module_name), name) is fn


def test_dense_city_has_building_level_demand(tmp_path: Path) -> None:
    from coverage.demand import demand_units
    from coverage.netcache import walk_network
    from coverage.osm import read_osm

    stats = generate_city(tmp_path / "dense.osm.pbf", nodes=TARGET_NODES, seed=7, dense=True)
    ext = read_osm(stats.path)
    net = walk_network(stats.path, cache_dir=None, extract=ext)
    units = demand_units(ext, net)
    # issue 16 asks ≥ 2.5 units per node, as building-level data gives: the 100k and 300k
    # cities have ~2.8 (docs/bench/e2e.md); a 3k-node city has more edge, fewer compounds
    assert len(units) >= 1.8 * net.n_nodes
    plain = generate_city(tmp_path / "plain.osm.pbf", nodes=TARGET_NODES, seed=7)
    assert stats.buildings > 5 * plain.buildings
    assert (units["kind"] == "building").sum() == stats.buildings


@pytest.mark.slow
def test_e2e_smoke(tmp_path: Path) -> None:
    """The end-to-end benchmark runs (tiny city, audit only); it asserts no timings."""
    out, raw = tmp_path / "e2e.md", tmp_path / "e2e.json"
    proc = subprocess.run(
        [
            *(sys.executable, str(BENCH / "bench_e2e.py"), "--smoke", "--out", str(out)),
            *("--workdir", str(tmp_path / "work"), "--json", str(raw)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "## Machine" in text
    assert "| nodes | command | run | wall | CPU | peak RSS |" in text
    data = json.loads(raw.read_text(encoding="utf-8"))
    runs = data["sizes"][0]["runs"]
    assert [(r["command"], r["phase"]) for r in runs] == [("audit", "cold"), ("audit", "warm")]
    assert all(r["exit_code"] == 0 and r["peak_rss_mb"] > 0 and r["cpu_s"] > 0 for r in runs)
    stages = data["sizes"][0]["stages"]["stages"]
    assert "audit with polygons" in stages
    assert data["sizes"][0]["tutorial"]["graph_nodes"] > 0


def test_benchmarks_md_is_what_assemble_writes() -> None:
    """docs/BENCHMARKS.md holds no hand-typed section: assemble.py reproduces it exactly."""
    import assemble

    assert assemble.assemble() == (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    scripts = {p.stem.removeprefix("bench_") for p in BENCH.glob("bench_*.py")}
    sections = {p.stem for p in (ROOT / "docs" / "bench").glob("*.md")}
    # every benchmark script writes its section (bench_scale writes scale.md, run.py suite.md)
    assert scripts <= sections, scripts - sections


def test_compare_outputs_finds_changed_data_only(tmp_path: Path) -> None:
    from compare_outputs import differences

    before, after = tmp_path / "before", tmp_path / "after"
    for folder, run_id in ((before, "a"), (after, "b")):
        folder.mkdir()
        (folder / "demand.geojson").write_text('{"type":"FeatureCollection","features":[]}')
        (folder / "summary.json").write_text(json.dumps({"run_id": run_id, "units": 3}))
        (folder / "map.png").write_bytes(run_id.encode())  # documents carry dates: not compared
    assert differences(before, after) == []
    (after / "demand.geojson").write_text('{"type":"FeatureCollection","features":[ ]}')
    (after / "summary.json").write_text(json.dumps({"run_id": "b", "units": 4}))
    (after / "extra.csv").write_text("x\n")
    assert differences(before, after) == [
        "demand.geojson: bytes differ",
        "extra.csv: only in after",
        "summary.json: differs beyond timings and run ids",
    ]
