"""Tests for coverage.netcache: round trips, cache keys, corrupt and unwritable caches."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
from conftest import CHENGDU
from test_network import GRID

import coverage.netcache as netcache
from coverage.errors import InputError
from coverage.netcache import cache_key, load_network, save_network, walk_network
from coverage.network import WalkNetwork


def assert_same_network(a: WalkNetwork, b: WalkNetwork) -> None:
    assert a.crs == b.crs
    np.testing.assert_array_equal(a.node_osmid, b.node_osmid)
    np.testing.assert_array_equal(a.node_x, b.node_x)
    np.testing.assert_array_equal(a.node_y, b.node_y)
    np.testing.assert_array_equal(a.edge_u, b.edge_u)
    np.testing.assert_array_equal(a.edge_v, b.edge_v)
    np.testing.assert_array_equal(a.edge_length_m, b.edge_length_m)
    np.testing.assert_array_equal(a.edge_highway, b.edge_highway)
    assert shapely.equals_exact(a.edge_geometry, b.edge_geometry, tolerance=0).all()
    assert a.source_sha256 == b.source_sha256
    assert a.stats == b.stats


def test_cache_round_trip(haidian_net: WalkNetwork, tmp_path: Path) -> None:
    path = save_network(haidian_net, tmp_path / "net.npz")
    assert_same_network(load_network(path), haidian_net)
    assert not list(tmp_path.glob(".tmp-*"))


def test_cached_network_equals_built(
    chengdu_net: WalkNetwork, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="coverage.netcache"):
        again = walk_network(CHENGDU, cache_dir=cache_dir)
    assert "loaded cached network" in caplog.text
    assert_same_network(again, chengdu_net)


def test_cache_key_depends_on_input() -> None:
    assert cache_key("a" * 64) != cache_key("b" * 64)
    assert cache_key("a" * 64) == cache_key("a" * 64)


def test_cache_key_depends_on_build_version(monkeypatch: pytest.MonkeyPatch) -> None:
    key = cache_key("a" * 64)
    monkeypatch.setattr(netcache, "NETWORK_VERSION", "next")
    assert cache_key("a" * 64) != key


def test_new_build_version_ignores_old_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walk_network(GRID, cache_dir=tmp_path)
    (old,) = tmp_path.glob("walk-*.npz")
    monkeypatch.setattr(netcache, "NETWORK_VERSION", "next")
    walk_network(GRID, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("walk-*.npz"))) == 2
    assert old.exists()


def _corrupt_flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(255 - b for b in data[mid : mid + 64])
    p.write_bytes(bytes(data))


def _corrupt_truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:1000])


def _corrupt_empty(p: Path) -> None:
    p.write_bytes(b"")


def _corrupt_checksum(p: Path) -> None:
    with np.load(p, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["edge_length_m"] = arrays["edge_length_m"] * 2  # meta keeps the old checksum
    np.savez(p, **arrays)


@pytest.mark.parametrize(
    "corrupt", [_corrupt_flip, _corrupt_truncate, _corrupt_empty, _corrupt_checksum]
)
def test_corrupt_cache_is_detected_and_rebuilt(
    tmp_path: Path, corrupt, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    src = shutil.copy(GRID, tmp_path / "grid.osm")
    cache = tmp_path / "cache"
    built = walk_network(src, cache_dir=cache)
    (cache_file,) = cache.glob("walk-*.npz")
    corrupt(cache_file)
    with pytest.raises(InputError, match="delete it to rebuild"):
        load_network(cache_file)
    with caplog.at_level(logging.WARNING, logger="coverage.netcache"):
        rebuilt = walk_network(src, cache_dir=cache)
    assert "rebuilding" in caplog.text
    assert_same_network(rebuilt, built)
    assert_same_network(load_network(cache_file), built)


def test_cache_unwritable_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="coverage.netcache"):
        net = walk_network(GRID, cache_dir=blocker / "cache")
    assert net.n_nodes == 21
    assert "could not write network cache" in caplog.text


def test_walk_network_progress() -> None:
    calls: list[float] = []
    walk_network(GRID, cache_dir=None, progress=lambda f, _m: calls.append(f))
    assert calls == sorted(calls)
    assert calls[-1] == 1.0


def test_walk_network_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        walk_network(tmp_path / "missing.osm", cache_dir=None)
