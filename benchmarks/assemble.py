"""Assemble docs/BENCHMARKS.md from the sections each benchmark script writes.

Every ``benchmarks/bench_*.py`` (and ``run.py``) writes its own section to
``docs/bench/<name>.md`` with the machine, date and figures it measured; this
script only concatenates them in a fixed order, so no figure is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["network", "isochrones", "siting", "app", "batch", "suite"]

HEADER = """# Benchmarks

Figures below are written by the benchmark scripts in `benchmarks/` (never typed by
hand); each section names the machine, date and versions it was measured with.
Regenerate a section by running its script, then `python benchmarks/assemble.py`.

| section | script | command |
|---|---|---|
| network | `benchmarks/bench_network.py` | `.venv/bin/python benchmarks/bench_network.py` |
| isochrones and audit | `benchmarks/bench_isochrones.py` | `.venv/bin/python benchmarks/bench_isochrones.py` |
| siting | `benchmarks/bench_siting.py` | `.venv/bin/python benchmarks/bench_siting.py` |
| app | `benchmarks/bench_app.py` | `.venv/bin/python benchmarks/bench_app.py` |
| batch | `benchmarks/bench_batch.py` | `.venv/bin/python benchmarks/bench_batch.py` |
| city-scale suite | `benchmarks/run.py` | `make bench-full` (10k / 100k / 300k nodes) |

"""


def assemble(root: Path = ROOT) -> str:
    parts = [HEADER]
    bench_dir = root / "docs" / "bench"
    names = SECTIONS + sorted(p.stem for p in bench_dir.glob("*.md") if p.stem not in SECTIONS)
    for name in names:
        path = bench_dir / f"{name}.md"
        if path.exists():
            parts.append(path.read_text(encoding="utf-8").rstrip() + "\n\n")
        else:
            parts.append(f"## {name}\n\nNot measured yet.\n\n")
    return "".join(parts)


def main() -> None:
    out = ROOT / "docs" / "BENCHMARKS.md"
    out.write_text(assemble(), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
