"""Builds the functions through `cargo lambda watch` before anyone calls them.

    python3 scripts/build_functions.py WATCH_URL WATCH_LOG SECONDS

cargo lambda watch compiles a function on its first call, so that call may
take minutes on a fresh clone (a first debug build is about 4-5 minutes on 2
cores). This calls each function once, with a request that reaches it and
changes nothing, and returns once all three answer, printing the build's
progress from the watch log meanwhile. It stops at once on a compile error,
and after SECONDS in any case.
"""

import http.client
import re
import sys
import time
import urllib.parse

# An empty JSON body: 400 invalid_request. A GET on a webhook route: 405.
PROBES = [
    ("request-otp", "POST", "/api/otp/request", b"{}", 400),
    ("verify-otp", "POST", "/api/otp/verify", b"{}", 400),
    ("plivo-webhook", "GET", "/api/otp/status", None, 405),
]
COMPILE_ERROR = re.compile(r"^error(\[E\d+\])?: |^error: could not compile", re.M)


def main():
    url, logfile, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    target = urllib.parse.urlsplit(url)
    tty = sys.stderr.isatty()
    started = time.monotonic()
    deadline = started + limit
    shown = [0.0]

    def log_text():
        try:
            with open(logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def line(text):
        sys.stderr.write(("\r\033[K" + text) if tty else text + "\n")
        sys.stderr.flush()

    def progress(name):
        now = time.monotonic()
        if now - shown[0] < (1 if tty else 15):
            return
        shown[0] = now
        text = log_text()
        crates = len(re.findall(r"^\s*Compiling ", text, re.M))
        last = text.rstrip().splitlines()[-1:]
        blocked = " (waiting for another cargo to release the build directory)" \
            if last and "Blocking waiting for file lock" in last[0] else ""
        elapsed = int(now - started)
        line(f"    building {name}: {crates} crates compiled so far, {elapsed // 60}m{elapsed % 60:02d}s{blocked}")

    for name, method, path, body, expected in PROBES:
        while True:
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            try:
                connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
                status = connection.getresponse().status
            except (OSError, http.client.HTTPException):
                status = None
            finally:
                connection.close()
            if status == expected:
                break
            text = log_text()
            if COMPILE_ERROR.search(text):
                line(f"    {name} does not compile; the end of {logfile}:")
                sys.stderr.write("\n" + "".join(text.splitlines(True)[-40:]))
                sys.exit(1)
            if time.monotonic() > deadline:
                line(f"    {name} did not answer within {int(limit)} s (last status {status}); see {logfile}")
                sys.stderr.write("\n")
                sys.exit(1)
            progress(name)
            time.sleep(0.5)
        elapsed = int(time.monotonic() - started)
        line(f"    {name} ready ({elapsed // 60}m{elapsed % 60:02d}s)")
        if tty:
            sys.stderr.write("\n")


if __name__ == "__main__":
    main()
