"""Shared fixtures: the real extracts are read once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"
CHENGDU = DATA / "chengdu_central.osm.bz2"
HAIDIAN = DATA / "beijing_haidian_cau.osm.bz2"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network cache private to this test session."""
    return tmp_path_factory.mktemp("network-cache")


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
