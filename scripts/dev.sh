#!/usr/bin/env bash
# Starts the whole service locally: Redis, the Secrets Manager emulator
# seeded with a development secret, the Plivo sandbox (it prints every SMS),
# and both functions behind `cargo lambda watch` on http://127.0.0.1:9000.
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

API_PORT="${API_PORT:-9000}"
REDIS_PORT="${REDIS_PORT:-6390}"
MOTO_PORT="${MOTO_PORT:-5055}"
SANDBOX_PORT="${SANDBOX_PORT:-8089}"
STATE="$ROOT/.local"

ensure_tools
mkdir -p "$STATE"
trap 'stop_all' EXIT INT TERM

start_redis "$REDIS_PORT" "$STATE/redis"
start_moto "$MOTO_PORT" "$STATE/moto.log"
use_local_aws "$MOTO_PORT"
seed_secret otp/dev
start_sandbox "$SANDBOX_PORT" "$STATE/sandbox.log"
write_env_file "$STATE/functions.env" "redis://127.0.0.1:$REDIS_PORT" "http://127.0.0.1:$SANDBOX_PORT" otp
tail -n +1 -F "$STATE/sandbox.log" &
PIDS+=($!)

log "API:      http://127.0.0.1:$API_PORT/api/otp/request and /api/otp/verify"
log "SMS:      printed below, and listed at http://127.0.0.1:$SANDBOX_PORT/sandbox/messages"
log "secret:   otp/dev (signing_key $DEV_SIGNING_KEY)"
cd "$ROOT" && "$VENV/bin/cargo-lambda" lambda watch --invoke-address 127.0.0.1 \
  --invoke-port "$API_PORT" --env-file "$STATE/functions.env"
