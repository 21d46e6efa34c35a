#!/usr/bin/env bash
# Runs every check and test, installing what it needs on a fresh machine:
# formatting and lints; unit and integration tests against a real Redis and
# the Secrets Manager emulator, then again against a Redis Cluster over TLS;
# an end-to-end run of the functions through `cargo lambda watch` and
# `cargo lambda invoke`, with the Plivo sandbox placing calls and posting
# signed callbacks; the try-it page (web/) driven in headless Chromium
# through API Gateway's CORS rules (scripts/dev_server.py); and the
# deployment checks (cfn-lint, sam validate, template tests, `sam build` of
# the arm64 functions).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

begin_run
ensure_chromium

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
CAPTCHA_PORT="$(free_port)"
WATCH_PORT="$(free_port)"
seed_secret otp/dev
start_sandbox "$SANDBOX_PORT" "$WORK/sandbox.log"
start_captcha_sandbox "$CAPTCHA_PORT" "$WORK/captcha.log"
E2E_REDIS_PREFIX="e2e-$RANDOM$RANDOM"
write_env_file "$WORK/functions.env" "$TEST_REDIS_URL" "http://127.0.0.1:$SANDBOX_PORT" "$E2E_REDIS_PREFIX" \
  "http://127.0.0.1:$WATCH_PORT"
# Every call here comes from 127.0.0.1; the Rust suites test the per-IP limits.
# An undelivered SMS only lifts the cooldown here: the e2e suite asks for the call itself.
printf 'IP_MAX_SENDS_PER_HOUR=100000\nIP_MAX_VERIFIES_PER_HOUR=100000\nVOICE_FALLBACK=off\n' >>"$WORK/functions.env"
# Test numbers (fixed code 123456, no SMS): the sample events', and more for
# the fuzzing below to request and verify (schemathesis.toml).
FUZZ_TEST_NUMBERS="$(printf '+1415555018%s:123456,' 1 2 3 4 5 6 7 8 9)"
printf 'TEST_PHONE_NUMBERS=%s\n' "$DEV_TEST_NUMBERS,${FUZZ_TEST_NUMBERS%,}" >>"$WORK/functions.env"
# The CAPTCHA step-up against the local siteverify, and VoIP lines refused
# through the sandbox's Lookup API (every other number is a mobile there).
captcha_env turnstile "$CAPTCHA_PORT" >>"$WORK/functions.env"
echo "LOOKUP_BLOCKED_LINE_TYPES=voip" >>"$WORK/functions.env"
start_watch "$WATCH_PORT" "$WORK/functions.env" "$WORK/watch.log" --ignore-changes
build_functions "http://127.0.0.1:$WATCH_PORT" "$WORK/watch.log" 1800
export E2E_API_URL="http://127.0.0.1:$WATCH_PORT" E2E_SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
export E2E_CAPTCHA_URL="http://127.0.0.1:$CAPTCHA_PORT" E2E_CAPTCHA_SITE_KEY="$DEV_CAPTCHA_SITE_KEY"
export E2E_SIGNING_KEY="$DEV_SIGNING_KEY" E2E_PLIVO_AUTH_TOKEN="$DEV_AUTH_TOKEN" E2E_FUNCTION_LOG="$WORK/watch.log"
export E2E_REDIS_URL="$TEST_REDIS_URL" E2E_REDIS_PREFIX
if ! "$VENV/bin/pytest" -q -p no:cacheprovider tests/e2e; then
  log "cargo lambda watch log (last 60 lines):"
  tail -n 60 "$WORK/watch.log" >&2
  log "plivo sandbox log (last 30 lines):"
  tail -n 30 "$WORK/sandbox.log" >&2
  exit 1
fi

log "browser: the try-it page in headless Chromium, through API Gateway's CORS rules"
WEB_PORT="$(free_port)"
CORS_PORT="$(free_port)"
start_dev_server "$WEB_PORT" "$CORS_PORT" "$E2E_API_URL" "http://127.0.0.1:$WEB_PORT" "$WORK/dev-server.log"
export BROWSER_PAGE_URL="http://127.0.0.1:$WEB_PORT/" BROWSER_API_URL="http://127.0.0.1:$CORS_PORT"
export BROWSER_ARTIFACTS="$WORK/browser"
browser_ok=true
"$VENV/bin/pytest" -q -p no:cacheprovider tests/browser || browser_ok=false
# $WORK goes at exit: keep the screenshots of each state where one can look at them.
rm -rf "$ROOT/.local/browser" && mkdir -p "$ROOT/.local" && cp -r "$BROWSER_ARTIFACTS" "$ROOT/.local/browser" 2>/dev/null || true
log "browser screenshots: $ROOT/.local/browser/"
if [ "$browser_ok" != true ]; then
  log "dev server log (last 30 lines):"
  tail -n 30 "$WORK/dev-server.log" >&2
  exit 1
fi

log "schema fuzzing: schemathesis against openapi.yaml and the running functions"
# schemathesis.toml draws most phone numbers and codes from dictionaries of
# valid ones (test numbers and their fixed code included), so the fuzzing
# reaches 200 and 400 invalid_code rather than stopping at validation.
SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks PYTHONPATH="$ROOT" "$VENV/bin/schemathesis" \
  --config-file schemathesis.toml run openapi.yaml \
  --url "$E2E_API_URL" --max-examples 150 --seed 1 --request-timeout 30 --generation-codec ascii \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method \
  --report har --report-har-path "$WORK/schemathesis.har"
# What the fuzzing reached: it must get past validation to the rules.
python3 - "$WORK/schemathesis.har" <<'PY'
import base64, collections, json, sys, urllib.parse
reached = collections.Counter()
for entry in json.load(open(sys.argv[1]))["log"]["entries"]:
    path = urllib.parse.urlsplit(entry["request"]["url"]).path
    content = entry["response"]["content"]
    text = content.get("text") or ""
    if content.get("encoding") == "base64":
        text = base64.b64decode(text).decode("utf-8", "replace")
    try:
        answer = json.loads(text)
        outcome = answer.get("error") or answer.get("status") if isinstance(answer, dict) else ""
    except ValueError:
        outcome = ""
    reached[(entry["request"]["method"], path, entry["response"]["status"], outcome or "")] += 1
for (method, path, status, outcome), count in sorted(reached.items()):
    if method == "POST" and path in ("/api/otp/request", "/api/otp/verify"):
        print(f"  {count:4d}  {method} {path} {status} {outcome}")
needed = [("POST", "/api/otp/request", 200, "pending"), ("POST", "/api/otp/verify", 200, "approved"),
          ("POST", "/api/otp/verify", 400, "invalid_code")]
missing = [n for n in needed if not reached[n]]
assert not missing, f"the fuzzing never reached {missing}"
PY

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
    -- The key names too: a phone is named by a keyed hash, never its number.
    table.insert(out, k)
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
