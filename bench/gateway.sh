#!/usr/bin/env bash
# The API gateway's added latency, side by side in one sitting (run by hand; never a test):
#   upstream directly | ostiary gateway | nginx + ostiary forward-auth | express-gateway (npm) with its JWT policy
# wrk is pinned to CPU 0 and everything it measures (upstream, gateways, issuer) to CPU 1; 1 and 16 connections.
#
#   bench/gateway.sh                 # DURATION=5 WARMUP=1 seconds per run; OUT=bench/results/gateway-*.md
#
# Needs: wrk and nginx (Debian: apt-get install -y wrk nginx-light), node + npm (express-gateway is installed
# into ${EG_DIR:-~/.cache/ostiary-bench/express-gateway} on first use), the checkout's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}; WARMUP=${WARMUP:-1}
OUT=${OUT:-$PWD/bench/results/gateway-$(date -u +%Y%m%dT%H%M%S).md}
EG_DIR=${EG_DIR:-$HOME/.cache/ostiary-bench/express-gateway}
NGINX=${NGINX:-/usr/sbin/nginx}
PY=.venv/bin/python
SUT=(taskset -c 1); LOAD=(taskset -c 0)
AUD=https://notes.example.com
mkdir -p "$(dirname "$OUT")"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 150); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }

UP=$(port); AS=$(port); GW=$(port); NG=$(port); EG=$(port)
mkdir -p "$work"/{client_body,proxy,fastcgi,uwsgi,scgi}
temp() { for k in client_body proxy fastcgi uwsgi scgi; do echo "${k}_temp_path $work/$k;"; done; }
user=""; [ "$(id -u)" = 0 ] && user="user $(id -un);"

# 1. the upstream: nginx answering a small JSON document (the same for every row)
cat > "$work/upstream.conf" <<NGX
$user worker_processes 1; daemon off; pid $work/upstream.pid; error_log $work/upstream.err warn;
events { worker_connections 1024; }
http { access_log off; $(temp)
  server { listen 127.0.0.1:$UP; location / { default_type application/json; return 200 '{"ok":true}'; } } }
NGX
"${SUT[@]}" "$NGINX" -e "$work/upstream.err" -p "$work" -c "$work/upstream.conf" & pids+=($!)

# 2. the issuer, a client for the API's audience and one access token (ES256, 1 hour)
db="sqlite:///$work/as.db"
.venv/bin/ostiary client create bench --client-id bench-gw --client-secret bench-gw-secret --scope "notes:read" \
  --audience "$AUD" --token-lifetime 3600 --database-url "$db" >/dev/null
OSTIARY_DEMO=false "${SUT[@]}" .venv/bin/ostiary serve --port "$AS" --database-url "$db" --log-level warning \
  > "$work/serve.log" 2>&1 & pids+=($!)
wait_up "http://127.0.0.1:$AS/jwks"; wait_up "http://127.0.0.1:$UP/"
TOKEN=$(curl -s -u bench-gw:bench-gw-secret -d grant_type=client_credentials -d scope=notes:read -d "resource=$AUD" \
  "http://127.0.0.1:$AS/token" | $PY -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -s "http://127.0.0.1:$AS/jwks" | $PY -c '
import base64, json, sys
from joserfc.jwk import JWKRegistry
head = sys.argv[1].split(".")[0]
kid = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
key = next(k for k in json.load(sys.stdin)["keys"] if k["kid"] == kid)
sys.stdout.write(JWKRegistry.import_key(key).as_pem(private=False).decode())' "$TOKEN" > "$work/issuer.pem"

# 3. ostiary gateway
cat > "$work/gateway.toml" <<TOML
issuer = "http://127.0.0.1:$AS"
[[routes]]
path = "/notes"
upstream = "http://127.0.0.1:$UP"
audience = "$AUD"
scopes = { GET = "notes:read" }
TOML
"${SUT[@]}" .venv/bin/ostiary gateway --config "$work/gateway.toml" --port "$GW" --no-access-log \
  > "$work/gateway.log" 2>&1 & pids+=($!)

# 4. nginx with auth_request to the same gateway's forward-auth endpoint (the configuration of docs/gateway.md)
site=$($PY -c 'from tests.e2e._edge import NGINX_SITE; print(NGINX_SITE)')
cat > "$work/edge.conf" <<NGX
$user worker_processes 1; daemon off; pid $work/edge.pid; error_log $work/edge.err warn;
events { worker_connections 1024; }
http { access_log off; $(temp)
  upstream api { server 127.0.0.1:$UP; keepalive 64; }
  upstream ostiary { server 127.0.0.1:$GW; keepalive 64; }
  server { listen 127.0.0.1:$NG; $site } }
NGX
"${SUT[@]}" "$NGINX" -e "$work/edge.err" -p "$work" -c "$work/edge.conf" & pids+=($!)

# 5. express-gateway with its JWT policy (signature with the issuer's public key, iss and aud), then proxy
if [ ! -d "$EG_DIR/node_modules/express-gateway" ]; then
  mkdir -p "$EG_DIR" && (cd "$EG_DIR" && npm install --no-audit --no-fund --silent express-gateway@1.16.11)
fi
mkdir -p "$work/eg"
cp -r "$EG_DIR/node_modules/express-gateway/lib/config/models" "$work/eg/models"
cat > "$work/eg/system.config.yml" <<YML
db: { redis: { emulate: true, namespace: EG } }
crypto: { cipherKey: benchKey, algorithm: aes256, saltRounds: 10 }
session: { secret: bench, resave: false, saveUninitialized: false }
accessTokens: { timeToExpiry: 7200000 }
refreshTokens: { timeToExpiry: 7200000 }
authorizationCodes: { timeToExpiry: 300000 }
YML
cat > "$work/eg/gateway.config.yml" <<YML
http: { port: $EG }
apiEndpoints: { notes: { host: '*', paths: ['/notes', '/notes/*'] } }
serviceEndpoints: { upstream: { url: 'http://127.0.0.1:$UP' } }
policies: [jwt, proxy]
pipelines:
  default:
    apiEndpoints: [notes]
    policies:
      - jwt: [{ action: { secretOrPublicKeyFile: '$work/issuer.pem', checkCredentialExistence: false,
                          issuer: 'http://127.0.0.1:$AS', audience: '$AUD' } }]
      - proxy: [{ action: { serviceEndpoint: upstream } }]
YML
(cd "$EG_DIR" && LOG_LEVEL=error "${SUT[@]}" node -e \
  "require('express-gateway')().load('$work/eg').run()" > "$work/eg.log" 2>&1) & pids+=($!)

declare -A URLS=([upstream]="http://127.0.0.1:$UP/notes/1" [ostiary-gateway]="http://127.0.0.1:$GW/notes/1"
                 [nginx+forward-auth]="http://127.0.0.1:$NG/notes/1" [express-gateway]="http://127.0.0.1:$EG/notes/1")
ORDER=(upstream ostiary-gateway nginx+forward-auth express-gateway)
for name in "${ORDER[@]}"; do
  wait_up "${URLS[$name]}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "${URLS[$name]}")
  bad=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x.y.z" "${URLS[$name]}")
  echo "$name: $code with the token, $bad with a bad one" >&2
  [ "$code" = 200 ] || { echo "$name does not pass the token" >&2; exit 1; }
done

{
  echo "gateway benchmark $(date -u +%Y-%m-%dT%H:%MZ), wrk on CPU 0, all servers on CPU 1, ${DURATION} s per run"
  echo
  echo "| path | connections | req/s | p50 ms | p99 ms | added p50 ms |"
  echo "|---|---|---|---|---|---|"
} > "$OUT"
declare -A BASE
for conns in 1 16; do
  for name in "${ORDER[@]}"; do
    "${LOAD[@]}" wrk -t1 -c"$conns" -d"${WARMUP}s" -H "Authorization: Bearer $TOKEN" "${URLS[$name]}" >/dev/null
    "${LOAD[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "${URLS[$name]}" \
      > "$work/wrk.txt"
    row=$($PY - "$work/wrk.txt" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
assert not errors, f"non-2xx answers: {errors.group(1)}"
print(f"{rps:.0f} {ms(50):.2f} {ms(99):.2f}")
PYEOF
)
    read -r rps p50 p99 <<< "$row"
    [ "$name" = upstream ] && BASE[$conns]=$p50
    added=$($PY -c "print(f'{$p50 - ${BASE[$conns]}:.2f}')")
    echo "| $name | $conns | $rps | $p50 | $p99 | $added |" >> "$OUT"
    echo "$name c=$conns: $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2
  done
done
cat "$OUT"
