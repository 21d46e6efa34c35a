#!/usr/bin/env bash
# The benchmark: builds the release functions (x86_64 to run here, arm64 to
# measure the package Lambda gets), starts Redis and the Secrets Manager
# emulator, and runs bench/ (otp-bench), which drives the functions through
# its own Lambda Runtime API and prints the table. request-otp is timed with
# the pumping breaker on (the default) and again with it off for the
# comparison; BREAKER_BASELINE=off skips the second run. The table is written to
# bench/results.md and into README.md between the bench markers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

begin_run

log "release builds: x86_64 for the timings, arm64 for the package size"
cargo build --release --locked -p request-otp -p verify-otp -p otp-bench
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
cargo lambda build --release --arm64 --locked --bin request-otp --bin verify-otp >/dev/null
ZIPS=()
for function in request-otp verify-otp; do
  bytes=$(python3 - "target/lambda/$function/bootstrap" <<'PY'
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

log "running the benchmark"
# Let the machine settle after the builds: leftover load shows in the timings.
sleep 10
# The runs send to a few number ranges (+447400...) without verifying in
# between: PUMPING_MIN_SENDS keeps the breaker counting and deciding on every
# send without tripping, which is what it costs on the way to a send.
target/release/otp-bench --redis-port "$REDIS_PORT" --out bench/results.md "${ZIPS[@]}" \
  --breaker-baseline "${BREAKER_BASELINE:-on}" --env PUMPING_MIN_SENDS=1000000 \
  --env OTP_SECRET_ID=otp/dev --env PLIVO_SENDER="$DEV_SENDER" \
  --env REDIS_URL="redis://127.0.0.1:$REDIS_PORT" --env REDIS_KEY_PREFIX="bench-$RANDOM$RANDOM" \
  --env IP_MAX_SENDS_PER_HOUR=100000 --env IP_MAX_VERIFIES_PER_HOUR=100000 \
  --env AWS_REGION="$AWS_REGION" --env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  --env AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  --env AWS_ENDPOINT_URL_SECRETS_MANAGER="$AWS_ENDPOINT_URL_SECRETS_MANAGER" \
  --env RUST_LOG=info

python3 - <<'PY'
from pathlib import Path
readme, table = Path("README.md"), Path("bench/results.md").read_text().strip()
text = readme.read_text()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
head, rest = text.split(start, 1)
readme.write_text(f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
PY
log "table written to bench/results.md and README.md"
