"""Tests for coverage.osmcache and the cached city load: warm loads equal cold ones exactly."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CHENGDU

from coverage import pipeline
from coverage.audit import AuditParams
from coverage.inputs import CityData, CityInputs, load_city
from coverage.osmcache import derived_key, load_frame, save_frame
from coverage.scenario import Scenario


def assert_same_frame(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert a.geometry.name == b.geometry.name
    assert a.crs == b.crs
    assert a.index.equals(b.index)
    for c in a.columns:
        if c == a.geometry.name:
            continue
        assert a[c].dtype == b[c].dtype, c
        assert a[c].tolist() == b[c].tolist(), c
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()


def test_frame_round_trip(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {
            "demand_id": ["b1-0", "l2-0", "l2-1"],
            "population": [1.0 / 3.0, 0.0, 1e-300],
            "name": ["幸福小区", None, 'a"b'],
            "snap_edge": np.array([3, 0, 7], dtype=np.int64),
            "covered": [True, False, True],
        },
        geometry=[
            shapely.box(0, 0, 1.1, 1.3),
            shapely.Polygon([(0, 0), (3, 0), (0, 3)], [[(0.5, 0.5), (1, 0.5), (0.5, 1)]]),
            shapely.Point(0.1, 0.2),
        ],
        crs="EPSG:32648",
    )
    path = tmp_path / "f.npz"
    assert save_frame(gdf, path)
    back = load_frame(path)
    assert back is not None
    assert_same_frame(back, gdf)


def test_unstorable_frame_is_not_cached(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"x": [{"a": 1}]}, geometry=[shapely.Point(0, 0)], crs="EPSG:4326")
    assert not save_frame(gdf, tmp_path / "f.npz")
    assert not (tmp_path / "f.npz").exists()
    shifted = gpd.GeoDataFrame({"x": ["a"]}, geometry=[shapely.Point(0, 0)], index=[5])
    assert not save_frame(shifted.set_crs(4326), tmp_path / "g.npz")


def test_corrupt_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gdf = gpd.GeoDataFrame({"x": [1.5]}, geometry=[shapely.Point(0, 0)], crs="EPSG:4326")
    path = tmp_path / "f.npz"
    save_frame(gdf, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="coverage.osmcache"):
        assert load_frame(path) is None
    assert load_frame(tmp_path / "missing.npz") is None


def test_key_depends_on_everything() -> None:
    base = derived_key("a" * 64, "demand", {"cell_size_m": 100.0})
    assert base == derived_key("a" * 64, "demand", {"cell_size_m": 100.0})
    assert base != derived_key("b" * 64, "demand", {"cell_size_m": 100.0})
    assert base != derived_key("a" * 64, "centers", {"cell_size_m": 100.0})
    assert base != derived_key("a" * 64, "demand", {"cell_size_m": 50.0})


def _count_hashes(mp: pytest.MonkeyPatch) -> list[str]:
    """Every SHA-256 of a file the city load computes (each module's own reference)."""
    from coverage import inputs as inputs_module
    from coverage import netcache, osm

    calls: list[str] = []
    real = osm.file_sha256

    def counted(path: Path | str, **kwargs: int) -> str:
        calls.append(str(path))
        return real(path, **kwargs)

    for module in (osm, netcache, inputs_module):
        mp.setattr(module, "file_sha256", counted)
    return calls


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> tuple[CityData, Path, list[str]]:
    """The embedded city loaded on an empty cache (a miss): the city, the cache, the hashes."""
    cache = tmp_path_factory.mktemp("osmcache") / "cache"
    with pytest.MonkeyPatch.context() as mp:
        hashes = _count_hashes(mp)
        city = load_city(CityInputs(osm=CHENGDU, cache_dir=cache, osm_centers=True))
    return city, cache, hashes


def test_cache_miss_hashes_the_file_once(cold: tuple[CityData, Path, list[str]]) -> None:
    city, _, hashes = cold
    assert len(hashes) == 1, hashes
    assert city.source_sha256 == hashlib.sha256(CHENGDU.read_bytes()).hexdigest()


def test_warm_city_equals_cold(
    cold: tuple[CityData, Path, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    cold_city, cache, _ = cold
    inputs = CityInputs(osm=CHENGDU, cache_dir=cache, osm_centers=True)
    assert cold_city.extract is not None
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.npz")) == [
        "centers",
        "demand",
        "places",
        "walk",
    ]
    with caplog.at_level(logging.INFO, logger="coverage.inputs"):
        warm = load_city(inputs)
    assert "from the cache" in caplog.text
    assert warm.extract is None  # the OSM file was not read again
    assert warm.source_sha256 == cold_city.source_sha256
    assert warm.source_name == cold_city.source_name
    assert warm.population_model == cold_city.population_model
    assert_same_frame(warm.centers, cold_city.centers)
    assert_same_frame(warm.demand, cold_city.demand)
    # the offline map's place labels survive the warm load (no OSM read to derive them from)
    assert cold_city.places is not None
    assert warm.places is not None
    assert len(cold_city.places) > 10
    assert_same_frame(warm.places, cold_city.places)
    a = pipeline.run(cold_city, Scenario(), with_polygons=False).audit
    b = pipeline.run(warm, Scenario(), with_polygons=False).audit
    pd.testing.assert_frame_equal(pd.DataFrame(a.demand), pd.DataFrame(b.demand))
    assert a.coverage == b.coverage


def test_place_labels_are_the_largest_named_areas(tmp_path: Path) -> None:
    """Independent of place_frame: the names of the largest named residential areas and
    boundaries, a point inside each."""
    from coverage.osm import MAX_PLACES, read_osm

    city = load_city(CityInputs(osm=CHENGDU, cache_dir=tmp_path / "cache", osm_centers=True))
    ex = read_osm(CHENGDU)
    named = pd.concat([ex.residential[["name", "geometry"]], ex.boundaries[["name", "geometry"]]])
    named = gpd.GeoDataFrame(named, crs=4326)
    named = named[named["name"].notna() & (named["name"].astype(str).str.strip() != "")]
    named = named.drop_duplicates("name")
    area = named.to_crs(city.net.crs).area
    expected = set(named.loc[area.sort_values(ascending=False).index[:MAX_PLACES], "name"])
    assert city.places is not None
    assert set(city.places["name"]) == expected
    for name, point in zip(city.places["name"], city.places.geometry, strict=True):
        assert named.loc[named["name"] == name].geometry.iloc[0].buffer(1e-9).contains(point)
    # a cache from before the labels were cached is read once more, then warm with labels
    for p in (tmp_path / "cache").glob("places-*.npz"):
        p.unlink()
    again = load_city(CityInputs(osm=CHENGDU, cache_dir=tmp_path / "cache", osm_centers=True))
    assert again.extract is not None
    warm = load_city(CityInputs(osm=CHENGDU, cache_dir=tmp_path / "cache", osm_centers=True))
    assert warm.extract is None
    assert warm.places is not None
    assert set(warm.places["name"]) == expected


def test_no_cache_dir_reads_the_file(
    cold: tuple[CityData, Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a cache the file is read and hashed once, nothing is written, same city."""
    from coverage import inputs as inputs_module
    from coverage import netcache

    def no_write(*args: object, **kwargs: object) -> bool:
        raise AssertionError("a load without a cache wrote a cache file")

    monkeypatch.setattr(netcache, "save_network", no_write)
    monkeypatch.setattr(inputs_module, "save_frame", no_write)
    monkeypatch.chdir(tmp_path)
    hashes = _count_hashes(monkeypatch)
    city = load_city(CityInputs(osm=CHENGDU, cache_dir=None, osm_centers=True))
    assert city.extract is not None
    assert city.extract.path == CHENGDU.resolve()
    assert len(hashes) == 1, hashes
    assert city.source_sha256 == hashlib.sha256(CHENGDU.read_bytes()).hexdigest()
    assert city.cache_dir is None
    assert not any(tmp_path.iterdir())
    cold_city = cold[0]
    assert (city.net.n_nodes, city.net.n_edges) == (cold_city.net.n_nodes, cold_city.net.n_edges)
    np.testing.assert_array_equal(city.net.edge_length_m, cold_city.net.edge_length_m)
    assert_same_frame(city.centers, cold_city.centers)
    assert_same_frame(city.demand, cold_city.demand)


def test_cached_polygons_equal_built(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    city = load_city(CityInputs(osm=CHENGDU, cache_dir=tmp_path / "cache", osm_centers=True))
    built = pipeline.run(city, Scenario(), cache_polygons=True).audit
    assert list((tmp_path / "cache").glob("areas-*.npz"))
    with caplog.at_level(logging.INFO, logger="coverage.audit"):
        again = pipeline.run(city, Scenario(), cache_polygons=True).audit
    assert "from the cache" in caplog.text
    assert_same_frame(again.service_areas, built.service_areas)
    assert_same_frame(again.bands, built.bands)
    # other centers, other parameters: built afresh, not taken from the cache
    closed = Scenario(closed=(str(city.centers["center_id"].iloc[0]),))
    faster = Scenario(audit=AuditParams(speed_kmh=5.0))
    for scenario in (closed, faster):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="coverage.audit"):
            pipeline.run(city, scenario, cache_polygons=True)
        assert "from the cache" not in caplog.text
    plain = pipeline.run(city, Scenario()).audit  # the library default: no cache
    assert_same_frame(plain.service_areas, built.service_areas)


def test_embedded_stations_are_never_cached_as_osm_centers(tmp_path: Path) -> None:
    """The 91 embedded offices come from their list on warm runs too; OSM centers stay OSM's."""
    from dataclasses import replace

    from coverage.errors import PlannerWarning

    inputs = CityInputs(osm=CHENGDU, cache_dir=tmp_path / "cache")
    with pytest.warns(PlannerWarning, match="300 m"):  # one office stands back from the street
        cold = load_city(inputs)
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.npz"))
    assert cached == ["demand", "places", "walk"]
    with pytest.warns(PlannerWarning, match="300 m"):
        warm = load_city(inputs)
    assert warm.extract is None
    assert len(warm.centers) == len(cold.centers) == 91
    assert warm.centers["center_id"].tolist() == cold.centers["center_id"].tolist()
    assert warm.centers["level"].tolist() == cold.centers["level"].tolist()
    osm = load_city(replace(inputs, osm_centers=True))
    assert set(osm.centers["source"]) == {"osm"}
    assert len(osm.centers) != 91
    again = load_city(replace(inputs, osm_centers=True))
    assert again.extract is None
    assert again.centers["center_id"].tolist() == osm.centers["center_id"].tolist()


def test_cached_uncovered_areas_equal_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Uncovered areas are read back only for the same units and the same coverage, exactly."""
    city = load_city(CityInputs(osm=CHENGDU, cache_dir=tmp_path / "cache", osm_centers=True))
    both = Scenario(audit=AuditParams(thresholds_m=(300.0, 500.0)))
    built = pipeline.run(city, both, cache_polygons=True, with_polygons=False).audit
    files = sorted((tmp_path / "cache").glob("uncovered*.npz"))
    assert [p.name.split("-")[0] for p in files] == ["uncovered", "uncovered_m"]
    assert len(built.uncovered)
    assert len(built.distance_uncovered)
    with caplog.at_level(logging.INFO, logger="coverage.audit"):
        again = pipeline.run(city, both, cache_polygons=True, with_polygons=False).audit
    assert "loaded uncovered areas from the cache" in caplog.text
    assert_same_frame(again.uncovered, built.uncovered)
    assert_same_frame(again.distance_uncovered, built.distance_uncovered)
    # the library default (no cache) builds the same frames
    plain = pipeline.run(city, both, with_polygons=False).audit
    assert_same_frame(plain.uncovered, built.uncovered)
    assert_same_frame(plain.distance_uncovered, built.distance_uncovered)
    # another coverage (a station closed) is built afresh and equals the uncached build
    closed = Scenario(audit=both.audit, closed=(str(city.centers["center_id"].iloc[0]),))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="coverage.audit"):
        other = pipeline.run(city, closed, cache_polygons=True, with_polygons=False).audit
    assert "loaded uncovered areas" not in caplog.text
    assert_same_frame(
        other.uncovered, pipeline.run(city, closed, with_polygons=False).audit.uncovered
    )
    # a damaged cache file is ignored and written again
    for f in files:
        f.write_bytes(f.read_bytes()[:100])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="coverage.audit"):
        fixed = pipeline.run(city, both, cache_polygons=True, with_polygons=False).audit
    assert "loaded uncovered areas" not in caplog.text
    assert_same_frame(fixed.uncovered, built.uncovered)
    assert all(f.stat().st_size > 100 for f in files)
