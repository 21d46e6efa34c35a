#!/usr/bin/env bash
# Starts the whole service locally: Redis, the Secrets Manager emulator
# seeded with a development secret, the Plivo sandbox (it prints every SMS
# and what every call speaks, and posts Plivo's signed callbacks back), and
# the three functions behind `cargo lambda watch` on http://127.0.0.1:9000.
# VOICE_FALLBACK=off ./scripts/dev.sh turns the SMS-to-voice fallback off.
# CAPTCHA_PROVIDER=turnstile (or hcaptcha, recaptcha) turns the CAPTCHA
# step-up on against a local siteverify stand-in (scripts/captcha_sandbox.py);
# LOOKUP_BLOCKED_LINE_TYPES=voip (for one) turns line-type screening on
# against the Plivo sandbox's Lookup API.
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

API_PORT="${API_PORT:-9000}"
REDIS_PORT="${REDIS_PORT:-6390}"
MOTO_PORT="${MOTO_PORT:-5055}"
SANDBOX_PORT="${SANDBOX_PORT:-8089}"
CAPTCHA_PORT="${CAPTCHA_PORT:-8090}"
CAPTCHA_PROVIDER="${CAPTCHA_PROVIDER:-}"
LOOKUP_BLOCKED_LINE_TYPES="${LOOKUP_BLOCKED_LINE_TYPES:-}"
STATE="$ROOT/.local"
VOICE_FALLBACK="${VOICE_FALLBACK:-auto}"
API="http://127.0.0.1:$API_PORT"
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"

ensure_tools
mkdir -p "$STATE"
trap 'stop_all' EXIT INT TERM

start_redis "$REDIS_PORT" "$STATE/redis"
start_moto "$MOTO_PORT" "$STATE/moto.log"
use_local_aws "$MOTO_PORT"
seed_secret otp/dev
start_sandbox "$SANDBOX_PORT" "$STATE/sandbox.log"
start_captcha_sandbox "$CAPTCHA_PORT" "$STATE/captcha.log"
write_env_file "$STATE/functions.env" "redis://127.0.0.1:$REDIS_PORT" "$SANDBOX" otp "$API"
echo "VOICE_FALLBACK=$VOICE_FALLBACK" >>"$STATE/functions.env"
if [ -n "$CAPTCHA_PROVIDER" ]; then
  captcha_env "$CAPTCHA_PROVIDER" "$CAPTCHA_PORT" >>"$STATE/functions.env"
fi
if [ -n "$LOOKUP_BLOCKED_LINE_TYPES" ]; then
  echo "LOOKUP_BLOCKED_LINE_TYPES=$LOOKUP_BLOCKED_LINE_TYPES" >>"$STATE/functions.env"
fi
tail -n +1 -F "$STATE/sandbox.log" "$STATE/captcha.log" &
PIDS+=($!)

log "API:      $API/api/otp/request ({\"channel\": \"sms\"|\"voice\"}) and /api/otp/verify"
log "webhooks: $API/api/otp/voice/answer, /api/otp/voice/hangup, /api/otp/status (Plivo signs them with the dev auth token)"
log "SMS:      printed below, calls too (CALL ... speaks: ...); listed at $SANDBOX/sandbox/messages"
log "DLR:      curl -s $SANDBOX/sandbox/undeliverable -d '{\"dst\": \"+1...\"}' makes that number's SMS undelivered (DELETE clears); VOICE_FALLBACK=$VOICE_FALLBACK"
log "CAPTCHA:  ${CAPTCHA_PROVIDER:-off} (token XXXX.DUMMY.TOKEN.XXXX passes, anything else fails; siteverify at http://127.0.0.1:$CAPTCHA_PORT)"
log "lookup:   blocked line types: ${LOOKUP_BLOCKED_LINE_TYPES:-none (off)}; curl -s $SANDBOX/sandbox/line-type -d '{\"number\": \"+1...\", \"type\": \"voip\"}'"
log "secret:   otp/dev (signing_key $DEV_SIGNING_KEY, plivo_auth_token $DEV_AUTH_TOKEN, captcha_secret $DEV_CAPTCHA_SECRET)"
cd "$ROOT" && "$VENV/bin/cargo-lambda" lambda watch --invoke-address 127.0.0.1 \
  --invoke-port "$API_PORT" --env-file "$STATE/functions.env"
