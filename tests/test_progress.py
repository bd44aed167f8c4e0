"""Progress reporting: ``sub_progress`` and the log lines written when stderr is no terminal."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GRID

from coverage.progress import LOG_DELAY_ENV, ProgressLog, sub_progress

ROOT = Path(__file__).resolve().parents[1]
CENTERS_CSV = "id,name,lon,lat\nc1,Center,116.300,40.002\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "coverage.progress"]


def test_sub_progress_maps_onto_its_range() -> None:
    seen: list[tuple[float, str]] = []
    report = sub_progress(lambda f, m: seen.append((f, m)), 0.2, 0.6)
    assert report is not None
    report(0.5, "half")
    report(2.0, "clipped")
    assert seen == [(pytest.approx(0.4), "half"), (pytest.approx(0.6), "clipped")]
    assert sub_progress(None, 0.0, 1.0) is None


def test_progress_log_delay_steps_and_interval(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing in the first delay; then each new step at once and one step at most every interval."""
    clock = FakeClock()
    log = ProgressLog(delay_s=3.0, interval_s=5.0, clock=clock, heartbeat=False)
    with caplog.at_level(logging.INFO, logger="coverage.progress"):
        log(0.0, "reading OSM file")
        clock.now += 2.9
        log(0.1, "reading OSM file")
        assert _lines(caplog) == []  # a quick run prints nothing
        clock.now += 0.2
        log(0.2, "reading OSM file")
        assert _lines(caplog) == [" 20% reading OSM file (3 s)"]
        clock.now += 1.0
        log(0.25, "reading OSM file")  # same step, within the interval: no line
        log(0.3, "building the network")  # a new step: a line at once
        clock.now += 4.9
        log(0.35, "building the network")
        log.tick()
        assert len(_lines(caplog)) == 2
        clock.now += 0.2
        log.tick()  # the heartbeat: the same step again after the interval
        assert _lines(caplog) == [
            " 20% reading OSM file (3 s)",
            " 30% building the network (4 s)",
            " 35% building the network (9 s)",
        ]


def test_progress_log_heartbeat_reports_a_silent_step(caplog: pytest.LogCaptureFixture) -> None:
    """A step that reports nothing (one long OSM read) still gets lines from the heartbeat."""
    with caplog.at_level(logging.INFO, logger="coverage.progress"):
        with ProgressLog(delay_s=0.0, interval_s=0.05) as log:
            log(0.1, "reading OSM file")
            deadline = time.monotonic() + 30.0  # a generous wait, not a timing assert
            while len(_lines(caplog)) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        n = len(_lines(caplog))
    assert n >= 3
    assert set(_lines(caplog)) <= {f" 10% reading OSM file ({s} s)" for s in range(31)}
    time.sleep(0.2)
    assert len(_lines(caplog)) == n  # stopped with the block


def test_progress_delay_from_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``COVERAGE_PLANNER_PROGRESS_DELAY_S=0`` logs from the start; bad values keep the default."""
    for raw, logged in (("0", True), ("", False), ("nan", False), ("-1", False), ("x", False)):
        monkeypatch.setenv(LOG_DELAY_ENV, raw)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="coverage.progress"):
            ProgressLog(clock=FakeClock(), heartbeat=False)(0.5, "step")
        assert bool(_lines(caplog)) is logged, raw


def _cli(tmp_path: Path, *extra: str, delay: str = "0") -> subprocess.CompletedProcess[str]:
    centers = tmp_path / "centers.csv"
    centers.write_text(CENTERS_CSV)
    env = {**os.environ, "PYTHONPATH": str(ROOT), LOG_DELAY_ENV: delay}
    cmd = [sys.executable, "-m", "coverage.cli", "audit", "--osm", str(GRID)]
    cmd += ["--centers", str(centers), "--cache-dir", str(tmp_path / "cache")]
    cmd += ["--out", str(tmp_path / "out"), "--no-report", *extra]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=300, check=False
    )  # stderr is a pipe: no tqdm bar


def test_cli_logs_loading_progress_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    proc = _cli(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("INFO coverage.progress:")]
    steps = [ln.split("%", 1)[1].rsplit("(", 1)[0].strip() for ln in lines]
    loading = [
        "reading OSM file",
        "building the network",
        "reading and snapping centers",
        "estimating residents",
        "city loaded",
    ]
    assert [s for s in steps if s in loading] == loading  # every loading stage, in order
    percents = [float(ln.split(":", 1)[1].split("%")[0]) for ln in lines]
    assert percents == sorted(percents)
    assert "\r" not in proc.stderr  # no bar redraws in a log
    assert "wrote" in proc.stdout


def test_cli_quiet_has_no_progress_lines(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "coverage.progress" not in proc.stderr
