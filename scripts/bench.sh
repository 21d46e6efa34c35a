#!/usr/bin/env bash
# The benchmark: builds the release functions (x86_64 to run here, arm64 to
# measure the package Lambda gets), starts Redis and the Secrets Manager
# emulator, and runs bench/ (otp-bench), which drives the functions through
# its own Lambda Runtime API:
#   1. the latency table (cold start, warm latency, round trips, memory,
#      size), warm latency timed in the same run, interleaved, with the
#      pumping breaker off and with the functions of BENCH_BASELINE (a git
#      revision, built in a worktree of its own; default 16f87e5, the last
#      commit before voice, the adaptive defences and ES256; "none" skips),
#      and this build with HS256 tokens, as that baseline signs them;
#   2. the load run: BENCH_INSTANCES function processes (16) running full
#      flows for BENCH_SECONDS (30) against the standalone Redis, then
#      against the local TLS cluster (3 primaries + 3 replicas);
#   3. the failover drill: the same on the cluster while a primary is killed,
#      its replica takes over and the old primary rejoins.
# The tables are written to bench/results.md and into README.md between the
# bench markers. Not part of CI (several minutes).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

begin_run
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
INSTANCES="${BENCH_INSTANCES:-16}"
SECONDS_PER_RUN="${BENCH_SECONDS:-30}"

log "release builds: x86_64 for the timings, arm64 for the package size"
cargo build --release --locked -p request-otp -p verify-otp -p otp-bench
# Copies of our own: the target folder may be shared with other builds.
mkdir -p "$WORK/bin"
cp "$TARGET/release/request-otp" "$TARGET/release/verify-otp" "$TARGET/release/otp-bench" "$WORK/bin/"
BIN=(--request-bin "$WORK/bin/request-otp" --verify-bin "$WORK/bin/verify-otp")
BASELINE="${BENCH_BASELINE:-16f87e5}"
BASELINE_FLAGS=()
if [ "$BASELINE" != none ]; then
  log "release build of the baseline, $BASELINE, in a worktree of its own"
  git worktree add --detach -f "$WORK/baseline" "$BASELINE" >/dev/null
  (cd "$WORK/baseline" && CARGO_TARGET_DIR="$TARGET" \
    cargo build --release --locked -p request-otp -p verify-otp)
  cp "$TARGET/release/request-otp" "$WORK/bin/baseline-request-otp"
  cp "$TARGET/release/verify-otp" "$WORK/bin/baseline-verify-otp"
  git worktree remove --force "$WORK/baseline"
  BASELINE_FLAGS=(--baseline-label "$BASELINE" --baseline-request-bin "$WORK/bin/baseline-request-otp"
    --baseline-verify-bin "$WORK/bin/baseline-verify-otp" --hs256-secret otp/dev-hs256)
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
cargo lambda build --release --arm64 --locked --bin request-otp --bin verify-otp >/dev/null
ZIPS=()
for function in request-otp verify-otp; do
  bytes=$(python3 - "$TARGET/lambda/$function/bootstrap" <<'PY'
import io, sys, zipfile
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buffer.getvalue()))
PY
)
  ZIPS+=(--zip-bytes "$function=$bytes")
done

REDIS_PORT="$(free_port)"
MOTO_PORT="$(free_port)"
start_redis "$REDIS_PORT" "$WORK/redis"
start_moto "$MOTO_PORT" "$WORK/moto.log"
use_local_aws "$MOTO_PORT"
seed_secret otp/dev
seed_secret otp/dev-hs256 hs256

# What every function gets; each run adds its Redis and a key prefix.
# The latency runs send to a few number ranges without verifying in between:
# PUMPING_MIN_SENDS keeps the pumping breaker counting and deciding on every
# send (what it costs on the way to a send) without ever tripping.
ENV=(--env OTP_SECRET_ID=otp/dev --env PLIVO_SENDER="$DEV_SENDER"
  --env IP_MAX_SENDS_PER_HOUR=100000 --env IP_MAX_VERIFIES_PER_HOUR=100000
  --env PUMPING_MIN_SENDS=1000000
  --env AWS_REGION="$AWS_REGION" --env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
  --env AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
  --env AWS_ENDPOINT_URL_SECRETS_MANAGER="$AWS_ENDPOINT_URL_SECRETS_MANAGER"
  --env RUST_LOG=info)
STANDALONE=(--env REDIS_URL="redis://127.0.0.1:$REDIS_PORT")

log "running the latency benchmark"
# Let the machine settle after the builds: leftover load shows in the timings.
sleep 10
"$WORK/bin/otp-bench" "${BIN[@]}" "${BASELINE_FLAGS[@]}" --redis-port "$REDIS_PORT" --out "$WORK/latency.md" "${ZIPS[@]}" \
  "${ENV[@]}" "${STANDALONE[@]}" --env REDIS_KEY_PREFIX="bench-$RANDOM$RANDOM"

log "load: $INSTANCES processes for ${SECONDS_PER_RUN}s against the standalone Redis"
"$WORK/bin/otp-bench" load "${BIN[@]}" --instances "$INSTANCES" --seconds "$SECONDS_PER_RUN" \
  --label "standalone Redis" --redis-url "redis://127.0.0.1:$REDIS_PORT" --out "$WORK/load-standalone.json" \
  "${ENV[@]}" "${STANDALONE[@]}" --env REDIS_KEY_PREFIX="load-$RANDOM$RANDOM" >/dev/null

log "load: the same against the TLS cluster (3 primaries + 3 replicas)"
start_redis_cluster_tls "$WORK/cluster"
CLUSTER=(--redis-url "$CLUSTER_URL" --redis-ca "$CLUSTER_CA"
  --env REDIS_URL="$CLUSTER_URL" --env REDIS_CLUSTER=true --env REDIS_TLS_CA_FILE="$CLUSTER_CA")
"$WORK/bin/otp-bench" load "${BIN[@]}" --instances "$INSTANCES" --seconds "$SECONDS_PER_RUN" \
  --label "TLS cluster, 3 primaries + 3 replicas" --out "$WORK/load-cluster.json" \
  "${CLUSTER[@]}" "${ENV[@]}" --env REDIS_KEY_PREFIX="load-$RANDOM$RANDOM" >/dev/null

log "failover drill: a primary killed 5 s into a 20 s load run"
"$WORK/bin/otp-bench" load "${BIN[@]}" --instances "$INSTANCES" --seconds 20 --failover-at 5 \
  --cluster-dir "$CLUSTER_DIR" --label "TLS cluster" --out "$WORK/drill.json" \
  "${CLUSTER[@]}" "${ENV[@]}" --env REDIS_KEY_PREFIX="drill-$RANDOM$RANDOM" >/dev/null

"$WORK/bin/otp-bench" report --latency "$WORK/latency.md" --load "$WORK/load-standalone.json" \
  --load "$WORK/load-cluster.json" --load "$WORK/drill.json" --out bench/results.md

python3 - <<'PY'
from pathlib import Path
readme, table = Path("README.md"), Path("bench/results.md").read_text().strip()
text = readme.read_text()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
head, rest = text.split(start, 1)
readme.write_text(f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
PY
log "tables written to bench/results.md and README.md"
