"""Shared fixtures: the real extracts and the hand-made grid are read once per session.

Outputs written in process (``pipeline.write``, ``cli.main``, ``batch``, the app's
downloads) leave out ``map.png`` / ``map.pdf`` (1–3 s per output on the embedded city)
unless the test is marked ``figure``; subprocess runs of the CLI always draw them. The
tests of the documents themselves (test_documents.py, test_report_print.py and the
output-contract tests) carry the marker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"
CHENGDU = DATA / "chengdu_central.osm.bz2"
HAIDIAN = DATA / "beijing_haidian_cau.osm.bz2"
#: The hand-made grid (tests/data/make_grid.py): 5 x 5 nodes 100 m apart, exact answers.
GRID = TEST_DATA / "grid.osm"
#: The grid's origin (its south-west node) in its network CRS, UTM 50N (EPSG:32650).
GRID_E, GRID_N = 440_000.0, 4_428_000.0


@pytest.fixture(autouse=True)
def _figure_only_when_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """In-process outputs without map.png / map.pdf unless the test is marked ``figure``."""
    if request.node.get_closest_marker("figure") is not None:
        yield
        return
    from coverage import export

    saved = export.DEFAULT_DOCUMENTS
    export.DEFAULT_DOCUMENTS = replace(saved, figure=None)
    try:
        yield
    finally:
        export.DEFAULT_DOCUMENTS = saved


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network cache private to this test session."""
    return tmp_path_factory.mktemp("network-cache")


@pytest.fixture(scope="session")
def grid_extract():  # type: ignore[no-untyped-def]
    """The grid's extract (read once; frozen arrays and frames the tests only read)."""
    from coverage.osm import read_osm

    return read_osm(GRID)


@pytest.fixture(scope="session")
def grid_net(grid_extract):  # type: ignore[no-untyped-def]
    """The grid's walking network, built without a cache."""
    from coverage.netcache import walk_network

    return walk_network(GRID, extract=grid_extract, cache_dir=None)


@pytest.fixture(scope="session")
def haidian_extract():  # type: ignore[no-untyped-def]
    from coverage.osm import read_osm

    return read_osm(HAIDIAN)


@pytest.fixture(scope="session")
def haidian_net(haidian_extract, cache_dir):  # type: ignore[no-untyped-def]
    from coverage.netcache import walk_network

    return walk_network(HAIDIAN, extract=haidian_extract, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def chengdu_extract():  # type: ignore[no-untyped-def]
    from coverage.osm import read_osm

    return read_osm(CHENGDU)


@pytest.fixture(scope="session")
def chengdu_net(chengdu_extract, cache_dir):  # type: ignore[no-untyped-def]
    from coverage.netcache import walk_network

    return walk_network(CHENGDU, extract=chengdu_extract, cache_dir=cache_dir)
