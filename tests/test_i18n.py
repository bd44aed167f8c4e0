"""Tests for coverage.i18n: the one zh/en label table and its lookup."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from coverage.errors import InputError
from coverage.i18n import LANG_NAMES, LANGS, MESSAGES, t

ROOT = Path(__file__).resolve().parents[1]

#: Labels that are meant to read the same in both languages.
SAME_IN_BOTH = {
    "app.lang",  # the language picker says "语言 / Language" so either reader finds it
    "map.attribution",  # the OSM licence wording is fixed
}
#: ASCII words a Chinese label may keep: names, formats, units, acronyms, column names.
ASCII_WORDS_IN_ZH = {
    "BD",
    "CSV",
    "GCJ",
    "GPS",
    "BBBike",  # an OSM extract service
    "Excel",
    "GeoJSON",
    "GeoPackage",
    "Geofabrik",  # an OSM extract service
    "HiGHS",
    "JSON",
    "MB",
    "GB",
    "OSM",
    "OpenStreetMap",
    "WGS",
    "km",
    "min",
    "population",  # the population file's column name, to be typed as is
    "TOML",  # a file format, as JSON and CSV
    "UTF",  # text encodings, named as the save dialogs name them (issue 13's file errors)
    "GBK",
    "lon",  # coordinate column names, to be typed as is
    "lat",
}
#: Proper names kept as they are in a Chinese sentence.
ASCII_PHRASES_IN_ZH = (
    "Coverage Planner",
    "OpenStreetMap contributors",
    "ODbL",
    "openstreetmap.org",
    "osmium extract",  # a command, typed as is
    "Fitzpatrick",  # an author and a report series cited (the default walking speed of older groups)
    "TCRP",
)
FILE_NAME = re.compile(r"[\w-]*\.(?:json|csv|html|geojson|gpkg|osm|bz2|gz|pbf)\b")
CJK = re.compile(r"[\u3400-\u9fff]")


def fields(text: str) -> set[tuple[str, str]]:
    """Return the (name, format spec) of each ``{placeholder}`` in `text`."""
    return {
        (name, spec or "")
        for _, name, spec, _ in string.Formatter().parse(text)
        if name is not None
    }


def sample_values(text: str) -> dict[str, object]:
    """Return a value for each placeholder of `text`: a number where a format spec asks for one."""
    return {name: 1234.5 if spec else "x" for name, spec in fields(text)}


def leftover_ascii_words(zh: str) -> list[str]:
    """Return the English words of a Chinese label beyond names, units and acronyms."""
    text = re.sub(r"\{[^}]*\}", " ", zh)  # placeholders
    text = re.sub(r"`[^`]*`", " ", text)  # code spans: field names and files typed as is
    text = FILE_NAME.sub(" ", text)
    for phrase in ASCII_PHRASES_IN_ZH:
        text = text.replace(phrase, " ")
    words = re.findall(r"[A-Za-z]{2,}", text)
    return [w for w in words if w not in ASCII_WORDS_IN_ZH]


def test_every_label_has_every_language() -> None:
    assert LANGS == ("zh", "en")
    assert set(LANG_NAMES) == set(LANGS)
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGS), key
        for lang in LANGS:
            assert isinstance(entry[lang], str), (key, lang)
            assert entry[lang].strip(), (key, lang)


def test_placeholders_of_zh_and_en_match() -> None:
    for key, entry in MESSAGES.items():
        assert fields(entry["zh"]) == fields(entry["en"]), key


def test_every_label_formats_in_both_languages() -> None:
    for key, entry in MESSAGES.items():
        values = sample_values(entry["zh"])
        for lang in LANGS:
            text = t(key, lang, **values)
            assert "{" not in text, (key, lang, text)


def test_chinese_labels_are_chinese() -> None:
    leftovers = {
        key: words
        for key, entry in MESSAGES.items()
        if key not in SAME_IN_BOTH and (words := leftover_ascii_words(entry["zh"]))
    }
    assert leftovers == {}


def test_english_labels_have_no_chinese() -> None:
    chinese = {
        key: entry["en"]
        for key, entry in MESSAGES.items()
        if key not in SAME_IN_BOTH and CJK.search(entry["en"])
    }
    assert chinese == {}


def test_the_heuristic_catches_an_untranslated_label() -> None:
    assert leftover_ascii_words("Share within 5 min") == ["Share", "within"]
    assert leftover_ascii_words("精确求解（HiGHS 整数规划，最多 {s:g} 秒）") == []
    assert leftover_ascii_words("汇总 summary.csv") == []


def test_lookup_fills_format_specs() -> None:
    assert t("app.metric.share", "zh", m=15.0) == "15 分钟步行覆盖率"
    assert t("app.metric.share", "en", m=7.5) == "Share within 7.5 min"
    assert t("app.data.limit", "en", mb=200) == "Size limit: 200 MB"
    assert t("app.opt.exact", "en", s=60.0) == "Exact (HiGHS integer program, up to 60 s)"
    loaded = t("app.data.loaded", "zh", name="a", nodes=12345, centers=3, units=1000, pop=2e4)
    assert loaded == "a：路网 12,345 个节点，3 个服务中心，1,000 个居住单元，约 20,000 人"
    assert t("map.layer.centers") == "现有党群服务中心"  # zh is the default


def test_lookup_refuses_unknown_language_and_key() -> None:
    with pytest.raises(InputError, match="lang"):
        t("app.title", "fr")
    with pytest.raises(KeyError, match="both 'zh' and 'en'"):
        t("app.no_such_label", "zh")


def test_app_labels_all_come_from_the_table() -> None:
    """app.py keeps no label table of its own, and every label it asks for exists."""
    source = (ROOT / "app.py").read_text(encoding="utf-8")
    assert "TEXT" not in source
    assert "def i18n(" not in source
    literal = set(re.findall(r'\btr\(\s*"([^"]+)"', source))
    prefixes = set(re.findall(r'\btr\(\s*f"([^"{]+)\{', source))
    downloads = set(re.findall(r'"((?:layer|export)\.[a-z_]+)"', source))
    assert literal, "no tr() calls found: has the wrapper been renamed?"
    missing = sorted(k for k in literal | downloads if f"app.{k}" not in MESSAGES)
    assert missing == []
    for prefix in prefixes:
        assert any(k.startswith(f"app.{prefix}") for k in MESSAGES), prefix
