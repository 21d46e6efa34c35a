#!/usr/bin/env bash
# Starts the whole service locally: Redis, the Secrets Manager emulator
# seeded with a development secret, the Plivo sandbox (it prints every SMS
# and what every call speaks, and posts Plivo's signed callbacks back), the
# three functions behind `cargo lambda watch`, the API on
# http://127.0.0.1:9000 with API Gateway's CORS rules, and the try-it page on
# http://127.0.0.1:8000. It builds the functions before saying where the API
# is (a first build takes about 4-5 minutes on 2 cores).
#
#   ./scripts/dev.sh [KEY=VALUE ...]
#
# Each KEY=VALUE is a setting for the functions (README, "Configuration"),
# e.g. ./scripts/dev.sh OTP_BRAND=Acme 'TEST_PHONE_NUMBERS=+15005550006:424242'.
# EXTRA_ENV_FILE=file adds the KEY=VALUE lines of a file the same way
# (arguments win over the file, both win over the defaults below).
#
# Development defaults: per-IP limits of 100000 an hour, no resend cooldown
# and 1000 sends per phone an hour (so the sample events in events/ answer
# the same however often they run), the test numbers those events use, and
# VOICE_FALLBACK=auto. DEV_LIMITS=production keeps the service's own limits.
# CAPTCHA_PROVIDER=turnstile (or hcaptcha, recaptcha) turns the CAPTCHA
# step-up on against a local siteverify stand-in (scripts/captcha_sandbox.py);
# LOOKUP_BLOCKED_LINE_TYPES=voip (for one) turns line-type screening on
# against the Plivo sandbox's Lookup API.
# Ports: API_PORT (9000), WEB_PORT (8000), WATCH_PORT (9001, cargo lambda
# watch itself), REDIS_PORT, MOTO_PORT, SANDBOX_PORT. ALLOWED_ORIGINS: the
# browser origins the API admits (the page's, by default).
# Ctrl-C stops everything.
set -euo pipefail
if [ -n "${EXTRA_ENV_FILE:-}" ]; then
  if [ ! -f "$EXTRA_ENV_FILE" ]; then
    echo "EXTRA_ENV_FILE: no such file: $EXTRA_ENV_FILE" >&2
    exit 2
  fi
  EXTRA_ENV_FILE="$(cd "$(dirname "$EXTRA_ENV_FILE")" && pwd)/$(basename "$EXTRA_ENV_FILE")"
fi
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

for setting in "$@"; do
  if ! [[ "$setting" =~ ^[A-Z][A-Z0-9_]*= ]]; then
    echo "usage: $0 [KEY=VALUE ...]   (a setting for the functions, e.g. OTP_BRAND=Acme; got '$setting')" >&2
    exit 2
  fi
done

API_PORT="${API_PORT:-9000}"
WEB_PORT="${WEB_PORT:-8000}"
WATCH_PORT="${WATCH_PORT:-9001}"
REDIS_PORT="${REDIS_PORT:-6390}"
MOTO_PORT="${MOTO_PORT:-5055}"
SANDBOX_PORT="${SANDBOX_PORT:-8089}"
CAPTCHA_PORT="${CAPTCHA_PORT:-8090}"
CAPTCHA_PROVIDER="${CAPTCHA_PROVIDER:-}"
LOOKUP_BLOCKED_LINE_TYPES="${LOOKUP_BLOCKED_LINE_TYPES:-}"
STATE="$ROOT/.local"
VOICE_FALLBACK="${VOICE_FALLBACK:-auto}"
DEV_LIMITS="${DEV_LIMITS:-relaxed}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}"
API="http://127.0.0.1:$API_PORT"
PAGE="http://127.0.0.1:$WEB_PORT/"
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-http://127.0.0.1:$WEB_PORT,http://localhost:$WEB_PORT}"

ensure_tools
mkdir -p "$STATE"
trap 'stop_all' EXIT INT TERM

start_redis "$REDIS_PORT" "$STATE/redis"
start_moto "$MOTO_PORT" "$STATE/moto.log"
use_local_aws "$MOTO_PORT"
seed_secret otp/dev
start_sandbox "$SANDBOX_PORT" "$STATE/sandbox.log"
start_captcha_sandbox "$CAPTCHA_PORT" "$STATE/captcha.log"

ENV_FILE="$STATE/functions.env"
write_env_file "$ENV_FILE" "redis://127.0.0.1:$REDIS_PORT" "$SANDBOX" otp "$API"
{
  echo "VOICE_FALLBACK=$VOICE_FALLBACK"
  echo "TEST_PHONE_NUMBERS=$DEV_TEST_NUMBERS"
  if [ -n "$CAPTCHA_PROVIDER" ]; then
    captcha_env "$CAPTCHA_PROVIDER" "$CAPTCHA_PORT"
  fi
  if [ -n "$LOOKUP_BLOCKED_LINE_TYPES" ]; then
    echo "LOOKUP_BLOCKED_LINE_TYPES=$LOOKUP_BLOCKED_LINE_TYPES"
  fi
  if [ "$DEV_LIMITS" != production ]; then
    # Every local call comes from 127.0.0.1: the production per-IP limits
    # would lock a developer out after 20 requests.
    echo "IP_MAX_SENDS_PER_HOUR=100000"
    echo "IP_MAX_VERIFIES_PER_HOUR=100000"
    echo "OTP_RESEND_COOLDOWN_SECONDS=0"
    echo "OTP_MAX_SENDS_PER_HOUR=1000"
  fi
  if [ -n "${EXTRA_ENV_FILE:-}" ]; then
    cat "$EXTRA_ENV_FILE"
    echo
  fi
  for setting in "$@"; do
    printf '%s\n' "$setting"
  done
} >>"$ENV_FILE"
dedupe_env_file "$ENV_FILE"

log "building the functions through cargo lambda watch (a first build takes about 4-5 minutes on 2 cores; then seconds)"
start_watch "$WATCH_PORT" "$ENV_FILE" "$STATE/watch.log"
start_dev_server "$WEB_PORT" "$API_PORT" "http://127.0.0.1:$WATCH_PORT" "$ALLOWED_ORIGINS" "$STATE/dev-server.log"
build_functions "http://127.0.0.1:$WATCH_PORT" "$STATE/watch.log" "$BUILD_TIMEOUT"

# From here on, the functions' log lines and the sandbox's SMS and calls.
tail -n 0 -F "$STATE/watch.log" &
PIDS+=($!)
tail -n +1 -F "$STATE/sandbox.log" "$STATE/captcha.log" &
PIDS+=($!)
sleep 0.2

limits="production limits"
[ "$DEV_LIMITS" != production ] && limits="development limits: no resend cooldown, 1000 sends per phone an hour, per-IP limits 100000 (DEV_LIMITS=production for the real ones)"
log "API:      $API/api/otp/request ({\"channel\": \"sms\"|\"voice\"}) and /api/otp/verify; $limits"
log "page:     $PAGE?api=$API   (the try-it page; CORS allows $ALLOWED_ORIGINS)"
log "webhooks: $API/api/otp/voice/answer, /api/otp/voice/hangup, /api/otp/status (Plivo signs them with the dev auth token)"
log "SMS:      printed below, calls too (CALL ... speaks: ...); listed at $SANDBOX/sandbox/messages"
log "DLR:      curl -s $SANDBOX/sandbox/undeliverable -d '{\"dst\": \"+1...\"}' makes that number's SMS undelivered (DELETE clears); VOICE_FALLBACK=$VOICE_FALLBACK"
log "test numbers (fixed code, no SMS; the sample events use them): $(grep '^TEST_PHONE_NUMBERS=' "$ENV_FILE" | cut -d= -f2-)"
log "CAPTCHA:  ${CAPTCHA_PROVIDER:-off} (token XXXX.DUMMY.TOKEN.XXXX passes, anything else fails; siteverify at http://127.0.0.1:$CAPTCHA_PORT)"
log "lookup:   blocked line types: ${LOOKUP_BLOCKED_LINE_TYPES:-none (off)}; curl -s $SANDBOX/sandbox/line-type -d '{\"number\": \"+1...\", \"type\": \"voip\"}'"
log "secret:   otp/dev (signing_key $DEV_SIGNING_KEY, plivo_auth_token $DEV_AUTH_TOKEN, captcha_secret $DEV_CAPTCHA_SECRET); settings in $ENV_FILE"
log "events:   .venv/bin/cargo-lambda lambda invoke request-otp --invoke-address 127.0.0.1 --invoke-port $API_PORT --data-file events/request-otp-http-api.json"
wait "$WATCH_PID"
