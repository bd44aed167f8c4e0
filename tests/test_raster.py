"""Population rasters (WorldPop-style GeoTIFF) as demand: windowed read, totals, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coverage import cli
from coverage.demand import demand_units, population_from_raster
from coverage.errors import InputError
from coverage.network import WalkNetwork

rasterio = pytest.importorskip("rasterio", reason="the optional 'raster' extra is not installed")
from rasterio.transform import Affine, from_origin  # noqa: E402

HAIDIAN = Path(__file__).resolve().parents[1] / "data" / "beijing_haidian_cau.osm.bz2"
PIXEL_DEG = 0.001  # ~100 m, like WorldPop's 3 arc-second grid


def _lonlat_bounds(net: WalkNetwork) -> tuple[float, float, float, float]:
    from pyproj import Transformer

    tr = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    return tr.transform_bounds(
        net.node_x.min(), net.node_y.min(), net.node_x.max(), net.node_y.max()
    )


def _write(path: Path, data: np.ndarray, transform: Affine, crs: str | None = "EPSG:4326") -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=-99999.0,
    ) as dst:
        dst.write(data.astype("float32"), 1)
    return path


@pytest.fixture(scope="module")
def big_raster(tmp_path_factory: pytest.TempPathFactory, haidian_net: WalkNetwork) -> Any:
    """A raster 200 × 200 pixels (~20 km) around the extract, 10 residents per pixel, nodata holes."""
    lon0, lat0, lon1, lat1 = _lonlat_bounds(haidian_net)
    cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    n = 200
    data = np.full((n, n), 10.0)
    data[::7, ::5] = -99999.0  # nodata: never counted
    transform = from_origin(cx - n / 2 * PIXEL_DEG, cy + n / 2 * PIXEL_DEG, PIXEL_DEG, PIXEL_DEG)
    path = _write(tmp_path_factory.mktemp("raster") / "worldpop.tif", data, transform)
    return path, data, transform


def test_reads_only_the_window_of_the_extract(big_raster: Any, haidian_net: WalkNetwork) -> None:
    path, data, transform = big_raster
    units = population_from_raster(path, haidian_net, margin_m=0.0)
    assert 0 < len(units) < (data > 0).sum() / 20  # a small window of the 40,000 pixels
    assert set(units["kind"]) == {"raster"}
    assert (units["population"] == 10.0).all()  # nodata pixels are not people
    # each unit is a real pixel of the raster, named by its row and column in the whole raster
    rows = units["demand_id"].str.extract(r"r(\d+)_(\d+)").astype(int).to_numpy()
    assert (data[rows[:, 0], rows[:, 1]] == 10.0).all()
    # every populated pixel whose centre lies inside the extract is there
    lon0, lat0, lon1, lat1 = _lonlat_bounds(haidian_net)
    r, c = np.nonzero(data > 0)
    x, y = transform * (c + 0.5, r + 0.5)
    inside = (x > lon0) & (x < lon1) & (y > lat0) & (y < lat1)
    got = {tuple(rc) for rc in rows}
    assert {(int(a), int(b)) for a, b in zip(r[inside], c[inside], strict=True)} <= got


def test_raster_as_demand_conserves_population(
    big_raster: Any, haidian_extract: Any, haidian_net: WalkNetwork
) -> None:
    path, _, _ = big_raster
    raw = population_from_raster(path, haidian_net, margin_m=200.0)
    units = demand_units(haidian_extract, haidian_net, population=path)
    assert set(units["kind"]) == {"raster"}
    # pixels whose centre lies within 200 m of the network's extent, each counted once
    c = raw.geometry.centroid
    x0, x1 = haidian_net.node_x.min() - 200, haidian_net.node_x.max() + 200
    y0, y1 = haidian_net.node_y.min() - 200, haidian_net.node_y.max() + 200
    inside = (c.x >= x0) & (c.x <= x1) & (c.y >= y0) & (c.y <= y1)
    assert units["population"].sum() == pytest.approx(raw.loc[inside, "population"].sum())
    assert units["demand_id"].is_unique
    assert (units["snap_distance_m"] >= 0).all()


def test_cli_audit_with_a_raster(
    big_raster: Any, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = big_raster
    out = tmp_path / "out"
    argv = ["audit", "--osm", str(HAIDIAN), "--cache-dir", str(cache_dir)]
    argv += ["--population", str(path), "--no-polygons", "--no-report", "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["demand"]["population"] > 0
    assert doc["demand"]["population"] == pytest.approx(10.0 * doc["demand"]["units"])


def test_raster_errors(tmp_path: Path, haidian_net: WalkNetwork) -> None:
    ones = np.ones((4, 4))
    far = _write(tmp_path / "far.tif", ones, from_origin(10.0, 50.0, PIXEL_DEG, PIXEL_DEG))
    with pytest.raises(InputError, match="does not overlap"):
        population_from_raster(far, haidian_net)
    lon0, _, _, lat1 = _lonlat_bounds(haidian_net)
    near = from_origin(lon0, lat1, PIXEL_DEG, PIXEL_DEG)
    nocrs = _write(tmp_path / "nocrs.tif", ones, near, crs=None)
    with pytest.raises(InputError, match="no CRS"):
        population_from_raster(nocrs, haidian_net)
    rotated = _write(tmp_path / "rot.tif", ones, near * Affine.rotation(10))
    with pytest.raises(InputError, match="rotated"):
        population_from_raster(rotated, haidian_net)
    ok = _write(tmp_path / "ok.tif", ones, near)
    with pytest.raises(InputError, match="band"):
        population_from_raster(ok, haidian_net, band=2)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(ok.read_bytes()[:200])
    with pytest.raises(InputError, match="could not be read"):
        population_from_raster(broken, haidian_net)
    with pytest.raises(InputError, match="not found"):
        population_from_raster(tmp_path / "missing.tif", haidian_net)


def _write_float64(path: Path, n: int, transform: Affine, data: np.ndarray | None) -> None:
    """An n x n float64 GeoTIFF (EPSG:4326); ``data=None`` writes only the tiled, sparse header."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=n,
        height=n,
        count=1,
        dtype="float64",
        crs="EPSG:4326",
        transform=transform,
        tiled=True,
        compress="deflate",
        sparse_ok=True,
    ) as dst:
        if data is not None:
            dst.write(data, 1)


def test_huge_raster_window_refused_before_reading(
    tmp_path: Path, haidian_net: WalkNetwork
) -> None:
    """20,000 x 20,000 px over the extract (a few hundred kB of header): ResourceLimitError, no read."""
    import time

    from coverage.demand import BYTES_PER_RASTER_PIXEL
    from coverage.errors import ResourceLimitError

    lon0, lat0, lon1, lat1 = _lonlat_bounds(haidian_net)
    n = 20_000
    px = max(lon1 - lon0, lat1 - lat0) / n * 2
    path = tmp_path / "huge.tif"
    transform = from_origin(lon0 - n / 4 * px, lat1 + n / 4 * px, px, px)
    _write_float64(path, n, transform, None)  # no block written: the file is a header
    assert path.stat().st_size < 2_000_000
    t0 = time.monotonic()
    budget = 1_000_000_000
    with pytest.raises(ResourceLimitError, match="pixels") as info:
        population_from_raster(path, haidian_net, memory_budget_bytes=budget)
    assert time.monotonic() - t0 < 10
    assert f"{budget // BYTES_PER_RASTER_PIXEL:,}" in str(info.value)
    with pytest.raises(ResourceLimitError):  # the default budget (this machine) too
        population_from_raster(path, haidian_net)


def test_raster_of_1e308_refused(tmp_path: Path, haidian_net: WalkNetwork) -> None:
    """Pixels of 1e308 residents: the total would overflow to inf; one clear InputError."""
    lon0, _, _, lat1 = _lonlat_bounds(haidian_net)
    n = 50
    data = np.full((n, n), 1e308)
    path = tmp_path / "absurd.tif"
    _write_float64(path, n, from_origin(lon0 - 0.01, lat1 + 0.01, 0.002, 0.002), data)
    with pytest.raises(InputError, match="per polygon, point or pixel"):
        population_from_raster(path, haidian_net)
