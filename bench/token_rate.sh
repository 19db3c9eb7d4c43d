#!/usr/bin/env bash
# Token endpoint (client_credentials) side by side: Ostiary and node-oidc-provider, in one sitting,
# through the same load harness (wrk + checks of every response). Run by hand; never a test.
#
#   HARNESS=/path/to/bench-harness bench/token_rate.sh
#
# HARNESS is a set-up copy of the shared bench harness (token_rate.py, summarize.py, peers/; its
# setup.sh installs wrk, its venv and the peer). Env: ALG (ES256|RS256), MODE (1proc|2proc),
# DURATION (10) WARMUP (2) REPEATS (3) CONCURRENCY (16), OUT (results file, JSON lines).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:?set HARNESS to the bench harness folder}
ALG=${ALG:-ES256}; MODE=${MODE:-1proc}
export DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} REPEATS=${REPEATS:-3} CONCURRENCY=${CONCURRENCY:-16}
export OUT=${OUT:-$PWD/bench/results/token-$(date -u +%Y%m%dT%H%M%S).jsonl}
export CLIENT_ID=bench-client CLIENT_SECRET=bench-secret SCOPE="api:read" TOKEN_PATH=/token
export DISCOVERY_PATH=/.well-known/openid-configuration JWKS_PATH= ENDPOINTS=${ENDPOINTS:-token}
mkdir -p "$(dirname "$OUT")"
work=$(mktemp -d)
db="sqlite:///$work/bench.db"

if [ "$MODE" = 1proc ]; then PIN=(taskset -c 1); WORKERS=1; export WRK_CPUS=0; else PIN=(); WORKERS=2; export WRK_CPUS=; fi

# Same client, grant, token shape and lifetime as the peer: bench-client / bench-secret, 3600 s JWTs.
.venv/bin/ostiary client create bench --client-id bench-client --client-secret bench-secret \
  --scope "api:read api:write" --token-lifetime 3600 --database-url "$db" >/dev/null
OSTIARY_TOKENS__SIGNING_ALG=$ALG OSTIARY_DEMO=false "${PIN[@]}" .venv/bin/ostiary serve --port 9110 \
  --workers "$WORKERS" --database-url "$db" --log-level warning > "$work/serve.log" 2>&1 &
OPID=$!
trap 'kill $OPID 2>/dev/null || true; [ -n "${PPID_:-}" ] && kill $PPID_ 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:9110/jwks && break; sleep 0.2; done

BASE_URL=http://127.0.0.1:9110 LABEL="ostiary $MODE $ALG" "$HARNESS/.venv/bin/python" "$HARNESS/token_rate.py"
kill $OPID; wait $OPID 2>/dev/null || true

if [ "$MODE" = 1proc ]; then CPUS=1 WORKERS=1; else CPUS= WORKERS=2; fi
PPID_=$(PORT=9101 ALG=$ALG WORKERS=$WORKERS CPUS=$CPUS "$HARNESS/peers/oidc-provider/start.sh")
BASE_URL=http://127.0.0.1:9101 TOKEN_PATH=/token LABEL="oidc-provider $MODE $ALG" \
  "$HARNESS/.venv/bin/python" "$HARNESS/token_rate.py"
kill "$PPID_"

"$HARNESS/.venv/bin/python" "$HARNESS/summarize.py" "$OUT"
