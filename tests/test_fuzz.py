"""Property-based fuzzing (issue 17): random OSM XML and user files against the real CLI.

Small OSM files (random nodes, ways and tags; missing refs, loops, self-references,
(0, 0), far-away and out-of-range coordinates, odd tag values) and small user files
(centers CSV with hostile names, odd numbers, GBK or UTF-8 bytes; population GeoJSON
with odd geometries and values) are fed to ``python -m coverage.cli audit`` in a
subprocess under an address-space cap (``RLIMIT_AS``) and a timeout. Whatever the
input, the CLI exits 0 or 2, never prints a traceback, says why in one short line on
exit 2, and writes nothing outside ``--out`` (and the cache folder it was given).

The subprocess properties are few and slow (~3 s each, mostly imports); the in-process
properties (readers and ``cli.main``) run more examples for the same time. Everything
is derandomised so CI sees the same cases on every run; a crash found here is fixed
and kept as a regression test in tests/test_bad_inputs.py (not repeated as an ``@example``).
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from conftest import GRID
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from coverage.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
# Inside the test grid (WGS-84): lon 116.2959-116.3112, lat 40.00005-40.00460.
LON0, LAT0 = 116.2959, 40.00005
LON1, LAT1 = 116.3112, 40.00460

#: Address-space cap of each CLI subprocess: a small file must never need more.
MEMORY_CAP_BYTES = 3_000_000_000
#: Wall-clock limit of each CLI subprocess (generous: the machine is shared).
TIMEOUT_S = 120.0
#: The one ``error:`` line the CLI prints on exit 2: ``error: `` and at most 300 characters.
MAX_LINE = len("error: ") + 300

#: More examples for a deeper local hunt: ``COVERAGE_PLANNER_FUZZ_SCALE=20 pytest tests/test_fuzz.py``.
SCALE = max(1, int(os.environ.get("COVERAGE_PLANNER_FUZZ_SCALE", "1") or "1"))
SUBPROCESS = settings(
    max_examples=4 * SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IN_PROCESS = settings(
    max_examples=20 * SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


# --------------------------------------------------------------------------------------------
# strategies


HOSTILE_TEXT = [
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    '=HYPERLINK("http://x","y")',
    "\x1b[31mred\x1b[0m",
    "a\x00b",
    "\ttab",
    "\rcr",
    "line\nbreak",
    "<script>alert(1)</script>",
    "党群服务中心",
    "𠀀😀",
    "\u202etxt.exe",
    "x" * 5000,
    "",
    " ",
]
names = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30))

ODD_NUMBERS = [
    "0",
    "-0",
    "1e308",
    "-1e308",
    "1e400",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "abc",
    "1,5",
    "0x10",
    "true",
    "1_000",
    "１２",
    "9" * 400,
]


def _coord_pair() -> st.SearchStrategy[tuple[float, float]]:
    """Inside the grid mostly; also (0, 0), the antimeridian, the poles and far away."""
    inside = st.tuples(
        st.floats(LON0, LON1, allow_nan=False), st.floats(LAT0, LAT1, allow_nan=False)
    )
    special = st.sampled_from(
        [
            (0.0, 0.0),
            (180.0, 90.0),
            (-180.0, -90.0),
            (-58.38, -34.60),  # Buenos Aires
            (LON0 + 0.2, LAT0),  # ~17 km away
            (1e-300, -1e-300),
        ]
    )
    out_of_range = st.sampled_from([(116.3, 999.0), (200.0, 40.0)])
    anywhere = st.tuples(st.floats(-180, 180, allow_nan=False), st.floats(-90, 90, allow_nan=False))
    return st.one_of(
        inside, inside, inside, inside, inside, special, special, anywhere, out_of_range
    )


HIGHWAYS = ["footway", "residential", "path", "pedestrian", "motorway", "steps", "", "yes", "路"]
TAG_KEYS = ["name", "building", "building:levels", "landuse", "amenity", "office", "access"]
TAG_VALUES = [
    "residential",
    "yes",
    "community_centre",
    "government",
    "-5",
    "1e308",
    "nan",
    "abc",
    "3;4",
    "",
]


#: A 3 x 3 lattice of nodes inside the grid (ids 1..9, ~85 m apart), joined by footways,
#: with a residential block and a community centre: the sane core most cases start from.
LATTICE = [
    (1 + 3 * r + c, 116.300 + 0.001 * c, 40.001 + 0.001 * r) for r in range(3) for c in range(3)
]
LATTICE_WAYS = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 4, 7], [2, 5, 8], [3, 6, 9]]


def _node(i: int, lon: float, lat: float, tags: str) -> str:
    return f'<node id="{i}" version="1" lat="{lat!r}" lon="{lon!r}">{tags}</node>'


def _way(i: int, refs: list[int], tags: str) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    return f'<way id="{i}" version="1">{nds}{tags}</way>'


def _tag(key: str, value: str) -> str:
    """One tag; values are cut to the 255 characters OSM allows (longer ones: osmium refuses)."""
    return f"<tag k={quoteattr(key)} v={quoteattr(_xml_safe(value)[:255])}/>"


@st.composite
def osm_xml(draw: st.DrawFn) -> bytes:
    """A small OSM XML file: random nodes, ways (missing refs, loops, self-refs) and tags.

    Three times in four the file starts from :data:`LATTICE` (so the run gets past the
    network build and meets the odd parts later); then random nodes (also at (0, 0),
    far away, out of range) and random ways and tags are added.
    """
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    ids: list[int] = []
    ways: list[str] = []
    if draw(st.integers(0, 3)) > 0:
        parts += [_node(i, lon, lat, _tags(draw)) for i, lon, lat in LATTICE]
        ids += [i for i, _, _ in LATTICE]
        ways += [
            _way(100 + k, refs, _tag("highway", "footway")) for k, refs in enumerate(LATTICE_WAYS)
        ]
        levels = draw(st.sampled_from(["6", "-5", "1e308", "nan", "abc", "", "999999"]))
        block = _tag("building", "residential") + _tag("building:levels", levels)
        ways.append(_way(200, [1, 2, 5, 4, 1], block))
        center = _tag("amenity", "community_centre") + _tag("name", draw(names))
        parts.append(_node(50, 116.3015, 40.0015, center))
    first = max(ids, default=0) + 1
    extra = [(i, *draw(_coord_pair())) for i in range(first, first + draw(st.integers(0, 6)))]
    parts += [_node(i, lon, lat, _tags(draw)) for i, lon, lat in extra]
    ids += [i for i, _, _ in extra]
    ref = st.one_of(st.sampled_from(ids or [1]), st.sampled_from([0, -1, 99_999, 2**62]))
    for k in range(1, draw(st.integers(0 if ids else 1, 5)) + 1):
        refs = draw(st.lists(ref, min_size=0, max_size=8))
        if refs and draw(st.booleans()):
            refs.append(refs[0])  # a closed loop
        hw = _tag("highway", draw(st.sampled_from(HIGHWAYS))) if draw(st.booleans()) else ""
        ways.append(_way(300 + k, refs, hw + _tags(draw)))  # ids in order after the lattice
    parts += [*ways, "</osm>"]
    return "\n".join(parts).encode("utf-8", "surrogatepass")


def _tags(draw: st.DrawFn) -> str:
    keys = draw(st.lists(st.sampled_from(TAG_KEYS), max_size=3, unique=True))
    return "".join(_tag(k, draw(st.one_of(st.sampled_from(TAG_VALUES), names))) for k in keys)


def _xml_safe(text: str) -> str:
    """Keep the XML well-formed (XML 1.0 forbids most control characters and lone surrogates)."""
    return "".join(
        c
        for c in text
        if (c in "\t\n\r" or ord(c) >= 0x20) and not 0xD800 <= ord(c) <= 0xDFFF and c != "\ufffe"
    )


@st.composite
def centers_csv(draw: st.DrawFn) -> bytes:
    """A centers CSV: hostile names and ids, in UTF-8, UTF-8-BOM, GBK or GB18030.

    A quarter of the files hold one row with odd numbers or coordinates anywhere on
    Earth (one bad row refuses the file); the other rows lie inside the grid.
    """
    n = draw(st.integers(0, 6))
    bad = draw(st.integers(-1, 4 * n - 1)) if n else -1
    rows = ["id,name,lon,lat,level"]
    for i in range(n):
        if i != bad:
            lon, lat = (
                repr(draw(st.floats(LON0, LON1))),
                repr(draw(st.floats(LAT0, LAT1))),
            )
        elif draw(st.booleans()):
            lon, lat = draw(st.sampled_from(ODD_NUMBERS)), draw(st.sampled_from(ODD_NUMBERS))
        else:
            x, y = draw(_coord_pair())
            lon, lat = repr(x), repr(y)
        name = draw(names).replace('"', '""')
        cid = draw(st.one_of(st.just(f"c{i}"), names)).replace('"', '""')
        level = draw(st.sampled_from(["community", "street", "社区", "", "=1+1"]))
        rows.append(f'"{cid}","{name}",{lon},{lat},{level}')
    text = "\n".join(rows) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n", "\n,,,,"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(max_size=20))  # trailing garbage
    return data


def _ring(x: float, y: float, dx: float, dy: float) -> list[list[float]]:
    return [[x, y], [x + dx, y], [x + dx, y + dy], [x, y + dy], [x, y]]


GEOMETRIES: list[Any] = [
    {"type": "Polygon", "coordinates": [_ring(116.299, 40.001, 0.004, 0.002)]},
    {"type": "Polygon", "coordinates": [_ring(112.0, 36.0, 8.0, 8.0)]},  # 8° x 8°
    {"type": "Polygon", "coordinates": [[[116.3, 40.002]] * 4]},  # degenerate
    {  # bow tie
        "type": "Polygon",
        "coordinates": [
            [
                [116.299, 40.001],
                [116.303, 40.003],
                [116.303, 40.001],
                [116.299, 40.003],
                [116.299, 40.001],
            ]
        ],
    },
    {"type": "Polygon", "coordinates": []},
    {
        "type": "MultiPolygon",
        "coordinates": [[_ring(116.300, 40.002, 0.001, 0.001)], [_ring(0, 0, 1, 1)]],
    },
    {"type": "Point", "coordinates": [116.301, 40.002]},
    {"type": "Point", "coordinates": [0.0, 0.0]},
    {"type": "LineString", "coordinates": [[116.3, 40.001], [116.301, 40.002]]},
    {"type": "GeometryCollection", "geometries": []},
    {"type": "Polygon", "coordinates": [_ring(116.3, 40.002, 1e-12, 1e-12)]},
    {"type": "Polygon", "coordinates": [_ring(-180.0, -90.0, 360.0, 180.0)]},  # the world
    None,
]
POP_VALUES: list[Any] = [
    100,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    1e8,
    2**70,
    "100",
    "abc",
    "",
    True,
    None,
    float("nan"),
    float("inf"),
    [1, 2],
    {"a": 1},
]


#: Values and geometries a population file may hold without being refused.
GOOD_VALUES = [100, 1.5, "100", 1e6, 0]
GOOD_GEOMETRIES = [g for i, g in enumerate(GEOMETRIES) if i in (0, 1, 3, 5, 6, 7)]


@st.composite
def population_geojson(draw: st.DrawFn) -> bytes:
    """A population FeatureCollection with odd geometries and values (UTF-8 or GBK).

    Half the files hold only values and geometries that should be read (a country-
    sized polygon, a bow tie, parts at (0, 0) included); the others anything.
    """
    sane = draw(st.booleans())
    values = GOOD_VALUES if sane else POP_VALUES
    geometries = GOOD_GEOMETRIES if sane else GEOMETRIES
    features = [
        {
            "type": "Feature",
            "properties": {"population": draw(st.sampled_from(values)), "name": draw(names)},
            "geometry": draw(st.sampled_from(geometries)),
        }
        for _ in range(draw(st.integers(1 if sane else 0, 4)))
    ]
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk"]))
    return text.encode(encoding, errors="replace")


# --------------------------------------------------------------------------------------------
# running the CLI in a subprocess


def _cap_memory() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(work: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m coverage.cli audit ... --out work/out`` under the memory cap.

    ``work`` is the child's working directory, ``HOME`` and ``TMPDIR``; the
    network cache goes to ``work/cache``. Returns the finished process.
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(work),
        "TMPDIR": str(work / "tmp"),
        "XDG_CACHE_HOME": str(work / "xdg"),
        "COVERAGE_PLANNER_THREADS": "1",
    }
    (work / "tmp").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "coverage.cli", "audit", *argv]
    cmd += ["--out", str(work / "out"), "--cache-dir", str(work / "cache"), "--no-report"]
    return subprocess.run(
        cmd,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT_S,
        preexec_fn=_cap_memory,
        check=False,
    )


def check_outcome(code: int, err: str) -> None:
    """Exit 0 or 2; never a traceback; on exit 2 one ``error:`` line of at most MAX_LINE chars."""
    event(f"exit {code}")  # --hypothesis-show-statistics shows how many inputs went through
    assert code in (0, 2), f"exit {code}:\n{err}"
    assert "Traceback" not in err, err
    if code == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, err
        assert len(errors[0]) <= MAX_LINE, errors[0]
        assert not any(c in errors[0] for c in "\x00\x1b"), errors[0]


def check_only_out_written(work: Path, before: set[str]) -> None:
    """Nothing new in ``work`` but ``out`` and ``cache`` (and the empty tmp folders)."""
    after = _tree(work)
    new = {p for p in after - before if not p.startswith(("out", "cache"))}
    # matplotlib (map.png) keeps its font list in the user's cache folder, as every matplotlib
    # program does; that is its own cache, not a user's file
    new -= {p for p in new if p.startswith(("xdg/matplotlib", ".config/matplotlib"))}
    new -= {".config"} if not any(p.startswith(".config/") for p in new) else set()
    assert new <= {"tmp", "xdg"}, sorted(new)
    assert not any((work / "tmp").iterdir()), sorted(_tree(work / "tmp"))


@pytest.mark.slow
@SUBPROCESS
@given(data=osm_xml())
def test_cli_survives_random_osm(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    work = tmp_path_factory.mktemp("fuzz")  # one per example (fixtures are per test)
    (work / "city.osm").write_bytes(data)
    before = _tree(work)
    proc = run_cli(work, "--osm", "city.osm")
    check_outcome(proc.returncode, proc.stderr)
    check_only_out_written(work, before)


@pytest.mark.slow
@SUBPROCESS
@given(centers=centers_csv(), population=population_geojson())
def test_cli_survives_random_user_files(
    tmp_path_factory: pytest.TempPathFactory, centers: bytes, population: bytes
) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    (work / "centers.csv").write_bytes(centers)
    (work / "pop.geojson").write_bytes(population)
    before = _tree(work)
    proc = run_cli(
        work, "--osm", str(GRID), "--centers", "centers.csv", "--population", "pop.geojson"
    )
    check_outcome(proc.returncode, proc.stderr)
    check_only_out_written(work, before)
    if proc.returncode == 0:
        csv_text = (work / "out" / "centers.csv").read_text(encoding="utf-8-sig")
        assert "\x00" not in csv_text
        assert "\x1b" not in csv_text


def test_memory_cap_is_applied_in_the_child(tmp_path: Path) -> None:
    """The fuzz runs really are capped: the child sees RLIMIT_AS = MEMORY_CAP_BYTES."""
    proc = subprocess.run(
        [sys.executable, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"],
        capture_output=True,
        text=True,
        preexec_fn=_cap_memory,
        timeout=60,
        check=True,
    )
    assert int(proc.stdout) == MEMORY_CAP_BYTES


# --------------------------------------------------------------------------------------------
# in process: the same inputs through the readers and cli.main (faster, more examples)


def attempt(fn: Callable[[], Any]) -> tuple[Any, InputError | None]:
    """``(fn(), None)``, or ``(None, error)`` when ``fn`` refuses with InputError (warnings muted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(), None
        except InputError as exc:
            return None, exc


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from coverage.cli import main

    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(list(argv))
    return code, capsys.readouterr().err


@IN_PROCESS
@given(data=osm_xml())
# issue 17's crashers (a lone closed loop, a way [1,1,1], a footway to (0, 0) or to Buenos
# Aires) are regressions in tests/test_bad_inputs.py, not repeated here
def test_read_osm_and_network_refuse_or_build(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    """Random OSM XML: an extract and a network with finite lengths, or one InputError line."""
    from coverage.network import network_from_ways
    from coverage.osm import read_osm

    p = tmp_path_factory.mktemp("osm") / "city.osm"
    p.write_bytes(data)
    net, refusal = attempt(lambda: network_from_ways(read_osm(p)))
    event("refused" if refusal else "built")
    if refusal is not None:
        assert "\n" not in str(refusal).strip()
        return
    assert net.n_nodes >= 2
    assert all(math.isfinite(v) and v >= 0 for v in net.edge_length_m)
    assert str(net.crs).startswith("EPSG:32")


@IN_PROCESS
@given(data=centers_csv())
# GBK, formula and control-character names: tests/test_bad_inputs.py and test_export.py
@example(data=b"id,name,lon,lat\nc1,x,1e400,nan\n")
def test_read_points_refuses_or_reads_clean_names(data: bytes) -> None:
    """Random centers CSV: points in range with names free of control characters, or InputError."""
    from coverage.userfiles import read_points

    gdf, refusal = attempt(lambda: read_points(data, filename="centers.csv"))
    event("refused" if refusal else "read")
    if refusal is not None:
        assert str(refusal)
        return
    assert str(gdf.crs) == "EPSG:4326"
    assert gdf.geometry.x.between(-180, 180).all()
    assert gdf.geometry.y.between(-90, 90).all()
    for value in gdf["name"].dropna():
        assert not any(ord(c) < 0x20 and c not in "\t" for c in str(value)), repr(value)


@IN_PROCESS
@given(data=population_geojson())
# issue 17's GBK GeoJSON, 1e308 and `true` residents: tests/test_userfiles.py, test_bad_inputs.py
def test_population_file_refuses_or_gives_finite_demand(
    grid_extract: Any, grid_net: Any, data: bytes
) -> None:
    """Random population GeoJSON over the grid: finite, non-negative demand, or InputError."""
    from coverage.demand import PopulationFile, demand_units

    extract, net = grid_extract, grid_net
    spec = PopulationFile(data, filename="pop.geojson")
    units, refusal = attempt(lambda: demand_units(extract, net, population=spec))
    event("refused" if refusal else "read")
    if refusal is not None:
        assert "\n" not in str(refusal).strip()
        return
    pop = units["population"].to_numpy()
    assert len(units) > 0
    assert (pop > 0).all()
    assert bool(pop.sum() < 1e10)
    assert str(units.crs) == str(net.crs)


@IN_PROCESS
@given(centers=centers_csv(), population=population_geojson())
def test_cli_main_in_process_exits_0_or_2(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    centers: bytes,
    population: bytes,
) -> None:
    work = tmp_path_factory.mktemp("main")
    (work / "c.csv").write_bytes(centers)
    (work / "p.geojson").write_bytes(population)
    args = ["--osm", str(GRID), "--centers", str(work / "c.csv")]
    args += ["--population", str(work / "p.geojson"), "--cache-dir", str(work / "cache")]
    code, err = _main(capsys, "audit", *args, "--out", str(work / "out"), "--no-report")
    check_outcome(code, err)
    if code == 2:
        assert not (work / "out").exists()
