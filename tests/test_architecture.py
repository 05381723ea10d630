"""The shape of the code: one direction of imports between packages, short functions.

Reads the source with `ast` only; nothing is imported. docs/architecture.md draws the layers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.unit

# Each package may import only the packages listed for it (and the standard library and
# third-party packages). Anything not listed is a new arrow that docs/architecture.md must show.
ALLOWED: dict[str, set[str]] = {
    "recognition": set(),
    "handlers": {"recognition"},
    "training": {"recognition"},
    "tsclient": set(),
    "webui": {"recognition", "tsclient", "stack"},  # stack.paths (key file), stack.headers
    "stack": {"recognition", "tsclient"},
    "scripts": {"recognition", "tsclient", "stack"},
    "evalsets": {"recognition", "training"},
    "benchmarks": {
        "recognition",
        "tsclient",
        "stack",
        "scripts",
        "evalsets",
        "training",
        "webui",
        "handlers",
    },
}
PACKAGES = tuple(name for name in ALLOWED if (REPO_ROOT / name).is_dir())
MAX_FUNCTION_LINES = 80


def sources() -> Iterator[tuple[str, Path, ast.Module]]:
    """(package, path, parsed module) of every source file of the project's packages."""
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            yield package, path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def project_imports(node: ast.AST) -> Iterator[tuple[str, ast.stmt]]:
    """(top-level project package, statement) of each import statement below `node`."""
    for stmt in ast.walk(node):
        if isinstance(stmt, ast.Import):
            names = [alias.name for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
            names = [stmt.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ALLOWED:
                yield top, stmt


def functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function and method defined in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_packages_import_only_the_layers_below_them() -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)}:{stmt.lineno} imports {target}"
        for package, path, tree in sources()
        for target, stmt in project_imports(tree)
        if target != package and target not in ALLOWED[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_allowed_imports_have_no_cycle() -> None:
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in ALLOWED[start]
        )

    assert not [package for package in ALLOWED if reaches(package, package)]


def test_no_function_imports_a_project_module() -> None:
    """Imports sit at the top of a module, where the arrows between packages can be seen."""
    hidden = [
        f"{path.relative_to(REPO_ROOT)}:{stmt.lineno} ({function.name})"
        for _, path, tree in sources()
        for function in functions(tree)
        for _, stmt in project_imports(function)
    ]
    assert not hidden, "\n".join(hidden)


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}: "
        f"{node.end_lineno - node.lineno + 1} lines"
        for _, path, tree in sources()
        for node in functions(tree)
        if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


def test_the_rules_see_every_package() -> None:
    """A new top-level package must be placed in ALLOWED (and in docs/architecture.md)."""
    found = {
        path.parent.name
        for path in REPO_ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "config", "deploy", "docs"}
    }
    assert found <= set(ALLOWED), sorted(found - set(ALLOWED))


def test_the_web_ui_runs_without_torch() -> None:
    """The web UI's image holds no torch: building the app must not import it (or OpenCV)."""
    probe = (
        "import sys; from webui import create_app; create_app({'TESTING': True}); "
        "print(sorted({'torch', 'cv2', 'handlers', 'training'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
