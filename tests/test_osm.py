"""Tests for coverage.osm: reading extracts, trimming clipped ways, refusing bad input."""

from __future__ import annotations

import bz2
import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import osmium
import pytest
from conftest import CHENGDU, GRID, HAIDIAN, TEST_DATA

from coverage.errors import InputError, PlannerError, ResourceLimitError
from coverage.osm import (
    KIND,
    LEVELS,
    NAME,
    OSM_ID,
    WALK_EXCLUDED,
    OsmExtract,
    check_osm_file,
    file_sha256,
    read_osm,
)

GRID_CLIPPED = TEST_DATA / "grid_clipped.osm"
UTM50 = "EPSG:32650"

# Ways of grid.osm (see tests/data/make_grid.py): 5 rows, 5 columns, 1 island path.
GRID_WALKABLE_WAY_IDS = {100, 101, 102, 103, 104, 200, 201, 202, 203, 204, 300}
GRID_EXCLUDED_WAY_IDS = {400, 401, 402, 403, 410, 500, 510}


def to_pbf(src: Path, dst: Path) -> Path:
    """Convert an OSM file to PBF with pyosmium's writer (keeps every object)."""
    writer = osmium.SimpleWriter(str(dst), overwrite=True)
    try:
        for obj in osmium.FileProcessor(str(src)):
            writer.add(obj)
    finally:
        writer.close()
    return dst


def _open_plain(src: Path):  # type: ignore[no-untyped-def]
    return bz2.open(src, "rb") if src.name.endswith(".bz2") else src.open("rb")


def to_gz(src: Path, dst: Path) -> Path:
    """Recompress (or compress) an OSM XML file with gzip."""
    with _open_plain(src) as fin, gzip.open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def to_bz2(src: Path, dst: Path) -> Path:
    with _open_plain(src) as fin, bz2.open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


# --- the hand-made grid: exact answers ----------------------------------------


def test_grid_keeps_exactly_the_walkable_ways(grid_extract: OsmExtract) -> None:
    assert set(grid_extract.ways.way_id.tolist()) == GRID_WALKABLE_WAY_IDS
    assert not GRID_EXCLUDED_WAY_IDS & set(grid_extract.ways.way_id.tolist())
    assert grid_extract.stats.walkable_ways == 11
    assert grid_extract.stats.ways_trimmed == grid_extract.stats.ways_dropped == 0
    # 10 grid ways of 5 nodes + the 3-node island path.
    assert np.diff(grid_extract.ways.offsets).tolist() == [5] * 10 + [3]
    assert (
        grid_extract.ways.node_id.size
        == grid_extract.ways.lon.size
        == grid_extract.ways.lat.size
        == 53
    )


def test_grid_highway_values_never_match_the_walk_exclusions(grid_extract: OsmExtract) -> None:
    pattern = WALK_EXCLUDED["highway"]
    assert not any(pattern.search(hw) for hw in grid_extract.ways.highway)


def test_grid_features(grid_extract: OsmExtract) -> None:
    res = grid_extract.residential.set_index(OSM_ID)
    assert set(res.index) == {500, 510}
    assert res.loc[500, KIND] == "building"
    assert res.loc[500, LEVELS] == 6
    assert res.loc[510, KIND] == "landuse"
    assert res.loc[510, NAME] == "Grid Garden"
    area_m2 = res.to_crs(UTM50).area
    assert area_m2.loc[500] == pytest.approx(600.0, rel=1e-3)
    assert area_m2.loc[510] == pytest.approx(6400.0, rel=1e-3)
    assert len(grid_extract.center_features) == 1
    center = grid_extract.center_features.iloc[0]
    assert center[OSM_ID] == 600
    assert center[NAME] == "Grid community service center"
    assert center["tags"] == "office=government"
    assert (
        grid_extract.residential.crs.to_epsg() == grid_extract.center_features.crs.to_epsg() == 4326
    )
    assert grid_extract.boundaries.empty


def test_grid_bounds_and_hash(grid_extract: OsmExtract) -> None:
    assert grid_extract.bounds is not None
    west, south, east, north = grid_extract.bounds
    assert west < grid_extract.ways.lon.min() <= grid_extract.ways.lon.max() <= east
    assert south < grid_extract.ways.lat.min() <= grid_extract.ways.lat.max() <= north
    assert grid_extract.sha256 == file_sha256(GRID)
    assert len(grid_extract.sha256) == 64


def test_clipped_grid_trims_and_drops_ways(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="coverage.osm"):
        ext = read_osm(GRID_CLIPPED)
    s = ext.stats
    assert (s.ways_trimmed, s.ways_dropped, s.missing_node_refs) == (2, 2, 6)
    assert "2 trimmed, 2 dropped" in caplog.text
    ids = ext.ways.way_id.tolist()
    assert ids.count(100) == 2  # row 0 cut in two around the missing node
    assert ids.count(200) == 1
    assert 700 not in ids
    assert 701 not in ids
    lengths = dict(zip(ids, np.diff(ext.ways.offsets).tolist(), strict=False))
    assert lengths[202] == 4  # column 2 lost its first node
    assert (np.diff(ext.ways.offsets) >= 2).all()


def test_progress_is_reported() -> None:
    calls: list[tuple[float, str]] = []
    read_osm(GRID, progress=lambda f, m: calls.append((f, m)))
    assert calls[0][0] == 0.0
    assert calls[-1][0] == 1.0


@pytest.mark.parametrize("convert", [to_pbf, to_gz, to_bz2], ids=["pbf", "gz", "bz2"])
def test_grid_formats_read_the_same(grid_extract: OsmExtract, tmp_path: Path, convert) -> None:  # type: ignore[no-untyped-def]
    suffix = {to_pbf: ".osm.pbf", to_gz: ".osm.gz", to_bz2: ".osm.bz2"}[convert]
    other = read_osm(convert(GRID, tmp_path / f"grid{suffix}"))
    np.testing.assert_array_equal(other.ways.way_id, grid_extract.ways.way_id)
    np.testing.assert_array_equal(other.ways.node_id, grid_extract.ways.node_id)
    np.testing.assert_allclose(other.ways.lon, grid_extract.ways.lon, atol=1e-7)
    np.testing.assert_allclose(other.ways.lat, grid_extract.ways.lat, atol=1e-7)
    assert len(other.residential) == len(grid_extract.residential)
    assert len(other.center_features) == len(grid_extract.center_features)


def test_xml_suffix_is_read(grid_extract: OsmExtract, tmp_path: Path) -> None:
    other = read_osm(shutil.copy(GRID, tmp_path / "map.xml"))
    assert other.stats.walkable_ways == grid_extract.stats.walkable_ways


# --- the real extracts: invariants --------------------------------------------


def test_haidian_counts(haidian_extract: OsmExtract) -> None:
    s = haidian_extract.stats
    assert s.walkable_ways == 285
    assert (s.ways_trimmed, s.ways_dropped) == (0, 0)
    assert s.residential_features == 68
    assert s.center_features >= 1
    assert haidian_extract.path == HAIDIAN.resolve()


def test_chengdu_counts(chengdu_extract: OsmExtract) -> None:
    s = chengdu_extract.stats
    assert s.walkable_ways == 2243
    assert s.residential_features == 352
    kinds = chengdu_extract.residential[KIND].value_counts()
    assert kinds["landuse"] == 186
    assert s.center_features >= 1
    # Complete ways are kept, so some nodes lie outside <bounds> (on purpose).
    assert chengdu_extract.bounds is not None
    west, south, east, north = chengdu_extract.bounds
    lon, lat = chengdu_extract.ways.lon, chengdu_extract.ways.lat
    outside = (lon < west) | (lon > east) | (lat < south) | (lat > north)
    assert outside.any()
    assert outside.mean() < 0.15  # ~10 % of way nodes today


@pytest.mark.parametrize("which", ["haidian", "chengdu"])
def test_real_ways_are_walkable_and_wellformed(which: str, request: pytest.FixtureRequest) -> None:
    ext: OsmExtract = request.getfixturevalue(f"{which}_extract")
    pattern = WALK_EXCLUDED["highway"]
    assert not any(pattern.search(hw) for hw in ext.ways.highway)
    assert (np.diff(ext.ways.offsets) >= 2).all()
    assert ext.ways.offsets[-1] == ext.ways.node_id.size
    assert np.isfinite(ext.ways.lon).all()
    assert np.isfinite(ext.ways.lat).all()
    for frame in (ext.residential, ext.center_features):
        assert frame.crs.to_epsg() == 4326
        assert frame.geometry.is_valid.all()
        assert frame.index.equals(frame.index.sort_values())


# --- bad input: one clear InputError each -------------------------------------


def _raises(path: Path, match: str, **kwargs) -> InputError:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=match) as info:
        read_osm(path, **kwargs)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nowhere.osm", "not found")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    _raises(tmp_path, "is a folder")


def test_unsupported_extension(tmp_path: Path) -> None:
    err = _raises(shutil.copy(GRID, tmp_path / "grid.geojson"), "Unsupported OSM file")
    assert ".osm.pbf" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.osm"
    empty.touch()
    _raises(empty, "empty")


def test_empty_compressed_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.osm.bz2"
    p.write_bytes(bz2.compress(b""))
    _raises(p, "not OpenStreetMap XML")


def test_truncated_bz2_small(tmp_path: Path) -> None:
    data = to_bz2(GRID, tmp_path / "full.osm.bz2").read_bytes()
    p = tmp_path / "cut.osm.bz2"
    p.write_bytes(data[: len(data) // 2])
    _raises(p, "corrupted or truncated")


def test_truncated_bz2_large(tmp_path: Path) -> None:
    # The prolog check passes; libosmium hits the end of the stream while parsing.
    p = tmp_path / "cut.osm.bz2"
    p.write_bytes(HAIDIAN.read_bytes()[:100_000])
    _raises(p, "truncated or corrupted|corrupted or truncated")


def test_garbage_bz2(tmp_path: Path) -> None:
    p = tmp_path / "junk.osm.bz2"
    p.write_bytes(b"BZh9" + bytes(range(256)) * 8)
    _raises(p, "corrupted or truncated")


def test_truncated_gz(tmp_path: Path) -> None:
    data = to_gz(GRID, tmp_path / "full.osm.gz").read_bytes()
    p = tmp_path / "cut.osm.gz"
    p.write_bytes(data[: len(data) // 2])
    _raises(p, "corrupted|truncated")


def test_truncated_pbf(tmp_path: Path) -> None:
    data = to_pbf(HAIDIAN, tmp_path / "full.osm.pbf").read_bytes()
    p = tmp_path / "cut.osm.pbf"
    p.write_bytes(data[: len(data) // 2])
    err = _raises(p, "could not be parsed")
    assert not isinstance(err.__cause__, InputError)


def test_pbf_that_is_not_pbf(tmp_path: Path) -> None:
    _raises(shutil.copy(GRID, tmp_path / "grid.osm.pbf"), "not an OSM PBF file")


def test_truncated_xml(tmp_path: Path) -> None:
    p = tmp_path / "cut.osm"
    p.write_bytes(GRID.read_bytes()[:3000])
    _raises(p, "could not be parsed.*unclosed token")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('<osm version="0.5"><node id="1" lat="1" lon="2"/></osm>', "version 0.5"),
        ('<osm version="0.6"><node id="1" lat="abc" lon="2"/></osm>', "coordinate"),
        ('<osm version="0.6"><node id="1" lat="1" lon="2"></osm>', "mismatched tag"),
    ],
    ids=["version", "coordinate", "mismatched"],
)
def test_libosmium_parse_errors_are_input_errors(tmp_path: Path, body: str, match: str) -> None:
    p = tmp_path / "bad.osm"
    p.write_text('<?xml version="1.0"?>\n' + body, encoding="utf-8")
    err = _raises(p, match)
    assert isinstance(err.__cause__, RuntimeError | osmium.InvalidLocationError)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<!DOCTYPE html>\n<html><body>429 Too Many Requests</body></html>", "web page"),
        ("<html><head></head></html>", "root element is <html>"),
        (
            '<?xml version="1.0"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document/></kml>',
            "root element is <kml>",
        ),
        ('{"type": "FeatureCollection", "features": []}', "no <osm> root"),
        ('<?xml version="1.0"?>\n<!-- <osm> in a comment --><gpx/>', "root element is <gpx>"),
    ],
    ids=["html-doctype", "html", "kml", "json", "comment"],
)
def test_xml_that_is_not_osm(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "thing.osm"
    p.write_text(text, encoding="utf-8")
    _raises(p, match)


def test_compressed_file_with_plain_extension(tmp_path: Path) -> None:
    err = _raises(to_gz(GRID, tmp_path / "grid.osm"), "compressed file")
    assert ".osm.gz" in str(err)


def test_no_walkable_ways(tmp_path: Path) -> None:
    p = tmp_path / "nowalk.osm"
    p.write_text(
        '<?xml version="1.0"?>\n<osm version="0.6">'
        '<node id="1" lat="40" lon="116"/><node id="2" lat="40.001" lon="116"/>'
        '<way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="motorway"/></way>'
        '<way id="2"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/>'
        '<tag k="access" v="private"/></way></osm>',
        encoding="utf-8",
    )
    _raises(p, "no walkable ways")


def test_memory_budget() -> None:
    with pytest.raises(ResourceLimitError, match="budget") as info:
        read_osm(CHENGDU, memory_budget_bytes=1_000_000)
    assert isinstance(info.value, PlannerError)
    assert "osmium extract" in str(info.value)
    check_osm_file(CHENGDU, memory_budget_bytes=10**10)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE osm [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<osm version="0.6"><node id="1" lat="40" lon="116"><tag k="name" v="&lol9;"/>'
    "</node></osm>\n"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE osm [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<osm version="0.6"><node id="1" lat="40" lon="116"><tag k="name" v="&xxe;"/></node></osm>\n'
)


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
@pytest.mark.parametrize("suffix", [".osm", ".osm.bz2"])
def test_entity_attacks_are_refused_fast(tmp_path: Path, text: str, suffix: str) -> None:
    p = tmp_path / f"attack{suffix}"
    data = text.encode()
    p.write_bytes(bz2.compress(data) if suffix.endswith(".bz2") else data)
    t0 = time.perf_counter()
    _raises(p, "DOCTYPE")
    assert time.perf_counter() - t0 < 2.0


def test_huge_prolog_is_refused_after_a_bounded_read(tmp_path: Path) -> None:
    # 32 MB of whitespace, a few kB compressed: the check reads at most ~1 MB of it.
    p = tmp_path / "bomb.osm.bz2"
    comp = bz2.BZ2Compressor(9)
    with p.open("wb") as fh:
        fh.write(comp.compress(b'<?xml version="1.0"?>\n'))
        block = b" " * (1 << 20)
        for _ in range(32):
            fh.write(comp.compress(block))
        fh.write(comp.compress(b'<osm version="0.6"></osm>'))
        fh.write(comp.flush())
    t0 = time.perf_counter()
    _raises(p, "no <osm> root")
    assert time.perf_counter() - t0 < 2.0


_FILTER_OSM = """<?xml version="1.0"?>
<osm version="0.6">
<node id="1" lat="40.000" lon="116.000"/><node id="2" lat="40.000" lon="116.001"/>
<node id="3" lat="40.001" lon="116.001"/><node id="4" lat="40.001" lon="116.000"/>
<node id="5" lat="40.0005" lon="116.0005"><tag k="highway" v="crossing"/></node>
<node id="6" lat="40.0006" lon="116.0006"><tag k="amenity" v="townhall"/></node>
<way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
<way id="11"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
<tag k="building" v="apartments"/><tag k="building:levels" v="9"/></way>
<way id="12"><nd ref="2"/><nd ref="3"/><tag k="building" v="yes"/></way>
<way id="13"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/><tag k="highway" v="pedestrian"/></way>
<way id="14"><nd ref="3"/><nd ref="4"/></way>
<way id="15"><nd ref="4"/><nd ref="1"/></way>
<way id="16"><nd ref="1"/><nd ref="2"/></way>
<relation id="20"><member type="way" ref="14" role="outer"/><member type="way" ref="15" role="outer"/>
<member type="way" ref="12" role="outer"/><member type="way" ref="16" role="outer"/>
<tag k="type" v="multipolygon"/>
<tag k="landuse" v="residential"/></relation>
<relation id="21"><member type="node" ref="6" role=""/><tag k="type" v="site"/>
<tag k="amenity" v="townhall"/></relation>
</osm>
"""


@pytest.mark.parametrize("center_tags", [None, {}])
def test_only_kept_objects_reach_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, center_tags: dict[str, tuple[str, ...]] | None
) -> None:
    """Street ways, land areas and center nodes reach the collector; buildings still become areas."""
    from coverage import osm

    p = tmp_path / "filters.osm"
    p.write_text(_FILTER_OSM, encoding="utf-8")
    seen: list[tuple[str, int]] = []
    add = osm._Collector.add

    def spy(self: osm._Collector, obj: object) -> None:
        seen.append((type(obj).__name__, int(obj.id)))  # type: ignore[attr-defined]
        add(self, obj)

    monkeypatch.setattr(osm._Collector, "add", spy)
    kwargs = {} if center_tags is None else {"center_tags": center_tags}
    extract = read_osm(p, **kwargs)  # type: ignore[arg-type]
    centers = [("Node", 6)] if center_tags is None else []
    # streets 10 and 13; areas: way 11 -> 22, relation 20 -> 41 (the closed street 13's
    # area 26 is no land, the building line 12 no area, the site relation 21 no area)
    expected = [("Way", 10), ("Way", 13), ("Area", 22), ("Area", 41), *centers]
    assert sorted(seen) == sorted(expected)
    assert sorted(extract.residential[OSM_ID].tolist()) == [11, 20]
    assert extract.residential.set_index(OSM_ID).loc[11, LEVELS] == 9.0
    assert extract.center_features[OSM_ID].tolist() == ([6] if center_tags is None else [])
