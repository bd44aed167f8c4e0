"""The ``coverage-planner`` command line: ``audit``, ``site`` and ``batch``.

``audit`` measures who can walk to an existing service center within each
threshold; ``site`` does the same and proposes new sites; ``batch`` audits every
district of a city (see :mod:`coverage.batch`). Outputs follow the contract in
docs/DESIGN.md and are written all-or-nothing by :mod:`coverage.export`.

Exit codes: 0 success; 2 bad input (one ``error: ...`` line on stderr);
1 an unexpected failure (traceback only with ``--debug``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn, TextIO

from tqdm import tqdm

from coverage import export, pipeline
from coverage.audit import AuditParams
from coverage.batch import BatchParams, run_batch
from coverage.capacity import (
    DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS,
    CapacityParams,
    Decay,
)
from coverage.centers import CenterColumns
from coverage.coords import CRS_NAMES
from coverage.errors import InputError, PlannerError
from coverage.fileio import strip_controls
from coverage.groups import OLDER_SPEED_KMH, GroupParams
from coverage.inputs import (
    DEFAULT_CITY,
    CityInputs,
    FileInput,
    check_inputs,
    load_city,
)
from coverage.names import METERS_UNIT, MINUTES_UNIT, Unit, check_threshold_keys
from coverage.netcache import DEFAULT_CACHE_DIR
from coverage.progress import ProgressFn, ProgressLog
from coverage.scenario import Scenario, ScenarioResult
from coverage.siting import SitingParams
from coverage.standards import (
    DEFAULT_COMPLIANCE_TARGET,
    DEFAULT_HOUSEHOLD_SIZE,
    MAX_DISTANCE_M,
    PRESETS,
    Standard,
    check_household_size,
    check_m2_per_100_households,
    resolve_standard,
)

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
#: Logger of the progress lines written when stderr is not a terminal.
PROGRESS_LOGGER = "coverage.progress"


class UsageError(Exception):
    """A command line that argparse (or our value checks) refused."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --- value types ----------------------------------------------------------------------


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"{what} must be a number; got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not math.isfinite(value):
        msg = f"{what} must be a finite number; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def minutes_list(text: str) -> tuple[float, ...]:
    """Parse ``"5,15"`` into strictly increasing positive minutes."""
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        msg = f"expected minutes separated by commas, e.g. 5,15; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    values = tuple(_float(s, "minutes") for s in items)
    if any(v <= 0 for v in values):
        msg = f"minutes must be positive, e.g. 5,15; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    if any(b <= a for a, b in itertools.pairwise(values)):
        msg = f"minutes must be strictly increasing, e.g. 5,15; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    _check_keys(values)
    return values


def _check_keys(values: Sequence[float], unit: Unit = MINUTES_UNIT) -> None:
    """Refuse thresholds that would be written under one output key (``5`` and ``5.0000000001``)."""
    try:
        check_threshold_keys(values, unit)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def meters_list(text: str) -> tuple[float, ...]:
    """Parse ``"300,500,1000"`` into strictly increasing positive network walking meters."""
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        msg = f"expected meters separated by commas, e.g. 300,500,1000; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    values = tuple(_float(s, "meters") for s in items)
    if any(not 0 < v <= MAX_DISTANCE_M for v in values):
        msg = f"meters must be in (0, {MAX_DISTANCE_M:g}], e.g. 300,500,1000; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    if any(b <= a for a, b in itertools.pairwise(values)):
        msg = f"meters must be strictly increasing, e.g. 300,500,1000; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    _check_keys(values, METERS_UNIT)
    return values


def standard_arg(text: str) -> Standard:
    """Parse ``--standard``: a preset key (gb50180, tdt1062) or a TOML/JSON/CSV file."""
    try:
        standard = resolve_standard(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert standard is not None
    return standard


def positive_minutes(text: str) -> float:
    """Parse one positive number of minutes."""
    value = _float(text, "minutes")
    if value <= 0:
        msg = f"minutes must be positive, e.g. 15; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def speed_kmh(text: str) -> float:
    """Parse a walking speed in km/h, in (0, 30]."""
    value = _float(text, "walking speed")
    if not 0 < value <= 30:
        msg = f"walking speed must be in (0, 30] km/h, e.g. 4.5; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def share(text: str) -> float:
    """Parse a population share in (0, 1]."""
    value = _float(text, "share")
    if not 0 < value <= 1:
        msg = f"share must be in (0, 1], e.g. 0.95 for 95 %; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


#: Largest ``--new``: more sites than this is not a siting question (and the greedy
#: step's memory grows with it); it also bounds ``--workers``.
MAX_NEW_SITES = 10_000


def new_sites(text: str) -> int:
    """Parse ``--new K``: a whole number in 1..:data:`MAX_NEW_SITES`."""
    value = positive_int(text)
    if value > MAX_NEW_SITES:
        msg = f"--new must be at most {MAX_NEW_SITES:,} sites; got {value:,}. Ask for fewer sites, or use --target-share to let the share decide"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text: str) -> int:
    """Parse a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        msg = f"expected a whole number ≥ 1; got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value < 1:
        msg = f"expected a whole number ≥ 1; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_seconds(text: str) -> float:
    """Parse a positive duration in seconds."""
    value = _float(text, "time limit")
    if value <= 0:
        msg = f"time limit must be positive seconds; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def level_minutes(text: str) -> dict[str, float]:
    """Parse ``"community=5,street=15"`` into ``{level: minutes}``."""
    out: dict[str, float] = {}
    for item in text.split(","):
        level, sep, minutes = item.partition("=")
        level = level.strip()
        if not sep or not level:
            msg = f"expected level=minutes pairs, e.g. community=5,street=15; got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        if level in out:
            msg = f"level {strip_controls(level)[:40]!r} is given twice in --level-minutes; give each level once, e.g. community=5,street=15"
            raise argparse.ArgumentTypeError(msg)
        out[level] = positive_minutes(minutes.strip())
    return out


def id_list(text: str) -> tuple[str, ...]:
    """Parse ``"a,b"`` into center ids."""
    ids = tuple(s.strip() for s in text.split(",") if s.strip())
    if not ids:
        msg = f"expected center ids separated by commas; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return ids


def _positive(text: str, what: str, example: str) -> float:
    value = _float(text, what)
    if value <= 0:
        msg = f"{what} must be positive, e.g. {example}; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _checked(text: str, what: str, check: Callable[[Any], float]) -> float:
    """Parse a number and run the library's one check of it (an argparse error on failure)."""
    try:
        return check(_float(text, what))
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def household_size(text: str) -> float:
    """Parse ``--household-size``: persons per household (:func:`coverage.standards.check_household_size`)."""
    return _checked(text, "household size", check_household_size)


def m2_per_100_households(text: str) -> float:
    """Parse ``--capacity-standard``: m² per 100 households (one check with the library's)."""
    return _checked(text, "capacity standard", check_m2_per_100_households)


def area_m2(text: str) -> float:
    """Parse a positive floor area in m²."""
    return _positive(text, "floor area", "300")


def areas_m2(text: str) -> tuple[float, ...]:
    """Parse ``"300,600"`` into distinct positive floor areas in m²."""
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        msg = f"expected floor areas in m² separated by commas, e.g. 300,600; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    values = tuple(area_m2(s) for s in items)
    if len(set(values)) != len(values):
        msg = f"floor areas must be distinct; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return values


def decay(text: str) -> Decay:
    """Parse ``--decay``: none, step[:MIN=W,...] or gaussian[:SIGMA_MIN]."""
    try:
        return Decay.parse(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def name_list(text: str) -> tuple[str, ...]:
    """Parse ``"60岁及以上,0-14岁"`` into column names."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names:
        msg = f"expected column names separated by commas; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return names


def group_speeds(text: str) -> dict[str, float]:
    """Parse ``"60岁及以上=3.3"`` into ``{group: km/h}``."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            msg = f"expected group=km/h pairs, e.g. 60岁及以上=3.3; got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        out[name.strip()] = speed_kmh(value.strip())
    return out


# --- parser ----------------------------------------------------------------------------


def _package_version() -> str:
    try:
        return version("coverage-planner")
    except PackageNotFoundError:  # running from a source tree without installation
        return "unknown"


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before or after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="verbose logging; show tracebacks",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="no progress bar, no summary, only errors",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        default=default,
        help="cache folder: the walking network, the demand units and centers read from the OSM file, service and uncovered areas, and finished output pieces (kept within 2 GiB; the rest is never pruned), each keyed by what it is made from; delete it between runs to free space (default: the user cache folder)",
    )


# --- option groups (one definition, shared by the subcommands) ----------------------------


def _input_options(p: argparse.ArgumentParser, *, batch: bool = False) -> None:
    g = p.add_argument_group("inputs")
    g.add_argument(
        "--osm",
        type=Path,
        metavar="FILE",
        help="OpenStreetMap extract (.osm, .osm.bz2, .osm.gz, .osm.pbf); default: the embedded central Chengdu extract",
    )
    g.add_argument(
        "--centers",
        type=Path,
        metavar="FILE",
        help="existing centers (CSV with lon/lat columns, GeoJSON, GeoPackage), or `osm` for the centers tagged in OSM; default: the embedded city's 91 street and community offices (GCJ-02, Vonng/adcode, CC BY 4.0), else the centers tagged in OSM",
    )
    g.add_argument(
        "--crs",
        choices=CRS_NAMES,
        default="wgs84",
        help="coordinate system of every user file (centers, population, districts, candidates, exclusions): wgs84 (GPS), gcj02 (Amap/高德, Tencent) or bd09 (Baidu/百度); default wgs84",
    )
    g.add_argument("--lon-column", metavar="NAME", help="longitude column of a centers CSV")
    g.add_argument("--lat-column", metavar="NAME", help="latitude column of a centers CSV")
    g.add_argument(
        "--name-column",
        metavar="NAME",
        help="center name column of the centers file"
        + (" (the districts' name column is --district-name-column)" if batch else ""),
    )
    g.add_argument("--id-column", metavar="NAME", help="center id column (ids for --close)")
    g.add_argument(
        "--level-column",
        metavar="NAME",
        help="center level column (district/street/community/grid)",
    )
    g.add_argument(
        "--population",
        type=Path,
        metavar="FILE",
        help="population polygons, points or a GeoTIFF raster replacing the OSM estimate",
    )
    g.add_argument(
        "--population-column",
        default="population",
        metavar="NAME",
        help="population column (default: population; pop, 人口 ... are tried too)",
    )
    # issue 14: census population per area, spread over the residential land
    g.add_argument(
        "--census",
        type=Path,
        metavar="FILE",
        help="census polygons (街道 / 社区, in --crs) with counts, spread over the residential buildings and landuse inside each; replaces the OSM estimate",
    )
    g.add_argument(
        "--census-column",
        metavar="NAME",
        help="census population column (default: population, 人口, 常住人口 ... detected)",
    )
    g.add_argument(
        "--households-column",
        metavar="NAME",
        help="household column of --census, passed through (default: households / 户数 if present)",
    )
    g.add_argument(
        "--census-group-columns",
        type=lambda text: tuple(c.strip() for c in text.split(",") if c.strip()),
        default=(),
        metavar="A,B",
        help="columns of --census passed through to the summary's census section (e.g. 街道)",
    )
    g.add_argument(
        "--max-memory-gb",
        type=float,
        metavar="GB",
        help="memory budget for reading the OSM file and rasters (default: 80%% of the memory available now)",
    )


def _model_options(p: argparse.ArgumentParser, *, command: str) -> None:
    w = p.add_argument_group("walking model")
    w.add_argument(
        "--speed-kmh",
        type=speed_kmh,
        default=4.5,
        metavar="KMH",
        help="walking speed in km/h (default 4.5)",
    )
    w.add_argument(
        "--level-minutes",
        type=level_minutes,
        metavar="LEVEL=MIN,...",
        help="standard per level of service, e.g. community=5,street=15",
    )
    if command == "site":
        w.add_argument(
            "--minutes",
            type=positive_minutes,
            default=15.0,
            metavar="T",
            help="walking minutes a new site must cover (default 15)",
        )
    else:
        extra = (
            "; with --new or --target-share, new sites cover the longest"
            if command == "batch"
            else ""
        )
        w.add_argument(
            "--minutes",
            type=minutes_list,
            default=(5.0, 15.0),
            metavar="T1,T2",
            help=f"thresholds in minutes, increasing (default 5,15){extra}",
        )
    w.add_argument(
        "--close", type=id_list, default=(), metavar="ID,...", help="existing center ids to close"
    )
    _standard_options(p)


def _standard_options(p: argparse.ArgumentParser) -> None:
    """Issue 15: distance thresholds, a planning standard and the compliance target."""
    g = p.add_argument_group("standards")
    g.add_argument(
        "--distance-m",
        type=meters_list,
        default=(),
        metavar="D1,D2",
        help="thresholds as network walking distances in meters, increasing, e.g. 300,500,1000 (independent of the speed; keys 300m ...)",
    )
    g.add_argument(
        "--standard",
        type=standard_arg,
        metavar="NAME|FILE",
        help=f"judge each center level by its own centers against a planning standard: {', '.join(PRESETS)}, or a TOML/JSON/CSV file (docs/STANDARDS.md)",
    )
    g.add_argument(
        "--compliance-target",
        type=share,
        metavar="S",
        help=f"share of residents each area must have within the standard (default: the standard's, else {DEFAULT_COMPLIANCE_TARGET:g})",
    )


def _siting_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    s = p.add_argument_group("siting")
    how = s.add_mutually_exclusive_group(required=required)
    how.add_argument("--new", type=new_sites, metavar="K", help="number of new sites")
    how.add_argument(
        "--target-share",
        type=share,
        metavar="S",
        help="add sites until this population share is covered, e.g. 0.95",
    )
    s.add_argument(
        "--max-new",
        type=positive_int,
        default=50,
        metavar="N",
        help="most sites with --target-share (default 50)",
    )
    s.add_argument(
        "--audit-minutes",
        type=minutes_list,
        default=(5.0, 15.0) if required else None,
        metavar="T1,T2",
        help="thresholds of the baseline audit (default 5,15; --minutes is added if missing)"
        if required
        else "further thresholds of the audit, added to --minutes",
    )
    s.add_argument(
        "--candidates",
        type=Path,
        metavar="FILE",
        help="candidate sites (points); default: along the streets",
    )
    s.add_argument("--exclude", type=Path, metavar="FILE", help="polygons where no new site may go")
    s.add_argument(
        "--new-site-m2",
        type=areas_m2,
        metavar="M2[,M2...]",
        help="capacitated siting: floor area of a new site, or sizes to choose among (e.g. 300,600); residents must be within --minutes and served within floor area",
    )
    s.add_argument(
        "--enlarge-m2",
        type=area_m2,
        metavar="M2",
        help="with --new-site-m2: enlarging an existing center by this floor area is a candidate action too",
    )
    s.add_argument("--exact", action="store_true", help="solve the exact model with HiGHS")
    s.add_argument(
        "--time-limit-s",
        type=positive_seconds,
        default=60.0,
        metavar="S",
        help="time limit of the exact solver (default 60)",
    )


def _capacity_options(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("capacity and population groups")
    c.add_argument(
        "--capacity",
        action="store_true",
        help="audit floor-area capacity (2SFCA); on with the defaults whenever the centers file has a floor-area column, and implied by --household-size, --capacity-standard, --decay",
    )
    c.add_argument(
        "--capacity-column",
        metavar="NAME",
        help="floor-area column (m²) of the centers file (default floor_area_m2 or 建筑面积)",
    )
    c.add_argument(
        "--household-size",
        type=household_size,
        metavar="N",
        help=f"persons per household (default {DEFAULT_HOUSEHOLD_SIZE}, the 2020 census)",
    )
    c.add_argument(
        "--capacity-standard",
        type=m2_per_100_households,
        metavar="M2",
        help=f"floor area per 100 households to meet (default {DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS:g} m², 完整社区建设试点 notice, 2022)",
    )
    c.add_argument(
        "--decay",
        type=decay,
        metavar="SPEC",
        help="distance decay of m2_per_100_households: none (plain 2SFCA, default), step[:MIN=W,...], gaussian[:SIGMA_MIN]",
    )
    c.add_argument(
        "--population-groups",
        type=name_list,
        default=(),
        metavar="COL,...",
        help="population group columns of --population or --census (e.g. 60岁及以上,0-14岁): coverage per group",
    )
    c.add_argument(
        "--group-speed",
        type=group_speeds,
        default={},
        metavar="GROUP=KMH,...",
        help=f"walking speed of a group (default: --speed-kmh; {OLDER_SPEED_KMH} km/h for 60岁及以上-style groups)",
    )


def capacity_params(args: argparse.Namespace) -> CapacityParams | None:
    """Return the capacity audit a command line asks for (``None``: none)."""
    asked = (
        getattr(args, "capacity", False)
        or getattr(args, "capacity_column", None) is not None
        or getattr(args, "household_size", None) is not None
        or getattr(args, "capacity_standard", None) is not None
        or getattr(args, "decay", None) is not None
    )
    if not asked:
        return None
    kw: dict[str, Any] = {}
    if args.household_size is not None:
        kw["household_size"] = args.household_size
    if args.capacity_standard is not None:
        kw["standard_m2_per_100_households"] = args.capacity_standard
    if args.decay is not None:
        kw["decay"] = args.decay
    return CapacityParams(**kw)


def _output_options(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument(
        "--no-polygons",
        action="store_true",
        help="skip the service-area polygons (the slowest step)",
    )
    o.add_argument(
        "--lang", choices=("zh", "en"), default="zh", help="language of report.html (default zh)"
    )
    o.add_argument("--no-report", action="store_true", help="do not write report.html")
    o.add_argument(
        "--pdf",
        action="store_true",
        help="also print report.html to report.pdf (A4) with headless Chromium; without Chromium a warning says so and the run still succeeds",
    )
    o.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder (replaced as a whole; a non-empty folder that is not an earlier output is refused)",
    )


def _area_options(b: argparse._ArgumentGroup, *, batch: bool = False) -> None:
    """Area polygons: the batch's districts, and the areas of the compliance table."""
    b.add_argument(
        "--districts",
        type=Path,
        metavar="FILE",
        help="district polygons (GeoJSON/GeoPackage, in --crs); default: "
        + (
            "OSM administrative boundaries"
            if batch
            else "none (or OSM boundaries at --admin-level)"
        ),
    )
    b.add_argument(
        "--district-name-column",
        default="name",
        metavar="NAME",
        help="district name column of --districts (default name; --name-column is the centers')",
    )
    b.add_argument("--admin-level", metavar="N", help="OSM admin_level of the districts")


def _batch_options(p: argparse.ArgumentParser) -> None:
    b = p.add_argument_group("batch")
    _area_options(b, batch=True)
    run_on = b.add_mutually_exclusive_group()
    run_on.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="local workers"
    )
    run_on.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="address of a running Dask scheduler"
    )
    b.add_argument("--force", action="store_true", help="redo districts already done")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``coverage-planner`` argument parser."""
    parser = _Parser(
        prog="coverage-planner",
        description="Walking-time coverage of community service centers (党群服务中心) on OpenStreetMap, offline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    audit = sub.add_parser(
        "audit",
        parents=[common],
        help="who can walk to an existing center within each threshold",
        description="Audit walking access to existing centers and write the output contract to --out.",
    )
    _input_options(audit)
    _model_options(audit, command="audit")
    _area_options(audit.add_argument_group("areas (coverage and compliance per district)"))
    _capacity_options(audit)
    _output_options(audit)

    site = sub.add_parser(
        "site",
        parents=[common],
        help="audit, then propose new station sites",
        description="Audit the existing centers (the baseline) and propose new sites.",
    )
    _input_options(site)
    _model_options(site, command="site")
    _siting_options(site, required=True)
    _area_options(site.add_argument_group("areas (coverage and compliance per district)"))
    _capacity_options(site)
    _output_options(site)

    batch = sub.add_parser(
        "batch",
        parents=[common],
        help="audit every district of a city",
        description=(
            "Audit each district (resumable; local Dask workers or an existing scheduler). "
            "Takes every input, walking-model and siting option of audit and site; "
            "--districts and every user file are read in --crs (GCJ-02 district polygons "
            "from DataV/Amap need --crs gcj02). The districts' name column is "
            "--district-name-column; --name-column names the centers file's column."
        ),
    )
    _input_options(batch, batch=True)
    _model_options(batch, command="batch")
    _siting_options(batch, required=False)
    _capacity_options(batch)
    _output_options(batch)
    _batch_options(batch)
    return parser


# --- arguments → inputs and scenario -------------------------------------------------------


def _file(path: Path | None) -> FileInput | None:
    return None if path is None else FileInput(path)


#: ``--centers osm``: the centers tagged in OSM (a file named ``osm`` is ``./osm``).
CENTERS_OSM = "osm"


def _centers_file(path: Path | None) -> FileInput | None:
    return None if path is None or str(path) == CENTERS_OSM else FileInput(path)


def run_from_args(args: argparse.Namespace) -> tuple[CityInputs, Scenario]:
    """Return the :class:`CityInputs` and :class:`Scenario` a command line asks for (every subcommand).

    The audited thresholds are ``--minutes`` (one value for ``site``) plus
    ``--audit-minutes``; new sites cover the longest ``--minutes``.
    """
    minutes = args.minutes if isinstance(args.minutes, tuple) else (float(args.minutes),)
    audit_minutes = getattr(args, "audit_minutes", None) or ()
    audit = AuditParams(
        speed_kmh=args.speed_kmh,
        thresholds_min=tuple(sorted({*minutes, *audit_minutes})),
        level_thresholds_min=args.level_minutes,
        thresholds_m=tuple(args.distance_m),
        standard=args.standard,
        compliance_target=args.compliance_target,
    )
    siting = None
    if getattr(args, "new", None) is not None or getattr(args, "target_share", None) is not None:
        siting = SitingParams(
            k=args.new,
            target_share=args.target_share,
            max_k=args.max_new,
            minutes=max(minutes),
            speed_kmh=args.speed_kmh,
            exact=args.exact,
            time_limit_s=args.time_limit_s,
            new_site_m2=getattr(args, "new_site_m2", None) or (),
            enlarge_m2=getattr(args, "enlarge_m2", None),
        )
    scenario = Scenario(
        name=args.command,
        audit=audit,
        siting=siting,
        closed=tuple(args.close),
        capacity=capacity_params(args),
        groups=GroupParams(speeds_kmh=getattr(args, "group_speed", None) or {}),
    )
    inputs = CityInputs(
        osm=args.osm or DEFAULT_CITY,
        crs=args.crs,
        centers=_centers_file(args.centers),
        osm_centers=args.centers is not None and str(args.centers) == CENTERS_OSM,
        center_columns=CenterColumns(
            lon=args.lon_column,
            lat=args.lat_column,
            name=args.name_column,
            id=args.id_column,
            level=args.level_column,
            floor_area=getattr(args, "capacity_column", None),
        ),
        population=_file(args.population),
        population_column=args.population_column,
        census=_file(args.census),
        census_column=args.census_column,
        census_households_column=args.households_column,
        census_group_columns=args.census_group_columns,
        population_groups=tuple(getattr(args, "population_groups", None) or ()),
        districts=_file(getattr(args, "districts", None)),
        district_name_column=getattr(args, "district_name_column", "name"),
        admin_level=getattr(args, "admin_level", None),
        candidates=_file(getattr(args, "candidates", None)),
        exclusions=_file(getattr(args, "exclude", None)),
        cache_dir=DEFAULT_CACHE_DIR if args.cache_dir is None else args.cache_dir,
        memory_budget_bytes=None if args.max_memory_gb is None else int(args.max_memory_gb * 1e9),
    )
    return inputs, scenario


# --- running -----------------------------------------------------------------------------


class _Progress:
    """A tqdm bar on stderr fed by library progress callbacks (fraction, message).

    When stderr is not a terminal (a pipe, a log file) tqdm draws nothing; progress
    then goes to the ``coverage.progress`` log as lines (:class:`ProgressLog`).
    """

    def __init__(self, enabled: bool, stream: TextIO) -> None:
        self._bar: tqdm[Any] | None = None
        self._log: ProgressLog | None = None
        if enabled:
            # disable=None: no bar when stderr is not a terminal; delay: only steps over 1 s
            self._bar = tqdm(
                total=100,
                file=stream,
                disable=None,
                delay=1.0,
                leave=False,
                bar_format="{desc:<32.32} {percentage:3.0f}%|{bar}| {elapsed}",
            )
            if self._bar.disable:
                self._bar, self._log = None, ProgressLog()

    def stage(self, lo: float, hi: float) -> ProgressFn:
        """Return a callback mapping a step's 0..1 onto ``lo..hi`` of the whole run."""

        def report(fraction: float, message: str) -> None:
            f = lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0)
            if self._log is not None:
                self._log(f, message)
            if self._bar is None:
                return
            self._bar.n = round(100 * f, 1)
            self._bar.set_description_str(message, refresh=False)
            self._bar.refresh()

        return report

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._log is not None:
            self._log.close()


@contextmanager
def _cli_logging(debug: bool, quiet: bool, stream: TextIO) -> Iterator[None]:
    """Route library logs and warnings to stderr for the duration of one command."""
    root = logging.getLogger("coverage")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old_level = root.level
    progress_log = logging.getLogger(PROGRESS_LOGGER)
    old_progress_level = progress_log.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING)
    if not quiet and not debug:  # progress lines (when stderr is no terminal) stay visible
        progress_log.setLevel(logging.INFO)

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not quiet:
            print(f"warning: {message}", file=stream)

    with warnings.catch_warnings():
        # The library reports recoverable oddities as UserWarnings; show those once,
        # as one line each, and keep third-party deprecation noise out of the terminal.
        warnings.simplefilter("ignore")
        warnings.simplefilter("default", UserWarning)
        warnings.showwarning = show
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            progress_log.setLevel(old_progress_level)


def _audit_or_site(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    inputs, scenario = run_from_args(args)
    export.check_output_dir(args.out)
    check_inputs(inputs)  # cheap checks before the slow steps (and before anything is written)
    bar = _Progress(not args.quiet, err)
    try:
        load_hi = 0.45 if scenario.siting is not None else 0.55
        city = load_city(inputs, progress=bar.stage(0.0, load_hi))
        result = pipeline.run(
            city,
            scenario,
            with_polygons=not args.no_polygons,
            progress=bar.stage(load_hi, 0.92),
            cache_polygons=True,
        )
        target = pipeline.write(
            result,
            city,
            args.out,
            lang=args.lang,
            report=replace(export.DEFAULT_DOCUMENTS, pdf=True)
            if args.pdf and not args.no_report
            else not args.no_report,
            progress=bar.stage(0.92, 0.99),
        )
    finally:
        bar.close()
    if not args.quiet:
        _print_summary(out, result, target)
    return EXIT_OK


def _print_summary(out: TextIO, result: ScenarioResult, target: Path) -> None:
    audit = result.audit
    total = float(audit.population_total)
    n_centers = len(result.centers)
    print(
        f"{len(audit.demand):,} demand units, {total:,.0f} residents, "
        f"{n_centers} center{'' if n_centers == 1 else 's'}",
        file=out,
    )
    for key, stats in audit.coverage.items():
        label = f"{key[:-1]} m" if key.endswith(METERS_UNIT) else f"{key} min"
        print(
            f"  within {label}: {stats.share:6.1%} ({stats.population_covered:,.0f} residents)",
            file=out,
        )
    _print_standard(out, audit)
    capacity = getattr(result, "capacity", None)
    if capacity is not None:
        std = capacity.params.standard_m2_per_100_households
        print(
            f"  capacity: {capacity.share_meeting_standard:6.1%} of residents reach ≥ {std:g} m² "
            f"per 100 households ({capacity.share_unknown:.1%} unknown; "
            f"{len(capacity.centers_without_floor_area)} centers without floor area)",
            file=out,
        )
    siting = result.siting
    if siting is not None:
        print(
            f"  {siting.k} new sites ({siting.method}): {siting.share_before:.1%} → "
            f"{siting.share_after:.1%} within {siting.params.minutes:g} min "
            f"(best possible ≤ {siting.upper_bound_share:.1%})",
            file=out,
        )
    if siting is not None and siting.params.k is not None and siting.k < siting.params.k:
        print(
            f"warning: --new {siting.params.k} asked; {siting.k} sites placed "
            f"({siting.n_candidates} candidates; "
            + (
                "the others would serve nobody more within capacity)"
                if siting.params.capacitated
                else "the others would cover nobody new)"
            ),
            file=out,
        )
    print(f"wrote {target}", file=out)


def _print_standard(out: TextIO, audit: Any) -> None:
    """Print the share within the standard per judged level (when the audit had a standard)."""
    standard = getattr(getattr(audit, "params", None), "standard", None)
    if standard is None:
        return
    for row in audit.standard_table.itertuples(index=False):
        print(f"  {standard.key} {row.level} ({row.circle}): {row.share:6.1%}", file=out)


def _batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    inputs, scenario = run_from_args(args)
    if args.name_column is not None and args.centers is None:
        warnings.warn(
            "`--name-column` names the centers file's name column and there is no `--centers`; "
            f"the districts' names are read from `--district-name-column` ({args.district_name_column!r}).",
            stacklevel=2,
        )
    params = BatchParams(
        scenario=scenario,
        with_polygons=not args.no_polygons,
        with_report=not args.no_report,
        with_pdf=args.pdf and not args.no_report,
        lang=args.lang,
    )
    bar = _Progress(not args.quiet, err)
    try:
        result = run_batch(
            inputs,
            out=args.out,
            params=params,
            workers=args.workers,
            scheduler=args.scheduler,
            force=args.force,
            progress=bar.stage(0.0, 1.0),
        )
    finally:
        bar.close()
    if not args.quiet:
        print(f"{len(result.summary)} districts", file=out)
        print(f"wrote {result.out_dir}", file=out)
    return EXIT_OK


#: Longest error line printed, in characters (an echoed id can be 5,000 characters long).
MAX_ERROR_CHARS = 300


def _one_line(exc: BaseException) -> str:
    """Return the message of ``exc`` as one line without control characters, at most :data:`MAX_ERROR_CHARS`."""
    text = " ".join(strip_controls(str(exc)).split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``coverage-planner`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    err, out = sys.stderr, sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {_one_line(exc)}", file=err)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    debug = bool(args.debug)
    previous = _sigterm_as_interrupt()
    try:
        with _cli_logging(debug, bool(args.quiet), err):
            if args.command == "batch":
                return _batch(args, out, err)
            return _audit_or_site(args, out, err)
    except KeyboardInterrupt as exc:
        print(f"error: {_interrupted(exc, args)}", file=err)
        return EXIT_INTERRUPTED
    except PlannerError as exc:
        if debug:
            traceback.print_exc(file=err)
        print(f"error: {_one_line(exc)}", file=err)
        return EXIT_BAD_INPUT
    except Exception as exc:
        if debug:
            traceback.print_exc(file=err)
            print(f"error: unexpected failure: {type(exc).__name__}: {_one_line(exc)}", file=err)
        else:
            print(
                f"error: unexpected failure: {type(exc).__name__}: {_one_line(exc)} "
                "(run again with --debug for the details)",
                file=err,
            )
        return EXIT_FAILURE
    finally:
        _restore_sigterm(previous)


def _interrupted(exc: KeyboardInterrupt, args: argparse.Namespace) -> str:
    """Return the one line printed on Ctrl-C: what is on disk now."""
    if isinstance(exc, export.OutputInPlaceInterrupt):
        return f"interrupted after the new output was complete; it is in {strip_controls(str(exc.path))[:200]}"
    if args.command == "batch":
        return (
            "interrupted; districts finished so far are kept, run the same command again to resume"
        )
    return "interrupted; nothing was written (an earlier output is unchanged)"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the run cleans its temporary output."""


def _raise_interrupt(signum: int, frame: object) -> None:
    raise _Terminated


def _redeliver_lost_interrupt(unraisable: Any, fallback: Callable[[Any], object]) -> None:
    """Send an interrupt again when it was raised inside a finalizer and so swallowed.

    Python runs weakref finalizers and ``__del__`` wherever the collector fires; an
    interrupt raised there cannot propagate and would otherwise be printed as
    "Exception ignored ... Traceback" and lost.  Here it is re-sent 10 ms later, so it
    reaches the command's own code and ends the run with the usual one line.
    """
    exc = getattr(unraisable, "exc_value", None)
    if not isinstance(exc, KeyboardInterrupt):
        fallback(unraisable)
        return
    signum = signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT
    timer = threading.Timer(0.01, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def _sigterm_as_interrupt() -> Any:
    """Treat SIGTERM like Ctrl-C, so a terminated run cleans its temporary output.

    Also routes interrupts swallowed by finalizers back to the run; every other
    unraisable exception still goes to the hook that was installed before.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    hook = sys.unraisablehook
    previous = signal.signal(signal.SIGTERM, _raise_interrupt), hook
    sys.unraisablehook = partial(_redeliver_lost_interrupt, fallback=hook)
    return previous


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        handler, hook = previous
        signal.signal(signal.SIGTERM, handler)
        sys.unraisablehook = hook


if __name__ == "__main__":
    sys.exit(main())
