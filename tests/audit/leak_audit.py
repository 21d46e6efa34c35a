"""Leak audit: after the whole suite ran with its output captured, no code,
secret, auth token or full phone number may appear in any log line, response
body, Redis value or URL handed to Plivo.

    python tests/audit/leak_audit.py AUDIT_DIR [EXTRA_LOG ...]

AUDIT_DIR holds what the suite wrote: tests.log (every log line, in the
production JSON format), responses.jsonl (every response body the tests
received), codes.txt (every code sent by SMS or read out in a call),
redis.txt (every key name and value left in Redis) and urls.txt (every callback URL the
functions gave Plivo: answer, hangup and message status URLs, as the Plivo
sandbox recorded them). EXTRA_LOG files are more log lines (the functions run
by cargo lambda watch).

A code counts as leaked as a whole run of digits ("123456") and also as
spoken, one digit at a time ("1, 2, 3, 4, 5, 6", as a call reads it out).
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Secrets the tests and the local stack use.
SECRETS = [
    "plivo-test-auth-token-0001", "rotated-token", "MAZDQ1ZJIYMDZKMTIWMZ",
    "test-signing-key-with-at-least-32-bytes!",
    "local-development-plivo-token", "MADEVELOPMENT0000001",
    "local-development-signing-key-0123456789abcdef",
    # Any token key (the suites generate them): no PEM may reach a log or a body.
    "PRIVATE KEY",
    "captcha-test-secret-0001", "1x0000000000000000000000000000000AA",
]
# Codes that never travel by SMS: the test numbers' fixed codes.
FIXED_CODES = ["424242", "135790"]
# Random identifiers that are not secrets but may hold digit runs; and the
# pumping breaker's destination, a range of 10,000 numbers or more
# ("US:415555"), whose digits could match a code by chance.
IGNORED_FIELDS = {"timestamp", "span", "spans", "message_uuid", "Timestamp", "verificationToken",
                  "destination"}
HEX_ID = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f]{64}$")
# A UUID (Plivo's message and call ids, request ids) is random hex whose
# digit runs match a 6-digit code now and then ("de071733-..."): a value
# of exactly that shape holds no code, whatever its field is called.
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SPOKEN_DIGITS = re.compile(r"\d(?:[\s,]+\d)+")


def phone_numbers():
    """Every full number the suites use, from their sources."""
    numbers = set()
    for path in list((ROOT / "shared/tests").rglob("*.rs")) + list((ROOT / "tests").rglob("*.py")):
        numbers.update(re.findall(r"\+[1-9]\d{6,14}\b", path.read_text()))
    return numbers


def scrub(value):
    """Drops fields holding random identifiers, recursively."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in IGNORED_FIELDS}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and UUID.match(value):
        return ""
    return value


def as_text(line):
    try:
        return json.dumps(scrub(json.loads(line)))
    except ValueError:
        return line


# A run of 16 or more hex characters is a hash or a random id (the test
# key prefix "t-85c7f6a2d825437a...", a nonce's digest): its digits match a
# 6-digit code by chance, and no code is that long.
LONG_HEX = re.compile(r"[0-9a-fA-F]{16,}")


def digit_runs(text):
    """Whole runs of digits, and digits read out one by one ("1, 2, 3") joined."""
    text = LONG_HEX.sub(" ", text)
    spoken = {re.sub(r"\D", "", run) for run in SPOKEN_DIGITS.findall(text)}
    return set(re.findall(r"\d+", text)) | spoken


def main():
    audit = Path(sys.argv[1])
    codes = set(FIXED_CODES)
    codes_file = audit / "codes.txt"
    if codes_file.exists():
        codes.update(codes_file.read_text().split())
    numbers = phone_numbers()
    forbidden_text = SECRETS + sorted(numbers) + sorted(n[1:] for n in numbers)

    sources = {"log": [audit / "tests.log"] + [Path(p) for p in sys.argv[2:]],
               "response": [audit / "responses.jsonl"], "redis": [audit / "redis.txt"],
               "url": [audit / "urls.txt"]}
    counts, leaks = {}, []
    for kind, paths in sources.items():
        counts[kind] = 0
        for path in paths:
            if not path.exists():
                sys.exit(f"leak audit: {path} is missing: nothing was captured")
            for n, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if kind == "redis" and HEX_ID.match(raw.strip()):
                    continue  # code digests and send ids: keyed hashes and random ids
                counts[kind] += 1
                text = as_text(raw)
                found = [s for s in forbidden_text if s in text]
                found += sorted(codes & digit_runs(text))
                if found:
                    leaks.append(f"{path.name}:{n}: {found} in {raw[:200]}")
    print(f"leak audit: {counts['log']} log lines, {counts['response']} response bodies, "
          f"{counts['redis']} Redis values and {counts['url']} callback URLs checked against "
          f"{len(codes)} codes, {len(numbers)} phone numbers and {len(SECRETS)} secrets")
    if not codes or not counts["log"] or not counts["response"] or not counts["url"]:
        sys.exit("leak audit: the suite captured nothing to audit")
    if leaks:
        print("\n".join(leaks[:50]))
        sys.exit(f"leak audit: {len(leaks)} leak(s)")
    print("leak audit: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
