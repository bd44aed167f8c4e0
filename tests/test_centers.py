"""Existing centers: contract, sources, levels, dedupe, extent and snapping checks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest

from coverage.centers import (
    COLUMNS,
    CenterColumns,
    SnapRules,
    add_centers,
    centers_from_file,
    centers_from_osm,
    close_centers,
    empty_centers,
    level_from_name,
    normalise_levels,
)
from coverage.coords import wgs84_to_bd09
from coverage.errors import InputError

DATA = Path(__file__).resolve().parent / "data" / "userfiles"


def _check_contract(gdf, net, source=None):  # type: ignore[no-untyped-def]
    assert tuple(gdf.columns) == COLUMNS
    assert isinstance(gdf.index, pd.RangeIndex)
    assert pyproj.CRS(gdf.crs).equals(pyproj.CRS(net.crs))
    assert gdf["center_id"].is_unique
    assert (gdf["snap_distance_m"] >= 0).all()
    assert (gdf.geom_type == "Point").all()
    assert gdf["snap_edge"].between(0, net.n_edges - 1).all()
    if source:
        assert (gdf["source"] == source).all()


def test_centers_from_osm_chengdu(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    centers = centers_from_osm(chengdu_extract, chengdu_net)
    _check_contract(centers, chengdu_net, "osm")
    assert len(centers) == len(chengdu_extract.center_features)
    assert centers["center_id"].str.startswith("osm-").all()
    by_name = dict(zip(centers["name"], centers["level"], strict=True))
    assert by_name["成华区政府"] == "district"


def test_centers_from_osm_haidian_with_rule(haidian_extract, haidian_net):  # type: ignore[no-untyped-def]
    centers = centers_from_osm(haidian_extract, haidian_net, level_rule=lambda n, t: "grid")
    _check_contract(centers, haidian_net, "osm")
    assert (centers["level"] == "grid").all()
    with pytest.raises(InputError, match="unknown levels"):
        centers_from_osm(haidian_extract, haidian_net, level_rule=lambda n, t: "city")


@pytest.mark.parametrize(
    "name", ["centers_utf8.csv", "centers_utf8_bom.csv", "centers_gbk.csv", "centers.geojson"]
)
def test_centers_from_file(name, chengdu_net):  # type: ignore[no-untyped-def]
    centers = centers_from_file(DATA / name, chengdu_net)
    _check_contract(centers, chengdu_net, "file")
    assert list(centers["level"]) == ["district", "street", "community"]
    assert centers["name"].iloc[2] == "抚琴社区党群服务中心"


def test_centers_from_file_ids_and_bytes(chengdu_net):  # type: ignore[no-untyped-def]
    raw = (DATA / "centers_utf8.csv").read_bytes()
    centers = centers_from_file(raw, chengdu_net, filename="c.csv", columns=CenterColumns(id="id"))
    assert list(centers["center_id"]) == ["c1", "c2", "c3"]
    with pytest.raises(InputError, match="no column 'code'"):
        centers_from_file(raw, chengdu_net, filename="c.csv", columns=CenterColumns(id="code"))


def test_gcj02_and_bd09_files_land_on_the_wgs84_positions(tmp_path, chengdu_net):  # type: ignore[no-untyped-def]
    ref = centers_from_file(DATA / "centers_utf8.csv", chengdu_net)
    gcj = centers_from_file(DATA / "centers_gcj02.csv", chengdu_net, crs="gcj02")
    assert np.all(gcj.geometry.distance(ref.geometry) < 0.5)
    x, y = wgs84_to_bd09(
        ref.geometry.to_crs(4326).x.to_numpy(), ref.geometry.to_crs(4326).y.to_numpy()
    )
    p = tmp_path / "bd.csv"
    p.write_text(
        "name,lng,lat\n" + "".join(f"p,{a:.9f},{b:.9f}\n" for a, b in zip(x, y, strict=True)),
        encoding="utf-8",
    )
    bd = centers_from_file(p, chengdu_net, crs="bd09")
    assert np.all(bd.geometry.distance(ref.geometry) < 0.5)


def test_duplicates_within_5_m_are_merged(tmp_path, chengdu_net):  # type: ignore[no-untyped-def]
    p = tmp_path / "dup.csv"
    # The second point is ~2 m east of the first; the third ~100 m away.
    p.write_text(
        "name,lon,lat\na,104.07150,30.67277\nb,104.07152,30.67277\nc,104.0725,30.67277\n",
        encoding="utf-8",
    )
    centers = centers_from_file(p, chengdu_net)
    assert list(centers["name"]) == ["a", "c"]
    assert len(centers_from_file(p, chengdu_net, rules=SnapRules(dedupe_m=0.0))) == 3


def test_outside_extent_is_refused_or_dropped(tmp_path, chengdu_net):  # type: ignore[no-untyped-def]
    p = tmp_path / "far.csv"
    p.write_text("name,lon,lat\nnear,104.0715,30.67277\nbeijing,116.39,39.9\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"1 of 2 .*beijing.*outside"):
        centers_from_file(p, chengdu_net)
    with pytest.warns(UserWarning, match="outside"):
        centers = centers_from_file(p, chengdu_net, rules=SnapRules(outside="drop"))
    assert list(centers["name"]) == ["near"]
    p.write_text("name,lon,lat\nbeijing,116.39,39.9\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="outside"), pytest.raises(InputError, match="None of"):
        centers_from_file(p, chengdu_net, rules=SnapRules(outside="drop"))


def test_far_from_network_warns(tmp_path, chengdu_net):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.csv"
    p.write_text("name,lon,lat\na,104.0715,30.67277\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="more than 10 m"):
        centers_from_file(p, chengdu_net, rules=SnapRules(max_snap_m=10.0))


def test_add_and_close_centers(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    base = centers_from_osm(chengdu_extract, chengdu_net)
    before = base.copy()
    added = add_centers(
        base, chengdu_net, [104.08, 104.09], [30.69, 30.70], names=["新站", None], level="社区"
    )
    pd.testing.assert_frame_equal(base, before)  # input untouched
    _check_contract(added, chengdu_net)
    assert len(added) == len(base) + 2
    new = added.iloc[-2:]
    assert list(new["center_id"]) == ["added-1", "added-2"]
    assert list(new["source"]) == ["added", "added"]
    assert list(new["level"]) == ["community", "community"]
    again = add_centers(added, chengdu_net, 104.1, 30.7)
    assert again["center_id"].iloc[-1] == "added-3"
    # A click on an existing center adds nothing.
    lon, lat = added.geometry.to_crs(4326).iloc[-1].coords[0]
    assert len(add_centers(added, chengdu_net, lon, lat)) == len(added)

    closed = close_centers(added, ["added-1", base["center_id"].iloc[0]])
    assert len(closed) == len(added) - 2
    assert isinstance(closed.index, pd.RangeIndex)
    with pytest.raises(InputError, match="unknown centers: 'nope'"):
        close_centers(added, ["added-1", "nope"])
    assert len(close_centers(added, added["center_id"])) == 0


def test_add_centers_validation(chengdu_net):  # type: ignore[no-untyped-def]
    empty = empty_centers(chengdu_net)
    one = add_centers(empty, chengdu_net, 104.08, 30.69)
    _check_contract(one, chengdu_net, "added")
    assert one["name"].iloc[0] is None
    with pytest.raises(InputError, match="outside the walking network"):
        add_centers(one, chengdu_net, 116.39, 39.9)
    with pytest.raises(InputError, match="look swapped"):
        add_centers(one, chengdu_net, 30.69, 104.08)
    with pytest.raises(InputError, match="finite"):
        add_centers(one, chengdu_net, float("nan"), 30.69)
    with pytest.raises(InputError, match="one name per"):
        add_centers(one, chengdu_net, [104.08, 104.09], [30.69, 30.7], names=["a"])


def test_levels():
    assert level_from_name("金牛区西安路街道抚琴社区党群服务中心") == "community"
    assert level_from_name("西安路街道办事处") == "street"
    assert level_from_name("成华区人民政府") == "district"
    assert level_from_name("锦江小区网格服务站") == "grid"
    assert level_from_name("Housing Registration") is None
    assert level_from_name(None) is None
    assert normalise_levels(["区级", " 街道 ", "社区", "网格", "District", None, ""]) == [
        "district",
        "street",
        "community",
        "grid",
        "district",
        None,
        None,
    ]
    with pytest.warns(UserWarning, match="市级"):
        assert normalise_levels(["市级"]) == [None]


def test_no_warnings_on_clean_input(chengdu_net):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        centers_from_file(DATA / "centers.geojson", chengdu_net)
