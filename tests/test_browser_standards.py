"""Issue 15 in a real browser: the local standard uploader and the per-group walking speeds.

Headless Debian Chromium (Playwright) against ``streamlit run app.py``, as tests/test_browser.py;
the zh page must show these widgets without English beyond file names, field names typed as
is and the cited report. The screenshot is kept in test-artifacts/standards/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve_app, settle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

#: English words allowed in these zh widgets: the cited report and its author, the formats.
ALLOWED = {"TCRP", "Fitzpatrick", "TOML", "JSON", "CSV", "MB", "toml", "json", "csv"}

LOCAL = """name = "local-demo"
title = "本地示例标准"

[[levels]]
level = "street"
minutes = 10

[[levels]]
level = "community"
meters = 300
"""


def shown_text(locator: Any) -> str:
    """Return the text a reader sees: without icon ligatures ("add", "keyboard_arrow_down") and
    the screen-reader text of Streamlit's icon-only buttons ("add icon")."""
    return str(
        locator.evaluate(
            "el => { const c = el.cloneNode(true);"
            " c.querySelectorAll(\"[data-testid='stIconMaterial'], button[kind='borderlessIcon']\")"
            ".forEach(n => n.remove());"
            " return c.innerText || c.textContent; }"
        )
    )


def english_words(text: str) -> list[str]:
    """Words of two or more Latin letters, beyond the allowed ones and file names."""
    text = re.sub(r"[\w-]*\.(?:toml|json|csv|geojson)\b", " ", text)
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in ALLOWED]


def test_standard_file_and_group_speeds_in_chinese(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, haidian_extract: Any
) -> None:
    from shapely.geometry import box, mapping

    minx, miny, maxx, maxy = haidian_extract.residential.total_bounds
    census = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"名称": "示例社区", "常住人口": 12000, "60岁及以上": 3000},
                "geometry": mapping(box(minx - 0.001, miny - 0.001, maxx + 0.001, maxy + 0.001)),
            }
        ],
    }
    census_path = tmp_path / "普查.geojson"
    census_path.write_text(json.dumps(census, ensure_ascii=False), encoding="utf-8")
    std_path = tmp_path / "本地标准.toml"
    std_path.write_text(LOCAL, encoding="utf-8")
    shots = ARTIFACTS / "standards"
    shots.mkdir(parents=True, exist_ok=True)
    with (
        serve_app(tmp_path_factory) as url,
        sync_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.get_by_text("15 分钟步行覆盖率").first.wait_for(timeout=180_000)
        settle(page)
        # a census with a group column, through the data panel
        page.get_by_text("数据", exact=True).click()
        census_up = page.locator("[data-testid='stFileUploader']").filter(has_text="普查人口")
        census_up.locator("input[type='file']").set_input_files(str(census_path))
        page.get_by_text("普查.geojson").first.wait_for(timeout=30_000)
        page.get_by_role("textbox", name="人群字段（可选，用逗号分隔）").fill("60岁及以上")
        page.keyboard.press("Enter")
        settle(page)
        page.get_by_role("button", name="加载数据").click()
        page.get_by_text("各人群步行速度").wait_for(timeout=180_000)
        settle(page)
        # the local standard, through its uploader
        std_up = page.locator("[data-testid='stFileUploader']").filter(has_text="本地标准文件")
        std_up.locator("input[type='file']").set_input_files(str(std_path))
        page.get_by_text("已读取本地标准").wait_for(timeout=120_000)
        settle(page)
        page.get_by_text("各人群步行速度").click()
        speeds = page.locator("[data-testid='stExpander']").filter(has_text="各人群步行速度")
        speeds.get_by_text("TCRP 第 112 号报告").wait_for(timeout=30_000)
        settle(page)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.screenshot(path=str(shots / "sidebar-zh.png"))
        page.screenshot(path=str(shots / "page-zh.png"), full_page=True)
        texts = {
            "standard uploader": shown_text(std_up),
            "group speeds": shown_text(speeds),
            "standard choice": page.get_by_role(
                "combobox", name="规划标准（分级评估）"
            ).input_value(),
            "loaded caption": shown_text(sidebar.get_by_text("已读取本地标准")),
        }
        level_table = page.get_by_text("按标准分级覆盖")
        level_table.wait_for(state="attached", timeout=60_000)
        browser.close()
    assert "本地标准：本地示例标准" in texts["standard choice"], texts
    assert "（街道、社区）" in texts["loaded caption"], texts
    assert "“60岁及以上”步行速度（公里/小时）" in texts["group speeds"], texts
    assert "3.30" in texts["group speeds"] or "3.3" in texts["group speeds"], texts
    leftovers = {k: english_words(v) for k, v in texts.items() if english_words(v)}
    assert leftovers == {}, (leftovers, texts)
    assert not errors, errors
