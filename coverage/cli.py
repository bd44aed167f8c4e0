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
import importlib
import inspect
import itertools
import logging
import math
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn, TextIO

from coverage.errors import InputError, PlannerError
from coverage.progress import ProgressFn

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


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
    return values


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
        out[level] = positive_minutes(minutes.strip())
    return out


def id_list(text: str) -> tuple[str, ...]:
    """Parse ``"a,b"`` into center ids."""
    ids = tuple(s.strip() for s in text.split(",") if s.strip())
    if not ids:
        msg = f"expected center ids separated by commas; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return ids


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
        help="walking-network cache folder (default: the user cache folder)",
    )


def _city_options(p: argparse.ArgumentParser) -> None:
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
        help="existing centers (CSV with lon/lat columns, GeoJSON, GeoPackage); default: centers tagged in OSM",
    )
    g.add_argument(
        "--crs",
        choices=("wgs84", "gcj02", "bd09"),
        default="wgs84",
        help="coordinate system of the user files: wgs84 (GPS), gcj02 (Amap/高德, Tencent) or bd09 (Baidu/百度); default wgs84",
    )
    g.add_argument("--lon-column", metavar="NAME", help="longitude column of a centers CSV")
    g.add_argument("--lat-column", metavar="NAME", help="latitude column of a centers CSV")
    g.add_argument("--name-column", metavar="NAME", help="center name column")
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
        help="population polygons or points replacing the OSM estimate",
    )
    g.add_argument(
        "--population-column",
        default="population",
        metavar="NAME",
        help="population column (default: population; pop, 人口 ... are tried too)",
    )
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
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder (replaced as a whole; a non-empty folder that is not an earlier output is refused)",
    )


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
    _city_options(audit)
    audit.add_argument(
        "--minutes",
        type=minutes_list,
        default=(5.0, 15.0),
        metavar="T1,T2",
        help="thresholds in minutes, increasing (default 5,15)",
    )

    site = sub.add_parser(
        "site",
        parents=[common],
        help="audit, then propose new station sites",
        description="Audit the existing centers (the baseline) and propose new sites.",
    )
    _city_options(site)
    s = site.add_argument_group("siting")
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--new", type=positive_int, metavar="K", help="number of new sites")
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
        "--minutes",
        type=positive_minutes,
        default=15.0,
        metavar="T",
        help="walking minutes a new site must cover (default 15)",
    )
    s.add_argument(
        "--audit-minutes",
        type=minutes_list,
        default=(5.0, 15.0),
        metavar="T1,T2",
        help="thresholds of the baseline audit (default 5,15; --minutes is added if missing)",
    )
    s.add_argument(
        "--candidates",
        type=Path,
        metavar="FILE",
        help="candidate sites (points); default: along the streets",
    )
    s.add_argument("--exclude", type=Path, metavar="FILE", help="polygons where no new site may go")
    s.add_argument(
        "--close", type=id_list, default=(), metavar="ID,...", help="existing center ids to close"
    )
    s.add_argument("--exact", action="store_true", help="solve the exact model with HiGHS")
    s.add_argument(
        "--time-limit-s",
        type=positive_seconds,
        default=60.0,
        metavar="S",
        help="time limit of the exact solver (default 60)",
    )

    batch = sub.add_parser(
        "batch",
        parents=[common],
        help="audit every district of a city",
        description="Audit each district (resumable; local Dask workers or an existing scheduler).",
    )
    batch.add_argument("--osm", type=Path, metavar="FILE", help="OpenStreetMap extract")
    batch.add_argument(
        "--districts",
        type=Path,
        metavar="FILE",
        help="district polygons (GeoJSON/GeoPackage); default: OSM administrative boundaries",
    )
    batch.add_argument("--name-column", default="name", metavar="NAME", help="district name column")
    batch.add_argument("--admin-level", metavar="N", help="OSM admin_level of the districts")
    run_on = batch.add_mutually_exclusive_group()
    run_on.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="local workers"
    )
    run_on.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="address of a running Dask scheduler"
    )
    batch.add_argument("--new", type=positive_int, metavar="K", help="new sites per district")
    batch.add_argument("--centers", type=Path, metavar="FILE", help="existing centers file")
    batch.add_argument("--force", action="store_true", help="redo districts already done")
    batch.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    return parser


# --- running -----------------------------------------------------------------------------


class _Progress:
    """A tqdm bar on stderr fed by library progress callbacks (fraction, message)."""

    def __init__(self, enabled: bool, stream: TextIO) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal; delay: only steps over 1 s
            self._bar = tqdm(
                total=100,
                file=stream,
                disable=None,
                delay=1.0,
                leave=False,
                bar_format="{desc:<32.32} {percentage:3.0f}%|{bar}| {elapsed}",
            )

    def stage(self, lo: float, hi: float) -> ProgressFn:
        """A callback mapping a step's 0..1 onto ``lo..hi`` of the whole run."""

        def report(fraction: float, message: str) -> None:
            if self._bar is None:
                return
            f = lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0)
            self._bar.n = round(100 * f, 1)
            self._bar.set_description_str(message, refresh=False)
            self._bar.refresh()

        return report

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def _cli_logging(debug: bool, quiet: bool, stream: TextIO) -> Iterator[None]:
    """Route library logs and warnings to stderr for the duration of one command."""
    root = logging.getLogger("coverage")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING)

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


def _check_file(path: Path | None, what: str) -> None:
    if path is None:
        return
    if not path.is_file():
        msg = f"{what} not found: {str(path)!r}. Check the path."
        raise InputError(msg)


def _prevalidate(args: argparse.Namespace) -> None:
    """Cheap checks of every input before the slow steps (and before anything is written)."""
    from coverage import export
    from coverage.osm import check_osm_file
    from coverage.scenario import DEFAULT_CITY
    from coverage.userfiles import read_points, read_polygons

    export.check_output_dir(args.out)
    check_osm_file(args.osm or DEFAULT_CITY)
    _check_file(args.population, "Population file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the real read below reports them once
        if args.centers is not None:
            _check_file(args.centers, "Centers file")
            read_points(
                args.centers, crs=args.crs, lon_column=args.lon_column, lat_column=args.lat_column
            )
        if getattr(args, "candidates", None) is not None:
            _check_file(args.candidates, "Candidates file")
            read_points(args.candidates, crs=args.crs)
        if getattr(args, "exclude", None) is not None:
            _check_file(args.exclude, "Exclude file")
            read_polygons(args.exclude, crs=args.crs)


def _audit_or_site(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from coverage import export
    from coverage.audit import AuditParams, audit
    from coverage.i18n import t
    from coverage.netcache import DEFAULT_CACHE_DIR
    from coverage.scenario import DEFAULT_CITY, load_city

    siting_params = None
    if args.command == "site":
        from coverage.siting import SitingParams

        thresholds = tuple(sorted({*args.audit_minutes, float(args.minutes)}))
        below = [m for m in thresholds if m < args.minutes]
        siting_params = SitingParams(
            k=args.new,
            target_share=args.target_share,
            max_k=args.max_new,
            minutes=args.minutes,
            secondary_minutes=below[-1] if below else None,
            speed_kmh=args.speed_kmh,
            exact=args.exact,
            time_limit_s=args.time_limit_s,
        )
    else:
        thresholds = args.minutes
    params = AuditParams(
        speed_kmh=args.speed_kmh,
        thresholds_min=thresholds,
        level_thresholds_min=args.level_minutes,
    )
    _prevalidate(args)

    bar = _Progress(not args.quiet, err)
    try:
        has_siting = siting_params is not None
        load_hi, audit_hi, site_hi = (0.45, 0.75, 0.92) if has_siting else (0.55, 0.92, 0.92)
        columns = {
            k: v
            for k, v in {
                "lon": args.lon_column,
                "lat": args.lat_column,
                "name": args.name_column,
                "id": args.id_column,
                "level": args.level_column,
            }.items()
            if v
        }
        osm_path = args.osm or DEFAULT_CITY
        city = load_city(
            osm_path,
            centers_file=args.centers,
            centers_crs=args.crs,
            center_columns=columns or None,
            cache_dir=DEFAULT_CACHE_DIR if args.cache_dir is None else args.cache_dir,
            progress=bar.stage(0.0, load_hi),
        )
        if args.population is not None:
            # load_city reads population files as polygons only; demand_units also takes points.
            from coverage.demand import demand_units

            demand = demand_units(
                city.extract,
                city.net,
                population=args.population,
                population_column=args.population_column,
                crs=args.crs,
            )
            model: dict[str, Any] = {
                "source": "file",
                "file": args.population.name,
                "column": args.population_column,
            }
            city = replace(city, demand=demand, population_model=model)
        elif not city.population_model:
            from coverage.demand import PopulationModel

            city = replace(city, population_model={"source": "osm", **asdict(PopulationModel())})
        centers = city.centers
        closed = tuple(getattr(args, "close", ()))
        if closed:
            from coverage.centers import close_centers

            centers = close_centers(centers, closed)
        result = audit(
            city.net,
            centers,
            city.demand,
            params,
            with_polygons=not args.no_polygons,
            progress=bar.stage(load_hi, audit_hi),
        )
        siting = None
        if siting_params is not None:
            from coverage.siting import propose_sites
            from coverage.userfiles import read_points, read_polygons

            candidates = read_points(args.candidates, crs=args.crs) if args.candidates else None
            exclude = read_polygons(args.exclude, crs=args.crs) if args.exclude else None
            siting = propose_sites(
                city.net,
                city.demand,
                centers,
                params=siting_params,
                candidates=candidates,
                exclude=exclude,
                progress=bar.stage(audit_hi, site_hi),
            )
        title = f"{t('report.title', args.lang)} · {city.source_name}"
        files = export.output_files(
            net=city.net,
            audit=result,
            siting=siting,
            centers=centers,
            title=title,
            source_name=city.source_name,
            source_sha256=city.source_sha256,
            population_model=city.population_model,
            extra={"closed_centers": list(closed)} if closed else None,
            lang=args.lang,
            report=not args.no_report,
            progress=bar.stage(site_hi, 0.99),
        )
        target = export.write_outputs(args.out, files)
    finally:
        bar.close()
    if not args.quiet:
        _print_summary(out, result, siting, len(centers), target)
    return EXIT_OK


def _print_summary(out: TextIO, result: Any, siting: Any, n_centers: int, target: Path) -> None:
    total = float(result.population_total)
    print(
        f"{len(result.demand):,} demand units, {total:,.0f} residents, "
        f"{n_centers} center{'' if n_centers == 1 else 's'}",
        file=out,
    )
    for key, stats in result.coverage.items():
        print(
            f"  within {key} min: {stats.share:6.1%} ({stats.population_covered:,.0f} residents)",
            file=out,
        )
    if siting is not None:
        print(
            f"  {siting.k} new sites ({siting.method}): {siting.share_before:.1%} → "
            f"{siting.share_after:.1%} within {siting.params.minutes:g} min "
            f"(best possible ≤ {siting.upper_bound_share:.1%})",
            file=out,
        )
    print(f"wrote {target}", file=out)


def _batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        batch = importlib.import_module("coverage.batch")
    except ModuleNotFoundError as exc:
        if exc.name in {"coverage.batch"}:
            msg = "batch is not available yet"
            raise InputError(msg) from exc
        raise
    from coverage.netcache import DEFAULT_CACHE_DIR
    from coverage.scenario import DEFAULT_CITY

    run_batch = getattr(batch, "run_batch", None)
    if run_batch is None:
        msg = "batch is not available yet"
        raise InputError(msg)
    _check_file(args.districts, "Districts file")
    _check_file(args.centers, "Centers file")
    bar = _Progress(not args.quiet, err)
    kwargs: dict[str, Any] = {
        "osm": args.osm or DEFAULT_CITY,
        "districts": args.districts,
        "name_column": args.name_column,
        "admin_level": args.admin_level,
        "workers": args.workers,
        "scheduler": args.scheduler,
        "new_k": args.new,
        "centers": args.centers,
        "force": args.force,
        "out": args.out,
        "progress": bar.stage(0.0, 1.0),
    }
    if "cache_dir" in inspect.signature(run_batch).parameters:
        kwargs["cache_dir"] = DEFAULT_CACHE_DIR if args.cache_dir is None else args.cache_dir
    try:
        result = run_batch(**kwargs)
    finally:
        bar.close()
    if not args.quiet:
        table = getattr(result, "summary", None)
        if table is not None:
            print(f"{len(table)} districts", file=out)
        print(f"wrote {args.out}", file=out)
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
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
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=err)
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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> Any:
    """Treat SIGTERM like Ctrl-C, so a terminated run cleans its temporary output."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
