"""Bad-input catalogue: every entry point against empty, truncated, corrupted and hostile input.

Each case expects either a clear refusal (one readable line, the right exception type, CLI
exit 2 with no traceback) or a documented repair announced by a warning. Cases are tables
so that docs/RELIABILITY.md can list them; run the catalogue with
``.venv/bin/pytest tests/test_bad_inputs.py -v``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import GRID

from coverage.errors import InputError, PlannerError, ResourceLimitError

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "data" / "hostile"
GRID_XML = GRID.read_bytes()
# Inside the grid (WGS-84): the grid spans lon 116.2959-116.3112, lat 40.00005-40.00460.
IN_LON, IN_LAT = 116.300, 40.002
FAST_S = 10.0  # generous bound for "refused quickly" on a shared 2-core machine


def _lines(stderr: str) -> list[str]:
    """Non-empty stderr lines, without the progress lines a slow (loaded) run may log."""
    return [
        ln
        for ln in stderr.splitlines()
        if ln.strip() and not ln.startswith("INFO coverage.progress:")
    ]


@contextlib.contextmanager
def refused(exc_type: type[BaseException] = InputError, match: str | None = None) -> Iterator[Any]:
    """Expect one readable refusal, quickly."""
    t0 = time.monotonic()
    with pytest.raises(exc_type, match=match or None) as info:
        yield info
    assert time.monotonic() - t0 < FAST_S
    assert isinstance(info.value, PlannerError)
    text = str(info.value)
    assert text
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text


# --------------------------------------------------------------------------------------------
# OSM files (coverage.osm.read_osm, coverage.netcache.walk_network)


def _gzip_members(head: bytes, body: bytes, repeat: int, tail: bytes) -> bytes:
    """A multi-member gzip file: ``body`` compressed once and repeated (cheap to make)."""
    member = gzip.compress(body, compresslevel=1)
    return gzip.compress(head) + member * repeat + gzip.compress(tail)


OSM_CASES: list[tuple[str, str, bytes, type[Exception], str]] = [
    ("empty", "city.osm", b"", InputError, "empty"),
    ("truncated_xml", "city.osm", GRID_XML[: len(GRID_XML) // 2], InputError, "truncated"),
    ("truncated_bz2", "city.osm.bz2", bz2.compress(GRID_XML)[:300], InputError, "truncated"),
    ("truncated_gz", "city.osm.gz", gzip.compress(GRID_XML)[:300], InputError, "truncated"),
    ("corrupt_bz2", "city.osm.bz2", b"BZh9" + bytes(400), InputError, "corrupted"),
    ("corrupt_gz", "city.osm.gz", b"\x1f\x8b" + b"\xff" * 400, InputError, "corrupted"),
    ("gzip_named_osm", "city.osm", gzip.compress(GRID_XML), InputError, "compressed"),
    ("garbage_pbf", "city.osm.pbf", bytes(200), InputError, "not an OSM PBF"),
    ("wrong_extension_txt", "city.txt", GRID_XML, InputError, "Unsupported"),
    ("wrong_extension_zip", "city.zip", GRID_XML, InputError, "Unsupported"),
    (
        "geojson_named_osm",
        "city.osm",
        b'{"type": "FeatureCollection"}',
        InputError,
        "not OpenStreetMap",
    ),
    (
        "utf16_xml",
        "city.osm",
        '<?xml version="1.0" encoding="UTF-16"?><osm/>'.encode("utf-16"),
        InputError,
        "not OpenStreetMap",
    ),
    (
        "html_error_page",
        "city.osm",
        (HOSTILE / "download_error_page.osm").read_bytes(),
        InputError,
        "web page",
    ),
    (
        "billion_laughs",
        "city.osm",
        (HOSTILE / "billion_laughs.osm").read_bytes(),
        InputError,
        "DOCTYPE",
    ),
    (
        "billion_laughs_gz",
        "city.osm.gz",
        gzip.compress((HOSTILE / "billion_laughs.osm").read_bytes()),
        InputError,
        "DOCTYPE",
    ),
    (
        "billion_laughs_bz2",
        "city.osm.bz2",
        bz2.compress((HOSTILE / "billion_laughs.osm").read_bytes()),
        InputError,
        "DOCTYPE",
    ),
    (
        "xxe_file_passwd",
        "city.osm",
        (HOSTILE / "xxe_passwd.osm").read_bytes(),
        InputError,
        "DOCTYPE",
    ),
    (
        "xxe_parameter_entity",
        "city.osm",
        (HOSTILE / "xxe_parameter.osm").read_bytes(),
        InputError,
        "DOCTYPE",
    ),
    (
        "doctype_after_bom",
        "city.osm",
        b"\xef\xbb\xbf" + (HOSTILE / "xxe_passwd.osm").read_bytes(),
        InputError,
        "DOCTYPE",
    ),
    (
        "undeclared_entity_ref",
        "city.osm",
        (HOSTILE / "undeclared_entity.osm").read_bytes(),
        InputError,
        "could not be parsed",
    ),
    (
        "no_walkable_ways",
        "city.osm",
        b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="40" lon="116"/></osm>',
        InputError,
        "no walkable ways",
    ),
    (
        "latitude_999",
        "city.osm",
        b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="999" lon="116"/><node id="2" lat="40" lon="116"/><way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way></osm>',
        InputError,
        "could not be parsed",
    ),
    (
        "latitude_nan",
        "city.osm",
        b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="nan" lon="116"/><node id="2" lat="40" lon="116"/><way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way></osm>',
        InputError,
        "",
    ),
]


@pytest.mark.parametrize(
    ("filename", "data", "exc_type", "match"),
    [pytest.param(*c[1:], id=c[0]) for c in OSM_CASES],
)
def test_read_osm_refuses(
    tmp_path: Path, filename: str, data: bytes, exc_type: type[Exception], match: str
) -> None:
    from coverage.osm import read_osm

    p = tmp_path / filename
    p.write_bytes(data)
    with refused(exc_type, match):
        read_osm(p, memory_budget_bytes=2_000_000_000)


@pytest.mark.parametrize("name", ["billion_laughs.osm", "xxe_passwd.osm", "xxe_parameter.osm"])
def test_walk_network_refuses_entities_before_any_parse(tmp_path: Path, name: str) -> None:
    from coverage.netcache import walk_network

    with refused(InputError, "DOCTYPE"):
        walk_network(HOSTILE / name, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may be cached from a refused file"


def test_osm_missing_file_and_folder(tmp_path: Path) -> None:
    from coverage.osm import read_osm

    with refused(InputError, "not found"):
        read_osm(tmp_path / "nope.osm")
    with refused(InputError, "folder"):
        read_osm(tmp_path)


def test_ten_million_node_bomb_refused_by_memory_guard(tmp_path: Path) -> None:
    """10 M nodes (~520 MB of XML) in a ~1.5 MB gzip: refused after a bounded read."""
    node = b'<node id="1" version="1" lat="40.0" lon="116.3"/>\n'
    p = tmp_path / "bomb.osm.gz"
    p.write_bytes(
        _gzip_members(
            b'<?xml version="1.0"?>\n<osm version="0.6">\n', node * 100_000, 100, b"</osm>\n"
        )
    )
    assert p.stat().st_size < 20_000_000
    from coverage.osm import check_osm_file, read_osm

    check_osm_file(p, memory_budget_bytes=1_000_000_000)  # the size estimate alone is fooled
    with refused(ResourceLimitError, "expands to more than"):
        read_osm(p, memory_budget_bytes=1_000_000_000)


def test_huge_sparse_osm_refused_without_reading(tmp_path: Path) -> None:
    """A 4 GB file (sparse: it costs no disk) is refused from its size alone."""
    p = tmp_path / "planet.osm"
    with p.open("wb") as fh:
        fh.truncate(4_000_000_000)
    from coverage.netcache import walk_network
    from coverage.osm import read_osm

    with refused(ResourceLimitError, "memory"):
        read_osm(p, memory_budget_bytes=8_000_000_000)
    with refused(ResourceLimitError, "memory"):
        walk_network(p, cache_dir=tmp_path / "cache", memory_budget_bytes=8_000_000_000)


def _ref_bomb_pbf(path: Path, n_ways: int, refs_per_way: int) -> Path:
    """A PBF of walkable ways each referencing nodes 1..refs_per_way (only two exist).

    Delta-coded refs compress to a few bits each: 10^7 refs take ~21 kB, 10^8 ~99 kB.
    """
    import osmium

    w = osmium.SimpleWriter(str(path), overwrite=True)
    try:
        w.add_node(osmium.osm.mutable.Node(id=1, location=(104.0, 30.6)))
        w.add_node(osmium.osm.mutable.Node(id=2, location=(104.001, 30.6)))
        nodes = list(range(1, refs_per_way + 1))
        for i in range(n_ways):
            w.add_way(osmium.osm.mutable.Way(id=i + 1, nodes=nodes, tags={"highway": "footway"}))
    finally:
        w.close()
    return path


def test_pbf_node_ref_bomb_refused_while_streaming(tmp_path: Path) -> None:
    """10^6 way node refs in a few kB of PBF: counted while streaming, refused past the budget."""
    from coverage.osm import BYTES_PER_NODE_REF, read_osm

    p = _ref_bomb_pbf(tmp_path / "refs.osm.pbf", 200, 5000)
    assert p.stat().st_size < 10_000
    budget = 100_000_000  # allows 333,333 refs
    assert budget // BYTES_PER_NODE_REF < 1_000_000
    with refused(ResourceLimitError, "node references in walkable ways"):
        read_osm(p, memory_budget_bytes=budget)


def test_pbf_entity_bomb_refused_while_streaming(tmp_path: Path) -> None:
    """Many small tagged entities: the entity count is capped too."""
    from coverage.osm import BYTES_PER_ENTITY, read_osm

    p = _ref_bomb_pbf(tmp_path / "ents.osm.pbf", 20_000, 2)
    budget = 10_000 * BYTES_PER_ENTITY
    with refused(ResourceLimitError, "OSM entities"):
        read_osm(p, memory_budget_bytes=budget)


_CAPPED_CLI = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from coverage.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_pbf_ref_bomb_refused_under_memory_cap(tmp_path: Path) -> None:
    """10^7 refs (~21 kB of PBF) under a 3 GB address-space cap: exit 2, one line, in seconds.

    The default budget honours the cap (ulimit -v), so no flag is needed; without the
    guard the reader would need several GB and die with MemoryError.
    """
    p = _ref_bomb_pbf(tmp_path / "bomb.osm.pbf", 2000, 5000)
    assert p.stat().st_size < 50_000
    cap = 3_000_000_000
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CAPPED_CLI.format(cap=cap),
            "audit",
            "--osm",
            str(p),
            "--out",
            str(tmp_path / "out"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - t0 < 60
    lines = [ln for ln in _lines(proc.stderr) if "WARNING" not in ln]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "nodes" in lines[0]  # the missing-ref cap or the ref budget, whichever first


def test_pbf_missing_node_refs_refused_in_seconds(tmp_path: Path) -> None:
    """10^7 refs to absent nodes with a large budget: refused after ~10^6, not walked to the end."""
    from coverage.osm import MAX_MISSING_NODE_REFS, read_osm

    p = _ref_bomb_pbf(tmp_path / "missing.osm.pbf", 2000, 5000)
    with refused(ResourceLimitError, "not in the file") as info:
        read_osm(p, memory_budget_bytes=10**13)
    import re

    found = re.search(r"reference ([\d,]+) nodes", str(info.value))
    assert found, str(info.value)
    # stopped at the first way past the cap (5000 refs per way), not at 10^7
    assert (
        MAX_MISSING_NODE_REFS < int(found.group(1).replace(",", "")) <= MAX_MISSING_NODE_REFS + 5000
    )


def _osm_xml(nodes: list[tuple[int, float, float]], ways: list[list[int]]) -> bytes:
    parts = ['<?xml version="1.0"?>', '<osm version="0.6">']
    parts += [f'<node id="{i}" version="1" lat="{lat}" lon="{lon}"/>' for i, lon, lat in nodes]
    for k, refs in enumerate(ways, start=1):
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        parts.append(f'<way id="{k}" version="1">{nds}<tag k="highway" v="footway"/></way>')
    parts.append("</osm>")
    return "\n".join(parts).encode()


@pytest.mark.parametrize(
    "ways",
    [
        pytest.param([[1, 2, 3, 4, 1]], id="closed_loop_only"),
        pytest.param([[1, 1, 1]], id="self_referencing_way"),
    ],
)
def test_loop_only_extract_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ways: list[list[int]]
) -> None:
    """A park path that is one closed ring (or a way [1,1,1]): exit 2, no ``ValueError: NaN``."""
    from coverage.network import network_from_ways
    from coverage.osm import read_osm

    nodes = [(1, 104.0, 30.6), (2, 104.001, 30.6), (3, 104.001, 30.601), (4, 104.0, 30.601)]
    p = tmp_path / "park.osm"
    p.write_bytes(_osm_xml(nodes, ways))
    with refused(InputError, "closed loops"):
        network_from_ways(read_osm(p))
    import coverage.cli as cli_mod

    code = cli_mod.main(
        ["audit", "--osm", str(p), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    lines = _lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "closed loops" in lines[0], err


@pytest.mark.parametrize(
    ("far_lon", "far_lat"),
    [
        pytest.param(0.0, 0.0, id="node_at_null_island"),
        pytest.param(-58.38, -34.60, id="buenos_aires"),
    ],
)
def test_one_stray_way_moves_neither_zone_nor_lengths(
    grid_extract: Any, caplog: pytest.LogCaptureFixture, far_lon: float, far_lat: float
) -> None:
    """One footway from the grid to (0, 0) or to Buenos Aires: same UTM zone, warned, dropped."""
    import dataclasses

    from coverage.network import network_from_ways
    from coverage.osm import WalkWays

    base = network_from_ways(grid_extract)
    w = grid_extract.ways
    stray = WalkWays(
        way_id=np.append(w.way_id, 999_999_999),
        highway=np.append(w.highway, "footway").astype(object),
        offsets=np.append(w.offsets, w.offsets[-1] + 2),
        node_id=np.append(w.node_id, [w.node_id[0], 888_888_888]),
        lon=np.append(w.lon, [w.lon[0], far_lon]),
        lat=np.append(w.lat, [w.lat[0], far_lat]),
    )
    with caplog.at_level("WARNING", logger="coverage.network"):
        net = network_from_ways(dataclasses.replace(grid_extract, ways=stray))
    assert net.crs == base.crs
    assert net.n_nodes == base.n_nodes
    assert net.n_edges == base.n_edges
    assert np.allclose(np.sort(net.edge_length_m), np.sort(base.edge_length_m), atol=1e-9)
    assert "999999999" in caplog.text


def test_utm_zone_from_median_not_bounds() -> None:
    """Nine nodes at Chengdu (zone 48N) and one at (0, 0): the median keeps zone 48N."""
    from coverage.network import _utm_crs

    lon = np.array([104.06] * 9 + [0.0])
    lat = np.array([30.66] * 9 + [0.0])
    assert _utm_crs(lon, lat).to_epsg() == 32648


def test_population_of_1e308_refused(grid_net: Any, grid_extract: Any) -> None:
    """Two points of 1e308 residents sum to inf: refused with one clear line, not a JSON crash."""
    from coverage.demand import demand_units

    gdf = gpd.GeoDataFrame(
        {"population": [1e308, 1e308]},
        geometry=gpd.points_from_xy([IN_LON, IN_LON + 0.001], [IN_LAT, IN_LAT]),
        crs="EPSG:4326",
    )
    with refused(InputError, "per polygon, point or pixel|adds up to"):
        demand_units(grid_extract, grid_net, population=gdf)


# --------------------------------------------------------------------------------------------
# User files (coverage.userfiles.read_points / read_polygons)


def _fc(*geoms: Any, crs: str | None = None, props: dict[str, Any] | None = None) -> bytes:
    doc: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": f"f{i}", **(props or {})}, "geometry": g}
            for i, g in enumerate(geoms)
        ],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc).encode()


PT = {"type": "Point", "coordinates": [IN_LON, IN_LAT]}
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [
            [116.299, 40.001],
            [116.301, 40.001],
            [116.301, 40.003],
            [116.299, 40.003],
            [116.299, 40.001],
        ]
    ],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [
        [
            [116.299, 40.001],
            [116.301, 40.003],
            [116.301, 40.001],
            [116.299, 40.003],
            [116.299, 40.001],
        ]
    ],
}
LINE = {"type": "LineString", "coordinates": [[116.299, 40.001], [116.301, 40.003]]}

# (id, reader, filename, bytes, outcome, match); outcome "error" or "warn" (a repaired read).
USERFILE_CASES: list[tuple[str, str, str, bytes, str, str]] = [
    ("empty_geojson", "points", "c.geojson", b"", "error", "empty"),
    ("whitespace_csv", "points", "c.csv", b" \r\n\n", "error", "empty"),
    ("bom_only_csv", "points", "c.csv", b"\xef\xbb\xbf", "error", "empty"),
    ("truncated_geojson", "points", "c.geojson", _fc(PT, PT)[:50], "error", "could not be read"),
    (
        "binary_garbage_geojson",
        "points",
        "c.geojson",
        b"\x00\x01\xff" * 50,
        "error",
        "could not be read",
    ),
    (
        "corrupt_gpkg",
        "points",
        "c.gpkg",
        b"SQLite format 3\x00" + bytes(300),
        "error",
        "could not be read",
    ),
    (
        "csv_named_geojson",
        "points",
        "c.geojson",
        b"lon,lat\n116.3,40.0\n",
        "error",
        "could not be read",
    ),
    ("geojson_named_csv", "points", "c.csv", _fc(PT), "error", ""),
    ("xlsx_broken", "points", "c.xlsx", b"PK\x03\x04xx", "error", "not a readable Excel workbook"),
    ("xls_extension", "points", "c.xls", b"\xd0\xcf\x11\xe0", "error", "Unsupported"),
    ("shapefile_extension", "points", "c.shp", b"\x00\x00\x27\x0a", "error", "Unsupported"),
    ("no_extension", "points", "centers", b"lon,lat\n116.3,40.0\n", "error", "Unsupported"),
    ("no_features", "points", "c.geojson", _fc(), "error", "no features"),
    ("all_null_geometry", "points", "c.geojson", _fc(None), "error", "no features with a geometry"),
    ("some_null_geometry", "points", "c.geojson", _fc(None, PT), "warn", "dropped 1 features"),
    (
        "empty_point",
        "points",
        "c.geojson",
        _fc({"type": "Point", "coordinates": []}, PT),
        "warn",
        "no geometry",
    ),
    (
        "empty_polygon",
        "polygons",
        "d.geojson",
        _fc({"type": "Polygon", "coordinates": []}),
        "error",
        "no features",
    ),
    ("mixed_for_points", "points", "c.geojson", _fc(PT, SQUARE, LINE), "warn", "not points"),
    ("mixed_for_polygons", "polygons", "d.geojson", _fc(SQUARE, PT), "error", "expected polygons"),
    ("lines_for_polygons", "polygons", "d.geojson", _fc(LINE), "error", "expected polygons"),
    (
        "self_intersecting_polygon",
        "polygons",
        "d.geojson",
        _fc(BOWTIE),
        "warn",
        "repaired 1 invalid",
    ),
    (
        "lat_lon_swapped_geojson",
        "points",
        "c.geojson",
        _fc({"type": "Point", "coordinates": [IN_LAT, IN_LON]}),
        "error",
        "swapped",
    ),
    (
        "meters_declared_wgs84",
        "points",
        "c.geojson",
        _fc({"type": "Point", "coordinates": [443000, 4428000]}),
        "error",
        "projected",
    ),
    (
        "unknown_crs_meters",
        "points",
        "c.geojson",
        _fc(
            {"type": "Point", "coordinates": [443000, 4428000]}, crs="urn:ogc:def:crs:EPSG::999999"
        ),
        "error",
        "projected",
    ),
    (
        "unknown_crs_degrees",
        "points",
        "c.geojson",
        _fc(PT, crs="urn:ogc:def:crs:EPSG::999999"),
        "warn",
        "unknown coordinate system",
    ),
    (
        "degrees_declared_utm",
        "points",
        "c.geojson",
        _fc(PT, crs="urn:ogc:def:crs:EPSG::32650"),
        "error",
        "look like longitude/latitude",
    ),
    (
        "nan_coordinate",
        "points",
        "c.geojson",
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[NaN,40]}}]}',
        "error",
        "NaN or infinite",
    ),
    (
        "inf_coordinate",
        "points",
        "c.geojson",
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[Infinity,40]}}]}',
        "error",
        "NaN or infinite",
    ),
    (
        "overflow_coordinate",
        "points",
        "c.geojson",
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1e400,40]}}]}',
        "error",
        "",
    ),
    (
        "deeply_nested_json",
        "points",
        "c.geojson",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "error",
        "",
    ),
    ("csv_missing_columns", "points", "c.csv", b"name,foo\na,1\n", "error", "no longitude column"),
    ("csv_header_only", "points", "c.csv", b"lon,lat\n", "error", "no data rows"),
    (
        "csv_lat_lon_swapped",
        "points",
        "c.csv",
        f"lon,lat\n{IN_LAT},{IN_LON}\n".encode(),
        "error",
        "swapped",
    ),
    ("csv_nan_inf", "points", "c.csv", b"lon,lat\nnan,40\n116.3,inf\n", "error", "finite numbers"),
    (
        "csv_text_coordinate",
        "points",
        "c.csv",
        b"lon,lat\n116.3,forty\n",
        "error",
        "finite numbers",
    ),
    ("csv_meters", "points", "c.csv", b"x,y\n443000,4428000\n", "error", "±90"),
    ("csv_ragged_rows", "points", "c.csv", b"lon,lat\n116.3,40,1,2,3\n116\n", "error", ""),
    (
        "csv_utf16",
        "points",
        "c.csv",
        "name,lon,lat\nx,116.3,40.0\n".encode("utf-16"),
        "error",
        "UTF-8",
    ),
    ("csv_binary", "points", "c.csv", bytes(range(256)) * 4, "error", "UTF-8"),
    ("csv_wkt_broken", "polygons", "d.csv", b"name,wkt\na,POLYGON((1 2, 3\n", "error", "WKT"),
    (
        "csv_points_for_polygons",
        "polygons",
        "d.csv",
        b"lon,lat\n116.3,40\n",
        "error",
        "expected polygons",
    ),
]


@pytest.mark.parametrize(
    ("reader", "filename", "data", "outcome", "match"),
    [pytest.param(*c[1:], id=c[0]) for c in USERFILE_CASES],
)
def test_userfiles_catalogue(
    reader: str, filename: str, data: bytes, outcome: str, match: str
) -> None:
    from coverage.userfiles import read_points, read_polygons

    read: Callable[..., gpd.GeoDataFrame] = read_points if reader == "points" else read_polygons
    if outcome == "error":
        with refused(InputError, match or None):
            read(data, filename=filename)
        return
    with pytest.warns(UserWarning, match=match):
        gdf = read(data, filename=filename)
    assert len(gdf) >= 1
    assert gdf.crs.to_epsg() == 4326
    assert shapely.is_valid(gdf.geometry.values).all()
    assert np.isfinite(shapely.get_coordinates(gdf.geometry.values)).all()


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        pytest.param("gbk", b"", id="gbk"),
        pytest.param("utf-8", b"\xef\xbb\xbf", id="excel_bom"),
        pytest.param("gb18030", b"", id="gb18030"),
    ],
)
def test_csv_chinese_encodings_are_read(encoding: str, prefix: bytes) -> None:
    from coverage.userfiles import read_points

    data = prefix + f"名称,经度,纬度\n海淀党群服务中心,{IN_LON},{IN_LAT}\n".encode(encoding)
    gdf = read_points(data, filename="中心.csv")
    assert gdf["名称"].tolist() == ["海淀党群服务中心"]
    assert gdf.geometry.iloc[0].x == pytest.approx(IN_LON)


def test_3d_geometries_are_flattened() -> None:
    from coverage.userfiles import read_points

    gdf = read_points(
        _fc({"type": "Point", "coordinates": [IN_LON, IN_LAT, 55.0]}), filename="z.geojson"
    )
    assert not gdf.geometry.has_z.any()


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd.csv",
        "C:\\Windows\\system32\\evil.csv",
        "ctrl\x00\x1b[31m.csv",
        "<script>.csv",
    ],
)
def test_hostile_upload_names_are_only_labels(filename: str) -> None:
    """An upload's name picks the format; its directory part is never used as a path."""
    from coverage.userfiles import read_points

    gdf = read_points(f"lon,lat\n{IN_LON},{IN_LAT}\n".encode(), filename=filename)
    assert len(gdf) == 1


def test_userfile_size_limit() -> None:
    from coverage.userfiles import read_points

    data = b"lon,lat\n" + f"{IN_LON},{IN_LAT}\n".encode() * 1000
    with refused(ResourceLimitError, "MB allowed"):
        read_points(data, filename="c.csv", max_bytes=1000)
    with refused(ResourceLimitError, "MB allowed"):
        read_points(io.BytesIO(data), filename="c.csv", max_bytes=1000)


def test_userfile_size_limit_reads_at_most_limit_from_streams() -> None:
    from coverage.userfiles import read_points

    class Endless(io.RawIOBase):
        read_total = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = len(b)
            b[:n] = b"1" * n
            Endless.read_total += n
            return n

    with refused(ResourceLimitError):
        read_points(io.BufferedReader(Endless()), filename="c.csv", max_bytes=100_000)
    assert Endless.read_total < 1_000_000


# --------------------------------------------------------------------------------------------
# Centers and demand


def test_centers_outside_area_refused(grid_net: Any) -> None:
    from coverage.centers import centers_from_file

    data = b"name,lon,lat\nfar,104.07,30.67\nnear,116.300,40.002\n"
    with refused(InputError, "far"):
        centers_from_file(data, grid_net, filename="c.csv")


def test_centers_outside_area_dropped_with_warning(grid_net: Any) -> None:
    from coverage.centers import SnapRules, centers_from_file

    data = b"name,lon,lat\nfar,104.07,30.67\nnear,116.300,40.002\n"
    with pytest.warns(UserWarning, match="far"):
        out = centers_from_file(data, grid_net, filename="c.csv", rules=SnapRules(outside="drop"))
    assert out["name"].tolist() == ["near"]


def test_centers_all_outside_refused_even_when_dropping(grid_net: Any) -> None:
    from coverage.centers import SnapRules, centers_from_file

    with refused(InputError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centers_from_file(
            b"lon,lat\n104.07,30.67\n", grid_net, filename="c.csv", rules=SnapRules(outside="drop")
        )


def test_centers_bad_datum_name(grid_net: Any) -> None:
    from coverage.centers import centers_from_file

    with refused(InputError, "crs"):
        centers_from_file(
            f"lon,lat\n{IN_LON},{IN_LAT}\n".encode(), grid_net, filename="c.csv", crs="epsg:3857"
        )


def _pop_fc(*rows: tuple[dict[str, Any], Any]) -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in rows],
        }
    ).encode()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(_pop_fc(({"name": "a"}, SQUARE)), "population", id="no_population_column"),
        pytest.param(_pop_fc(({"population": -5}, SQUARE)), "", id="negative_population"),
        pytest.param(_pop_fc(({"population": "many"}, SQUARE)), "", id="text_population"),
        pytest.param(_pop_fc(({"population": 0}, SQUARE)), "No populated", id="zero_population"),
        pytest.param(
            _pop_fc(({"population": 100}, {"type": "Point", "coordinates": [104.07, 30.67]})),
            "No populated",
            id="population_outside_area",
        ),
    ],
)
def test_population_file_refused(grid_extract: Any, grid_net: Any, data: bytes, match: str) -> None:
    from coverage.demand import PopulationFile, demand_units

    with refused(InputError, match or None):
        demand_units(
            grid_extract, grid_net, population=PopulationFile(data, filename="pop.geojson")
        )


def test_population_nan_refused(grid_extract: Any, grid_net: Any) -> None:
    from coverage.demand import PopulationFile, demand_units

    data = (
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"population":NaN},"geometry":'
        + json.dumps(SQUARE).encode()
        + b"}]}"
    )
    with refused(InputError):
        demand_units(
            grid_extract, grid_net, population=PopulationFile(data, filename="pop.geojson")
        )


# --------------------------------------------------------------------------------------------
# Parameters: audit, siting, scenario


AUDIT_PARAM_CASES: list[tuple[str, dict[str, Any]]] = [
    ("speed_zero", {"speed_kmh": 0}),
    ("speed_negative", {"speed_kmh": -4.5}),
    ("speed_nan", {"speed_kmh": math.nan}),
    ("speed_inf", {"speed_kmh": math.inf}),
    ("speed_car", {"speed_kmh": 120}),
    ("speed_text", {"speed_kmh": "fast"}),
    ("speed_none", {"speed_kmh": None}),
    ("thresholds_empty", {"thresholds_min": ()}),
    ("thresholds_zero", {"thresholds_min": (0, 5)}),
    ("thresholds_negative", {"thresholds_min": (-5,)}),
    ("thresholds_nan", {"thresholds_min": (math.nan,)}),
    ("thresholds_inf", {"thresholds_min": (5, math.inf)}),
    ("thresholds_decreasing", {"thresholds_min": (15, 5)}),
    ("thresholds_duplicate", {"thresholds_min": (5, 5)}),
    ("thresholds_too_long", {"thresholds_min": (5, 1000)}),
    ("thresholds_text", {"thresholds_min": ("five",)}),
    ("thresholds_scalar", {"thresholds_min": 5}),
    ("corridor_zero", {"corridor_m": 0}),
    ("corridor_nan", {"corridor_m": math.nan}),
    ("level_thresholds_negative", {"level_thresholds_min": {"community": -5}}),
    ("level_thresholds_nan", {"level_thresholds_min": {"community": math.nan}}),
    ("level_thresholds_empty_level", {"level_thresholds_min": {"": 5}}),
]


@pytest.mark.parametrize("kwargs", [pytest.param(k, id=i) for i, k in AUDIT_PARAM_CASES])
def test_audit_params_refused(kwargs: dict[str, Any]) -> None:
    from coverage.audit import AuditParams

    with refused(InputError):
        AuditParams(**kwargs)


SITING_PARAM_CASES: list[tuple[str, dict[str, Any]]] = [
    ("neither_k_nor_target", {}),
    ("both_k_and_target", {"k": 3, "target_share": 0.9}),
    ("k_zero", {"k": 0}),
    ("k_negative", {"k": -1}),
    ("k_fraction", {"k": 2.5}),
    ("k_bool", {"k": True}),
    ("target_zero", {"target_share": 0.0}),
    ("target_above_one", {"target_share": 1.5}),
    ("target_nan", {"target_share": math.nan}),
    ("max_k_zero", {"target_share": 0.9, "max_k": 0}),
    ("minutes_zero", {"k": 1, "minutes": 0}),
    ("minutes_nan", {"k": 1, "minutes": math.nan}),
    ("minutes_inf", {"k": 1, "minutes": math.inf}),
    ("secondary_negative", {"k": 1, "secondary_minutes": -5}),
    ("speed_zero", {"k": 1, "speed_kmh": 0}),
    ("speed_car", {"k": 1, "speed_kmh": 200}),
    ("spacing_negative", {"k": 1, "spacing_m": -1}),
    ("time_limit_zero", {"k": 1, "time_limit_s": 0}),
    ("time_limit_nan", {"k": 1, "time_limit_s": math.nan}),
    ("gap_one", {"k": 1, "mip_rel_gap": 1.0}),
    ("gap_nan", {"k": 1, "mip_rel_gap": math.nan}),
]

SITING_TYPE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("k_nan", {"k": math.nan}),
    ("max_k_nan", {"target_share": 0.9, "max_k": math.nan}),
    ("minutes_text", {"k": 1, "minutes": "15"}),
    ("minutes_none", {"k": 1, "minutes": None}),
    ("time_limit_text", {"k": 1, "time_limit_s": "60"}),
]


@pytest.mark.parametrize("kwargs", [pytest.param(k, id=i) for i, k in SITING_PARAM_CASES])
def test_siting_params_refused(kwargs: dict[str, Any]) -> None:
    from coverage.siting import SitingParams

    with refused(InputError):
        SitingParams(**kwargs)


@pytest.mark.parametrize("kwargs", [pytest.param(k, id=i) for i, k in SITING_TYPE_CASES])
def test_siting_params_wrong_types_refused(kwargs: dict[str, Any]) -> None:
    from coverage.siting import SitingParams

    with pytest.raises(InputError):
        SitingParams(**kwargs)


SCENARIO_CASES: list[tuple[str, bytes | str]] = [
    ("empty", b""),
    ("not_json", b"hello"),
    ("binary", bytes(range(256))),
    ("json_list", b"[1, 2]"),
    ("json_null", b"null"),
    ("future_schema", b'{"schema_version": 99}'),
    ("speed_text", b'{"speed_kmh": "fast"}'),
    ("speed_nan", b'{"speed_kmh": NaN}'),
    ("speed_negative", b'{"speed_kmh": -3}'),
    ("thresholds_scalar", b'{"thresholds_min": 5}'),
    ("thresholds_text", b'{"thresholds_min": ["a"]}'),
    ("thresholds_infinite", b'{"thresholds_min": [5, Infinity]}'),
    ("thresholds_decreasing", b'{"thresholds_min": [15, 5]}'),
    ("added_not_object", b'{"added": [5]}'),
    ("added_unknown_field", b'{"added": [{"lon": 116.3, "lat": 40.0, "evil": 1}]}'),
    ("added_lon_text", b'{"added": [{"lon": "east", "lat": 40.0}]}'),
    ("added_lat_nan", b'{"added": [{"lon": 116.3, "lat": NaN}]}'),
    ("added_lat_out_of_range", b'{"added": [{"lon": 116.3, "lat": 400}]}'),
    ("siting_both", b'{"siting": {"k": 2, "target_share": 0.9}}'),
    ("siting_k_text", b'{"siting": {"k": "many"}}'),
    ("siting_minutes_nan", b'{"siting": {"k": 2, "minutes": NaN}}'),
    ("level_thresholds_list", b'{"level_thresholds_min": [5]}'),
    ("deeply_nested", b"[" * 100_000 + b"]" * 100_000),
    ("v2_speed_text", b'{"schema_version": 2, "audit": {"speed_kmh": "fast"}}'),
    ("v2_thresholds_decreasing", b'{"schema_version": 2, "audit": {"thresholds_min": [15, 5]}}'),
    ("v2_audit_unknown_field", b'{"schema_version": 2, "audit": {"evil": 1}}'),
    ("v2_audit_not_object", b'{"schema_version": 2, "audit": [5]}'),
    ("v2_flat_speed", b'{"schema_version": 2, "speed_kmh": 4}'),
    ("v2_siting_k_zero", b'{"schema_version": 2, "siting": {"k": 0}}'),
    ("v2_siting_spacing_nan", b'{"schema_version": 2, "siting": {"k": 1, "spacing_m": NaN}}'),
    ("v2_siting_unknown_field", b'{"schema_version": 2, "siting": {"k": 1, "evil": 1}}'),
    ("v1_siting_speed", b'{"schema_version": 1, "siting": {"k": 1, "speed_kmh": 4}}'),
    ("unknown_top_field", b'{"schema_version": 2, "evil": 1}'),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in SCENARIO_CASES])
def test_scenario_from_json_refused(text: bytes | str) -> None:
    from coverage.scenario import Scenario

    with refused(InputError):
        Scenario.from_json(text)


def test_scenario_round_trip_still_works() -> None:
    from coverage.audit import AuditParams
    from coverage.scenario import AddedStation, Scenario
    from coverage.siting import SitingParams

    s = Scenario(
        name="测试 <b>",
        audit=AuditParams(speed_kmh=4.0, thresholds_min=(5.0, 10.0)),
        added=(AddedStation(116.3, 40.0, "新站"),),
        siting=SitingParams(k=2),
    )
    assert Scenario.from_json(s.to_json()) == s


# --------------------------------------------------------------------------------------------
# Output names (batch district folders, export file names)

HOSTILE_NAMES = [
    "../../etc",
    "..",
    ".",
    "",
    "   ",
    "a/b\\c",
    "/absolute",
    "C:\\Windows",
    "nul\x00byte",
    "esc\x1b[31mred",
    "line\nbreak\ttab",
    "CON",
    "com1",
    "LPT9.txt",
    "trailing. ",
    ".hidden",
    "海淀区/学院路街道",
    "x" * 500,
    '<>:"|?*',
    "\u202eevil\u202d",  # bidi override
]


def _safe_single_name(s: str) -> None:
    assert s, "empty name"
    assert s not in {".", ".."}
    assert "/" not in s
    assert "\\" not in s
    assert not any(ord(c) < 32 or ord(c) == 127 for c in s), repr(s)
    assert len(s) <= 255
    assert not s.startswith(".")
    assert s.split(".")[0].upper() not in {
        "CON",
        "PRN",
        "AUX",
        "NUL",
        *(f"COM{i}" for i in range(10)),
        *(f"LPT{i}" for i in range(10)),
    }


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_export_safe_filename(name: str, tmp_path: Path) -> None:
    from coverage.export import safe_filename

    s = safe_filename(name)
    _safe_single_name(s)
    (tmp_path / s).write_text("x")  # a real, single file inside tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [s]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_batch_district_folder_names(name: str, tmp_path: Path) -> None:
    from coverage.batch import district_folders

    (s,) = district_folders([name])
    _safe_single_name(s)
    (tmp_path / s).mkdir()
    assert [p.name for p in tmp_path.iterdir()] == [s]


def test_batch_district_folders_unique(tmp_path: Path) -> None:
    from coverage.batch import district_folders

    names = [*HOSTILE_NAMES, "a/b", "a\\b", "a:b", "A_B", "con", "CON"]
    folders = district_folders(names)
    assert len({f.casefold() for f in folders}) == len(names)
    for f in folders:
        _safe_single_name(f)
        (tmp_path / f).mkdir()
    assert len(list(tmp_path.iterdir())) == len(names)


def test_safe_names_keep_chinese() -> None:
    from coverage.batch import district_folders
    from coverage.export import safe_filename

    assert safe_filename("学院路街道") == "学院路街道"
    assert district_folders(["学院路街道"]) == ["学院路街道"]


@pytest.mark.parametrize("bad", ["../escape.json", "sub/dir.json", "", "..", "nul\x00.json"])
def test_write_outputs_refuses_path_names(tmp_path: Path, bad: str) -> None:
    from coverage.export import write_outputs

    out = tmp_path / "out"
    with refused(InputError):
        write_outputs(out, {"summary.json": b"{}", bad: b"x"})
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_write_outputs_refuses_foreign_folder(tmp_path: Path) -> None:
    from coverage.export import write_outputs

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"precious")
    with refused(InputError, "refusing to replace"):
        write_outputs(out, {"summary.json": b"{}"})
    assert (out / "thesis.docx").read_bytes() == b"precious"


# --------------------------------------------------------------------------------------------
# CLI: coverage.cli.main in-process, and one real subprocess


cli = pytest.importorskip("coverage.cli")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, err


def _assert_bad_input(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = _lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err


@pytest.fixture
def hostile_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "empty.osm": b"",
        "truncated.osm.bz2": bz2.compress(GRID_XML)[:300],
        "laughs.osm": (HOSTILE / "billion_laughs.osm").read_bytes(),
        "xxe.osm": (HOSTILE / "xxe_passwd.osm").read_bytes(),
        "page.osm": (HOSTILE / "download_error_page.osm").read_bytes(),
        "city.txt": GRID_XML,
        "centers_missing_cols.csv": b"name,foo\na,1\n",
        "centers_swapped.csv": f"lon,lat\n{IN_LAT},{IN_LON}\n".encode(),
        "centers_outside.csv": b"name,lon,lat\nfar,104.07,30.67\n",
        "centers_empty.geojson": b"",
        "centers_nan.geojson": b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[NaN,40]}}]}',
        "pop_no_column.geojson": _pop_fc(({"name": "a"}, SQUARE)),
        "pop_outside.geojson": _pop_fc(
            ({"population": 5}, {"type": "Point", "coordinates": [104.07, 30.67]})
        ),
    }
    files["pop_boolean.geojson"] = _pop_fc(
        ({"population": 5}, SQUARE), ({"population": True}, SQUARE)
    )
    files["pop_1e308.geojson"] = _pop_fc(
        ({"population": 1e308}, SQUARE), ({"population": 1e308}, SQUARE)
    )
    out = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    os.mkfifo(tmp_path / "centers_fifo.csv")
    return out


CLI_CASES: list[tuple[str, list[str]]] = [
    ("no_command", []),
    ("unknown_command", ["explode"]),
    ("audit_without_out", ["audit", "--osm", "{GRID}"]),
    ("osm_missing", ["audit", "--osm", "{tmp}/nope.osm"]),
    ("osm_empty", ["audit", "--osm", "{tmp}/empty.osm"]),
    ("osm_truncated", ["audit", "--osm", "{tmp}/truncated.osm.bz2"]),
    ("osm_billion_laughs", ["audit", "--osm", "{tmp}/laughs.osm"]),
    ("osm_xxe", ["audit", "--osm", "{tmp}/xxe.osm"]),
    ("osm_html_page", ["audit", "--osm", "{tmp}/page.osm"]),
    ("osm_wrong_extension", ["audit", "--osm", "{tmp}/city.txt"]),
    (
        "centers_missing_columns",
        ["audit", "--osm", "{GRID}", "--centers", "{tmp}/centers_missing_cols.csv"],
    ),
    ("centers_swapped", ["audit", "--osm", "{GRID}", "--centers", "{tmp}/centers_swapped.csv"]),
    ("centers_outside", ["audit", "--osm", "{GRID}", "--centers", "{tmp}/centers_outside.csv"]),
    ("centers_empty", ["audit", "--osm", "{GRID}", "--centers", "{tmp}/centers_empty.geojson"]),
    ("centers_nan", ["audit", "--osm", "{GRID}", "--centers", "{tmp}/centers_nan.geojson"]),
    (
        "population_no_column",
        ["audit", "--osm", "{GRID}", "--population", "{tmp}/pop_no_column.geojson"],
    ),
    (
        "population_outside",
        ["audit", "--osm", "{GRID}", "--population", "{tmp}/pop_outside.geojson"],
    ),
    (
        "population_boolean",
        ["audit", "--osm", "{GRID}", "--population", "{tmp}/pop_boolean.geojson"],
    ),
    ("population_1e308", ["audit", "--osm", "{GRID}", "--population", "{tmp}/pop_1e308.geojson"]),
    ("centers_fifo", ["audit", "--osm", "{GRID}", "--centers", "{tmp}/centers_fifo.csv"]),
    ("speed_zero", ["audit", "--osm", "{GRID}", "--speed-kmh", "0"]),
    ("speed_nan", ["audit", "--osm", "{GRID}", "--speed-kmh", "nan"]),
    ("speed_text", ["audit", "--osm", "{GRID}", "--speed-kmh", "fast"]),
    ("minutes_decreasing", ["audit", "--osm", "{GRID}", "--minutes", "15,5"]),
    ("minutes_negative", ["audit", "--osm", "{GRID}", "--minutes", "-5"]),
    ("minutes_inf", ["audit", "--osm", "{GRID}", "--minutes", "5,inf"]),
    ("minutes_empty", ["audit", "--osm", "{GRID}", "--minutes", ""]),
    ("crs_unknown", ["audit", "--osm", "{GRID}", "--crs", "epsg:3857"]),
    ("site_without_k", ["site", "--osm", "{GRID}"]),
    ("site_k_zero", ["site", "--osm", "{GRID}", "--new", "0"]),
    ("site_target_above_one", ["site", "--osm", "{GRID}", "--target-share", "1.5"]),
    (
        "site_time_limit_negative",
        ["site", "--osm", "{GRID}", "--new", "1", "--exact", "--time-limit-s", "-1"],
    ),
    ("out_is_a_file", ["audit", "--osm", "{GRID}", "--out", "{tmp}/empty.osm"]),
]


@pytest.mark.parametrize("argv", [pytest.param(a, id=i) for i, a in CLI_CASES])
def test_cli_bad_input_exit_2(
    tmp_path: Path,
    hostile_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    out = tmp_path / "out"
    args = [a.replace("{GRID}", str(GRID)).replace("{tmp}", str(tmp_path)) for a in argv]
    if args[:1] in (["audit"], ["site"]):
        args += ["--cache-dir", str(tmp_path / "cache"), "--no-report"]
        if "--out" not in args and argv != ["audit", "--osm", "{GRID}"]:
            args += ["--out", str(out)]
    t0 = time.monotonic()
    code, err = _cli(capsys, *args)
    assert time.monotonic() - t0 < 60
    _assert_bad_input(code, err)
    assert not out.exists(), "no partial output may be written on bad input"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert leftovers == []


def test_cli_foreign_out_folder_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "Documents"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"precious")
    code, err = _cli(
        capsys, "audit", "--osm", str(GRID), "--out", str(out), "--cache-dir", str(tmp_path / "c")
    )
    _assert_bad_input(code, err)
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]


def test_cli_subprocess_bad_input(tmp_path: Path) -> None:
    exe = ROOT / ".venv" / "bin" / "coverage-planner"
    if not exe.exists():
        pytest.skip("console script not installed")
    (tmp_path / "x.osm").write_bytes((HOSTILE / "xxe_passwd.osm").read_bytes())
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(exe),
            "audit",
            "--osm",
            str(tmp_path / "x.osm"),
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(_lines(proc.stderr)) == 1, proc.stderr
    assert "root:" not in proc.stderr
    assert "/etc/passwd" not in proc.stdout
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# App upload handlers (app.accept_upload; imported without running Streamlit)


@pytest.fixture(scope="module")
def app_module() -> Any:
    sys.path.insert(0, str(ROOT))
    try:
        import app
    finally:
        sys.path.remove(str(ROOT))
    return app


APP_UPLOAD_CASES: list[tuple[str, str, str, bytes, str]] = [
    ("osm_empty", "osm", "city.osm", b"", "empty"),
    ("osm_wrong_extension", "osm", "city.xlsx", GRID_XML, "not an OSM extract"),
    ("osm_exe", "osm", "city.osm.exe", b"MZ", "not an OSM extract"),
    ("osm_no_extension", "osm", "city", GRID_XML, "not an OSM extract"),
    ("centers_pdf", "centers", "centers.pdf", b"%PDF", "not a GeoJSON"),
    ("centers_empty", "centers", "centers.csv", b"", "empty"),
    ("population_xls", "population", "pop.xls", b"PK", "not a GeoJSON"),
    ("districts_shp", "districts", "d.shp", b"\x00", "not a GeoJSON"),
    ("unknown_kind", "scenario", "s.json", b"{}", "unknown upload kind"),
]


@pytest.mark.parametrize(
    ("kind", "name", "data", "match"), [pytest.param(*c[1:], id=c[0]) for c in APP_UPLOAD_CASES]
)
def test_app_accept_upload_refuses(
    app_module: Any, kind: str, name: str, data: bytes, match: str
) -> None:
    with refused(InputError, match):
        app_module.accept_upload(kind, name, data, max_mb=200)


def test_app_upload_size_limit(app_module: Any) -> None:
    data = b"x" * 1_500_000
    with refused(InputError, "limit"):
        app_module.accept_upload("osm", "city.osm", data, max_mb=1)
    up = app_module.accept_upload("osm", "city.osm", data[:900_000], max_mb=1)
    assert up.name == "city.osm"


def test_app_upload_path_ignores_hostile_name(
    app_module: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved OSM upload is named by its hash; a name like ../../x.osm cannot escape."""
    monkeypatch.setenv("COVERAGE_PLANNER_CACHE", str(tmp_path / "cache"))
    up = app_module.accept_upload("osm", "../../../../tmp/evil.osm", GRID_XML, max_mb=10)
    path = app_module.osm_upload_path(up)
    assert path.parent == tmp_path / "cache" / "uploads"
    assert path.name == f"{up.sha256[:20]}.osm"
    assert not (tmp_path / "evil.osm").exists()


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in SCENARIO_CASES[:8]])
def test_app_scenario_upload_refused(app_module: Any, text: bytes) -> None:
    with refused(InputError):
        app_module.Scenario.from_json(text)


# --------------------------------------------------------------------------------------------
# User files, second pass (issue 17)


def _square_fc(x0: float, y0: float, x1: float, y1: float, **props: Any) -> bytes:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return _pop_fc((props, {"type": "Polygon", "coordinates": [ring]}))


def test_country_sized_population_polygon_is_cut_to_the_network(
    grid_extract: Any, grid_net: Any
) -> None:
    """A 232-byte 8°x8° polygon made GEOS allocate 9.6 GB; it is now cut to the city."""
    from coverage.demand import PopulationFile, demand_units

    data = _square_fc(112, 36, 120, 44, population=5e7)
    assert len(data) < 300
    t0 = time.monotonic()
    units = demand_units(
        grid_extract, grid_net, population=PopulationFile(data, filename="big.geojson")
    )
    assert time.monotonic() - t0 < FAST_S
    assert len(units) < 1000
    # density is kept: residents = density x the cells' area (cells lie inside the polygon)
    wgs = gpd.GeoSeries([shapely.box(112, 36, 120, 44)], crs="EPSG:4326")
    area = float(wgs.to_crs("EPSG:6933").area.iloc[0])  # equal-area
    density = 5e7 / area
    got = float(units["population"].sum()) / float(units.geometry.area.sum())
    assert got == pytest.approx(density, rel=0.02)  # UTM vs equal-area scale


def test_population_cells_capped(grid_net: Any) -> None:
    from coverage.demand import split_into_cells

    geoms = np.array([shapely.box(0, 0, 10_000, 10_000)], dtype=object)
    with refused(ResourceLimitError, "10,000 cells of 100 m, more than the limit of 9,999"):
        split_into_cells(geoms, 100.0, cell_limit=9_999)
    _, pieces = split_into_cells(geoms, 100.0, cell_limit=10_000)
    assert pieces.size == 10_000
    # a window keeps only the cells meeting it, exactly as without it
    _, pieces_w = split_into_cells(geoms, 100.0, window=(0, 0, 250, 150), cell_limit=6)
    assert pieces_w.size == 6
    assert shapely.equals(pieces_w, pieces[[0, 1, 2, 100, 101, 102]]).all()


def test_population_file_used_when_osm_has_no_residential(tmp_path: Path) -> None:
    """--population FILE must not depend on the OSM estimate (it is never computed)."""
    from coverage.inputs import CityInputs, FileInput, load_city

    text = GRID_XML.decode()
    for tag in ('<tag k="building" v="residential"/>', '<tag k="landuse" v="residential"/>'):
        text = text.replace(tag, "")
    osm = tmp_path / "no_residential.osm"
    osm.write_text(text)
    pop = tmp_path / "pop.geojson"
    pop.write_bytes(_square_fc(116.299, 40.001, 116.303, 40.003, population=100))
    city = load_city(CityInputs(osm=osm, population=FileInput(pop), cache_dir=None))
    assert float(city.demand["population"].sum()) == pytest.approx(100.0)
    assert set(city.demand["kind"]) == {"file"}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(True, "true/false", id="boolean_true"),
        pytest.param(False, "true/false", id="boolean_false"),
        pytest.param("12 people", "not numbers", id="text"),
    ],
)
def test_population_non_numeric_refused(
    grid_extract: Any, grid_net: Any, value: Any, match: str
) -> None:
    from coverage.demand import PopulationFile, demand_units

    data = _pop_fc(
        ({"population": 5}, SQUARE), ({"population": value}, SQUARE), ({"population": 7}, SQUARE)
    )
    with refused(InputError, match) as info:
        demand_units(
            grid_extract, grid_net, population=PopulationFile(data, filename="pop.geojson")
        )
    assert "features 2 " in str(info.value)


def test_population_numeric_strings_still_read(grid_extract: Any, grid_net: Any) -> None:
    from coverage.demand import PopulationFile, demand_units

    data = _square_fc(116.299, 40.001, 116.303, 40.003, population="100")
    units = demand_units(
        grid_extract, grid_net, population=PopulationFile(data, filename="pop.geojson")
    )
    assert float(units["population"].sum()) == pytest.approx(100.0)


@pytest.mark.parametrize("value", [1e308, 2e10])
def test_population_absurd_total_refused(grid_extract: Any, grid_net: Any, value: float) -> None:
    from coverage.demand import PopulationFile, demand_units

    data = _pop_fc(({"population": value}, SQUARE), ({"population": value}, SQUARE))
    with refused(InputError, "more than 1e\\+10"):
        demand_units(
            grid_extract, grid_net, population=PopulationFile(data, filename="pop.geojson")
        )


def test_overlapping_population_polygons_warned(grid_extract: Any, grid_net: Any) -> None:
    from coverage.demand import PopulationFile, demand_units

    a = {
        "type": "Polygon",
        "coordinates": [
            [
                [116.299, 40.001],
                [116.303, 40.001],
                [116.303, 40.003],
                [116.299, 40.003],
                [116.299, 40.001],
            ]
        ],
    }
    b = {
        "type": "Polygon",
        "coordinates": [
            [
                [116.301, 40.001],
                [116.305, 40.001],
                [116.305, 40.003],
                [116.301, 40.003],
                [116.301, 40.001],
            ]
        ],
    }
    c = {
        "type": "Polygon",
        "coordinates": [
            [
                [116.297, 40.001],
                [116.299, 40.001],
                [116.299, 40.003],
                [116.297, 40.003],
                [116.297, 40.001],
            ]
        ],
    }
    data = _pop_fc(({"population": 100}, a), ({"population": 100}, b), ({"population": 10}, c))
    with pytest.warns(
        UserWarning, match=r"2 population polygons overlap \(1 pairs, 2\d\.\d% of"
    ) as rec:
        units = demand_units(
            grid_extract, grid_net, population=PopulationFile(data, filename="pop.geojson")
        )
    assert "features 1, 2" in str(rec[0].message)
    alone = [
        demand_units(
            grid_extract, grid_net, population=PopulationFile(_pop_fc(r), filename="one.geojson")
        )
        for r in (({"population": 100}, a), ({"population": 100}, b), ({"population": 10}, c))
    ]
    # each polygon counted as if alone: the overlap is counted twice (and said so)
    assert float(units["population"].sum()) == pytest.approx(
        sum(float(u["population"].sum()) for u in alone)
    )
    # touching polygons (a shared edge) are not an overlap
    left = _pop_fc(({"population": 100}, a), ({"population": 10}, c))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        demand_units(
            grid_extract, grid_net, population=PopulationFile(left, filename="pop.geojson")
        )


def test_centers_count_capped(grid_net: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from coverage.centers import MAX_CENTERS_ENV, SnapRules, centers_from_file

    rows = "".join(f"c{i},{IN_LON + i * 1e-5},{IN_LAT}\n" for i in range(4))
    data = f"name,lon,lat\n{rows}".encode()
    monkeypatch.setenv(MAX_CENTERS_ENV, "3")
    with refused(ResourceLimitError, "holds 4 centers, more than the limit of 3"):
        centers_from_file(data, grid_net, filename="c.csv")
    monkeypatch.setenv(MAX_CENTERS_ENV, "4")
    assert (
        len(centers_from_file(data, grid_net, filename="c.csv", rules=SnapRules(dedupe_m=0))) == 4
    )


def test_candidates_count_capped(grid_net: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from coverage.centers import MAX_CENTERS_ENV
    from coverage.siting import candidates_from_file
    from coverage.userfiles import read_points

    pts = read_points(f"lon,lat\n{IN_LON},{IN_LAT}\n{IN_LON},{IN_LAT}\n".encode(), filename="c.csv")
    monkeypatch.setenv(MAX_CENTERS_ENV, "1")
    with refused(ResourceLimitError, "2 candidate sites"):
        candidates_from_file(grid_net, pts)


def test_control_characters_stripped_from_names(grid_net: Any) -> None:
    from coverage.centers import CenterColumns, centers_from_file

    data = f'name,center_id,lon,lat\n"a\x1b[2Jb\x00c",id\x1b[31m1,{IN_LON},{IN_LAT}\n'.encode()
    centers = centers_from_file(
        data, grid_net, filename="c.csv", columns=CenterColumns(id="center_id")
    )
    assert list(centers["name"]) == ["a[2Jbc"]
    assert list(centers["center_id"]) == ["id[31m1"]


def test_close_unknown_centers_message_is_capped(grid_net: Any) -> None:
    from coverage.centers import centers_from_file, close_centers

    centers = centers_from_file(
        f"lon,lat\n{IN_LON},{IN_LAT}\n".encode(), grid_net, filename="c.csv"
    )
    ids = ["\x1b[31m" + "x" * 5000, *[f"u{i}" for i in range(30)]]
    with refused(InputError, "Cannot close 31 unknown centers") as info:
        close_centers(centers, ids)
    text = str(info.value)
    assert "\x1b" not in text
    assert len(text) < 400, text
    assert "and 26 more" in text
    assert "(5,004 characters)" in text


# --------------------------------------------------------------------------------------------
# Issue 17, third pass: districts, one memory budget for every guard, the population hint


CENTERS_IN_GRID = b"id,name,lon,lat\nc1,Center,116.300,40.002\n"


def _district_fc(ring: list[list[float]], name: str = "d") -> bytes:
    feature = {"type": "Feature", "properties": {"name": name}}
    feature["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


def _box_ring(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _city_with_districts(data: bytes, **kwargs: Any) -> Any:
    from coverage.inputs import CityInputs, FileInput, load_city

    return load_city(
        CityInputs(
            osm=GRID,
            centers=FileInput(CENTERS_IN_GRID, "centers.csv"),
            districts=FileInput(data, "districts.geojson"),
            cache_dir=None,
            **kwargs,
        )
    )


def test_country_sized_district_is_cut_to_the_network() -> None:
    """A ~200-byte district of 8° x 8° is cut to the network's extent; the answers do not change."""
    from coverage import pipeline
    from coverage.inputs import DISTRICT_MARGIN_M
    from coverage.scenario import Scenario

    big = _district_fc(_box_ring(112, 36, 120, 44))
    assert len(big) < 300
    t0 = time.monotonic()
    city = _city_with_districts(big)
    assert time.monotonic() - t0 < FAST_S
    x0, y0, x1, y1 = city.net.extent_m(DISTRICT_MARGIN_M)
    bx0, by0, bx1, by1 = city.districts.total_bounds
    # cut on the extent's lon/lat box: within a few hundred metres of the projected box
    assert (bx0 > x0 - 500, by0 > y0 - 500, bx1 < x1 + 500, by1 < y1 + 500) == (True,) * 4
    assert float(city.districts.area.sum()) < 4 * (x1 - x0) * (y1 - y0)  # not 8° x 8° (~6e11 m²)
    # the same answers as a district that is just the city's own box
    small = _city_with_districts(_district_fc(_box_ring(116.29, 39.99, 116.32, 40.01)))
    got = pipeline.run(city, Scenario(name="big")).districts
    want = pipeline.run(small, Scenario(name="small")).districts
    assert got is not None
    assert want is not None
    cols = [c for c in got.columns if c != "district" and c not in {"area_km2", "area_m2"}]
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True)
    )


def test_district_far_from_the_network_is_kept_whole() -> None:
    """A district wholly outside the extent keeps its geometry (it is listed with no residents)."""
    far = _district_fc(_box_ring(10.0, 10.0, 10.01, 10.01), name="far")
    near = json.loads(_district_fc(_box_ring(116.29, 39.99, 116.32, 40.01), name="near"))
    near["features"] += json.loads(far)["features"]
    city = _city_with_districts(json.dumps(near).encode())
    assert list(city.districts["district"]) == ["near", "far"]
    assert float(city.districts.area.iloc[1]) > 1e6  # ~1.1 km x 1.1 km, not cut away


def _many_vertices_fc(n: int) -> bytes:
    """One district polygon with ``n`` vertices around the grid (a ~0.1° wobbly circle)."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    xs = 116.3035 + 0.1 * np.cos(t)
    ys = 40.0023 + 0.1 * np.sin(t) * (1 + 0.001 * np.sin(50 * t))
    ring = np.column_stack([xs, ys]).round(7).tolist()
    return _district_fc([*ring, ring[0]], name="wobbly")


def test_district_vertices_capped_by_the_budget(tmp_path: Path) -> None:
    """10^6 vertices: refused under a 0.1 GB budget (library and CLI, exit 2, one line)."""
    from coverage.inputs import (
        BYTES_PER_DISTRICT_VERTEX,
        districts_from_file,
        max_district_vertices,
    )

    assert max_district_vertices(10**8) == 10**8 // BYTES_PER_DISTRICT_VERTEX
    assert max_district_vertices(1) == 100_000  # a floor: real boundaries always fit
    p = tmp_path / "wobbly.geojson"
    p.write_bytes(_many_vertices_fc(10**6))
    with refused(ResourceLimitError, r"1,000,00\d polygon vertices, more than the 100,000"):
        districts_from_file(p, memory_budget_bytes=10**8)
    import coverage.cli as cli_mod

    out = tmp_path / "out"
    argv = ["audit", "--osm", str(GRID), "--districts", str(p), "--max-memory-gb", "0.1"]
    code = cli_mod.main([*argv, "--out", str(out), "--cache-dir", str(tmp_path / "c")])
    assert code == 2
    assert not out.exists()


def test_district_vertices_under_the_cap_are_read() -> None:
    from coverage.inputs import districts_from_file

    gdf = districts_from_file(_many_vertices_fc(1000), filename="d.geojson", memory_budget_bytes=1)
    assert len(gdf) == 1
    assert shapely.get_num_coordinates(gdf.geometry.values[0]) == 1001


def test_max_memory_gb_bounds_the_population_cells(grid_extract: Any, grid_net: Any) -> None:
    """The cell cap scales with the budget: 5 m cells over the grid fit 10 GB, not 0.001 GB."""
    from coverage.demand import PopulationFile, PopulationModel, demand_units, max_cells

    assert max_cells(10**10) == 10**10 // 2 // 4_000
    data = _square_fc(116.296, 40.0001, 116.311, 40.0045, population=1000)
    spec = PopulationFile(data, filename="pop.geojson")
    model = PopulationModel(cell_size_m=5.0)  # ~1.3 km x 0.5 km: ~26,000 cells
    with refused(ResourceLimitError, "more than the limit of 10,000"):
        demand_units(
            grid_extract, grid_net, population=spec, model=model, memory_budget_bytes=10**6
        )
    units = demand_units(
        grid_extract, grid_net, population=spec, model=model, memory_budget_bytes=10**10
    )
    assert len(units) > 10_000


def test_max_memory_gb_bounds_the_raster_window(tmp_path: Path) -> None:
    """`--max-memory-gb` reaches the raster reader: 0.001 GB allows 2,500 pixels, the window has more."""
    rasterio = pytest.importorskip(
        "rasterio", reason="the optional 'raster' extra is not installed"
    )
    from rasterio.transform import from_origin

    from coverage.demand import BYTES_PER_RASTER_PIXEL
    from coverage.inputs import CityInputs, FileInput, load_city

    p = tmp_path / "pop.tif"
    data = np.full((200, 400), 3.0, dtype="float32")  # 0.0001° pixels over the grid
    with rasterio.open(
        p, "w", driver="GTiff", width=400, height=200, count=1, dtype="float32",
        crs="EPSG:4326", transform=from_origin(116.29, 40.01, 0.0001, 0.0001),
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    inputs = dict(osm=GRID, centers=FileInput(CENTERS_IN_GRID, "c.csv"), cache_dir=None)
    budget = 10**6
    with refused(ResourceLimitError, f"more than the {budget // BYTES_PER_RASTER_PIXEL:,}"):
        load_city(CityInputs(population=FileInput(p), memory_budget_bytes=budget, **inputs))
    city = load_city(CityInputs(population=FileInput(p), memory_budget_bytes=10**10, **inputs))
    assert set(city.demand["kind"]) == {"raster"}


def test_population_file_outside_the_city_gets_a_file_hint(
    grid_extract: Any, grid_net: Any
) -> None:
    """The hint 'Provide a population file' is for the OSM estimate, not for a file that was given."""
    from coverage.demand import PopulationFile, demand_units

    data = _square_fc(10.0, 10.0, 10.01, 10.01, population=100)
    with refused(InputError, "from the population file 'far.geojson'") as info:
        demand_units(
            grid_extract, grid_net, population=PopulationFile(data, filename="far.geojson")
        )
    assert "Provide a population file" not in str(info.value)
    assert "--crs" in str(info.value)
