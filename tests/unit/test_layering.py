"""DESIGN: `resource` and `client` never import `server` or `store`, and work with a plain
`pip install ostiary` (no database, no web framework). Checked in a fresh interpreter in which the
server-only packages cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SERVER_ONLY = ("sqlalchemy", "starlette", "uvicorn", "alembic", "argon2", "jinja2", "aiosqlite", "asyncpg",
               "redis", "fhir", "rich", "ada_url", "webauthn")

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


def test_the_core_imports_no_framework_storage_or_fhir_code():
    """DESIGN: `server/` is framework-free; the composition root `app/` alone names SQL, Redis and FHIR concretes."""
    import ast
    import pathlib

    import ostiary

    core = pathlib.Path(ostiary.__file__).parent / "server"
    offenders = []
    for path in core.rglob("*.py"):
        package = "ostiary." + ".".join(path.relative_to(core.parent).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = node.module or ""
                names = [f"{base}.{module}".rstrip(".") if node.level else module]
            offenders += [f"{path.name}: {n}" for n in names
                          if any(n == f or n.startswith(f + ".") for f in CORE_FORBIDDEN)]
    assert not offenders, offenders
