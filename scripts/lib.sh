# Shared by scripts/test.sh and scripts/dev.sh: installs the tools the
# project needs and starts the local stand-ins for AWS and Plivo.
# Source it; it defines functions only.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
DEV_SIGNING_KEY="local-development-signing-key-0123456789abcdef"
DEV_AUTH_ID="MADEVELOPMENT0000001"
DEV_AUTH_TOKEN="local-development-plivo-token"
DEV_SENDER="+14155550100"
# Test numbers (a fixed code, no SMS and no call) for the sample events in
# events/: one per request event, so that no event waits on another's cooldown.
DEV_TEST_NUMBERS="+14155550161:123456,+14155550162:123456,+14155550163:123456"
# Cloudflare's published test keys: the site key renders an always-passing
# widget, the secret is what the local siteverify stand-in expects.
DEV_CAPTCHA_SITE_KEY="1x00000000000000000000AA"
DEV_CAPTCHA_SECRET="1x0000000000000000000000000000000AA"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Python tools in a project virtualenv; redis-server from the OS packages.
ensure_tools() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! cmp -s "$ROOT/requirements-dev.txt" "$VENV/.requirements-dev.txt"; then
    log "installing Python tools (requirements-dev.txt)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
    cp "$ROOT/requirements-dev.txt" "$VENV/.requirements-dev.txt"
  fi
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server from the OS packages"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
  fi
  export PATH="$VENV/bin:$PATH"
}

# Installs the tools, makes a scratch folder ($WORK), and on exit stops
# every process started here and removes the folder.
begin_run() {
  ensure_tools
  WORK="$(mktemp -d)"
  trap 'stop_all; rm -rf "$WORK"' EXIT
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local what="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what did not come up within ${limit}s"
      return 1
    fi
    sleep 0.2
  done
}

PIDS=()
CLUSTER_DIRS=()
stop_all() {
  local pid dir file
  # Cluster nodes that a test or the benchmark restarted are known by their
  # pid files (checked: a killed node's file may name a reused pid).
  for dir in "${CLUSTER_DIRS[@]}"; do
    for file in "$dir"/redis-*.pid; do
      [ -f "$file" ] || continue
      pid="$(cat "$file")"
      grep -qa redis-server "/proc/$pid/cmdline" 2>/dev/null && PIDS+=("$pid")
    done
  done
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}

# start_redis PORT DIR: a throw-away standalone Redis on 127.0.0.1.
start_redis() {
  local port="$1" dir="$2"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" &
  PIDS+=($!)
  wait_for "redis on $port" 20 redis-cli -p "$port" ping
}

# start_moto PORT LOG: the Secrets Manager emulator.
start_moto() {
  local port="$1" logfile="$2"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_for "moto on $port" 60 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')"
}

# Points the AWS SDK (and boto3) at the emulator with dummy credentials.
use_local_aws() {
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$1"
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

# seed_secret NAME [hs256]: the development secret, in the shape the stack's
# secret has: derived_token_key makes the functions derive their ES256 token
# key from signing_key, so local tokens are ES256 with a JWK Set, as in AWS.
# With "hs256", tokens are HS256 under signing_key (the bench's like-for-like
# comparison with builds from before ES256).
seed_secret() {
  "$VENV/bin/python" - "$1" "${2:-es256}" <<PY
import json, sys, boto3
client = boto3.client("secretsmanager", endpoint_url="$AWS_ENDPOINT_URL_SECRETS_MANAGER")
doc = {"plivo_auth_id": "$DEV_AUTH_ID", "plivo_auth_token": "$DEV_AUTH_TOKEN",
       "signing_key": "$DEV_SIGNING_KEY", "derived_token_key": "first",
       "captcha_secret": "$DEV_CAPTCHA_SECRET"}
if sys.argv[2] == "hs256":
    del doc["derived_token_key"]
try:
    client.create_secret(Name=sys.argv[1], SecretString=json.dumps(doc))
except client.exceptions.ResourceExistsException:
    client.put_secret_value(SecretId=sys.argv[1], SecretString=json.dumps(doc))
PY
}

# start_sandbox PORT LOG: the local Plivo stand-in that prints each SMS and
# call, and plays Plivo's signed callbacks (status, answer, hangup).
start_sandbox() {
  local port="$1" logfile="$2"
  "$VENV/bin/python" -u "$ROOT/scripts/plivo_sandbox.py" --port "$port" \
    --auth-id "$DEV_AUTH_ID" --auth-token "$DEV_AUTH_TOKEN" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_for "plivo sandbox on $port" 20 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/sandbox/messages')"
}

# start_captcha_sandbox PORT LOG: the local CAPTCHA siteverify stand-in
# (the same protocol for turnstile, hcaptcha and recaptcha).
start_captcha_sandbox() {
  local port="$1" logfile="$2"
  "$VENV/bin/python" -u "$ROOT/scripts/captcha_sandbox.py" --port "$port" \
    --secret "$DEV_CAPTCHA_SECRET" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_for "captcha sandbox on $port" 20 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/sandbox/calls')"
}

# captcha_env PROVIDER PORT: the settings that point the functions at the
# local siteverify stand-in, for PROVIDER (turnstile, hcaptcha, recaptcha).
captcha_env() {
  printf 'CAPTCHA_PROVIDER=%s\nCAPTCHA_SITE_KEY=%s\nCAPTCHA_VERIFY_URL=http://127.0.0.1:%s/%s/siteverify\n' \
    "$1" "$DEV_CAPTCHA_SITE_KEY" "$2" "$1"
}

# write_env_file FILE REDIS_URL PLIVO_URL PREFIX PUBLIC_BASE_URL: the
# functions' environment. PUBLIC_BASE_URL is where Plivo's callbacks reach
# the functions (the address cargo lambda watch listens on).
write_env_file() {
  cat >"$1" <<ENV
OTP_SECRET_ID=otp/dev
PLIVO_SENDER=$DEV_SENDER
PLIVO_API_URL=$3
PLIVO_LOOKUP_URL=$3
REDIS_URL=$2
REDIS_KEY_PREFIX=$4
OTP_BRAND=Dev
PUBLIC_BASE_URL=$5
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_ENDPOINT_URL_SECRETS_MANAGER=$AWS_ENDPOINT_URL_SECRETS_MANAGER
AWS_LAMBDA_LOG_FORMAT=${AWS_LAMBDA_LOG_FORMAT:-JSON}
RUST_LOG=${RUST_LOG:-info}
ENV
}

# start_watch PORT ENV_FILE LOG [FLAG...]: the functions behind the API's
# paths. Its own permissive CORS is off: CORS is API Gateway's job, played
# locally by scripts/dev_server.py. Sets WATCH_PID.
start_watch() {
  local port="$1" envfile="$2" logfile="$3"
  shift 3
  (cd "$ROOT" && exec "$VENV/bin/cargo-lambda" lambda watch --invoke-address 127.0.0.1 \
    --invoke-port "$port" --env-file "$envfile" --disable-cors "$@") >"$logfile" 2>&1 &
  WATCH_PID=$!
  PIDS+=("$WATCH_PID")
  wait_for "cargo lambda watch on $port" 120 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)"
}

# build_functions WATCH_URL LOG SECONDS: calls each function once through
# cargo lambda watch, which compiles it on its first call, and returns once
# all three answer, showing the build's progress (scripts/build_functions.py).
build_functions() {
  python3 "$ROOT/scripts/build_functions.py" "$@"
}

# dedupe_env_file FILE: keeps the last line of each KEY=..., so that later
# settings (dev.sh's arguments, EXTRA_ENV_FILE) override earlier ones.
dedupe_env_file() {
  python3 - "$1" <<'PY'
import sys
path = sys.argv[1]
settings = {}
for line in open(path).read().splitlines():
    if line.strip() and not line.lstrip().startswith("#") and "=" in line:
        key = line.split("=", 1)[0].strip()
        settings.pop(key, None)
        settings[key] = line
open(path, "w").write("".join(line + "\n" for line in settings.values()))
PY
}

# start_dev_server WEB_PORT API_PORT UPSTREAM ALLOWED_ORIGINS LOG: the try-it
# page on WEB_PORT, and the API with API Gateway's CORS on API_PORT.
start_dev_server() {
  local web="$1" api="$2" upstream="$3" origins="$4" logfile="$5"
  python3 -u "$ROOT/scripts/dev_server.py" --web-port "$web" --api-port "$api" \
    --upstream "$upstream" --allowed-origins "$origins" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_for "dev server on $web" 20 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$web/')"
  wait_for "dev server on $api" 20 python3 -c "import socket; socket.create_connection(('127.0.0.1', $api), 1)"
}

# Debian's chromium, for the browser test: Playwright drives it and never
# downloads a browser of its own.
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium from the OS packages (for the browser test)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
}

# A TCP port P such that P and its cluster bus port P+10000 are both free.
cluster_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randint(20000, 40000)
    try:
        for p in (port, port + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
    except OSError:
        continue
    print(port)
    break
PY
}

# start_redis_cluster_tls DIR: three primaries and three replicas speaking
# only TLS, with a throw-away CA made here and a short cluster-node-timeout,
# so that a primary's death is a failover of a second or two. Sets
# CLUSTER_URL and CLUSTER_CA, and CLUSTER_DIR, which holds `node.sh PORT`
# (starts one node again, with its own configuration), a pid file per node
# (`redis-PORT.pid`, rewritten by every start) and `ports` (one per line,
# primaries first). Every node is stopped on exit, restarted ones included.
start_redis_cluster_tls() {
  local dir="$1" port ports=()
  mkdir -p "$dir"
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 2 -subj "/CN=otp-test-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -new -nodes -newkey rsa:2048 -sha256 -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
  # A replica that saw its primary a moment ago may always take over
  # (validity factor 0); a node that missed 1 s of pings is failing.
  cat >"$dir/node.sh" <<NODE
#!/usr/bin/env bash
exec redis-server --port 0 --tls-port "\$1" --bind 127.0.0.1 \\
  --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \\
  --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no --tls-cluster yes --tls-replication yes \\
  --cluster-enabled yes --cluster-config-file "$dir/nodes-\$1.conf" \\
  --cluster-node-timeout 1000 --cluster-replica-validity-factor 0 \\
  --save '' --appendonly no --dir "$dir" --logfile "$dir/redis-\$1.log" \\
  --pidfile "$dir/redis-\$1.pid"
NODE
  chmod +x "$dir/node.sh"
  CLUSTER_DIRS+=("$dir")
  local tls=(--tls --cacert "$dir/ca.crt")
  for _ in 1 2 3 4 5 6; do
    port="$(cluster_port)"
    ports+=("$port")
    "$dir/node.sh" "$port" &
    PIDS+=($!)
  done
  for port in "${ports[@]}"; do
    wait_for "redis cluster node $port" 20 redis-cli "${tls[@]}" -p "$port" ping
  done
  # redis-cli makes the first three primaries and gives each one replica.
  redis-cli "${tls[@]}" --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") \
    --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1
  for port in "${ports[@]}"; do
    wait_for "cluster state ok on $port" 30 \
      bash -c "redis-cli --tls --cacert '$dir/ca.crt' -p $port cluster info | grep -q cluster_state:ok"
  done
  for port in "${ports[@]:3}"; do
    wait_for "replica $port in sync" 30 \
      bash -c "redis-cli --tls --cacert '$dir/ca.crt' -p $port info replication | grep -q master_link_status:up"
  done
  printf '%s\n' "${ports[@]}" >"$dir/ports"
  CLUSTER_URL="rediss://127.0.0.1:${ports[0]}"
  CLUSTER_CA="$dir/ca.crt"
  CLUSTER_DIR="$dir"
}
