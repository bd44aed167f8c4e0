"""Check that two output folders of the same command hold the same data (issue 16).

Every GeoJSON and CSV file present in either folder must be byte-identical;
``summary.json`` must be equal once the fields that name the run (timings, run
id, dates) are dropped. Documents (``map.png``, ``map.pdf``, ``tables.xlsx``,
``report.html``) carry dates and drawing details and are only checked to exist
in both. Exit 0 when the folders agree, 1 with one line per difference.

Usage::

    python benchmarks/compare_outputs.py BEFORE_DIR AFTER_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: summary.json keys that differ between two runs of the same command.
VOLATILE_KEYS = frozenset({"timings_s", "run_id", "created", "created_utc", "date", "elapsed_s"})
DOCUMENTS = ("map.png", "map.pdf", "tables.xlsx", "report.html")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def differences(before: Path, after: Path) -> list[str]:
    """Return one line per file that differs between ``before`` and ``after``."""
    out: list[str] = []
    names = {p.name for p in before.iterdir()} | {p.name for p in after.iterdir()}
    for name in sorted(names):
        a, b = before / name, after / name
        if not (a.is_file() and b.is_file()):
            if a.exists() != b.exists():
                out.append(f"{name}: only in {'before' if a.exists() else 'after'}")
            continue
        if name.endswith((".geojson", ".csv")) and a.read_bytes() != b.read_bytes():
            out.append(f"{name}: bytes differ")
        elif name == "summary.json":
            ja, jb = (_stable(json.loads(p.read_text(encoding="utf-8"))) for p in (a, b))
            if ja != jb:
                out.append(f"{name}: differs beyond timings and run ids")
    return out


def main() -> int:
    """Compare the two folders given on the command line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args()
    diffs = differences(args.before, args.after)
    for line in diffs:
        sys.stdout.write(line + "\n")
    checked = sorted(p.name for p in args.after.iterdir() if p.suffix in (".geojson", ".csv"))
    sys.stdout.write(f"{'differ' if diffs else 'identical'}: {', '.join(checked)}\n")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
