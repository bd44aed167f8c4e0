"""Assemble docs/BENCHMARKS.md from the sections each benchmark script writes.

Every ``benchmarks/bench_*.py`` (and ``run.py``) writes its own section to
``docs/bench/<name>.md`` with the machine, date and figures it measured; this
script only concatenates them in a fixed order, so no figure is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = [
    "e2e",
    "e2e_audit",
    "network",
    "isochrones",
    "documents",
    "siting",
    "capacity",
    "app",
    "app_100k",
    "app_300k",
    "batch",
    "suite",
    "scale",
    "guards",
]

HEADER = """# Benchmarks

Figures below are written by the benchmark scripts in `benchmarks/` (never typed by
hand); each section names the machine, date and versions it was measured with.
Regenerate a section by running its script, then `python benchmarks/assemble.py`.

| section | script | command |
|---|---|---|
| whole commands, cold and warm (issue 16) | `benchmarks/bench_e2e.py` | `.venv/bin/python benchmarks/bench_e2e.py --sizes 10000,100000,300000 --write-docs` (also in `make bench-full`) |
| `audit` re-measured on the 100k and 300k cities (issue 16) | `benchmarks/bench_e2e.py` | see the section's own command line |
| network | `benchmarks/bench_network.py` | `.venv/bin/python benchmarks/bench_network.py` |
| isochrones and audit | `benchmarks/bench_isochrones.py` | `.venv/bin/python benchmarks/bench_isochrones.py` |
| the default city (91 stations) and its documents (issue 14) | `benchmarks/bench_documents.py` | `.venv/bin/python benchmarks/bench_documents.py --write-docs` |
| siting | `benchmarks/bench_siting.py` | `.venv/bin/python benchmarks/bench_siting.py` |
| capacity: 2SFCA, capacitated siting (issue 15) | `benchmarks/bench_capacity.py` | `.venv/bin/python benchmarks/bench_capacity.py` |
| app | `benchmarks/bench_app.py` | `.venv/bin/python benchmarks/bench_app.py` (`--targets city100k` / `city300k` with `--name app_100k` / `app_300k` for the synthetic cities) |
| batch | `benchmarks/bench_batch.py` | `.venv/bin/python benchmarks/bench_batch.py` |
| benchmark suite (every stage, anchors) | `benchmarks/run.py` | `make bench-full` (10k / 100k / 300k nodes) |
| city-scale targets (issue 7) | `benchmarks/bench_scale.py` | `.venv/bin/python benchmarks/bench_scale.py` (10k / 100k / 300k nodes) |
| guards (issue 17) | `benchmarks/bench_guards.py` | `.venv/bin/python benchmarks/bench_guards.py --write-docs` (embedded city, 100k nodes) |

"""


def _demote(text: str) -> str:
    """Each section's headings one level down, under this file's single title."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(out)


def assemble(root: Path = ROOT) -> str:
    parts = [HEADER]
    bench_dir = root / "docs" / "bench"
    # `<name>.notes.md` files are hand-written notes a script appends to its own section
    extra = (p.stem for p in bench_dir.glob("*.md") if not p.stem.endswith(".notes"))
    names = SECTIONS + sorted(n for n in extra if n not in SECTIONS)
    for name in names:
        path = bench_dir / f"{name}.md"
        if path.exists():
            parts.append(_demote(path.read_text(encoding="utf-8")).rstrip() + "\n\n")
        else:
            parts.append(f"## {name}\n\nNot measured yet.\n\n")
    return "".join(parts)


def main() -> None:
    out = ROOT / "docs" / "BENCHMARKS.md"
    out.write_text(assemble(), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
