#!/usr/bin/env bash
# Prints a new key for the secret, as one line of JSON to paste into it:
#
#   ./scripts/new-key.sh [KID]   a token_keys entry: {"kid": KID, "private_key": "<PKCS#8 P-256 PEM>"}
#                                (KID defaults to today's date and 8 random hex digits)
#   ./scripts/new-key.sh --code  a code_keys entry: 48 random bytes, base64
#
# The private key goes to stdout only, straight from openssl: nothing is
# written to disk. See the README's rotation runbook for where it goes.
set -euo pipefail

if [ "${1:-}" = "--code" ]; then
  printf '"%s"\n' "$(openssl rand -base64 48 | tr -d '\n')"
  exit 0
fi

kid="${1:-$(date -u +%Y-%m-%d)-$(openssl rand -hex 4)}"
# The service accepts 1 to 64 letters, digits and -_.:~ (it goes in every token's header).
if ! [[ "$kid" =~ ^[A-Za-z0-9._:~-]{1,64}$ ]]; then
  echo "new-key.sh: the kid must be 1 to 64 letters, digits or -_.:~" >&2
  exit 2
fi
pem="$(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve 2>/dev/null)"
case "$pem" in
  "-----BEGIN PRIVATE KEY-----"*) ;;
  *) echo "new-key.sh: openssl did not produce a PKCS#8 key" >&2; exit 1 ;;
esac
# A PEM holds only base64, dashes and spaces: its lines need no JSON escaping
# beyond the newlines.
printf '{"kid": "%s", "private_key": "%s"}\n' "$kid" "$(printf '%s' "$pem" | awk '{printf "%s\\n", $0}')"
