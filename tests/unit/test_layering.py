"""DESIGN: `resource` and `client` never import `server` or `store`, and work with a plain
`pip install ostiary` (no database, no web framework). Checked in a fresh interpreter in which the
server-only packages cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SERVER_ONLY = ("sqlalchemy", "starlette", "uvicorn", "alembic", "argon2", "jinja2", "aiosqlite", "asyncpg",
               "redis", "fhir", "rich", "ada_url", "webauthn", "segno")

PROBE = textwrap.dedent(f"""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {SERVER_ONLY!r}:
                raise ImportError("blocked for this test: " + name)
            return None
    sys.meta_path.insert(0, Block())
    import ostiary.resource, ostiary.client, ostiary.jwt, ostiary.keys, ostiary.smart.scopes
    from click.testing import CliRunner
    from ostiary.cli import main
    result = CliRunner().invoke(main, ["jwt", "keygen", "--out", sys.argv[1]])
    assert result.exit_code == 0, result.output
    loaded = sorted(m for m in sys.modules if m.startswith("ostiary.server") or m.startswith("ostiary.store"))
    assert not loaded, loaded
    print("ok")
""")


def test_guard_client_and_jwt_tools_need_no_server_packages(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "key.pem")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip().endswith("ok")


CORE_FORBIDDEN = ("sqlalchemy", "starlette", "redis", "uvicorn", "jinja2", "alembic", "asyncpg", "aiosqlite",
                  "ostiary.web", "ostiary.cli", "ostiary.app", "ostiary.fhir", "ostiary.store.sql",
                  "ostiary.store.redis")


def _offenders(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports anywhere in the package `layer` (function bodies too) of a module in `forbidden`."""
    import ast
    import pathlib

    import ostiary

    root = pathlib.Path(ostiary.__file__).parent / layer
    offenders = []
    for path in root.rglob("*.py"):
        package = "ostiary." + ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = node.module or ""
                names = [f"{base}.{module}".rstrip(".") if node.level else module]
            offenders += [f"{path.name}: {n}" for n in names
                          if any(n == f or n.startswith(f + ".") for f in forbidden)]
    return offenders


def test_the_core_imports_no_framework_storage_or_fhir_code():
    """DESIGN: `server/` is framework-free; the composition root `app/` alone names SQL, Redis and FHIR concretes."""
    assert not _offenders("server", CORE_FORBIDDEN)


STORAGE_BACKENDS = ("sqlalchemy", "redis", "asyncpg", "aiosqlite", "alembic", "ostiary.store.sql",
                    "ostiary.store.redis", "ostiary.store.memory")


@pytest.mark.parametrize("layer", ["web", "server", "smart"])
def test_only_the_composition_root_names_a_storage_backend(layer: str):
    """The web layer and the core reach storage through the provider's Protocols; which backend serves
    them (SQL, Redis, memory) is decided in `app/` alone."""
    assert not _offenders(layer, STORAGE_BACKENDS)


def _module_level_imports(path, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The ostiary modules `module` imports when it is loaded: top-level statements (inside top-level
    `if`/`try` too), not function bodies and not `if TYPE_CHECKING:` blocks."""
    import ast

    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If):
                test = node.test
                if not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") and not (
                        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                    visit(block)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known)

    visit(ast.parse(path.read_text()).body)
    return {name for name in found if name in known}


def test_issue11_no_import_cycle_among_ostiary_modules():
    """Issue 11 part 1: no import loop in the house (web/pages ↔ smart_routes ↔ session_routes was one).
    Module-level imports only: an import inside a function (a deliberate lazy import) is not a cycle."""
    import pathlib

    import ostiary

    root = pathlib.Path(ostiary.__file__).parent
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    known = set(files)
    graph = {name: _module_level_imports(path, name, is_package, known) - {name}
             for name, (path, is_package) in files.items()}
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for name in sorted(graph):
        if name not in index:
            connect(name)
    assert not cycles, cycles
