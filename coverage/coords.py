"""Conversions between WGS-84 and the Chinese map datums GCJ-02 and BD-09.

Chinese web maps publish coordinates in an obfuscated datum: Amap (高德), Tencent
and Google China use GCJ-02 ("Mars coordinates"); Baidu uses BD-09, a further
transform of GCJ-02. OpenStreetMap, GPS and the walking network are WGS-84.

The forward transforms (WGS-84 → GCJ-02 → BD-09) are the published algorithms
(e.g. ``googollee/eviltransform``, ``wandergis/coordTransform_py``): the GCJ-02
offset with Krasovsky ellipsoid parameters ``a = 6378245.0`` and
``ee = 0.00669342162296594323``, no offset outside a rough China bounding box,
and BD-09 with ``x_pi = π·3000/180``. The inverses have no closed form; they are
solved here by fixed-point iteration to well under a centimetre, instead of the
common one-step approximation, which is off by up to a few meters.

All functions take and return numpy arrays (scalars work too) of longitude and
latitude in degrees, and never modify their inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coverage.errors import InputError

Crs = Literal["wgs84", "gcj02", "bd09"]
#: Accepted values of the ``crs`` argument.
CRS_NAMES: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
# Fixed-point iteration stops when a step is below this (degrees; ~1 mm).
_TOL_DEG = 1e-8
_MAX_ITER = 30

Floats = NDArray[np.float64]


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        msg = f"`lon` and `lat` must have the same shape; got {x.shape} and {y.shape}."
        raise InputError(msg)
    return x, y


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Return True where a point lies outside the box in which GCJ-02 applies.

    The box (72.004–137.8347 E, 0.8293–55.8271 N) is the one used by the
    published implementations; outside it GCJ-02 equals WGS-84.
    """
    x, y = _arrays(lon, lat)
    return np.asarray((x < 72.004) | (x > 137.8347) | (y < 0.8293) | (y > 55.8271))


def _delta(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """GCJ-02 offset (degrees) at WGS-84 ``(x, y)``."""
    dx0 = x - 105.0
    dy0 = y - 35.0
    sqrt_abs = np.sqrt(np.abs(dx0))
    common = (20.0 * np.sin(6.0 * dx0 * np.pi) + 20.0 * np.sin(2.0 * dx0 * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * dx0 + 3.0 * dy0 + 0.2 * dy0 * dy0 + 0.1 * dx0 * dy0 + 0.2 * sqrt_abs
    dlat += common
    dlat += (20.0 * np.sin(dy0 * np.pi) + 40.0 * np.sin(dy0 / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(dy0 / 12.0 * np.pi) + 320.0 * np.sin(dy0 * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + dx0 + 2.0 * dy0 + 0.1 * dx0 * dx0 + 0.1 * dx0 * dy0 + 0.1 * sqrt_abs
    dlon += common
    dlon += (20.0 * np.sin(dx0 * np.pi) + 40.0 * np.sin(dx0 / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(dx0 / 12.0 * np.pi) + 300.0 * np.sin(dx0 / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = out_of_china(x, y)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Convert WGS-84 to GCJ-02 (Amap/Tencent); points outside China pass through."""
    x, y = _arrays(lon, lat)
    dx, dy = _delta(x, y)
    return x + dx, y + dy


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Convert GCJ-02 to WGS-84 by fixed-point iteration (error well below 0.5 m)."""
    gx, gy = _arrays(lon, lat)
    return _invert(wgs84_to_gcj02, gx, gy)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Convert GCJ-02 to BD-09 (Baidu)."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Convert BD-09 to GCJ-02 by fixed-point iteration of :func:`gcj02_to_bd09`."""
    bx, by = _arrays(lon, lat)
    return _invert(gcj02_to_bd09, bx, by, first=_bd09_to_gcj02_approx(bx, by))


def _bd09_to_gcj02_approx(bx: Floats, by: Floats) -> tuple[Floats, Floats]:
    """Return the published one-step inverse: the starting point of the iteration."""
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Convert WGS-84 to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Convert BD-09 to WGS-84 (via GCJ-02), both steps iterated."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _invert(
    forward: Callable[[Floats, Floats], tuple[Floats, Floats]],
    tx: Floats,
    ty: Floats,
    *,
    first: tuple[Floats, Floats] | None = None,
) -> tuple[Floats, Floats]:
    """Solve ``forward(x, y) == (tx, ty)`` for ``(x, y)`` by fixed-point iteration.

    Both transforms are small, smooth offsets (Jacobian ≈ identity), so
    ``x ← x − (forward(x) − target)`` converges in a handful of steps.
    """
    x, y = (tx.copy(), ty.copy()) if first is None else first
    finite = np.isfinite(tx) & np.isfinite(ty)
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = fx - tx, fy - ty
        x = x - ex
        y = y - ey
        step = np.maximum(np.abs(ex), np.abs(ey))
        if not np.any(step[finite] > _TOL_DEG):
            break
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: Crs | str) -> tuple[Floats, Floats]:
    """Convert longitude/latitude in ``crs`` to WGS-84.

    Parameters
    ----------
    lon, lat
        Longitudes and latitudes in degrees (arrays or scalars of equal shape).
    crs
        ``"wgs84"`` (GPS, OpenStreetMap), ``"gcj02"`` (Amap/高德, Tencent) or
        ``"bd09"`` (Baidu/百度).

    Returns
    -------
    tuple of numpy.ndarray
        WGS-84 ``(lon, lat)`` arrays, new objects of the input shape.
    """
    name = str(crs).lower().replace("-", "").replace("_", "")
    if name == "wgs84":
        x, y = _arrays(lon, lat)
        return x.copy(), y.copy()
    if name == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if name == "bd09":
        return bd09_to_wgs84(lon, lat)
    msg = f"`crs` must be one of {', '.join(CRS_NAMES)}; got {crs!r}. Use 'gcj02' for Amap/高德 or Tencent coordinates, 'bd09' for Baidu/百度, 'wgs84' for GPS or OpenStreetMap."
    raise InputError(msg)
