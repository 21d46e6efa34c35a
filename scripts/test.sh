#!/usr/bin/env bash
# Runs every check and test, installing what it needs on a fresh machine:
# formatting and lints; unit and integration tests against a real Redis and
# the Secrets Manager emulator, then again against a Redis Cluster over TLS;
# an end-to-end run of the functions through `cargo lambda watch` and
# `cargo lambda invoke`, with the Plivo sandbox placing calls and posting
# signed callbacks; and the deployment checks (cfn-lint, sam validate,
# template tests, `sam build` of the arm64 functions).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

begin_run

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

REDIS_PORT="$(free_port)"
MOTO_PORT="$(free_port)"
log "starting redis ($REDIS_PORT) and the Secrets Manager emulator ($MOTO_PORT)"
start_redis "$REDIS_PORT" "$WORK/redis"
start_moto "$MOTO_PORT" "$WORK/moto.log"
use_local_aws "$MOTO_PORT"
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
# Every log line, response body and SMS code of the suites goes here, for
# the leak audit at the end.
export OTP_AUDIT_DIR="$WORK/audit"
mkdir -p "$OTP_AUDIT_DIR"

log "unit and integration tests against a standalone Redis"
cargo test --workspace --locked

log "integration tests again against a Redis Cluster over TLS (3 primaries + 3 replicas)"
start_redis_cluster_tls "$WORK/cluster"
TEST_REDIS_URL="$CLUSTER_URL" TEST_REDIS_CLUSTER=true TEST_REDIS_CA_FILE="$CLUSTER_CA" \
  cargo test --workspace --locked --test api -- --skip failover::
# Alone: it kills a primary the other tests would be using. Its figures are
# printed; the metric lines the functions print are not.
log "failover: a primary of the cluster killed under load"
TEST_REDIS_URL="$CLUSTER_URL" TEST_REDIS_CLUSTER=true TEST_REDIS_CA_FILE="$CLUSTER_CA" \
  TEST_REDIS_CLUSTER_DIR="$CLUSTER_DIR" cargo test --workspace --locked --test api failover:: -- --nocapture \
  | grep -v '"_aws":'

log "end-to-end: the functions through cargo lambda watch"
SANDBOX_PORT="$(free_port)"
WATCH_PORT="$(free_port)"
seed_secret otp/dev
start_sandbox "$SANDBOX_PORT" "$WORK/sandbox.log"
write_env_file "$WORK/functions.env" "$TEST_REDIS_URL" "http://127.0.0.1:$SANDBOX_PORT" "e2e-$RANDOM$RANDOM" \
  "http://127.0.0.1:$WATCH_PORT"
# Every call here comes from 127.0.0.1; the Rust suites test the per-IP limits.
# An undelivered SMS only lifts the cooldown here: the e2e suite asks for the call itself.
printf 'IP_MAX_SENDS_PER_HOUR=100000\nIP_MAX_VERIFIES_PER_HOUR=100000\nVOICE_FALLBACK=off\n' >>"$WORK/functions.env"
start_watch "$WATCH_PORT" "$WORK/functions.env" "$WORK/watch.log"
export E2E_API_URL="http://127.0.0.1:$WATCH_PORT" E2E_SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
export E2E_SIGNING_KEY="$DEV_SIGNING_KEY" E2E_PLIVO_AUTH_TOKEN="$DEV_AUTH_TOKEN" E2E_FUNCTION_LOG="$WORK/watch.log"
if ! "$VENV/bin/pytest" -q -p no:cacheprovider tests/e2e; then
  log "cargo lambda watch log (last 60 lines):"
  tail -n 60 "$WORK/watch.log" >&2
  log "plivo sandbox log (last 30 lines):"
  tail -n 30 "$WORK/sandbox.log" >&2
  exit 1
fi

log "schema fuzzing: schemathesis against openapi.yaml and the running functions"
SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks PYTHONPATH="$ROOT" "$VENV/bin/schemathesis" run openapi.yaml \
  --url "$E2E_API_URL" --max-examples 100 --seed 1 --request-timeout 30 --generation-codec ascii \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method

log "leak audit: codes, secrets and phone numbers in logs, responses, Redis and callback URLs"
# The codes the functions sent through the sandbox (by SMS, and read out in
# calls digit by digit: "1, 2, 3, ..."), and every URL handed to Plivo.
python3 - "$E2E_SANDBOX_URL" "$OTP_AUDIT_DIR" <<'PY'
import json, re, sys, urllib.request
from pathlib import Path
audit = Path(sys.argv[2])
codes, urls = [], []
for record in json.load(urllib.request.urlopen(sys.argv[1] + "/sandbox/messages")):
    if record["kind"] == "sms":
        codes += re.findall(r"\d+", record["text"])
        urls.append(record.get("url") or "")
    else:
        codes += [re.sub(r"\D", "", run) for run in re.findall(r"\d(?:\s*,\s*\d)+", record["text"])]
        urls += [record["answer_url"], record["hangup_url"]]
with open(audit / "codes.txt", "a") as out:
    out.writelines(f"{code}\n" for code in codes if 6 <= len(code) <= 10)
(audit / "urls.txt").write_text("".join(f"{url}\n" for url in urls if url))
PY
redis-cli -p "$REDIS_PORT" --raw EVAL "
  local out = {}
  for _, k in ipairs(redis.call('KEYS', '*')) do
    local t = redis.call('TYPE', k).ok
    local values = {}
    if t == 'string' then values = {redis.call('GET', k)}
    elseif t == 'hash' then values = redis.call('HGETALL', k)
    elseif t == 'zset' then values = redis.call('ZRANGE', k, 0, -1) end
    for _, v in ipairs(values) do table.insert(out, v) end
  end
  return out" 0 >"$OTP_AUDIT_DIR/redis.txt"
python3 tests/audit/leak_audit.py "$OTP_AUDIT_DIR" "$WORK/watch.log"

log "deployment: cfn-lint, sam validate --lint, template tests"
export SAM_CLI_TELEMETRY=0
cfn-lint template.yaml -a cfn_lint_serverless.rules
sam validate --lint
"$VENV/bin/pytest" -q -p no:cacheprovider tests/deploy

log "deployment: sam build (arm64 release through cargo-lambda and zig)"
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
sam build
for function in RequestOtpFunction VerifyOtpFunction PlivoWebhookFunction; do
  python3 - ".aws-sam/build/$function/bootstrap" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    header = f.read(20)
assert header[:4] == b"\x7fELF", "not an ELF binary"
assert int.from_bytes(header[18:20], "little") == 183, "not an aarch64 binary"
print(f"{sys.argv[1]}: aarch64 ELF")
PY
done
