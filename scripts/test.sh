#!/usr/bin/env bash
# Runs every check and test, installing what it needs on a fresh machine:
# formatting and lints, then unit and integration tests against a real
# Redis and the Secrets Manager emulator, then an end-to-end run of both
# functions through `cargo lambda watch` and `cargo lambda invoke`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_tools
WORK="$(mktemp -d)"
trap 'stop_all; rm -rf "$WORK"' EXIT

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

log "unit and integration tests against a standalone Redis"
cargo test --workspace --locked

log "integration tests again against a three-master Redis Cluster over TLS"
start_redis_cluster_tls "$WORK/cluster"
TEST_REDIS_URL="$CLUSTER_URL" TEST_REDIS_CLUSTER=true TEST_REDIS_CA_FILE="$CLUSTER_CA" \
  cargo test --workspace --locked --test api

log "end-to-end: both functions through cargo lambda watch"
SANDBOX_PORT="$(free_port)"
WATCH_PORT="$(free_port)"
seed_secret otp/dev
start_sandbox "$SANDBOX_PORT" "$WORK/sandbox.log"
write_env_file "$WORK/functions.env" "$TEST_REDIS_URL" "http://127.0.0.1:$SANDBOX_PORT" "e2e-$RANDOM$RANDOM"
start_watch "$WATCH_PORT" "$WORK/functions.env" "$WORK/watch.log"
export E2E_API_URL="http://127.0.0.1:$WATCH_PORT" E2E_SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
export E2E_SIGNING_KEY="$DEV_SIGNING_KEY" E2E_FUNCTION_LOG="$WORK/watch.log"
if ! "$VENV/bin/pytest" -q -p no:cacheprovider tests/e2e; then
  log "cargo lambda watch log (last 60 lines):"
  tail -n 60 "$WORK/watch.log" >&2
  exit 1
fi
