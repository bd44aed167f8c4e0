"""Concurrency: shared caches and shared city data under several writers and sessions.

Also holds the XSS checks (a hostile OSM ``name`` shown in maps, report and app), because
they share the small hostile city built here.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import GRID

ROOT = Path(__file__).resolve().parents[1]
XSS_OSM = ROOT / "tests" / "data" / "hostile" / "xss_center.osm"
SCRIPT = "<script>alert(1)</script>"


def _build(args: tuple[str, str]) -> tuple[int, int, float, str]:
    from coverage.netcache import walk_network

    osm, cache = args
    net = walk_network(osm, cache_dir=cache)
    digest = hashlib.sha256(net.edge_length_m.tobytes() + net.node_x.tobytes()).hexdigest()
    return net.n_nodes, net.n_edges, net.length_km, digest


def test_parallel_processes_share_one_cache_dir(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_build, [(str(GRID), str(cache))] * 8)
    assert len(set(results)) == 1, results
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1, files
    assert files[0].startswith("walk-")
    assert files[0].endswith(".npz")
    assert _build((str(GRID), str(cache))) == results[0]  # loads intact from the cache


def _fingerprint(obj: Any) -> str:
    h = hashlib.sha256()
    if isinstance(obj, pd.DataFrame):
        frame = pd.DataFrame(obj).copy()
        if "geometry" in frame:
            frame["geometry"] = [g.wkb_hex for g in obj.geometry.values]
        h.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
        h.update(repr(list(obj.columns)).encode())
        h.update(repr(getattr(obj, "crs", None)).encode())
    else:
        for name in ("node_x", "node_y", "edge_u", "edge_v", "edge_length_m"):
            h.update(np.ascontiguousarray(getattr(obj, name)).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def xss_city(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from coverage.inputs import CityInputs, load_city

    return load_city(CityInputs(osm=XSS_OSM, cache_dir=tmp_path_factory.mktemp("cache")))


def test_pipeline_run_never_mutates_city_data(xss_city: Any) -> None:
    from coverage.audit import AuditParams
    from coverage.pipeline import run
    from coverage.scenario import AddedStation, Scenario
    from coverage.siting import SitingParams

    city = xss_city
    before = {k: _fingerprint(getattr(city, k)) for k in ("net", "centers", "demand")}
    closed = tuple(city.centers["center_id"][:1])
    scenarios = [
        Scenario(),
        Scenario(
            name="slow",
            audit=AuditParams(speed_kmh=3.0, thresholds_min=(3.0, 10.0)),
            closed=closed,
            added=(AddedStation(116.2990, 40.0010, "替代站"),),
        ),
        Scenario(name="add", added=(AddedStation(116.3050, 40.0030, "新站"),)),
        Scenario(name="site", siting=SitingParams(k=1, minutes=5.0)),
    ]
    for s in scenarios:
        run(city, s, with_polygons=False)
    after = {k: _fingerprint(getattr(city, k)) for k in ("net", "centers", "demand")}
    assert after == before


# --- XSS ------------------------------------------------------------------------------------


def test_hostile_name_is_read_verbatim(xss_city: Any) -> None:
    assert SCRIPT in xss_city.centers["name"].tolist()[0]


def _assert_no_live_markup(page: str) -> None:
    assert SCRIPT not in page
    assert "<img src=x onerror" not in page
    assert "alert(2)" not in page or "&lt;img" in page or "\\u003cimg" in page


def test_map_popups_escape_osm_names(xss_city: Any) -> None:
    from coverage.maps import MapLayers, coverage_map
    from coverage.pipeline import run
    from coverage.scenario import Scenario

    res = run(xss_city, Scenario(), with_polygons=False)
    m = coverage_map(MapLayers(centers=res.centers, demand=res.audit.demand))
    page = m.get_root().render()
    _assert_no_live_markup(page)
    assert "&lt;script&gt;" in page or "&amp;lt;script&amp;gt;" in page


def test_report_html_escapes_osm_names(xss_city: Any) -> None:
    from coverage import export
    from coverage.pipeline import run
    from coverage.scenario import Scenario

    res = run(xss_city, Scenario(), with_polygons=False)
    files = export.output_files(res, xss_city, title=f"report {SCRIPT}")
    page = files["report.html"].decode("utf-8")
    # the map lives in an iframe srcdoc (escaped once more); check the decoded layers too
    _assert_no_live_markup(page)
    for srcdoc in re.findall(r'srcdoc="([^"]*)"', page):
        import html

        _assert_no_live_markup(html.unescape(srcdoc))
    centers = json.loads(files["centers.geojson"])
    assert (
        SCRIPT in centers["features"][0]["properties"]["name"]
    )  # data kept verbatim in data files


def test_streamlit_config_binds_localhost_with_xsrf() -> None:
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server = cfg["server"]
    assert server["address"] in {"localhost", "127.0.0.1"}
    assert server["enableXsrfProtection"] is True
    assert 0 < server["maxUploadSize"] <= 500
    assert cfg["client"]["showErrorDetails"] is False


# --- the app ----------------------------------------------------------------------------------


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COVERAGE_PLANNER_DEFAULT_OSM", str(XSS_OSM))
    monkeypatch.setenv("COVERAGE_PLANNER_CACHE", str(tmp_path / "cache"))


@pytest.mark.slow
@pytest.mark.usefixtures("app_env")
def test_two_app_sessions_do_not_share_scenarios() -> None:
    testing = pytest.importorskip("streamlit.testing.v1")
    a = testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    b = testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not a.exception
    assert not b.exception
    a.slider(key="speed").set_value(2.5).run()
    b.run()
    sa = a.session_state["scenarios"][a.session_state["active"]]
    sb = b.session_state["scenarios"][b.session_state["active"]]
    assert sa.speed_kmh == 2.5
    assert sb.speed_kmh == 4.5
    for at in (a, b):  # the hostile center name never reaches the page as markup
        for el in [*at.markdown, *at.caption, *at.error, *at.warning]:
            assert SCRIPT not in str(el.value)


@pytest.mark.usefixtures("app_env")
def test_app_map_escapes_osm_names(xss_city: Any) -> None:
    import sys

    from coverage.pipeline import run
    from coverage.scenario import Scenario

    sys.path.insert(0, str(ROOT))
    try:
        import app
    finally:
        sys.path.remove(str(ROOT))
    res = run(xss_city, Scenario(), with_polygons=False)
    m = app.build_map(xss_city, res, "osm")
    _assert_no_live_markup(m.get_root().render())
