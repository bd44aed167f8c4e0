"""The Streamlit app, driven headless with streamlit.testing.v1.AppTest.

The app is pointed at the small Haidian fixture (COVERAGE_PLANNER_DEFAULT_OSM) and a
private network cache (COVERAGE_PLANNER_CACHE). AppTest cannot drive file_uploader or the
map component, so uploads go through ``session_state["pending_upload"]`` (the same path
the Load button takes) and a map click through ``session_state["clicked"]``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import shapely

from coverage.audit import AuditParams
from coverage.scenario import Scenario

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
HAIDIAN = ROOT / "data" / "beijing_haidian_cau.osm.bz2"

pytestmark = pytest.mark.slow

CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(autouse=True)
def _app_env(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    monkeypatch.setenv("COVERAGE_PLANNER_DEFAULT_OSM", str(HAIDIAN))
    monkeypatch.setenv("COVERAGE_PLANNER_CACHE", str(cache_dir))


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=120)


def started() -> AppTest:
    at = new_app().run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def pct(value: str) -> float:
    return float(value.rstrip("%"))


def share(at: AppTest, minutes: int) -> float:
    return pct(metrics(at)[f"{minutes} 分钟步行覆盖率"])


def active(at: AppTest) -> Scenario:
    scen = at.session_state["scenarios"]
    return scen[at.session_state["active"]]


def widget_labels(at: AppTest) -> dict[str, str]:
    """Every label on the page (title, tabs, headings, widgets, metrics), by where it is."""
    labels = {f"title {i}": e.value for i, e in enumerate(at.title)}
    labels |= {f"subheader {i}": e.value for i, e in enumerate(at.subheader)}
    labels |= {f"tab {i}": e.label for i, e in enumerate(at.tabs)}
    labels |= {f"expander {i}": e.label for i, e in enumerate(at.expander)}
    labels |= {f"metric {i}": e.label for i, e in enumerate(at.metric)}
    for kind in ("button", "radio", "slider", "multiselect", "selectbox", "checkbox"):
        labels |= {f"{kind} {e.key}": e.label for e in getattr(at, kind)}
    labels |= {f"text_input {e.key}": e.label for e in at.text_input}
    labels |= {f"download {e.key}": e.label for e in at.get("download_button")}
    return labels


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """app.py imported as a module (importing runs nothing: no ``__main__``)."""
    spec = importlib.util.spec_from_file_location("planner_app", APP)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "planner_app", mod)
    spec.loader.exec_module(mod)
    return mod


def test_default_load_shows_metrics() -> None:
    at = started()
    m = metrics(at)
    assert "5 分钟步行覆盖率" in m
    assert "15 分钟步行覆盖率" in m
    assert "15 分钟未覆盖人口" in m
    assert 0 <= share(at, 5) <= share(at, 15) <= 100
    assert "beijing_haidian_cau" in at.caption[0].value
    # centers from OSM tags: the planner is told why the shares may be low and what to do
    assert any("OSM" in c.value and "GCJ-02" in c.value for c in at.caption)


def test_results_with_polygons_are_kept_for_a_few_scenarios_only(app_module: ModuleType) -> None:
    """Memory stays bounded while a planner tries speeds: each result with polygons holds a
    city's areas (hundreds of MB at 300k nodes), and only the latest few stay cached."""
    import gc

    from coverage.scenario import ScenarioResult

    at = started()
    for speed in (3.0, 3.5, 4.0, 5.0, 5.5, 6.0, 6.5):
        at.slider(key="speed").set_value(speed).run()
        assert_ok(at)
    gc.collect()
    speeds = {
        float(o.scenario.speed_kmh)
        for o in gc.get_objects()
        if isinstance(o, ScenarioResult) and len(o.audit.service_areas)
    }
    assert 6.5 in speeds  # the one on screen
    assert len(speeds) <= app_module.AREAS_KEPT, speeds


def test_speed_change_changes_numbers() -> None:
    at = started()
    before = share(at, 15)
    at.slider(key="speed").set_value(2.5).run()
    assert_ok(at)
    assert active(at).speed_kmh == 2.5
    after = share(at, 15)
    assert after < before
    at.slider(key="speed").set_value(6.5).run()
    assert share(at, 15) > before


def test_language_switch() -> None:
    at = started()
    at.radio(key="lang").set_value("en").run()
    assert_ok(at)
    assert "Share within 15 min" in metrics(at)
    assert at.title[0].value.startswith("Walking coverage")
    labels = widget_labels(at)
    assert labels["tab 2"] == "Coverage curve"
    assert labels["download dl_summary.csv"] == "Summary (summary.csv)"
    chinese = {k: v for k, v in labels.items() if CJK.search(v) and k != "radio lang"}
    assert chinese == {}  # every label of the English page comes from the table's "en"


def test_chinese_page_labels_are_chinese() -> None:
    at = started()
    labels = widget_labels(at)
    assert len(labels) > 30
    assert labels["title 0"] == "党群服务中心步行覆盖规划"
    assert labels["radio lang"] == "语言 / Language"
    assert at.radio(key="lang").options == ["中文", "English"]
    not_chinese = {k: v for k, v in labels.items() if not CJK.search(v)}
    assert not_chinese == {}


@pytest.mark.figure
def test_downloads_offer_the_output_contract(app_module: ModuleType, cache_dir: Path) -> None:
    from coverage.inputs import CityInputs, load_city
    from coverage.pipeline import run

    at = started()
    keys = {b.key for b in at.get("download_button")}
    assert "dl_summary.csv" in keys
    assert "dl_proposed_sites.geojson" not in keys  # no proposal yet
    city = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    res = run(city, Scenario(name="方案一"), with_polygons=True)
    files = app_module.export_files(city, res, "en")
    offered = {name for name, _, _ in app_module.DOWNLOADS} - {"proposed_sites.geojson"}
    assert offered <= set(files)
    rows = files["summary.csv"].decode("utf-8-sig").splitlines()
    assert [r.split(",")[:2] for r in rows[1:]] == [["方案一", "5"], ["方案一", "15"]]
    doc = json.loads(files["summary.json"])
    assert doc["scenario"]["name"] == "方案一"


def test_add_station_by_click_does_not_lower_share(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    at = started()
    before = share(at, 15), share(at, 5)
    centers_before = int(metrics(at)["服务中心"])
    pt = haidian_extract.residential.geometry.representative_point().iloc[0]
    at.session_state["clicked"] = {"lat": pt.y, "lng": pt.x}
    at.run()
    assert not at.button(key="add_station").disabled
    at.button(key="add_station").click().run()
    assert_ok(at)
    assert len(active(at).added) == 1
    assert int(metrics(at)["服务中心"]) == centers_before + 1
    assert share(at, 15) >= before[0]
    assert share(at, 5) >= before[1]
    assert at.session_state["clicked"] is None
    at.button(key="undo_added").click().run()
    assert active(at).added == ()


def test_close_center_does_not_raise_share(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    at = started()
    pt = haidian_extract.residential.geometry.representative_point().iloc[-1]
    at.session_state["clicked"] = {"lat": pt.y, "lng": pt.x}
    at.run()
    at.button(key="add_station").click().run()
    before = share(at, 15)
    ids = at.multiselect(key="closed").options
    at.multiselect(key="closed").set_value(ids[:1]).run()
    assert_ok(at)
    assert len(active(at).closed) == 1
    assert share(at, 15) <= before


def test_closing_every_center_is_explained() -> None:
    at = started()
    ids = at.multiselect(key="closed").options
    at.multiselect(key="closed").set_value(ids).run()
    assert_ok(at)
    assert share(at, 15) == 0  # no station left: nobody is covered
    at.multiselect(key="closed").set_value([]).run()
    assert_ok(at)


def test_optimizer_k2_lists_sites_and_accept() -> None:
    at = started()
    at.number_input(key="opt_k").set_value(2)
    at.button(key="run_optimizer").click().run()
    assert_ok(at)
    assert active(at).siting is not None
    assert active(at).siting.k == 2
    tables = [d.value for d in at.dataframe]
    sites = tables[0]
    assert len(sites) == 2
    assert list(sites.columns) == ["排序", "经度", "纬度", "新增覆盖人口", "累计覆盖率"]
    assert list(sites.iloc[:, 0]) == [1, 2]
    before = share(at, 15)
    at.multiselect(key="accept_ranks").set_value([1, 2])
    at.button(key="accept_sites").click().run()
    assert_ok(at)
    s = active(at)
    assert len(s.accepted_sites) == 2
    assert s.siting is None
    assert share(at, 15) >= before


def test_another_k_reuses_the_numbers_and_coverage_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    from coverage import pipeline, siting
    from coverage.inputs import load_city

    searches: list[int] = []
    real = siting._coverage_matrix

    def counted(*args: Any, **kwargs: Any) -> Any:
        searches.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(siting, "_coverage_matrix", counted)
    at = started()
    after: list[int] = []
    for k in (2, 3):
        at.number_input(key="opt_k").set_value(k)
        at.button(key="run_optimizer").click().run()
        assert_ok(at)
        after.append(len(searches))
    assert after[1] == after[0]  # k = 3 searched nothing again (k = 2 may find them cached)
    s = active(at)
    assert s.siting is not None
    assert s.siting.k == 3
    fresh = pipeline.run(load_city(at.session_state["city_spec"]), s, with_polygons=False)
    assert fresh.siting is not None
    sites = at.dataframe[0].value
    shown = [float(str(v).replace(",", "")) for v in sites["新增覆盖人口"]]
    assert shown == pytest.approx(list(fresh.siting.sites["marginal_population"]), abs=0.5)
    assert share(at, 15) == pytest.approx(100 * fresh.audit.coverage["15"].share, abs=0.05)


def test_the_baseline_areas_are_kept_in_the_city_cache(cache_dir: Path) -> None:
    from coverage import audit, pipeline
    from coverage.inputs import load_city
    from coverage.isochrones import minute_spec

    at = started()
    city = load_city(at.session_state["city_spec"])
    base = Scenario(name="baseline")
    res = pipeline.run(city, base, with_polygons=True, per_center_polygons=False)
    params = res.audit.params
    spec = minute_spec(
        params.thresholds_min, params.speed_kmh, params.corridor_m, params.min_hole_area_m2
    )
    files = audit._polygon_files(city.net, res.centers, params, False, cache_dir, spec)
    assert files is not None
    assert all(f.is_file() for f in files)  # written by the app's first map
    cached = audit._cached_polygons(files, city.net)
    assert cached is not None
    assert list(shapely.to_wkb(cached[0].geometry.values)) == list(
        shapely.to_wkb(res.audit.service_areas.geometry.values)
    )


def test_exact_optimizer_for_a_target_share() -> None:
    at = started()
    at.radio(key="opt_mode").set_value("share").run()
    at.slider(key="opt_share_pct").set_value(60)
    at.checkbox(key="opt_exact").check()
    at.button(key="run_optimizer").click().run()
    assert_ok(at)
    req = active(at).siting
    assert req is not None
    assert req.exact
    assert req.target_share == 0.6
    answer = next(c.value for c in at.caption if "需新增" in c.value)  # the answer, in words
    n = len(at.dataframe[0].value)  # the proposed sites' table
    assert n >= 1
    assert f"需新增 {n} 个站点" in answer
    assert at.session_state["scenarios"]["baseline"].siting is None  # the baseline stays put
    assert "精确整数规划" in answer  # the method, in the planner's words
    assert "已证明" in answer  # whether the number of stations is proven minimal


def test_stop_keeps_the_stopped_solve_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A click while HiGHS runs stops it (the solver polls the app's check); Stop keeps the
    best sites found so far, flagged as stopped, instead of waiting out the solve."""
    from contextlib import contextmanager

    import coverage.progress

    real = coverage.progress.cancellable

    @contextmanager
    def clicked_meanwhile(check: object) -> Iterator[None]:
        with real(lambda: True):  # the run in which the planner clicks Stop
            yield

    at = started()
    at.checkbox(key="opt_exact").check().run()
    monkeypatch.setattr(coverage.progress, "cancellable", clicked_meanwhile)
    at.button(key="run_optimizer").click().run()
    monkeypatch.setattr(coverage.progress, "cancellable", real)
    assert_ok(at)
    assert at.session_state["stopped_run"][1].siting.stopped
    at.button(key="stop_optimizer").click().run()  # the Stop click's own rerun
    assert_ok(at)
    req = active(at).siting
    assert req is not None  # the request stays, with the kept answer
    assert req.exact
    assert any("已停止求解" in i.value for i in at.info)
    answer = next(c.value for c in at.caption if "需新增" in c.value or "新增" in c.value)
    assert "未证明最优" in answer
    assert "快速算法" in answer  # HiGHS never ran: the greedy + swap answer
    assert len(at.dataframe[0].value) >= 1  # the proposed sites
    assert not [b for b in at.button if b.key == "stop_optimizer"]
    at.run()  # kept for the session: no new solve, no Stop button
    assert_ok(at)
    assert "未证明最优" in next(c.value for c in at.caption if "未证明最优" in c.value)


def test_rerun_pending_reads_streamlits_request_state(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    def ctx(name: str) -> object:
        return SimpleNamespace(script_requests=SimpleNamespace(_state=SimpleNamespace(name=name)))

    for name, pending in (("CONTINUE", False), ("RERUN", True), ("STOP", True)):
        monkeypatch.setattr(app_module, "get_script_run_ctx", lambda n=name: ctx(n))
        assert app_module.rerun_pending() is pending
    monkeypatch.setattr(app_module, "get_script_run_ctx", lambda: None)  # no Streamlit run
    assert app_module.rerun_pending() is False


def test_compare_two_scenarios() -> None:
    at = started()
    at.text_input(key="new_name").set_value("faster")
    at.button(key="copy_scenario").click().run()
    assert_ok(at)
    assert list(at.session_state["scenarios"]) == ["baseline", "faster"]
    assert at.session_state["active"] == "faster"
    at.slider(key="speed").set_value(6.0).run()
    assert_ok(at)
    table = next(d.value for d in at.dataframe if "15 分钟覆盖率" in d.value.columns)
    assert list(table.index) == ["基准方案", "faster"]
    faster, base = (pct(table.loc[n, "15 分钟覆盖率"]) for n in ("faster", "基准方案"))
    assert faster >= base
    # the baseline's own change is "no change", never a green "+0.0"
    assert table.loc["基准方案", "15 分钟覆盖率变化"] == "无变化"
    # switching back shows the baseline's own speed
    at.selectbox(key="active_pick").set_value("baseline").run()
    assert at.slider(key="speed").value == pytest.approx(4.5)


def test_bad_osm_upload_shows_error_and_app_survives() -> None:
    at = started()
    good = metrics(at)
    at.session_state["pending_upload"] = {
        "source": "upload",
        "osm": ("broken.osm.bz2", b"BZh91AY&SYgarbage" * 10),
    }
    at.run()
    assert not at.exception
    assert at.error, "a corrupt upload must be reported"
    assert "Traceback" not in at.error[0].value
    assert metrics(at) == good  # still the previous city
    at.run()  # and the next rerun is clean
    assert_ok(at)
    at.slider(key="speed").set_value(5.0).run()
    assert_ok(at)


def test_garbage_centers_csv_shows_error() -> None:
    at = started()
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers": ("centers.csv", b"foo;bar\n\x00\x01,zz\n"),
    }
    at.run()
    assert not at.exception
    assert at.error
    at.run()
    assert_ok(at)
    assert "15 分钟步行覆盖率" in metrics(at)


def test_wrong_suffix_upload_is_refused() -> None:
    at = started()
    at.session_state["pending_upload"] = {"source": "upload", "osm": ("city.zip", b"PK\x03\x04")}
    at.run()
    assert at.error
    assert ".osm.pbf" in at.error[0].value


def test_accept_upload_limits(app_module: ModuleType) -> None:
    from coverage.errors import InputError

    mod = app_module

    up = mod.accept_upload("osm", "a.osm.pbf", b"x" * 10, max_mb=1)
    assert up.sha256
    assert up.name == "a.osm.pbf"
    with pytest.raises(InputError, match="limit"):
        mod.accept_upload("osm", "a.osm", b"x" * 2_000_001, max_mb=2)
    with pytest.raises(InputError, match="empty"):
        mod.accept_upload("centers", "c.csv", b"", max_mb=2)
    with pytest.raises(InputError, match="GeoJSON"):
        mod.accept_upload("centers", "c.xls", b"x", max_mb=2)  # old Excel; .xlsx is read


def test_sessions_do_not_share_scenarios() -> None:
    a = started()
    a.text_input(key="new_name").set_value("only-in-a")
    a.button(key="copy_scenario").click().run()
    a.slider(key="speed").set_value(3.0).run()
    b = started()
    assert list(b.session_state["scenarios"]) == ["baseline"]
    assert active(b).speed_kmh == 4.5
    assert "only-in-a" in a.session_state["scenarios"]


def test_load_scenario_json() -> None:
    at = started()
    s = Scenario(name="saved", audit=AuditParams(speed_kmh=5.5, thresholds_min=(5.0, 10.0, 15.0)))
    at.session_state["pending_scenario"] = s.to_json().encode()
    at.run()
    assert_ok(at)
    assert at.session_state["active"] == "saved"
    assert active(at).speed_kmh == 5.5
    assert "10 分钟步行覆盖率" in metrics(at)
    at.session_state["pending_scenario"] = b"{not json"
    at.run()
    assert at.error
    assert at.session_state["active"] == "saved"


def test_scenario_download_round_trips() -> None:
    at = started()
    s = active(at)
    assert Scenario.from_json(s.to_json()) == s
    assert json.loads(s.to_json())["schema_version"] == 2


def test_load_scenario_json_version_1() -> None:
    """A scenario saved by schema version 1 (flat fields, a siting request) still loads."""
    at = started()
    v1 = {
        "schema_version": 1,
        "name": "old",
        "speed_kmh": 5.0,
        "thresholds_min": [5.0, 10.0],
        "level_thresholds_min": None,
        "added": [],
        "closed": [],
        "siting": None,
        "accepted_sites": [],
    }
    at.session_state["pending_scenario"] = json.dumps(v1).encode()
    at.run()
    assert_ok(at)
    assert at.session_state["active"] == "old"
    assert active(at).audit == AuditParams(speed_kmh=5.0, thresholds_min=(5.0, 10.0))


def test_centers_csv_and_districts_upload(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    from shapely.geometry import box, mapping

    at = started()
    minx, miny, maxx, maxy = haidian_extract.residential.total_bounds
    pts = haidian_extract.residential.geometry.representative_point()
    csv = "name,lon,lat\n" + "".join(
        f"站点{i},{p.x:.7f},{p.y:.7f}\n" for i, p in enumerate(pts.iloc[:2])
    )
    midx = (minx + maxx) / 2
    districts = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "西区"},
                "geometry": mapping(box(minx - 0.01, miny - 0.01, midx, maxy + 0.01)),
            },
            {
                "type": "Feature",
                "properties": {"name": "东区"},
                "geometry": mapping(box(midx, miny - 0.01, maxx + 0.01, maxy + 0.01)),
            },
        ],
    }
    at.session_state["centers_src"] = "file"
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers": ("centers.csv", csv.encode("utf-8")),
        "districts": ("districts.geojson", json.dumps(districts, ensure_ascii=False).encode()),
    }
    at.run()
    assert_ok(at)
    assert metrics(at)["服务中心"] == "2"
    assert not any("GCJ-02" in c.value for c in at.caption)  # the user's own list: no OSM hint
    table = next(d.value for d in at.dataframe if "区划" in d.value.columns)
    assert set(table["区划"]) == {"西区", "东区"}
    # back to the default data: OSM centers, no districts
    at.session_state["pending_upload"] = {"source": "default"}
    at.run()
    assert_ok(at)
    assert metrics(at)["服务中心"] == "1"


def _census_over(extract: Any, extra: dict[str, int] | None = None) -> bytes:
    """A census GeoJSON of one 示例社区 of 12,000 residents around ``extract``'s housing."""
    from shapely.geometry import box, mapping

    minx, miny, maxx, maxy = extract.residential.total_bounds
    area = box(minx - 0.001, miny - 0.001, maxx + 0.001, maxy + 0.001)
    props = {"名称": "示例社区", "常住人口": 12000} | (extra or {})
    feature = {"type": "Feature", "properties": props, "geometry": mapping(area)}
    collection = {"type": "FeatureCollection", "features": [feature]}
    return json.dumps(collection, ensure_ascii=False).encode()


def test_census_upload_replaces_the_osm_estimate(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: a census polygon uploaded in the data panel; its count is the city's residents."""
    at = started()
    census = _census_over(haidian_extract)
    at.session_state["pending_upload"] = {
        "source": "default",
        "census": ("普查.geojson", census),
    }
    at.run()
    assert_ok(at)
    spec = at.session_state["city_spec"]
    assert spec.census is not None
    assert spec.census.name == "普查.geojson"
    assert any("12,000" in c.value or "12000" in c.value for c in at.caption)
    # The OSM centers of a city that is not the embedded one: the caption says so.
    assert any("OpenStreetMap" in c.value for c in at.caption)


@pytest.mark.parametrize("map_first_nodes", ["", "0"], ids=["one-pass", "map-first"])
def test_centers_file_after_a_closure_drops_the_closure(  # type: ignore[no-untyped-def]
    haidian_extract, map_first_nodes, monkeypatch
) -> None:
    """Issue 13: a closure of an OSM center survives into a centers file that lacks it. It is
    dropped from every scenario with a notice; the page keeps its metrics and map.

    Map-first (issue 16, a city above ``MAP_FIRST_NODES``): the map is drawn from the
    numbers, the new city's areas are built below it and the page reruns; the notice of the
    run before the rerun is still on the page after it.
    """
    monkeypatch.setenv("COVERAGE_PLANNER_MAP_FIRST_NODES", map_first_nodes)
    at = started()
    ids = at.multiselect(key="closed").options
    at.multiselect(key="closed").set_value(ids[:1]).run()
    at.button(key="copy_scenario").click().run()  # the closure is now in two scenarios
    # the baseline is never edited: the closure went into the working scenario, then its copy
    assert [len(s.closed) for s in at.session_state["scenarios"].values()] == [0, 1, 1]
    pts = haidian_extract.residential.geometry.representative_point()
    csv = "name,lon,lat\n" + "".join(
        f"站点{i},{p.x:.7f},{p.y:.7f}\n" for i, p in enumerate(pts[:2])
    )
    at.session_state["centers_src"] = "file"
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers_src": "file",
        "centers": ("centers.csv", csv.encode("utf-8")),
    }
    at.run()
    assert_ok(at)
    assert [s.closed for s in at.session_state["scenarios"].values()] == [(), (), ()]
    assert any("已从所有方案中取消这些关闭" in w.value for w in at.warning)
    assert metrics(at)["服务中心"] == "2"
    assert "15 分钟步行覆盖率" in metrics(at)
    at.run()  # the next rerun is clean too
    assert_ok(at)
    assert at.multiselect(key="closed").value == []


@pytest.mark.parametrize(
    ("req", "shown"),
    [
        (
            {"source": "default", "centers_src": "file", "centers": ("站点.xls", b"PK\x03\x04")},
            "“站点.xls”不是 GeoJSON",
        ),
        ({"source": "default", "centers_src": "file"}, "没有可用的服务中心文件"),
        ({"source": "upload", "centers_src": "osm"}, "没有可用的 OSM 文件"),
    ],
)
def test_refused_upload_loads_nothing_else(req: dict[str, object], shown: str) -> None:
    """A refused (or missing) file never falls back to OSM centers or another city: the
    refusal is in the user's language and the session is exactly as it was."""
    at = started()
    ids = at.multiselect(key="closed").options
    at.multiselect(key="closed").set_value(ids[:1]).run()
    spec, scen = at.session_state["city_spec"], dict(at.session_state["scenarios"])
    good = metrics(at)
    at.session_state["pending_upload"] = req
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert shown in at.error[0].value
    assert "application/" not in at.error[0].value
    assert at.session_state["city_spec"] == spec
    assert dict(at.session_state["scenarios"]) == scen
    assert metrics(at) == good
    at.run()  # the refusal is not retried
    assert_ok(at)


def test_failed_load_leaves_the_session_as_it_was() -> None:
    """Issue 17: the new city is committed only once it has loaded, and not retried."""
    at = started()
    spec, named = at.session_state["city_spec"], "city_name" in at.session_state
    at.session_state["pending_upload"] = {
        "source": "upload",
        "osm": ("broken.osm.bz2", b"BZh91AY&SYgarbage" * 10),
    }
    at.run()
    assert at.error
    assert at.session_state["city_spec"] == spec
    assert ("city_name" in at.session_state) == named
    assert "pending_spec" not in at.session_state
    at.run()
    assert_ok(at)  # no second attempt, no second error


RAW_FIELD = re.compile(
    r"^(share|uncovered_population|population_covered|stations|sites)_|^(units|centers|population|scenario|share_after|rank|lon|lat)$"
)


def test_compare_and_district_tables_are_labelled_in_each_language() -> None:
    """Issue 13: no raw field name in the zh tables, no Chinese label in the en ones."""
    at = started()
    at.button(key="copy_scenario").click().run()
    at.button(key="run_optimizer").click().run()  # a proposal in one scenario only
    at.multiselect(key="compare_pick").set_value(list(at.session_state["scenarios"])).run()
    assert_ok(at)
    for language in ("zh", "en"):
        at.radio(key="lang").set_value(language).run()
        assert_ok(at)
        tables = [d.value for d in at.dataframe]
        assert len(tables) >= 3, language  # sites, stations, compare (districts need a file)
        shown = " ".join(c.value for c in at.caption) + " ".join(df.to_string() for df in tables)
        for word in ("None", "nan", " pp", "greedy+swap", "share_"):
            assert word not in shown, (language, word)
        for df in tables:
            names = [str(c) for c in df.columns] + [str(df.index.name or "")]
            assert not [n for n in names if RAW_FIELD.search(n)], (language, names)
            if language == "en":
                assert not [n for n in names if CJK.search(n)], names
            else:
                assert all(CJK.search(n) for n in names if n), names


# --- issue 15: distance thresholds and a standard in the parameters panel ---


def test_distance_thresholds_and_standard_in_the_panel() -> None:
    at = started()
    at.multiselect(key="distances").set_value([300.0, 1000.0]).run()
    assert_ok(at)
    assert active(at).audit.thresholds_m == (300.0, 1000.0)
    at.selectbox(key="standard").set_value("gb50180").run()
    assert_ok(at)
    audit = active(at).audit
    assert audit.standard is not None
    assert audit.standard.key == "gb50180"
    assert audit.thresholds_m == (300.0, 1000.0)  # the standard keeps the distances
    table = next(df for df in at.dataframe if "生活圈" in df.value.columns)  # labelled
    assert set(table.value["级别"]) == {"区级", "街道", "社区"}
    assert all(v.endswith("%") for v in table.value["覆盖率"])
    at.selectbox(key="standard").set_value("").run()
    assert_ok(at)
    assert active(at).audit.standard is None


def test_baseline_is_never_edited_and_reset_restores_it() -> None:
    """Issue 13: an edit of the baseline goes into a working scenario; Reset undoes it."""
    at = started()
    base_share = share(at, 15)
    at.slider(key="speed").set_value(3.0).run()
    assert_ok(at)
    scen = at.session_state["scenarios"]
    assert list(scen) == ["baseline", "working"]
    assert scen["baseline"] == Scenario(name="baseline")  # untouched
    assert scen["working"].speed_kmh == 3.0
    assert at.session_state["active"] == "working"
    deltas = {m.label: m.delta for m in at.metric}
    assert "个百分点" in deltas["15 分钟步行覆盖率"]  # a real change, in points, never "pp"
    at.button(key="reset_scenario").click().run()
    assert_ok(at)
    assert at.session_state["scenarios"]["working"] == Scenario(name="working")
    assert at.slider(key="speed").value == pytest.approx(4.5)
    assert share(at, 15) == base_share
    # no change is shown as no change: no delta at all, not a green "+0.0"
    assert all(not m.delta for m in at.metric), [m.delta for m in at.metric]


def test_station_states_in_the_stations_table(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    """Existing, added, accepted and closed stations are told apart, with the names given."""
    at = started()
    ids = at.multiselect(key="closed").options
    pt = haidian_extract.residential.geometry.representative_point().iloc[0]
    at.session_state["clicked"] = {"lat": pt.y, "lng": pt.x}
    at.run()
    at.text_input(key="station_name").set_value("新站甲")
    at.button(key="add_station").click().run()
    assert_ok(at)
    at.number_input(key="opt_k").set_value(1)
    at.button(key="run_optimizer").click().run()
    at.multiselect(key="accept_ranks").set_value([1])
    at.button(key="accept_sites").click().run()
    at.multiselect(key="closed").set_value(ids[:1]).run()
    assert_ok(at)
    table = next(d.value for d in at.dataframe if "状态" in d.value.columns)
    states = dict(zip(table["名称"], table["状态"], strict=True))
    assert states["新站甲"] == "新增"
    assert states["采纳站点 1"] == "采纳的建议站点"
    assert "已关闭（可恢复）" in states.values()
    assert list(table["状态"]).count("已关闭（可恢复）") == 1
    s = active(at)
    assert [a.name for a in s.accepted_sites] == ["采纳站点 1"]  # not "#1"
    at.button(key="restore_closed").click().run()
    assert_ok(at)
    assert active(at).closed == ()


def test_file_errors_are_translated_without_internal_paths() -> None:
    """A broken GeoJSON is explained in Chinese with the user's file name; no /vsimem path."""
    at = started()
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers_src": "file",
        "centers": ("我的站点.geojson", b'{"type": "FeatureCollection", "features": [{'),
    }
    at.run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert "“我的站点.geojson”无法按 GeoJSON / GeoPackage 读取" in text
    assert "/vsimem" not in text
    assert "tmp" not in text
    at = new_app()
    at.session_state["lang"] = "en"
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers_src": "file",
        "centers": ("mine.csv", b"name,lon,lat\n"),
    }
    at.run()
    text = " ".join(e.value for e in at.error)
    assert "'mine.csv' has a header but no data rows" in text
    assert not CJK.search(text), text


def test_osm_errors_and_level_warnings_are_in_chinese(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    """osm.py's refusals and the level warnings carry codes: the zh page shows no English."""
    at = started()
    at.session_state["pending_upload"] = {
        "source": "upload",
        "osm": ("空白.osm", b'<?xml version="1.0"?><osm version="0.6"></osm>'),
    }
    at.run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert "“空白.osm”中没有可步行的道路" in text
    assert "walkable" not in text
    assert "Check that" not in text
    at.session_state["pending_upload"] = {
        "source": "upload",
        "osm": ("网页.osm", b"<!DOCTYPE html><html><body>404</body></html>"),
    }
    at.run()
    text = " ".join(e.value for e in at.error)
    assert "“网页.osm”不是 OpenStreetMap 数据文件" in text
    assert "root element" not in text
    pts = haidian_extract.residential.geometry.representative_point()
    csv = "name,lon,lat,level\n" + "".join(
        f"站点{i},{p.x:.7f},{p.y:.7f},{lv}\n"
        for i, (p, lv) in enumerate(zip(pts.iloc[:2], ["社区", "大型"], strict=True))
    )
    at.session_state["centers_src"] = "file"
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers": ("站点.csv", csv.encode("utf-8")),
    }
    at.run()
    assert_ok(at)
    notes = " ".join(w.value for w in at.warning)
    assert "站点等级一列中有无法识别的值：大型" in notes
    assert "not a known level" not in notes


def test_summary_csv_download_is_labelled_and_rounded(
    app_module: ModuleType, cache_dir: Path
) -> None:
    import io

    import pandas as pd

    from coverage.inputs import CityInputs, load_city
    from coverage.pipeline import run

    city = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    res = run(city, Scenario(name="方案一"), with_polygons=True)
    for language, share_col, pop_col in (
        ("zh", "覆盖率（%）", "覆盖人口"),
        ("en", "Share covered (%)", "Residents covered"),
    ):
        files = app_module.export_files(city, res, language)
        table = pd.read_csv(io.BytesIO(files["summary.csv"]), encoding="utf-8-sig")
        assert share_col in table.columns
        assert table.iloc[:, 0].tolist() == ["方案一", "方案一"]  # result.scenario.name
        for i, key in enumerate(("5", "15")):
            stats = res.audit.coverage[key]
            assert table.loc[i, share_col] == round(stats.share * 100, 1)  # percent, 1 decimal
            assert table.loc[i, pop_col] == round(stats.population_covered)  # whole residents


def test_station_names_edited_in_the_table(app_module: ModuleType) -> None:
    from coverage.scenario import AddedStation

    s = Scenario(
        added=(AddedStation(lon=116.34, lat=40.0, name="新增站点 1"),),
        accepted_sites=(AddedStation(lon=116.35, lat=40.0, name="采纳站点 1"),),
    )
    rows = [
        {"state": "existing", "edit_index": -1},
        {"state": "added", "edit_index": 0},
        {"state": "accepted", "edit_index": 0},
    ]
    edits = {0: {"名称": "改不了"}, 1: {"名称": " 东门站 "}, 2: {"名称": "北站"}, 5: {"名称": "x"}}
    new = app_module.renamed(s, rows, edits, "名称")
    assert [a.name for a in new.added] == ["东门站"]
    assert [a.name for a in new.accepted_sites] == ["北站"]
    assert new.added[0].lon == 116.34  # only the name changes
    assert app_module.renamed(s, rows, {1: {"名称": "  "}}, "名称") == s  # blank keeps the name


# --- issue 15 app side (F1): capacity widgets, error codes, own service areas ---


def test_capacity_widgets_set_the_scenario_and_show_the_headline(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: a centers file's floor-area column, then the household size and the standard
    go into the scenario's CapacityParams and the headline states the share meeting it."""
    at = started()
    assert at.number_input(key="household_size").disabled  # OSM centers: no floor areas
    pts = haidian_extract.residential.geometry.representative_point()
    csv = "name,lon,lat,面积\n" + "".join(
        f"站点{i},{p.x:.7f},{p.y:.7f},{200 * (i + 1)}\n" for i, p in enumerate(pts.iloc[:2])
    )
    at.session_state["centers_src"] = "file"
    at.session_state["floor_column"] = "面积"
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers_src": "file",
        "centers": ("站点.csv", csv.encode("utf-8")),
    }
    at.run()
    assert_ok(at)
    assert not at.number_input(key="household_size").disabled
    assert "㎡" in " ".join(c.value for c in at.caption)  # the capacity headline (defaults)
    at.number_input(key="household_size").set_value(3.0).run()
    at.number_input(key="capacity_standard").set_value(40.0).run()
    assert_ok(at)
    cap = active(at).capacity
    assert cap is not None
    assert (cap.household_size, cap.standard_m2_per_100_households) == (3.0, 40.0)
    assert at.session_state["scenarios"]["baseline"].capacity is None  # the baseline stays
    text = " ".join(c.value for c in at.caption)
    assert "≥ 40 ㎡" in text, text  # the headline at the planner's standard
    at.button(key="reset_scenario").click().run()
    assert at.number_input(key="household_size").value == pytest.approx(2.62)


def test_census_and_workbook_errors_are_translated() -> None:
    """Issue 13/14: census, districts and .xlsx errors in the user's language, with the file's name."""
    import io

    from openpyxl import Workbook

    points = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"population": 100},
                    "geometry": {"type": "Point", "coordinates": [116.35, 40.0]},
                }
            ],
        }
    ).encode()
    at = started()
    at.session_state["pending_upload"] = {"source": "default", "census": ("普查.geojson", points)}
    at.run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert "“普查.geojson”" in text, text
    assert "面" in text, text
    assert "expected" not in text, text
    buf = io.BytesIO()
    wb = Workbook()
    wb.active.title = "站点"
    wb.save(buf)
    at = new_app()
    at.session_state["lang"] = "en"
    at.session_state["pending_upload"] = {
        "source": "default",
        "centers_src": "file",
        "centers": ("stations.xlsx", buf.getvalue()),
    }
    at.run()
    text = " ".join(e.value for e in at.error)
    assert "'stations.xlsx': the sheet is empty" in text, text
    assert not CJK.search(text), text


def test_own_service_areas_only_when_shown_or_exported(
    app_module: ModuleType, cache_dir: Path
) -> None:
    """The map's run skips each station's own areas; the downloads add them back, equal to
    the CLI's (pipeline.run with its defaults)."""
    from coverage.inputs import CityInputs, load_city
    from coverage.pipeline import run

    city = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    s = Scenario(name="方案一")
    unions = run(city, s, with_polygons=True, per_center_polygons=False)
    assert set(unions.audit.service_areas["center_id"]) == {"all"}
    assert not app_module.has_own_areas(unions)
    full = app_module.with_own_areas(city, unions)
    cli = run(city, s, with_polygons=True)
    assert app_module.has_own_areas(full)
    assert full.audit.service_areas.geometry.to_wkb().tolist() == (
        cli.audit.service_areas.geometry.to_wkb().tolist()
    )
    assert list(full.audit.service_areas["center_id"]) == list(cli.audit.service_areas["center_id"])
    at = started()
    at.checkbox(key="own_areas").check().run()
    assert_ok(at)


def test_translated_choices_survive_a_language_switch(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A choice widget holds its shown label: after 中文 → English the page still sent the
    Chinese label, which the English options lack, and the optimizer ran for a target share
    (found in the browser walk on the embedded city). The app maps a label of either
    language back to its option, in callbacks and before the widgets are drawn."""
    from types import SimpleNamespace

    from coverage.i18n import t

    state = {
        "lang": "en",
        "lang_seen": "zh",
        "opt_mode": t("app.opt.mode.k", "zh"),
        "tiles": t("app.tiles.streets", "zh"),
        "centers_crs": "gcj02",
    }
    monkeypatch.setattr(app_module, "st", SimpleNamespace(session_state=state))
    assert app_module.choice("opt_mode", "share") == "k"
    assert app_module.choice("tiles", "osm") == "streets"
    assert app_module.choice("source", "default") == "default"  # not drawn yet
    state["opt_mode"] = "no such label"
    assert app_module.choice("opt_mode", "k") == "k"
    state["opt_mode"] = t("app.opt.mode.share", "en")
    app_module.keep_choices()
    assert (state["opt_mode"], state["tiles"], state["centers_crs"]) == (
        "share",
        "streets",
        "gcj02",
    )
    assert state["lang_seen"] == "en"


# --- issue 15: a local standard file and walking speeds per group ---------------------------

LOCAL_TOML = """name = "本地标准"
title = "本地 15 分钟标准"
source = "某市规划, 2024"

[[levels]]
level = "street"
minutes = 10

[[levels]]
level = "community"
meters = 300
""".encode()


def test_local_standard_file_next_to_the_presets() -> None:
    """A standard file read in the panel judges the levels as --standard FILE does; back and forth."""
    at = started()
    at.session_state["pending_standard"] = ("本地标准.toml", LOCAL_TOML)
    at.run()
    assert_ok(at)
    std = active(at).audit.standard
    assert std is not None
    assert (std.key, [c.key for c in std.circles]) == ("本地标准", ["street", "community"])
    assert at.selectbox(key="standard").value == "__local__"
    table = next(df for df in at.dataframe if "生活圈" in df.value.columns)
    assert set(table.value["级别"]) == {"街道", "社区"}
    assert any("已读取本地标准“本地标准.toml”：2 级" in c.value for c in at.caption)
    at.selectbox(key="standard").set_value("gb50180").run()
    assert_ok(at)
    assert active(at).audit.standard.key == "gb50180"
    at.selectbox(key="standard").set_value("__local__").run()
    assert_ok(at)
    assert active(at).audit.standard == std  # the file's standard stays on offer


@pytest.mark.parametrize(
    ("name", "data", "zh"),
    [
        ("坏标准.toml", b'[[levels]]\nlevel = "street"\nminutes = 500\n', "数值有误"),
        ("坏标准.toml", b"[[levels]\n", "不是有效的 TOML 文件"),
        ("坏标准.csv", b"level,minutes\nstreet,10\nstreet,15\n", "出现了不止一次"),
        ("坏标准.json", b'{"levels": [{"minutes": 5}]}', "缺少 `level`"),
        ("坏标准.txt", b"level,minutes\n", "格式不支持"),
    ],
)
def test_bad_standard_file_is_explained_in_the_users_language(
    name: str, data: bytes, zh: str
) -> None:
    at = started()
    at.session_state["pending_standard"] = (name, data)
    at.run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert f"“{name}”" in text, text
    assert zh in text, text
    assert "Standard file" not in text, text
    assert "/tmp" not in text, text
    assert active(at).audit.standard is None  # nothing changed
    at = new_app()
    at.session_state["lang"] = "en"
    at.session_state["pending_standard"] = (name, data)
    at.run()
    text = " ".join(e.value for e in at.error)
    assert repr(name) in text, text
    assert not CJK.search(text.replace(name, "")), text


def test_group_walking_speeds_in_the_panel(haidian_extract) -> None:  # type: ignore[no-untyped-def]
    """A census with a 60岁及以上 column: its speed widget shows the cited default and sets the scenario."""
    at = started()
    census = _census_over(haidian_extract, {"60岁及以上": 3000})
    at.session_state["group_columns"] = "60岁及以上"
    at.session_state["pending_upload"] = {
        "source": "default",
        "census": ("普查.geojson", census),
    }
    at.run()
    assert_ok(at)
    widget = at.number_input(key="group_speed::60岁及以上")
    assert widget.value == pytest.approx(3.3)
    assert widget.label == "“60岁及以上”步行速度（公里/小时）"
    assert any("TCRP 第 112 号报告" in c.value for c in at.caption)
    groups = next(df for df in at.dataframe if "人群" in df.value.columns)
    assert set(groups.value["步行速度（公里/小时）"]) == {"3.3"}
    widget.set_value(2.5).run()
    assert_ok(at)
    assert dict(active(at).groups.speeds_kmh) == {"60岁及以上": 2.5}
    groups = next(df for df in at.dataframe if "人群" in df.value.columns)
    assert set(groups.value["步行速度（公里/小时）"]) == {"2.5"}
    assert at.session_state["scenarios"]["baseline"].groups.speeds_kmh == {}  # baseline stays
    at.number_input(key="group_speed::60岁及以上").set_value(3.3).run()
    assert dict(active(at).groups.speeds_kmh) == {}  # the default is not stored


def test_map_first_draws_the_page_of_a_new_speed_after_its_areas(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 16: above ``MAP_FIRST_NODES`` a new speed's page is drawn twice, the map from its
    numbers and then, once its areas are built, the whole page; it ends as the one-pass page:
    the same numbers, the tabs, the areas shared for the next session."""
    monkeypatch.setenv("COVERAGE_PLANNER_MAP_FIRST_NODES", "0")
    at = started()
    at.slider(key="speed").set_value(3.3).run()  # a speed no other test computes
    assert_ok(at)
    assert len(at.tabs) == 6, [t.label for t in at.tabs]
    first = metrics(at)
    monkeypatch.setenv("COVERAGE_PLANNER_MAP_FIRST_NODES", "")
    again = started()
    again.slider(key="speed").set_value(3.3).run()  # one pass: the areas are shared now
    assert_ok(again)
    assert metrics(again) == first
    assert len(again.tabs) == 6
