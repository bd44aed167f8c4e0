"""Fault injection: killed CLI runs, corrupted caches, solver time limits.

A CLI run killed with SIGTERM or SIGKILL, even in the middle of writing, must leave ``--out``
holding either the old complete output or the new complete output, never a mix. The runs
are started in parallel and killed the moment their temporary output folder appears (plus a
small seeded random delay), so the kill really lands during the write.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRID
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {
    "summary.json",
    "centers.geojson",
    "service_areas.geojson",
    "demand.geojson",
    "uncovered.geojson",
}

pytest.importorskip("coverage.cli")


def _cli_cmd(out: Path, cache: Path, minutes: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coverage.cli",
        "audit",
        "--osm",
        str(GRID),
        "--minutes",
        minutes,
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--quiet",
    ]


def _check_complete(out: Path) -> tuple[str, ...]:
    """Return the thresholds of the complete output in ``out``; fail on any mix or gap."""
    assert out.is_dir(), f"{out} is missing: neither the old nor the new output"
    names = {p.name for p in out.iterdir()}
    assert names >= CONTRACT, f"incomplete output: missing {CONTRACT - names}"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    keys = tuple(summary["coverage"])
    for name in names:
        if name.endswith(".geojson"):
            doc = json.loads((out / name).read_text(encoding="utf-8"))
            assert doc["type"] == "FeatureCollection"
    demand = json.loads((out / "demand.geojson").read_text(encoding="utf-8"))
    assert len(demand["features"]) == summary["demand"]["units"]
    for feat in demand["features"]:
        covered = {
            k.removeprefix("covered_") for k in feat["properties"] if k.startswith("covered_")
        }
        assert covered == set(keys), (
            f"demand.geojson ({covered}) and summary.json ({keys}) differ: mixed output"
        )
    areas = json.loads((out / "service_areas.geojson").read_text(encoding="utf-8"))
    minutes = {f"{float(f['properties']['minutes']):g}" for f in areas["features"]}
    assert minutes <= set(keys), f"service areas {minutes} are not from the run of {keys}"
    if (out / "report.html").exists():
        assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    return keys


@pytest.fixture(scope="module")
def old_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("faults")
    cache = base / "cache"
    out = base / "old"
    proc = subprocess.run(
        _cli_cmd(out, cache, "5,15"), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert _check_complete(out) == ("5", "15")
    return out, cache


def _kill_during_write(
    old: Path, cache: Path, work: Path, sig: int, rng: random.Random, n: int
) -> list[tuple[str, ...]]:
    runs: list[dict[str, Any]] = []
    for i in range(n):
        parent = work / f"run{i}"
        parent.mkdir(parents=True)
        out = parent / "out"
        shutil.copytree(old, out)
        proc = subprocess.Popen(
            _cli_cmd(out, cache, "3,10"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        runs.append(
            {
                "proc": proc,
                "parent": parent,
                "out": out,
                "delay": rng.uniform(0.0, 0.05),
                "seen": None,
            }
        )
    deadline = time.monotonic() + 240
    pending = list(runs)
    while pending and time.monotonic() < deadline:
        for run in list(pending):
            proc = run["proc"]
            if proc.poll() is not None:  # finished before we caught the write: still a valid case
                pending.remove(run)
                continue
            if run["seen"] is None and any(
                p.name.startswith(".coverage-planner-") for p in run["parent"].iterdir()
            ):
                run["seen"] = time.monotonic()
            if run["seen"] is not None and time.monotonic() - run["seen"] >= run["delay"]:
                proc.send_signal(sig)
                pending.remove(run)
        time.sleep(0.001)
    results = []
    for run in runs:
        proc = run["proc"]
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("a killed run did not stop")
        if proc.stderr is not None:
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
            assert "Traceback" not in err, err
        results.append(_check_complete(run["out"]))
        if run["seen"] is not None and proc.returncode == -sig:
            KILLED_MID_WRITE.append(sig)
        LEFTOVERS.extend(p.name for p in run["parent"].iterdir() if p.name != "out")
    return results


KILLED_MID_WRITE: list[int] = []
LEFTOVERS: list[str] = []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_audit_leaves_old_or_new_output(
    old_output: tuple[Path, Path], tmp_path: Path, sig: int
) -> None:
    old, cache = old_output
    rng = random.Random(int(sig))
    before = len(KILLED_MID_WRITE)
    for attempt in range(4):  # the grid's write is short: on a loaded machine a round may miss it
        results = _kill_during_write(old, cache, tmp_path / f"round{attempt}", sig, rng, n=3)
        assert all(r in {("5", "15"), ("3", "10")} for r in results), results
        if len(KILLED_MID_WRITE) > before:
            break
    assert len(KILLED_MID_WRITE) > before, "no run was caught while writing its output"
    # Temporary folders (.coverage-planner-tmp-*) may remain after a kill: SIGKILL cannot clean up, and
    # the CLI does not turn SIGTERM into a clean exit yet (see docs/RELIABILITY.md). They
    # are hidden siblings of --out, never inside it.


@pytest.mark.slow
def test_killed_before_writing_keeps_old_output(
    old_output: tuple[Path, Path], tmp_path: Path
) -> None:
    old, cache = old_output
    out = tmp_path / "out"
    shutil.copytree(old, out)
    proc = subprocess.Popen(
        _cli_cmd(out, cache, "3,10"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(random.Random(7).uniform(0.3, 1.5))
    proc.kill()
    proc.wait(timeout=60)
    assert _check_complete(out) in {("5", "15"), ("3", "10")}


# --- network cache -------------------------------------------------------------------------


def _cache_file(cache: Path) -> Path:
    (f,) = sorted(cache.glob("walk-*.npz"))
    return f


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate", "zero_length", "garbage"])
def test_corrupt_network_cache_is_detected_and_rebuilt(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    from coverage.fileio import TEMP_FILE_PREFIX
    from coverage.netcache import load_network, walk_network

    ref = walk_network(GRID, cache_dir=tmp_path)
    f = _cache_file(tmp_path)
    data = bytearray(f.read_bytes())
    if damage == "flip_bytes":
        rng = np.random.default_rng(3)
        for pos in rng.integers(len(data) // 4, len(data) - 200, size=8):
            data[pos] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "zero_length":
        data = bytearray()
    else:
        data = bytearray(b"not a zip file" * 100)
    f.write_bytes(bytes(data))
    with pytest.raises(Exception, match="rebuild"):
        load_network(f)
    with caplog.at_level("WARNING", logger="coverage.netcache"):
        net = walk_network(GRID, cache_dir=tmp_path)
    assert any("rebuild" in r.getMessage() for r in caplog.records)
    assert net.n_nodes == ref.n_nodes
    assert net.n_edges == ref.n_edges
    assert np.allclose(net.edge_length_m, ref.edge_length_m)
    again = load_network(_cache_file(tmp_path))  # rewritten intact
    assert again.n_edges == ref.n_edges
    assert not [
        p.name for p in tmp_path.iterdir() if p.name.startswith((".tmp-", TEMP_FILE_PREFIX))
    ]


def test_flipped_array_byte_fails_checksum(tmp_path: Path) -> None:
    """A change inside an array (not the zip structure) is caught by the checksum."""
    from coverage.errors import InputError
    from coverage.netcache import load_network, save_network, walk_network

    net = walk_network(GRID, cache_dir=None)
    path = save_network(net, tmp_path / "n.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["node_x"] = arrays["node_x"].copy()
    arrays["node_x"][0] += 1.0
    with path.open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(InputError, match="checksum"):
        load_network(path)


# --- solver time limit ----------------------------------------------------------------------


def test_exact_time_limit_honoured_with_gap() -> None:
    from coverage.optimize import greedy_max_coverage, solve_exact
    from coverage.siting import SitingParams

    rng = np.random.default_rng(0)
    C = sparse.random_array((400, 3000), density=0.02, rng=rng, format="csr").astype(bool)
    w = rng.uniform(1, 100, 3000)
    limit = 0.5
    # the greedy's sites as a start: under load HiGHS may find no solution of its own in 0.5 s
    start = greedy_max_coverage(C, w, k=15).chosen
    t0 = time.monotonic()
    res = solve_exact(C, w, 15, time_limit_s=limit, warm_start=start)
    elapsed = time.monotonic() - t0
    assert elapsed < limit + 10
    assert not res.optimal
    assert res.bound_population >= res.population_covered
    assert res.bound_population > res.population_covered + 1e-6  # a real gap is reported
    assert SitingParams(k=1, exact=True, time_limit_s=0.01).time_limit_s == 0.01


@pytest.mark.slow
def test_sigterm_leaves_no_temporary_folders(old_output: tuple[Path, Path], tmp_path: Path) -> None:
    """SIGTERM during the write should clean up like Ctrl-C does (exit code, temp folder removed)."""
    old, cache = old_output
    _kill_during_write(old, cache, tmp_path, signal.SIGTERM, random.Random(11), n=1)
    leftovers = [p.name for p in (tmp_path / "run0").iterdir() if p.name != "out"]
    assert not leftovers, f"a terminated run left {leftovers} beside its output"


_FINALIZER_SCRIPT = """
import os, signal, sys, time, weakref
from coverage import cli

previous = cli._sigterm_as_interrupt()

class Owner:
    pass

def cleanup():  # like tempfile's finalizer: the signal lands while it runs
    os.kill(os.getpid(), signal.{sig})
    time.sleep(0.2)

owner = Owner()
weakref.finalize(owner, cleanup)
try:
    del owner
    time.sleep(5)
    print("not interrupted")
except cli._Terminated:
    print("terminated")
except KeyboardInterrupt:
    print("interrupted")
finally:
    cli._restore_sigterm(previous)
assert sys.unraisablehook is sys.__unraisablehook__
"""


@pytest.mark.parametrize(("sig", "seen"), [("SIGTERM", "terminated"), ("SIGINT", "interrupted")])
def test_an_interrupt_inside_a_finalizer_is_sent_again_not_printed(sig: str, seen: str) -> None:
    """CI once saw SIGTERM land in a weakref finalizer: Python printed a traceback and lost it."""
    proc = subprocess.run(
        [sys.executable, "-c", _FINALIZER_SCRIPT.replace("{sig}", sig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == seen
    assert "Traceback" not in proc.stderr
    assert "Exception ignored" not in proc.stderr


# --------------------------------------------------------------------------------------------
# Issue 17: two batches on one folder never sweep each other's files in the making


def _batch_folder(tmp_path: Path) -> Path:
    from coverage import export

    out = tmp_path / "batch"
    (out / ".work").mkdir(parents=True)
    (out / export.MARKER).write_bytes(export.marker_bytes("batch"))
    return out


def test_batch_sweep_leaves_a_running_batch_alone(tmp_path: Path) -> None:
    """The sweep removes its own run's and dead runs' temporaries, never a live run's or a user's."""
    from coverage import batch, export

    out = _batch_folder(tmp_path)
    pre = export.TEMP_PREFIX
    with batch._run_lock(out) as other:  # a second batch, still running on the same folder
        live_dir = out / f"{pre}tmp-{other}abcd1234"
        live_old = out / f"{pre}old-{other}0123456789ab"
        live_dir.mkdir()
        live_old.mkdir()
        (out / f"{pre}tmp-{other}x1y2z3w4").write_bytes(b"half a summary.csv")
        dead = out / f"{pre}tmp-deadbeef-q1w2e3r4"  # a killed run: no lock holder
        dead.mkdir()
        (out / ".work" / "run-deadbeef.lock").write_bytes(b"")
        untagged = out / f"{pre}tmp-k3j4h5g6"  # an older version's leftover
        untagged.mkdir()
        user = out / ".thesis.old-draft"
        user.write_text("the user's")
        with batch._run_lock(out) as own:
            mine = out / f"{pre}tmp-{own}m1n2b3v4"
            mine.mkdir()
            batch._sweep_temporaries(out, own)
            assert live_dir.is_dir()
            assert live_old.is_dir()
            assert (out / f"{pre}tmp-{other}x1y2z3w4").read_bytes() == b"half a summary.csv"
            assert not mine.exists()
            assert not dead.exists()
            assert not untagged.exists()
            assert not (out / ".work" / "run-deadbeef.lock").exists()
            assert user.read_text() == "the user's"
        assert not (out / ".work" / f"run-{own.rstrip('-')}.lock").exists()  # released, removed
    batch._sweep_temporaries(out, "")  # the other run is gone now: its leftovers go too
    assert not live_dir.exists()
    assert not live_old.exists()
    assert user.read_text() == "the user's"


def test_temporaries_carry_the_run_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_outputs and atomic_write put the tag into every temporary sibling's name."""
    import tempfile

    from coverage import export
    from coverage.fileio import TEMP_FILE_PREFIX, atomic_write_bytes

    made: list[str] = []
    real_mkdtemp, real_mkstemp = tempfile.mkdtemp, tempfile.mkstemp

    def spy_dir(*args: Any, **kwargs: Any) -> str:
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    def spy_file(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkdtemp", spy_dir)
    monkeypatch.setattr(tempfile, "mkstemp", spy_file)
    export.write_outputs(tmp_path / "a", {"x.txt": "1"}, tag="0badf00d-")
    export.write_outputs(tmp_path / "a", {"x.txt": "2"}, tag="0badf00d-")  # the swap's old copy
    atomic_write_bytes(tmp_path / "s.csv", b"1", tag="0badf00d-")
    names = [Path(m).name for m in made]
    assert len(names) == 3
    assert all(
        n.startswith((f"{export.TEMP_PREFIX}tmp-0badf00d-", TEMP_FILE_PREFIX)) for n in names
    )
    assert all("0badf00d-" in n for n in names)
    assert (tmp_path / "a" / "x.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "s.csv"]  # nothing left beside


@pytest.mark.slow
def test_batch_with_local_workers_prints_no_distributed_noise(tmp_path: Path) -> None:
    """Issue 17: `batch --workers 2` printed 31 lines of distributed tracebacks on success."""
    import os

    def box(name: str, x0: float, x1: float) -> dict[str, Any]:
        ring = [[x0, 39.999], [x1, 39.999], [x1, 40.006], [x0, 40.006], [x0, 39.999]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
        return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}

    districts = tmp_path / "districts.geojson"
    features = [box("west", 116.295, 116.3035), box("east", 116.3035, 116.312)]
    districts.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    centers = tmp_path / "centers.csv"
    centers.write_text("id,name,lon,lat\nc1,West,116.300,40.002\nc2,East,116.308,40.002\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "coverage.cli", "batch", "--osm", str(GRID)]
    cmd += ["--centers", str(centers), "--districts", str(districts), "--workers", "2"]
    cmd += ["--no-polygons", "--no-report", "--cache-dir", str(tmp_path / "c")]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    noise = [
        ln
        for ln in proc.stderr.splitlines()
        if ln.strip()
        and not ln.startswith(("INFO coverage.progress:", "warning:", "WARNING coverage"))
    ]
    assert noise == []
    assert "2 districts" in proc.stdout
