"""The architecture as written in docs/ARCHITECTURE.md holds in the code.

- Every module of ``coverage/`` is listed in the document's module table, once.
- Imports flow one way: a module imports only modules listed above it.
- Sibling imports stand at the top of the module, never inside a function.
- ``coverage/`` never imports Streamlit.
- Only the walking-distance module runs a shortest-path search.
- At most three ``noqa`` comments in the library and the app (numerical kernels only).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "coverage"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
#: The one module allowed to call a shortest-path search (issue 12: one walking-distance module).
SEARCH_MODULE = "reach"
NOQA_MAX = 3


def documented_order() -> list[str]:
    """Module names in the order of the table under "Modules, in import order"."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Modules, in import order", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\|\s*`([a-z0-9_]+)\.py`\s*\|", section, flags=re.MULTILINE)


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def sibling_imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(sibling, line, at_top)`` for every import of a ``coverage`` module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    known = set(modules())
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "coverage":
                names = [a.name for a in node.names if a.name in known]
            elif node.module.startswith("coverage."):
                names = [node.module.split(".")[1]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("coverage.")]
        found += [(name, node.lineno, id(node) in top) for name in names]
    return found


def test_every_module_is_documented_once() -> None:
    order = documented_order()
    assert len(order) == len(set(order)), f"listed twice in {DOC.name}: {order}"
    assert sorted(order) == modules(), (
        f"{DOC.name} must list every module of coverage/ exactly: "
        f"missing {sorted(set(modules()) - set(order))}, stale {sorted(set(order) - set(modules()))}"
    )


@pytest.mark.parametrize("module", modules())
def test_imports_flow_one_way(module: str) -> None:
    order = documented_order()
    if module not in order:
        pytest.fail(f"{module}.py is not listed in {DOC.name}")
    rank = {m: i for i, m in enumerate(order)}
    for sibling, line, at_top in sibling_imports(PACKAGE / f"{module}.py"):
        assert sibling != module
        assert rank[sibling] < rank[module], (
            f"coverage/{module}.py:{line} imports {sibling}, which stands after it in {DOC.name}"
        )
        assert at_top, (
            f"coverage/{module}.py:{line} imports {sibling} inside a function; "
            "sibling imports go at the top of the module"
        )


def test_app_imports_only_the_library_at_the_top() -> None:
    for sibling, line, at_top in sibling_imports(ROOT / "app.py"):
        assert at_top, f"app.py:{line} imports coverage.{sibling} inside a function"


def test_the_library_never_imports_streamlit() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+streamlit", text, flags=re.MULTILINE), path


def test_only_the_walking_distance_module_searches() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem == SEARCH_MODULE:
            continue
        code = path.read_text(encoding="utf-8")
        assert "dijkstra" not in code, f"{path.name} runs a search; use coverage.{SEARCH_MODULE}"


def test_noqa_budget() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in [*PACKAGE.glob("*.py"), ROOT / "app.py"]
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "# noqa" in line
    ]
    assert len(hits) <= NOQA_MAX, f"more than {NOQA_MAX} noqa comments: {hits}"
