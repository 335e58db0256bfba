"""The house rules, kept by walking the code: views ask the gateway service; only the gateway
service reaches the protocol; only the protocol speaks HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRACKER = Path(__file__).resolve().parent.parent / "tracker"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports at run time (an `if TYPE_CHECKING:` block is for the type
    checker only), with relative imports resolved inside `tracker`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(TRACKER.parent).with_suffix("").parts[:-1])
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def tracker_files():
    return [p for p in TRACKER.rglob("*.py") if "migrations" not in p.parts]


def reaches(modules: set[str], *names: str) -> set[str]:
    return {m for m in modules for n in names if m == n or m.startswith(n + ".")}


@pytest.mark.parametrize("path", sorted((TRACKER / "views").glob("*.py")), ids=lambda p: p.name)
def test_views_ask_only_the_gateway_service(path):
    forbidden = ("tracker.breaker", "tracker.refresh", "tracker.upstream", "tracker.tracking")
    assert reaches(imported_modules(path), *forbidden, "httpx") == set()


def test_only_the_gateway_service_imports_the_protocol():
    importers = {
        str(path.relative_to(TRACKER))
        for path in tracker_files()
        if "upstream" not in path.relative_to(TRACKER).parts
        and reaches(imported_modules(path), "tracker.upstream")
    }
    assert importers == {"gateway.py"}


def test_only_the_protocol_speaks_http():
    speakers = {
        str(path.relative_to(TRACKER))
        for path in tracker_files()
        if reaches(imported_modules(path), "httpx", "httpcore")
    }
    assert speakers and all(s.startswith("upstream/") for s in speakers), speakers
