"""Shared helpers for the benchmark scripts: machine facts, timing, peak memory, Markdown.

Used by ``run.py`` and the per-stage scripts (``bench_network.py``,
``bench_isochrones.py``, ``bench_siting.py``). Nothing here imports the
``coverage`` package, so a benchmark can report on a half-built tree.

Typical use::

    from _common import machine_info, measure, write_markdown

    m = measure(lambda: build(city), repeat=3)
    rows = [{"stage": "network", "median_s": m.median_s, "peak_mb": m.peak_rss_mb}]
    write_markdown("docs/bench/network.md", "Network build", rows, machine=machine_info())
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib.metadata
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
# Measure this checkout's `coverage`, not an installed copy: `python benchmarks/x.py` puts only
# benchmarks/ on sys.path, and a git worktree sharing a venv has its editable install pointing
# at another checkout.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Packages whose versions go into every benchmark report.
KEY_PACKAGES = (
    "numpy",
    "scipy",
    "shapely",
    "geopandas",
    "pyproj",
    "networkx",
    "osmnx",
    "osmium",
    "pandas",
    "highspy",
    "dask",
    "psutil",
)

_MB = 1024.0 * 1024.0


# --- machine ------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def package_versions(names: Sequence[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"missing"`` when not installed)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_revision() -> str:
    """Short commit of HEAD (``"unknown"`` outside git)."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev or "unknown"


def machine_info() -> dict[str, Any]:
    """Facts that make a timing reproducible: CPU, cores, RAM, OS, date, versions."""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "nproc": os.cpu_count() or 1,
        "ram_gb": round(_ram_bytes() / 1024**3, 1),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": git_revision(),
        "packages": package_versions(),
    }


# --- timing -------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Median wall time of ``repeat`` calls of ``fn``, in seconds."""
    return measure(fn, repeat=repeat, track_memory=False).median_s


@dataclass(frozen=True)
class Measurement:
    """Wall times of each repetition and the peak resident memory seen while running."""

    times_s: tuple[float, ...]
    peak_rss_bytes: int
    baseline_rss_bytes: int
    result: Any = field(default=None, repr=False, compare=False)
    cpu_times_s: tuple[float, ...] = ()

    @property
    def median_cpu_s(self) -> float:
        """Median CPU time (user + system, all threads of this process; not child processes).

        Unlike wall time it barely moves when other jobs compete for the cores.
        """
        return float(statistics.median(self.cpu_times_s)) if self.cpu_times_s else float("nan")

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.times_s)) if self.times_s else float("nan")

    @property
    def min_s(self) -> float:
        return float(min(self.times_s)) if self.times_s else float("nan")

    @property
    def peak_rss_mb(self) -> float:
        """Peak resident set size of the whole process during the calls, in MiB."""
        return self.peak_rss_bytes / _MB

    @property
    def delta_rss_mb(self) -> float:
        """Peak RSS above the RSS before the first call, in MiB (what the stage added)."""
        return max(0, self.peak_rss_bytes - self.baseline_rss_bytes) / _MB


def current_rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample this process's RSS on a background thread; ``peak`` is the maximum seen.

    A sampler misses spikes shorter than ``interval_s``; the kernel's high-water
    mark (``ru_maxrss``) cannot be reset within a process, so for an exact per-call
    peak use :func:`peak_rss_in_child`.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.baseline = current_rss_bytes()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = current_rss_bytes()
            if rss > self.peak:
                self.peak = rss
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_bytes())


@contextmanager
def peak_rss(interval_s: float = 0.01) -> Iterator[PeakRSS]:
    """Context manager form of :class:`PeakRSS`."""
    with PeakRSS(interval_s) as tracker:
        yield tracker


def measure(
    fn: Callable[[], T], *, repeat: int = 1, warmup: int = 0, track_memory: bool = True
) -> Measurement:
    """Call ``fn`` ``warmup + repeat`` times; time the last ``repeat`` calls.

    Returns the wall times, the peak RSS sampled during the timed calls, and the
    last call's return value (``result``), so a stage's output can feed the next.
    """
    if repeat < 1:
        msg = f"`repeat` must be at least 1; got {repeat}."
        raise ValueError(msg)
    result: Any = None
    for _ in range(warmup):
        result = fn()
    gc.collect()
    times: list[float] = []
    cpu: list[float] = []

    def run_all() -> Any:
        out: Any = None
        for _ in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return out

    if track_memory:
        tracker = PeakRSS()
        with tracker:
            result = run_all()
        peak, base = tracker.peak, tracker.baseline
    else:
        result = run_all()
        peak = base = 0
    return Measurement(tuple(times), peak, base, result, tuple(cpu))


def _child(fn: Callable[[], Any], conn: Any) -> None:
    try:
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        # ru_maxrss is in KiB on Linux.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        conn.send(("ok", elapsed, peak))
    except BaseException as exc:  # report any failure to the parent
        conn.send(("error", repr(exc), 0))
    finally:
        conn.close()


def peak_rss_in_child(
    fn: Callable[[], Any], *, timeout_s: float | None = None
) -> tuple[float, int]:
    """Run ``fn`` in a forked child; return its wall time and its exact peak RSS in bytes.

    The peak includes what the child inherited from the parent, so call this from
    a lean process for absolute numbers. Raises ``RuntimeError`` if ``fn`` fails.
    """
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            proc.kill()
            msg = f"benchmark child did not finish within {timeout_s} s"
            raise TimeoutError(msg)
        status, value, peak = parent.recv()
    finally:
        proc.join()
        parent.close()
    if status != "ok":
        msg = f"benchmark child failed: {value}"
        raise RuntimeError(msg)
    return float(value), int(peak)


def process_peak_rss_bytes() -> int:
    """High-water mark of this process's RSS since it started (``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- Markdown -----------------------------------------------------------------


def fmt_seconds(s: float | None) -> str:
    """Seconds with a sensible number of digits (``"–"`` for missing)."""
    if s is None or s != s:  # None or NaN
        return "–"
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 100:
        return f"{s:.2f} s"
    return f"{s:.0f} s"


def fmt_mb(mb: float | None) -> str:
    if mb is None or mb != mb:
        return "–"
    return f"{mb:,.0f} MB"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` (dicts); ``columns`` default to the first row's keys."""
    if not rows:
        return "_(no rows)_\n"
    cols = list(columns) if columns is not None else list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in cols]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def machine_markdown(info: Mapping[str, Any]) -> str:
    """The machine section of a report, from :func:`machine_info`."""
    pk = info.get("packages", {})
    versions = ", ".join(f"{k} {v}" for k, v in pk.items())
    return (
        f"- Date: {info.get('date')}\n"
        f"- CPU: {info.get('cpu')} ({info.get('nproc')} logical cores)\n"
        f"- RAM: {info.get('ram_gb')} GB\n"
        f"- OS: {info.get('os')} (kernel {info.get('kernel')})\n"
        f"- Python: {info.get('python')}; commit {info.get('commit')}\n"
        f"- Packages: {versions}\n"
    )


def write_markdown(
    path: Path | str,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    machine: Mapping[str, Any] | None = None,
    intro: str = "",
    extra: str = "",
) -> Path:
    """Write a report: title, intro, machine facts, one table of ``rows``, extra text.

    The file is written atomically (temporary file then rename).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}\n"]
    if intro:
        parts.append(intro.rstrip() + "\n")
    if machine is not None:
        parts.append("## Machine\n\n" + machine_markdown(machine))
    parts.append(markdown_table(rows))
    if extra:
        parts.append(extra.rstrip() + "\n")
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, p)
    return p


def log(msg: str) -> None:
    """Progress line on stderr (benchmarks are scripts, so printing is fine here)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def grid_network(
    side: int,
    *,
    spacing_m: float = 90.0,
    jitter_m: float = 20.0,
    missing_share: float = 0.05,
    origin_xy: tuple[float, float] = (500_000.0, 3_000_000.0),
    crs: str = "EPSG:32650",
    seed: int = 0,
) -> Any:
    """A perturbed ``side × side`` street grid as a WalkNetwork (deterministic from ``seed``).

    Nodes are jittered by up to ``jitter_m`` and a ``missing_share`` of links is dropped
    (dead ends and detours), so searches do not run on a perfect lattice.
    """
    import numpy as np
    import shapely

    from coverage.network import WalkNetwork

    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(side * side), side)
    x = origin_xy[0] + c * spacing_m + rng.uniform(-jitter_m, jitter_m, r.size)
    y = origin_xy[1] + r * spacing_m + rng.uniform(-jitter_m, jitter_m, r.size)
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    keep = rng.random(u.size) > missing_share
    u, v = u[keep], v[keep]
    geoms = shapely.linestrings(
        np.stack([np.column_stack([x[u], y[u]]), np.column_stack([x[v], y[v]])], axis=1)
    )
    geometry = np.empty(geoms.size, dtype=object)
    geometry[:] = list(geoms)
    return WalkNetwork(
        crs=crs,
        node_osmid=np.arange(x.size, dtype=np.int64),
        node_x=x,
        node_y=y,
        edge_u=u.astype(np.int64),
        edge_v=v.astype(np.int64),
        edge_length_m=shapely.length(geoms).astype(np.float64),
        edge_highway=np.full(u.size, "residential", dtype=object),
        edge_geometry=geometry,
    )
