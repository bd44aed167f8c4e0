"""Golden regression tests: four CLI runs compared with numbers recorded at commit 2d50ce9.

Each test runs ``coverage.cli.main([...])`` in-process, reads the numbers back from the
files it wrote (``summary.json``, ``demand.geojson``, ``centers.csv``,
``proposed_sites.geojson``, ``summary.csv``: the output contract, never internal
objects) and compares every one with ``tests/data/golden/<run>/*.csv`` to 1e-9.
How the fixtures were made is in ``tests/data/golden/README.md``.

The fixtures are frozen: if a change is *meant* to move these numbers, re-record them
with ``PYTHONPATH=. .venv/bin/python tests/test_golden.py --record`` and say why in the
commit message.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coverage import cli

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
COMMUNITIES = GOLDEN / "audit_communities_gcj02" / "input" / "chengdu_central_communities_gcj02.csv"
SYNTH_CITY = GOLDEN / "batch_synth_2x2" / "input" / "city.osm.bz2"
SYNTH_DISTRICTS = GOLDEN / "batch_synth_2x2" / "input" / "districts.geojson"

REL_TOL = 1e-9
ABS_TOL = 1e-9
#: Coordinates are written with 7 decimals, so a 1e-12 change may flip the last digit.
COORD_TOL = 1e-7 + 1e-9
COORDS = {"lon", "lat"}
#: Compared as text; every other column that is not a key is compared as a number.
TEXT = {
    "input_file",
    "input_sha256",
    "method",
    "optimal",
    "level",
    "center_id",
    "name",
    "source",
    "demand_id",
    "nearest_center_id",
    "district",
    "status",
}
#: Columns that identify a row (matched by these, never by row order); () = a one-row table.
KEYS: dict[str, tuple[str, ...]] = {
    "totals.csv": (),
    "coverage.csv": ("minutes",),
    "coverage_by_level.csv": ("level",),
    "centers.csv": ("center_id",),
    "minutes.csv": ("demand_id",),
    "siting.csv": (),
    "sites.csv": ("rank",),
    "districts.csv": ("district",),
    "district_minutes.csv": ("district", "demand_id"),
}

Row = dict[str, Any]
Tables = dict[str, list[Row]]


# --- the four runs ----------------------------------------------------------------------------


def _argv(run: str, cache: Path) -> list[str]:
    """The command line of ``run`` (without ``--out``); Chengdu is the default city.

    Its default centers are the 91 real offices (issue 14): the two runs recorded with the
    OSM-tagged centers ask for them with ``--centers osm``.
    """
    common = ["--cache-dir", str(cache), "--quiet"]
    if run == "audit_osm_centers":
        return ["audit", "--centers", "osm", *common]
    if run == "site_new5":
        return ["site", "--new", "5", "--centers", "osm", *common]
    if run == "audit_default":
        return ["audit", *common]
    if run == "audit_communities_gcj02":
        return [
            "audit",
            *("--centers", str(COMMUNITIES), "--crs", "gcj02"),
            *("--id-column", "编码", "--name-column", "名称", "--level-column", "级别"),
            *("--level-minutes", "street=15,community=5"),
            *common,
        ]
    if run == "batch_synth_2x2":
        return [
            "batch",
            *("--osm", str(SYNTH_CITY), "--districts", str(SYNTH_DISTRICTS)),
            *("--name-column", "name"),
            *common,
        ]
    raise ValueError(run)


def _run_cli(run: str, out: Path, cache: Path) -> Tables:
    argv = [*_argv(run, cache), "--out", str(out)]
    code = cli.main(argv)
    assert code == 0, f"coverage-planner {' '.join(argv)} exited with {code}"
    return TABLES[SAME_AS.get(run, run)](out)


# --- reading the numbers back from the output files -------------------------------------------


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _properties(path: Path) -> list[Row]:
    return [feature["properties"] for feature in _json(path)["features"]]


def _parse(text: str) -> int | float | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _typed(row: dict[str, str]) -> Row:
    """A row read from an output CSV: numbers parsed (empty: None), text columns kept as text."""
    return {k: v if k in TEXT else _parse(v) for k, v in row.items()}


def _minutes(out: Path, columns: tuple[str, ...]) -> list[Row]:
    return [{c: p.get(c) for c in columns} for p in _properties(out / "demand.geojson")]


def audit_tables(out: Path) -> Tables:
    summary = _json(out / "summary.json")
    network = summary["network"]
    totals = {
        "input_file": summary["input"]["file"],
        "input_sha256": summary["input"]["sha256"],
        "demand_units": summary["demand"]["units"],
        "demand_population": summary["demand"]["population"],
        "centers": summary["centers"]["count"],
        "network_nodes": network["nodes"],
        "network_edges": network["edges"],
        "network_length_km": network["length_km"],
    }
    columns = ("demand_id", "population", "minutes_to_nearest", "nearest_center_id")
    return {
        "totals.csv": [totals],
        "coverage.csv": [{"minutes": t, **block} for t, block in summary["coverage"].items()],
        "coverage_by_level.csv": [dict(row) for row in summary["coverage_by_level"]],
        "centers.csv": [_typed(row) for row in _csv(out / "centers.csv")],
        "minutes.csv": _minutes(out, columns),
    }


def site_tables(out: Path) -> Tables:
    tables = audit_tables(out)
    columns = ("demand_id", "population", "minutes_to_nearest", "minutes_after")
    tables["minutes.csv"] = _minutes(out, (*columns, "nearest_center_id"))
    tables["siting.csv"] = [dict(_json(out / "summary.json")["siting"])]
    sites = []
    for feature in _json(out / "proposed_sites.geojson")["features"]:
        p = feature["properties"]
        lon, lat = feature["geometry"]["coordinates"]
        sites.append(
            {
                "rank": p["rank"],
                "marginal_population": p["marginal_population"],
                "cumulative_population": p["cumulative_population"],
                "cumulative_share": p["cumulative_share"],
                "lon": round(lon, 7),
                "lat": round(lat, 7),
            }
        )
    tables["sites.csv"] = sites
    return tables


def batch_tables(out: Path) -> Tables:
    summary = _csv(out / "summary.csv")
    thresholds = [c.removeprefix("share_") for c in summary[0] if c.startswith("share_")]
    columns = [
        "district",
        "status",
        "population",
        *(f"share_{t}" for t in thresholds),
        *(f"uncovered_population_{t}" for t in thresholds),
        "demand_units",
        "centers",
        "centers_used",
    ]
    districts = [_typed({c: row[c] for c in columns}) for row in summary]
    minutes = []
    for row in summary:
        for p in _properties(out / row["folder"] / "demand.geojson"):
            minutes.append(
                {
                    "district": row["district"],
                    "demand_id": p["demand_id"],
                    "population": p["population"],
                    "minutes_to_nearest": p["minutes_to_nearest"],
                    "nearest_center_id": p["nearest_center_id"],
                }
            )
    return {"districts.csv": districts, "district_minutes.csv": minutes}


TABLES: dict[str, Callable[[Path], Tables]] = {
    "audit_osm_centers": audit_tables,
    "site_new5": site_tables,
    "audit_communities_gcj02": audit_tables,
    "batch_synth_2x2": batch_tables,
}
#: Runs compared with another run's fixtures (not recorded themselves): the default audit
#: of the embedded city is the audit of the 91 offices with their standards per level.
SAME_AS = {"audit_default": "audit_communities_gcj02"}


# --- comparing with the fixtures --------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _number(value: Any) -> float | None:
    """None for a missing value (JSON null, NaN, empty cell), else a float."""
    if value is None or value == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _close(expected: float | None, got: float | None, column: str) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if column in COORDS:
        return abs(expected - got) <= COORD_TOL
    return math.isclose(expected, got, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _differences(name: str, expected: list[dict[str, str]], got: list[Row]) -> list[str]:
    """Every difference between a fixture table and the rows of this run, one line each."""
    key_columns = KEYS[name]
    columns = list(expected[0]) if expected else []

    def key(row: Row) -> tuple[str, ...]:
        return tuple(_text(row.get(c)) for c in key_columns)

    want = {key(row): row for row in expected}
    have = {key(row): row for row in got}
    assert len(want) == len(expected), f"{name}: duplicate keys in the fixture"
    if len(have) != len(got):
        return [f"{name}: {len(got) - len(have)} duplicate {key_columns} in the output"]
    problems = [f"{name}: row {k} missing from the output" for k in want.keys() - have.keys()]
    problems += [f"{name}: unexpected row {k} in the output" for k in have.keys() - want.keys()]
    for k in sorted(want.keys() & have.keys()):
        for column in columns:
            if column in key_columns:
                continue
            if column not in have[k]:
                problems.append(f"{name}: row {k}: column {column!r} missing from the output")
                continue
            exp, obs = want[k][column], have[k][column]
            if column in TEXT:
                if exp != _text(obs):
                    problems.append(f"{name}: row {k}: {column}: expected {exp!r}, got {obs!r}")
            elif not _close(_number(exp), _number(obs), column):
                problems.append(f"{name}: row {k}: {column}: expected {exp}, got {_text(obs)}")
    return problems


def check_against_golden(run: str, tables: Tables) -> None:
    folder = GOLDEN / SAME_AS.get(run, run)
    recorded = {p.name for p in folder.glob("*.csv")}
    assert recorded == set(tables), f"{run}: fixtures {sorted(recorded)} vs tables {sorted(tables)}"
    problems: list[str] = []
    for name in sorted(recorded):
        problems += _differences(name, _csv(folder / name), tables[name])
    shown = "\n".join(problems[:30])
    more = f"\n... and {len(problems) - 30} more" if len(problems) > 30 else ""
    assert not problems, (
        f"{run}: {len(problems)} differences from the golden fixtures:\n{shown}{more}"
    )


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.slow
def test_audit_osm_centers(cache_dir: Path, tmp_path: Path) -> None:
    """``audit`` on the embedded Chengdu extract with the centers tagged in OSM."""
    check_against_golden(
        "audit_osm_centers", _run_cli("audit_osm_centers", tmp_path / "out", cache_dir)
    )


@pytest.mark.slow
def test_site_new5(cache_dir: Path, tmp_path: Path) -> None:
    """``site --new 5`` on Chengdu: the baseline, the five proposed sites, minutes after."""
    check_against_golden("site_new5", _run_cli("site_new5", tmp_path / "out", cache_dir))


@pytest.mark.slow
def test_audit_communities_gcj02(cache_dir: Path, tmp_path: Path) -> None:
    """``audit`` on Chengdu with the 91 real street/community offices (GCJ-02, two levels)."""
    check_against_golden(
        "audit_communities_gcj02", _run_cli("audit_communities_gcj02", tmp_path / "out", cache_dir)
    )


@pytest.mark.slow
def test_default_audit_is_the_91_offices(cache_dir: Path, tmp_path: Path) -> None:
    """``audit`` with no option: the embedded offices (GCJ-02, street=15, community=5 min)."""
    out = tmp_path / "out"
    check_against_golden("audit_default", _run_cli("audit_default", out, cache_dir))
    source = _json(out / "summary.json")["centers_source"]
    assert source["kind"] == "embedded"
    assert source["attribution"] == "Vonng/adcode, CC BY 4.0"
    assert source["level_minutes"] == {"street": 15.0, "community": 5.0}
    assert "Vonng/adcode, CC BY 4.0" in (out / "report.html").read_text(encoding="utf-8")


def test_batch_synth_2x2(cache_dir: Path, tmp_path: Path) -> None:
    """``batch`` on a 1,000-node synthetic city split 2 x 2 into four districts."""
    check_against_golden(
        "batch_synth_2x2", _run_cli("batch_synth_2x2", tmp_path / "out", cache_dir)
    )


# --- recording the fixtures (only when the numbers are meant to change) -----------------------


def _write_table(path: Path, rows: list[Row]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row.get(c)) for c in columns])


def _record(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Re-record the golden fixtures.")
    parser.add_argument("--record", action="store_true", required=True)
    parser.add_argument(
        "runs", nargs="*", default=list(TABLES), help="runs to record (default all)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        for run in args.runs:
            tables = _run_cli(run, Path(tmp) / run, Path(tmp) / "cache")
            folder = GOLDEN / run
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.csv"):
                old.unlink()
            for name, rows in tables.items():
                _write_table(folder / name, rows)
            print(f"recorded {run}: {', '.join(sorted(tables))}")
    return 0


if __name__ == "__main__":
    sys.exit(_record(sys.argv[1:]))
