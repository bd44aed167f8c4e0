"""WGS-84 ⇄ GCJ-02 ⇄ BD-09 against published coordinate pairs, and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from coverage import coords
from coverage.errors import InputError


def _metres(lon1, lat1, lon2, lat2):  # type: ignore[no-untyped-def]
    """Equirectangular distance (plenty for sub-metre checks)."""
    r = 6_371_000.0
    dx = np.radians(np.asarray(lon2) - lon1) * np.cos(np.radians(lat1))
    dy = np.radians(np.asarray(lat2) - lat1)
    return r * np.hypot(dx, dy)


# googollee/eviltransform test vectors (WGS-84 → GCJ-02): Shanghai, Shenzhen, Beijing.
EVILTRANSFORM = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
]
# wandergis/coordTransform_py README, input (128.543, 37.065).
CT_INPUT = (128.543, 37.065)
CT_WGS_TO_GCJ = (128.54820547949757, 37.065651049489816)
CT_GCJ_TO_BD = (128.54944656269413, 37.07113427883019)
CT_GCJ_TO_WGS_ONE_STEP = (128.53779452050244, 37.06434895051018)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_wgs84_to_gcj02_matches_published_pairs(wgs, gcj):  # type: ignore[no-untyped-def]
    lon, lat = coords.wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-9)
    assert lat == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_gcj02_to_wgs84_is_within_half_a_metre(wgs, gcj):  # type: ignore[no-untyped-def]
    lon, lat = coords.to_wgs84(gcj[0], gcj[1], "gcj02")
    assert _metres(wgs[0], wgs[1], lon, lat) < 0.05


def test_coordtransform_readme_pairs():
    assert np.allclose(coords.wgs84_to_gcj02(*CT_INPUT), CT_WGS_TO_GCJ, atol=1e-9)
    assert np.allclose(coords.gcj02_to_bd09(*CT_INPUT), CT_GCJ_TO_BD, atol=1e-9)
    # The published one-step inverse is off by metres; ours lands within 0.5 m
    # of the true inverse, and the one-step answer is within ~2 m of ours.
    lon, lat = coords.gcj02_to_wgs84(*CT_INPUT)
    back = coords.wgs84_to_gcj02(lon, lat)
    assert _metres(*CT_INPUT, *back) < 0.01
    assert _metres(*CT_GCJ_TO_WGS_ONE_STEP, lon, lat) < 5.0


def test_tiananmen_offsets_are_in_the_known_range():
    # Tiananmen, WGS-84 (116.391226, 39.907333): GCJ-02 shifts it ~+0.006° E and
    # ~+0.0014° N (a few hundred metres), BD-09 another ~+0.0065° E, +0.006° N.
    lon, lat = 116.391226, 39.907333
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    assert 0.005 < glon - lon < 0.0075
    assert 0.0008 < glat - lat < 0.002
    blon, blat = coords.wgs84_to_bd09(lon, lat)
    assert 0.005 < blon - glon < 0.008
    assert 0.005 < blat - glat < 0.008
    assert 300 < _metres(lon, lat, glon, glat) < 800


def test_round_trips_below_half_a_metre_vectorised():
    rng = np.random.default_rng(0)
    lon = rng.uniform(73.5, 134.5, 2000)
    lat = rng.uniform(18.5, 53.0, 2000)
    for crs, forward in (("gcj02", coords.wgs84_to_gcj02), ("bd09", coords.wgs84_to_bd09)):
        x, y = forward(lon, lat)
        back_x, back_y = coords.to_wgs84(x, y, crs)
        assert back_x.shape == lon.shape
        assert np.max(_metres(lon, lat, back_x, back_y)) < 0.5


def test_bd09_inverse_is_exact_for_the_forward_transform():
    blon, blat = 116.404, 39.915  # Baidu's default map center (Tiananmen)
    lon, lat = coords.to_wgs84(blon, blat, "bd09")
    again = coords.wgs84_to_bd09(lon, lat)
    assert _metres(blon, blat, *again) < 0.01


def test_outside_china_passes_through():
    lon, lat = np.array([2.35, -74.0]), np.array([48.86, 40.7])
    assert np.array_equal(coords.wgs84_to_gcj02(lon, lat)[0], lon)
    assert np.array_equal(coords.to_wgs84(lon, lat, "gcj02")[1], lat)


def test_inputs_are_not_modified_and_wgs84_is_a_copy():
    lon, lat = np.array([116.4]), np.array([39.9])
    x, _ = coords.to_wgs84(lon, lat, "wgs84")
    x[0] = 0
    coords.to_wgs84(lon, lat, "bd09")
    assert lon[0] == 116.4
    assert lat[0] == 39.9


def test_unknown_crs_and_shape_mismatch():
    with pytest.raises(InputError, match="gcj02"):
        coords.to_wgs84(1.0, 2.0, "mars")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="same shape"):
        coords.to_wgs84([1.0, 2.0], [1.0], "gcj02")
