"""Tests for coverage.outcache and the cached output pieces: a hit gives the uncached bytes.

The cache is content-addressed: every test that changes an input (a value, a dtype, a
geometry, the CRS, the title) checks that the piece is built again and equals what the
writer without a cache makes of the changed input.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import HAIDIAN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon

from coverage import export, figure, osmcache, outcache, pipeline
from coverage.inputs import CityData, CityInputs, load_city
from coverage.scenario import Scenario, ScenarioResult

UTM50 = "EPSG:32650"
X0, Y0 = 442_000.0, 4_427_000.0


def _pieces(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{outcache.PIECE_PREFIX}*.bin"))


def _frame(values: list[float], names: list[Any], dx: float = 0.0) -> gpd.GeoDataFrame:
    n = len(values)
    geoms = [shapely.box(X0 + 10 * i + dx, Y0, X0 + 10 * i + 7.3, Y0 + 5.1) for i in range(n)]
    return gpd.GeoDataFrame(
        {"value": np.asarray(values, dtype=np.float64), "name": names}, geometry=geoms, crs=UTM50
    )


def _layer(folder: Path | None, gdf: gpd.GeoDataFrame) -> bytes:
    store = outcache.PieceStore(folder)
    return export._layer_file(store, "x.geojson", gdf, ["value", "name"], what="x")


# --- the piece files ------------------------------------------------------------------------


def test_piece_round_trip_and_absent(tmp_path: Path) -> None:
    assert outcache.read_piece(tmp_path, "a", "k") is None
    assert outcache.write_piece(tmp_path, "a", "k", b"payload \x00\xff")
    assert outcache.read_piece(tmp_path, "a", "k") == b"payload \x00\xff"
    assert outcache.read_piece(tmp_path, "a", "other") is None
    assert outcache.read_piece(tmp_path, "b", "k") is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "empty", "extend"])
def test_a_damaged_piece_is_ignored_and_rewritten(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    outcache.write_piece(tmp_path, "a", "k", b"0123456789" * 100)
    (path,) = _pieces(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[:-7]
    elif damage == "flip":
        raw[-3] ^= 0x01
    elif damage == "magic":
        raw[0:8] = b"NOTAPIEC"
    elif damage == "empty":
        raw = bytearray()
    else:
        raw += b"more"
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="coverage.outcache"):
        assert outcache.read_piece(tmp_path, "a", "k") is None
    assert "truncated or corrupt" in caplog.text
    outcache.write_piece(tmp_path, "a", "k", b"fresh")
    assert outcache.read_piece(tmp_path, "a", "k") == b"fresh"


def test_budget_removes_the_least_recently_used(tmp_path: Path) -> None:
    header = 48
    budget = 3 * (100 + header)
    for i, name in enumerate("abc"):
        outcache.write_piece(tmp_path, name, "k", bytes(100), max_bytes=budget)
        path = outcache.piece_path(tmp_path, name, "k")
        t = 1_000_000_000 + i
        os.utime(path, (t, t))
    assert outcache.read_piece(tmp_path, "a", "k") is not None  # used: now the newest
    outcache.write_piece(tmp_path, "d", "k", bytes(100), max_bytes=budget)
    left = {p.name.split("-")[1] for p in _pieces(tmp_path)}
    assert left == {"a", "c", "d"}  # b was the least recently used
    assert not outcache.write_piece(tmp_path, "huge", "k", bytes(budget), max_bytes=budget)
    assert outcache.read_piece(tmp_path, "huge", "k") is None


def test_an_unwritable_folder_only_costs_the_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert not outcache.write_piece(blocker, "a", "k", b"x")
    gdf = _frame([1.0, 2.0], ["a", "b"])
    assert _layer(blocker, gdf) == export.geojson_bytes(gdf, ["value", "name"], what="x")


# --- keys: content, not provenance ------------------------------------------------------------


def test_column_digest_tells_values_and_types_apart() -> None:
    cases = [
        pd.Series(["1", "2"], dtype=object),
        pd.Series([1, 2], dtype=object),
        pd.Series([1.0, 2.0], dtype=object),
        pd.Series([1, 2], dtype=np.int64),
        pd.Series([1.0, 2.0]),
        pd.Series([None, "2"], dtype=object),
        pd.Series([np.nan, "2"], dtype=object),
        pd.Series([True, False], dtype=object),
        pd.Series([True, False]),
        pd.Series([-0.0, 2.0]),
        pd.Series(["1", "2 "], dtype=object),
    ]
    digests = [outcache.column_digest(s) for s in cases]
    assert None not in digests
    assert len(set(digests)) == len(cases)
    assert outcache.column_digest(pd.Series(["1", "2"], dtype=object)) == digests[0]


def test_columns_json_cannot_write_exactly_are_not_keyed() -> None:
    assert outcache.column_digest(pd.Series([1, None], dtype="Int64")) is None
    assert outcache.column_digest(pd.Series([pd.Timestamp("2024-01-01")], dtype=object)) is None


def test_geometry_digest_tells_shapes_apart() -> None:
    sq = shapely.box(0, 0, 1, 1)
    cases = [
        [sq, None],
        [sq, Polygon()],
        [None, sq],
        [sq, sq],
        [shapely.box(0, 0, 1, 1 + 1e-12), None],
        [shapely.box(0, 0, 1, 1, ccw=False), None],
        [Point(0, 0), None],
        [Point(0, 0, 0), None],
        [sq],
    ]
    digests = [outcache.geometry_digest(np.asarray(c, dtype=object)) for c in cases]
    assert len(set(digests)) == len(cases)
    again = outcache.geometry_digest(np.asarray([shapely.box(0, 0, 1, 1), None], dtype=object))
    assert again == digests[0]


# --- a hit gives the uncached writer's bytes ------------------------------------------------------


def test_layer_miss_then_hit_equal_the_uncached_writer(tmp_path: Path) -> None:
    gdf = _frame([1.5, np.nan, 3.0], ["中文", None, 'a"b'])
    plain = export.geojson_bytes(gdf, ["value", "name"], what="x")
    assert _layer(tmp_path, gdf) == plain  # miss: built and kept
    assert len(_pieces(tmp_path)) == 1
    assert _layer(tmp_path, gdf) == plain  # hit
    assert _layer(None, gdf) == plain  # no cache folder
    assert len(_pieces(tmp_path)) == 1


@pytest.mark.parametrize(
    "change",
    ["value", "name", "type", "geometry", "tiny geometry", "crs", "row order", "column order"],
)
def test_a_changed_layer_never_meets_its_old_piece(tmp_path: Path, change: str) -> None:
    gdf = _frame([1.5, 2.0, 3.0], ["a", "b", "c"])
    _layer(tmp_path, gdf)
    changed = gdf.copy()
    columns = ["value", "name"]
    if change == "value":
        changed.loc[1, "value"] = 2.0000000000000004
    elif change == "name":
        changed.loc[2, "name"] = "c "
    elif change == "type":
        changed["name"] = pd.Series([1, "b", "c"], dtype=object)
    elif change == "geometry":
        changed = _frame([1.5, 2.0, 3.0], ["a", "b", "c"], dx=0.5)
    elif change == "tiny geometry":  # below the written precision: same bytes, still a new key
        changed = _frame([1.5, 2.0, 3.0], ["a", "b", "c"], dx=1e-9)
    elif change == "crs":
        changed = changed.set_crs("EPSG:32651", allow_override=True)
    elif change == "row order":
        changed = changed.iloc[[1, 0, 2]].reset_index(drop=True)
    else:
        columns = ["name", "value"]
    store = outcache.PieceStore(tmp_path)
    got = export._layer_file(store, "x.geojson", changed, columns, what="x")
    assert got == export.geojson_bytes(changed, columns, what="x")
    if change != "tiny geometry":
        assert got != export.geojson_bytes(gdf, ["value", "name"], what="x")
    assert len(_pieces(tmp_path)) == 2


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)),
        min_size=1,
        max_size=6,
    ),
    names=st.lists(
        st.one_of(st.none(), st.text(max_size=4), st.integers(0, 3)), min_size=6, max_size=6
    ),
    crs=st.sampled_from([UTM50, "EPSG:4326", "EPSG:3857"]),
)
def test_cached_layers_equal_uncached_property(
    tmp_path_factory: pytest.TempPathFactory, values: list[float], names: list[Any], crs: str
) -> None:
    folder = tmp_path_factory.mktemp("pieces")
    n = len(values)
    scale = 1e-4 if crs == "EPSG:4326" else 1.0
    x0, y0 = (116.3, 39.9) if crs == "EPSG:4326" else (X0, Y0)
    geoms = [
        shapely.box(x0 + i * scale, y0, x0 + (i + 0.77) * scale, y0 + 0.51 * scale)
        for i in range(n)
    ]
    gdf = gpd.GeoDataFrame(
        {"value": np.asarray(values, dtype=np.float64), "name": pd.Series(names[:n], dtype=object)},
        geometry=geoms,
        crs=crs,
    )
    plain = export.geojson_bytes(gdf, ["value", "name"], what="x")
    assert _layer(folder, gdf) == plain
    assert _layer(folder, gdf) == plain


# --- the whole output ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def haidian(cache_dir: Path) -> tuple[CityData, ScenarioResult, ScenarioResult]:
    city = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    base = pipeline.run(city, Scenario(name="现状"))
    first = str(city.centers["center_id"].iloc[0])
    closed = pipeline.run(city, Scenario(name="现状", closed=(first,)))
    return city, base, closed


DATA_FILES = (
    export.CENTERS_GEOJSON,
    export.SERVICE_AREAS_GEOJSON,
    export.DEMAND_GEOJSON,
    export.UNCOVERED_GEOJSON,
    export.MAP_PNG,
    export.MAP_PDF,
)


def _outputs(
    city: CityData, res: ScenarioResult, folder: Path | None, **kw: Any
) -> dict[str, bytes]:
    documents = export.Documents(workbook=False, cache_dir=folder)
    return export.output_files(res, city, report=False, documents=documents, **kw)


@pytest.mark.figure
def test_output_files_hit_and_miss_equal_uncached(
    haidian: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # map.pdf's date: reproducible
    city, base, closed = haidian
    plain = _outputs(city, base, None)
    miss = _outputs(city, base, tmp_path)
    assert len(_pieces(tmp_path)) == len(DATA_FILES)
    hit = _outputs(city, base, tmp_path)
    assert len(_pieces(tmp_path)) == len(DATA_FILES)
    for name in plain:
        assert miss[name] == plain[name], name
        assert hit[name] == plain[name], name
    # one station closed: the layers that changed are built again and match the writer
    changed_plain = _outputs(city, closed, None)
    changed = _outputs(city, closed, tmp_path)
    for name in DATA_FILES:
        assert changed[name] == changed_plain[name], name
    assert changed[export.DEMAND_GEOJSON] != plain[export.DEMAND_GEOJSON]
    # a new title draws a new figure
    titled = _outputs(city, base, tmp_path, title="另一个标题")
    assert titled[export.MAP_PNG] != plain[export.MAP_PNG]
    assert titled[export.MAP_PNG] == _outputs(city, base, None, title="另一个标题")[export.MAP_PNG]


@pytest.mark.figure
def test_a_corrupt_figure_piece_is_drawn_again(
    haidian: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    city, base, _ = haidian
    plain = _outputs(city, base, tmp_path)
    for path in _pieces(tmp_path):
        if path.name.startswith(f"{outcache.PIECE_PREFIX}{export.MAP_PNG}"):
            path.write_bytes(path.read_bytes()[:-10])
    again = _outputs(city, base, tmp_path)
    assert again[export.MAP_PNG] == plain[export.MAP_PNG]
    assert again[export.MAP_PDF] == plain[export.MAP_PDF]
    assert len(_pieces(tmp_path)) == len(DATA_FILES)


@pytest.mark.figure
def test_pipeline_write_keeps_pieces_in_the_city_cache(haidian: Any, tmp_path: Path) -> None:
    city, base, _ = haidian
    folder = tmp_path / "cache"
    mine = replace(city, cache_dir=folder)
    first = pipeline.write(base, mine, tmp_path / "out1", report=False)
    assert len(_pieces(folder)) == len(DATA_FILES)
    second = pipeline.write(base, mine, tmp_path / "out2", report=False)
    for name in DATA_FILES[:4]:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert not (second / export.REPORT_HTML).exists()
    none = pipeline.write(base, replace(city, cache_dir=None), tmp_path / "out3", report=False)
    assert (none / export.DEMAND_GEOJSON).read_bytes() == (
        first / export.DEMAND_GEOJSON
    ).read_bytes()


@pytest.mark.figure
def test_figure_key_follows_what_is_drawn(haidian: Any) -> None:
    city, base, closed = haidian
    layers = figure.figure_layers(base, city)
    spec = figure.FigureSpec()
    day = dt.date(2026, 1, 2)

    def key(lay: figure.FigureLayers = layers, **kw: Any) -> str | None:
        args: dict[str, Any] = {"title": "t", "lang": "zh", "spec": spec, "date": day, **kw}
        return figure.figure_key(lay, digests=outcache.FrameDigests(), **args)

    k = key()
    assert k is not None
    assert key() == k
    others = [
        key(title="u"),
        key(lang="en"),
        key(date=dt.date(2026, 1, 3)),
        key(spec=replace(spec, dpi=100)),
        key(figure.figure_layers(closed, city)),
        key(replace(layers, speed_kmh=4.0)),
        key(replace(layers, scenario="B")),
        key(replace(layers, stations_source="file")),
    ]
    assert k not in others
    assert len(set(others)) == len(others)


def test_pdf_creation_date_is_refreshed_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = (
        b"%PDF-1.4\n1 0 obj << /CreationDate (D:20200101000000Z) /Creator (x) >>\nxref 123\n%%EOF\n"
    )
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    fresh = figure.pdf_with_creation_date(pdf)
    assert fresh == pdf.replace(b"D:20200101000000Z", b"D:20231114221320Z")
    assert figure.pdf_with_creation_date(b"%PDF-1.4 no date") is None
    assert figure.pdf_with_creation_date(pdf.replace(b"000Z)", b"000+01'00')")) is None
    twice = pdf.replace(b"xref", b"/CreationDate (D:20200101000000Z) xref")
    assert figure.pdf_with_creation_date(twice) is None


@pytest.mark.figure
def test_refreshed_pdf_equals_a_fresh_drawing(
    haidian: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    city, base, _ = haidian
    layers = figure.figure_layers(base, city)
    fig = figure.map_figure(layers, title="t", date=dt.date(2026, 1, 2))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    old = figure.map_pdf_bytes(fig)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert figure.pdf_with_creation_date(old) == figure.map_pdf_bytes(fig)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    local = figure.pdf_with_creation_date(old)
    now = figure.map_pdf_bytes(fig)
    assert local is not None
    assert len(local) == len(now)
    differ = [i for i, (a, b) in enumerate(zip(local, now, strict=True)) if a != b]
    at = now.rfind(b"/CreationDate (") + len(b"/CreationDate (")
    assert all(at <= i < at + 17 for i in differ)  # at most the seconds of the date


def _folium_ids_masked(page: bytes) -> bytes:
    """``report.html`` without the random element ids folium gives each map object."""
    return re.sub(rb"[0-9a-f]{32}", b"ID", page)


@pytest.mark.figure
def test_report_hit_equals_a_fresh_report(haidian: Any, tmp_path: Path) -> None:
    city, base, closed = haidian
    documents = export.Documents(workbook=False, figure=None, cache_dir=tmp_path)
    plain = export.output_files(base, city, documents=replace(documents, cache_dir=None))
    miss = export.output_files(base, city, documents=documents)
    hit = export.output_files(base, city, documents=documents)
    page = _folium_ids_masked(plain[export.REPORT_HTML])
    assert _folium_ids_masked(miss[export.REPORT_HTML]) == page
    assert _folium_ids_masked(hit[export.REPORT_HTML]) == page
    assert hit[export.REPORT_HTML] == miss[export.REPORT_HTML]  # the kept page itself
    for changed, kw in ((closed, {}), (base, {"lang": "en"}), (base, {"title": "别的"})):
        fresh = export.output_files(
            changed, city, documents=replace(documents, cache_dir=None), **kw
        )
        got = export.output_files(changed, city, documents=documents, **kw)
        assert _folium_ids_masked(got[export.REPORT_HTML]) == _folium_ids_masked(
            fresh[export.REPORT_HTML]
        )
        assert _folium_ids_masked(got[export.REPORT_HTML]) != page


def test_frame_digests_remember_per_frame_never_across() -> None:
    digests = outcache.FrameDigests()
    a = _frame([1.0, 2.0], ["a", "b"])
    same = _frame([1.0, 2.0], ["a", "b"])
    other = _frame([1.0, 2.0], ["a", "B"])
    first = digests.frame(a, ["value", "name"])
    assert first is not None
    assert digests.frame(a, ["value", "name"]) == first
    assert digests.frame(same, ["value", "name"]) == first
    assert outcache.FrameDigests().frame(a, ["value", "name"]) == first
    assert digests.frame(other, ["value", "name"]) != first
    assert digests.frame(a, ["value"]) != first
    assert digests.frame(a.set_crs("EPSG:32651", allow_override=True), ["value", "name"]) != first


def _fresh_digest(geoms: Any) -> bytes:
    """The digest computed from the WKB (new geometry objects, so nothing remembered applies)."""
    arr = np.asarray(geoms, dtype=object)
    copies = shapely.from_wkb(shapely.to_wkb(arr, output_dimension=3))
    return outcache.geometry_digest(copies)


def _mixed_frame() -> gpd.GeoDataFrame:
    square = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
    holed = Polygon([(0, 0), (30, 0), (30, 30), (0, 30)], [[(5, 5), (9, 5), (9, 9), (5, 9)]])
    geoms = [
        square,
        shapely.MultiPolygon([square, shapely.affinity.translate(square, 20, 0)]),
        holed,
        shapely.LineString([(0, 0, 1), (5, 5, 2)]),  # with Z
        Polygon(),  # empty
        Point(X0 + 0.123456789, Y0),
    ]
    return gpd.GeoDataFrame({"name": list("abcdef")}, geometry=geoms, crs=UTM50)


def test_a_frame_read_from_the_cache_keeps_the_digest_of_its_wkb(tmp_path: Path) -> None:
    path = tmp_path / "frame.npz"
    assert osmcache.save_frame(_mixed_frame(), path)
    loaded = osmcache.load_frame(path)
    assert loaded is not None
    remembered = outcache.geometry_digest(loaded.geometry.values)
    assert remembered == _fresh_digest(loaded.geometry.values)
    # the same objects in a copy of the frame, or in a plain object array, get it too
    assert outcache.geometry_digest(loaded.copy().geometry.values) == remembered
    assert outcache.geometry_digest(np.asarray(loaded.geometry.values, dtype=object)) == remembered


def test_a_remembered_digest_never_reaches_other_shapes(tmp_path: Path) -> None:
    path = tmp_path / "frame.npz"
    osmcache.save_frame(_mixed_frame(), path)
    loaded = osmcache.load_frame(path)
    assert loaded is not None
    remembered = outcache.geometry_digest(loaded.geometry.values)
    changed = loaded.copy()
    changed.loc[0, "geometry"] = Polygon([(0, 0), (11, 0), (11, 10), (0, 10)])
    assert outcache.geometry_digest(changed.geometry.values) == _fresh_digest(changed.geometry)
    assert outcache.geometry_digest(changed.geometry.values) != remembered
    # a subset or another order is other content
    sub = loaded.geometry.values[1:]
    assert outcache.geometry_digest(sub) == _fresh_digest(sub)
    rev = loaded.geometry.values[::-1]
    assert outcache.geometry_digest(rev) == _fresh_digest(rev) != remembered
    # a wrong digest would show here: what is remembered is what the WKB gives
    assert remembered == outcache.geometry_digest(_mixed_frame().geometry.values)


def test_remembered_digests_are_released_with_their_frame(tmp_path: Path) -> None:
    path = tmp_path / "frame.npz"
    osmcache.save_frame(_mixed_frame(), path)
    before = len(outcache._DIGESTS._entries)
    loaded = osmcache.load_frame(path)
    assert len(outcache._DIGESTS._entries) == before + 1
    del loaded
    gc.collect()
    assert len(outcache._DIGESTS._entries) == before
