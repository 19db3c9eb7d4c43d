"""Issue 9 item 8: with `pip install ostiary` alone, server commands say in one line what to install
(no ModuleNotFoundError traceback). Checked in a fresh interpreter where the server packages are missing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.unit.test_layering import SERVER_ONLY

COMMANDS = [["serve"], ["client", "list"], ["user", "list"], ["keys", "list"], ["db", "current"],
            ["fhir", "load-sample"], ["fhir-gateway", "--upstream", "http://127.0.0.1:9", "--issuer", "http://127.0.0.1:9"]]

PROBE = textwrap.dedent(f"""
    import importlib.abc, json, sys
    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {SERVER_ONLY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, Missing())
    from click.testing import CliRunner
    from ostiary.cli import main
    out = []
    for args in json.loads(sys.argv[1]):
        result = CliRunner().invoke(main, args)
        out.append({{"args": args, "code": result.exit_code, "output": result.output,
                    "exception": type(result.exception).__name__}})
    print(json.dumps(out))
""")


def test_issue9_8_server_commands_without_the_server_extra_say_what_to_install(tmp_path):
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(COMMANDS)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for result in json.loads(run.stdout):
        lines = result["output"].strip().splitlines()
        assert result["code"] == 1 and result["exception"] == "SystemExit", result
        assert len(lines) == 1 and "pip install 'ostiary[server]'" in lines[0], result
        assert "Traceback" not in result["output"]
