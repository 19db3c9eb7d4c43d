"""The shell blocks of README.md and docs/*.md, and the one bash script that runs a file's blocks in order.

A block is a fenced code block whose info string starts with `bash`, `sh` or `shell`. Words after the
language annotate it (GitHub shows only the language):

    ```bash skip                 never run (a listing, a production-only step, the test suite itself)
    ```bash background-server    its last line starts a server that keeps running: the harness runs that
                                 line in the background (stopping the previous server) and waits until
                                 /healthz answers; the lines before it run in the shell as usual
    ```bash needs: postgres      run only when PostgreSQL answers on 127.0.0.1:5432 (else the file skips)
    ```bash background           its last line starts another server (an API) that keeps running beside the
                                 first: run in the background until the end; the harness waits until its
                                 port answers
    ```bash expect-error         the block shows a refusal: it runs in a subshell and its last command
                                 must fail
    ```python file=make_key.py   any block: write its text to that file (for a later `python make_key.py`)

Everything runs as pasted, in one bash session per file (variables carry over), in a fresh directory
with `.venv` pointing at the test interpreter's environment and `scripts/serve` standing for the
checkout's start script. `curl` is wrapped to add `--fail-with-body`, so an HTTP error fails the
block (the body still shows) unless it is marked `expect-error`. A server listening on a free port
is started before the first block (the docs assume the quick start's server is running);
`127.0.0.1:8000`, `localhost:8000` and `--port 8000` are rewritten to that port, and the numbers
8001, 8002 (APIs) and 8080 (gateway), wherever they appear, to free
ports. examples/README.md runs from `examples/` (its blocks say `..`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CURL_WRAPPER", "Block", "blocks_of", "script_for"]

SHELLS = frozenset({"bash", "sh", "shell"})
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    flags: frozenset[str] = field(default_factory=frozenset)
    file: str | None = None  # file=NAME
    needs: frozenset[str] = field(default_factory=frozenset)

    @property
    def runnable(self) -> bool:
        return self.language in SHELLS and "skip" not in self.flags

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def _annotations(words: list[str]) -> tuple[frozenset[str], str | None, frozenset[str]]:
    flags: set[str] = set()
    needs: set[str] = set()
    file = None
    it = iter(words)
    for word in it:
        if word == "needs:":
            needs.add(next(it, ""))
        elif word.startswith("needs:"):
            needs.add(word.removeprefix("needs:"))
        elif word.startswith("file="):
            file = word.removeprefix("file=")
        else:
            flags.add(word)
    return frozenset(flags), file, frozenset(n for n in needs if n)


def blocks_of(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, start = m.group("fence"), i
        words = m.group("info").split()
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        language = words[0].lower() if words else ""
        flags, file, needs = _annotations(words[1:])
        out.append(Block(path, start + 1, language, "\n".join(body) + "\n", flags, file, needs))
    return out


def _rewrite(text: str, port: int, ports: dict[int, int] | None = None) -> str:
    for old, new in (ports or {}).items():
        text = re.sub(rf"(?<![\d.]){old}(?!\d)", str(new), text)
    text = text.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("localhost:8000", f"localhost:{port}")
    return re.sub(r"--port 8000\b", f"--port {port}", text)


CURL_WRAPPER = r"""#!/bin/bash
# curl, failing on HTTP errors (keeping the body on stdout) unless the command already chose -f.
for arg in "$@"; do
  case "$arg" in
    --fail|--fail-with-body|-[a-zA-Z]*f*) [[ "$arg" == --* || "$arg" =~ ^-[a-zA-Z]+$ ]] && exec "$DOCS_REAL_CURL" "$@";;
  esac
done
exec "$DOCS_REAL_CURL" --fail-with-body "$@"
"""

PRELUDE = r"""
set -euo pipefail  # -u: a variable a block uses but no block set fails the block
set -m  # background servers get their own process group, so stopping one stops its workers too
_server=""
_docs_stop() {
  if [ -n "$_server" ]; then
    kill -TERM -- "-$_server" 2>/dev/null || true
    wait "$_server" 2>/dev/null || true
    _server=""
  fi
}
_others=""
_docs_stop_all() {
  _docs_stop
  for pid in $_others; do kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap _docs_stop_all EXIT
_docs_wait() {
  for _ in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$OSTIARY_PORT/healthz"; then return 0; fi
    if [ -n "$_server" ] && ! kill -0 "$_server" 2>/dev/null; then
      echo "docs: the server exited; its log:" >&2; tail -n 40 "server-$_server_no.log" >&2; return 1
    fi
    sleep 0.2
  done
  echo "docs: no /healthz after 60 s" >&2; return 1
}
_server_no=0
_docs_serve() {  # the command in "$1", in the background, after stopping the previous server
  _docs_stop
  _server_no=$((_server_no + 1))
  bash -c "$1" > "server-$_server_no.log" 2>&1 &
  _server=$!
  _docs_wait
}
_docs_also() {  # the command in "$1", in the background beside the others, until port $2 answers
  _server_no=$((_server_no + 1))
  bash -c "$1" > "server-$_server_no.log" 2>&1 &
  local pid=$!
  _others="$_others $pid"
  for _ in $(seq 1 300); do
    if "$DOCS_REAL_CURL" -s -o /dev/null "http://127.0.0.1:$2/"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "docs: $1 exited; its log:" >&2; tail -n 40 "server-$_server_no.log" >&2; return 1
    fi
    sleep 0.2
  done
  echo "docs: nothing on port $2 after 60 s" >&2; return 1
}
_docs_block() { echo "=== docs block $1" >&2; }
"""


def _split_server(text: str) -> tuple[str, str]:
    """The lines before the server, and the server (the last command, continuation lines joined)."""
    lines = text.rstrip("\n").split("\n")
    end = len(lines) - 1
    while end > 0 and lines[end - 1].rstrip().endswith("\\"):
        end -= 1
    head, server = "\n".join(lines[:end]), " ".join(line.rstrip("\\ ") for line in lines[end:])
    return head, re.sub(r"\s+#.*$", "", server)


def script_for(blocks: list[Block], port: int, ports: dict[int, int] | None = None) -> str:
    """One bash script running the blocks as pasted, with the harness's servers around them.

    `ports` maps the other ports the blocks use (8001, 8002, 8080) to free ones."""
    parts = [PRELUDE, "_docs_serve 'ostiary serve'\n"]
    for block in blocks:
        if block.file is not None:
            body = _rewrite(block.text, port, ports)
            parts.append(f"cat > {shlex.quote(block.file)} <<'DOCS_BLOCK_EOF'\n{body}DOCS_BLOCK_EOF\n")
        if not block.runnable:
            continue
        text = _rewrite(block.text, port, ports)
        parts.append(f"_docs_block {shlex.quote(block.where)}\n")
        if "background" in block.flags:
            head, server = _split_server(text)
            listen = [p for p in (ports or {}).values() if re.search(rf"(?<![\d.]){p}(?!\d)", server)]
            if not listen:
                raise ValueError(f"{block.where}: a background block's server listens on none of {ports}")
            parts.append(head + "\n" + f"_docs_also {shlex.quote(server)} {listen[0]}\n")
        elif "background-server" in block.flags:
            head, server = _split_server(text)
            parts.append(head + "\n" + f"_docs_serve {shlex.quote(server)}\n")
        elif "expect-error" in block.flags:
            parts.append(f"if (\n{text}); then echo 'docs: expected an error' >&2; exit 1; fi\n")
        else:
            parts.append(text)
    return "".join(parts)
