"""Issue 9 item 9: every shell block of README.md and docs/*.md works when pasted in order, in a fresh
directory (see _blocks.py for the annotations: skip, background-server, needs: postgres, file=NAME)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_UP
from tests.docs._blocks import CURL_WRAPPER, blocks_of, script_for

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "README.md"]
TIMEOUT = 300

pytestmark = pytest.mark.docs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh_directory(tmp: Path) -> None:
    (tmp / ".venv").symlink_to(Path(sys.prefix))
    examples = tmp / "examples"  # a real directory, so that `..` from it is the fresh directory
    examples.mkdir()
    for example in (ROOT / "examples").iterdir():
        (examples / example.name).symlink_to(example)
    scripts = tmp / "scripts"
    scripts.mkdir()
    serve = scripts / "serve"  # the checkout's start script, minus creating .venv and installing
    serve.write_text('#!/bin/sh\ncd "$(dirname "$0")/.." && exec .venv/bin/ostiary serve "$@"\n')
    serve.chmod(0o755)
    curl = tmp / "bin" / "curl"
    curl.parent.mkdir()
    curl.write_text(CURL_WRAPPER)
    curl.chmod(0o755)


@pytest.mark.parametrize("doc", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_issue9_9_shell_blocks_work_when_pasted_in_order(doc: Path, tmp_path: Path) -> None:
    blocks = blocks_of(doc)
    runnable = [b for b in blocks if b.runnable]
    if not runnable:
        pytest.skip(f"{doc.name} has no shell blocks to run")
    if any("postgres" in b.needs for b in runnable) and not POSTGRES_UP:
        pytest.skip("a block needs PostgreSQL on 127.0.0.1:5432")
    _fresh_directory(tmp_path)
    port = _free_port()
    (tmp_path / "docs.sh").write_text(script_for(blocks, port, {p: _free_port() for p in (8001, 8002, 8080)}))
    cwd = tmp_path / "examples" if doc.parent.name == "examples" else tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    real_curl = shutil.which("curl")
    if real_curl is None:
        pytest.skip("the blocks use curl")
    path = os.pathsep.join([str(tmp_path / "bin"), str(Path(sys.prefix) / "bin"), env.get("PATH", "")])
    env.update(PATH=path, DOCS_REAL_CURL=real_curl, OSTIARY_PORT=str(port),
               OSTIARY_ISSUER=f"http://127.0.0.1:{port}",  # what `ostiary token` defaults to, on this port
               PYTHONUNBUFFERED="1", HOME=str(tmp_path))
    run = subprocess.run(["bash", str(tmp_path / "docs.sh")], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=TIMEOUT, start_new_session=True)
    if run.returncode != 0:
        shown = [line for line in run.stderr.splitlines() if line.startswith("=== docs block")]
        failed = shown[-1].removeprefix("=== docs block ") if shown else "(before the first block)"
        pytest.fail(f"{failed} failed (exit {run.returncode}); stderr:\n{run.stderr[-3000:]}\n"
                    f"stdout:\n{run.stdout[-2000:]}")
