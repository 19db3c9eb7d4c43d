"""DESIGN: `resource` and `client` never import `server` or `store`, and work with a plain
`pip install ostiary` (no database, no web framework). Checked in a fresh interpreter in which the
server-only packages cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SERVER_ONLY = ("sqlalchemy", "starlette", "uvicorn", "alembic", "argon2", "jinja2", "aiosqlite", "asyncpg",
               "redis", "fhir", "rich", "ada_url")

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
