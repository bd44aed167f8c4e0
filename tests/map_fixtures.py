"""Small frames for the map, asset and report tests, and an offline headless Chromium.

The frames follow docs/ARCHITECTURE.md in a projected CRS (UTM 48N, Chengdu); names carry
markup and JavaScript template syntax so every test sees hostile strings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import Point, box

CRS = "EPSG:32648"  # UTM 48N (Chengdu)
X0, Y0 = 408_000.0, 3_392_000.0
EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

# <script src="http..."> or <link ... href="http..."> (after un-escaping the srcdoc iframe)
EXTERNAL_ASSET = re.compile(
    r"""<(script|link)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE
)


def centers() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "center_id": ["c1", "c2", "c3"],
            "name": [EVIL, "东城`${x}`\\", None],
            "source": ["osm", "file", "added"],
            "level": ["street", None, "community"],
        },
        geometry=[Point(X0, Y0), Point(X0 + 800, Y0 + 300), Point(X0 - 600, Y0 - 500)],
        crs=CRS,
    )


def service_areas() -> gpd.GeoDataFrame:
    c = Point(X0, Y0)
    return gpd.GeoDataFrame(
        {"center_id": ["all", "all", "c1", "c1"], "minutes": [5.0, 15.0, 5.0, 15.0]},
        geometry=[c.buffer(300), c.buffer(900), c.buffer(300), c.buffer(900)],
        crs=CRS,
    )


def demand(n: int = 60, *, side_m: float = 20.0, step_m: float = 30.0) -> gpd.GeoDataFrame:
    cols = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x = X0 - 1000 + (i % cols) * step_m
    y = Y0 - 1000 + (i // cols) * step_m
    minutes = np.linspace(0.0, 40.0, n)
    minutes[::7] = np.nan  # some units cannot reach any center
    return gpd.GeoDataFrame(
        {
            "demand_id": [f"d{k}" for k in i],
            "population": np.full(n, 12.5),
            "kind": "building",
            "name": [EVIL if k == 0 else f"楼{k}" for k in i],
            "minutes_to_nearest": minutes,
        },
        geometry=[box(a, b, a + side_m, b + side_m) for a, b in zip(x, y, strict=True)],
        crs=CRS,
    )


def uncovered() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"minutes": [5.0, 15.0], "population": [100.0, 50.0], "area_m2": [1e4, 1e4]},
        geometry=[box(X0 + 1000, Y0, X0 + 1100, Y0 + 100), box(X0 + 1200, Y0, X0 + 1300, Y0 + 100)],
        crs=CRS,
    )


def sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "rank": [2, 1],
            "marginal_population": [200.0, 500.0],
            "cumulative_population": [700.0, 500.0],
            "cumulative_share": [0.7, 0.5],
        },
        geometry=[Point(X0 + 1250, Y0 + 50), Point(X0 + 1050, Y0 + 50)],
        crs=CRS,
    )


def districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["锦江区", EVIL]},
        geometry=[
            box(X0 - 1500, Y0 - 1500, X0, Y0 + 1500),
            box(X0, Y0 - 1500, X0 + 2000, Y0 + 1500),
        ],
        crs=CRS,
    )


def frames() -> dict[str, gpd.GeoDataFrame]:
    """Every layer of a map, by its :class:`coverage.maps.MapLayers` field."""
    return {
        "centers": centers(),
        "service_areas": service_areas(),
        "demand": demand(),
        "uncovered": uncovered(),
        "sites": sites(),
        "districts": districts(),
    }


# --------------------------------------------------------------------------------------------
# Real browser (optional): pages from file:// with the network switched off

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
_OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # any DNS lookup fails: truly offline
    "--virtual-time-budget=5000",
]


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline with a profile under `cwd`."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *_OFFLINE_FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
