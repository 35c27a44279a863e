"""Gateway route modules are siblings: none imports another, so what two of them share lives
below them (routing, convert, images, about, tasks_http) and a route module can be read,
moved or removed on its own."""

from __future__ import annotations

import ast
from pathlib import Path

ROUTES = Path(__file__).resolve().parents[2] / "services" / "gateway" / "routes"
PACKAGE = "services.gateway.routes"


def _imported(tree: ast.Module) -> list[str]:
    """Every module name an import statement of `tree` names (`from X import a` gives X and
    X.a, since `a` may be a submodule)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                base = ".".join([PACKAGE, *([node.module] if node.module else [])])
                if node.level > 1:
                    base = "<outside>"
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def route_imports() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    modules = sorted(ROUTES.glob("*.py"))
    assert len(modules) > 10, ROUTES
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bad = [
            name for name in _imported(tree) if name == PACKAGE or name.startswith(PACKAGE + ".")
        ]
        if bad:
            found[path.name] = sorted(set(bad))
    return found


def test_route_modules_import_no_other_route_module() -> None:
    assert route_imports() == {}


def test_the_check_sees_every_kind_of_import() -> None:
    sources = [
        "from services.gateway.routes.accounts import scope",
        "from services.gateway.routes import faces",
        "import services.gateway.routes.lists",
        "from . import handlers",
        "from .estimator import IMAGE_TYPES",
    ]
    for source in sources:
        assert any(
            n == PACKAGE or n.startswith(PACKAGE + ".") for n in _imported(ast.parse(source))
        ), source
    assert not any(
        n.startswith(PACKAGE) for n in _imported(ast.parse("from services.gateway import convert"))
    )
