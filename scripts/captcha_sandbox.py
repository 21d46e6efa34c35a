"""A local stand-in for a CAPTCHA provider's siteverify, for development and end-to-end tests.

It speaks the one protocol Cloudflare Turnstile, hCaptcha and Google reCAPTCHA share:

  POST {any path ending in /siteverify}   application/x-www-form-urlencoded
       secret=...&response=...[&remoteip=...]
       answers 200 {"success": true|false, "error-codes": [...], "challenge_ts", "hostname",
                    "action", "cdata"[, "score"]}

So CAPTCHA_VERIFY_URL may be http://127.0.0.1:8090/turnstile/v0/siteverify,
.../siteverify (hCaptcha) or .../recaptcha/api/siteverify.

The secret must be the one given with --secret (by default Cloudflare's published
always-passes test secret, 1x0000000000000000000000000000000AA, which scripts/lib.sh puts in
the development secret as captcha_secret); any other gets "invalid-input-secret".

Tokens, in the style of the providers' published test keys:

  XXXX.DUMMY.TOKEN.XXXX                   passes (Cloudflare's dummy token)
  10000000-aaaa-bbbb-cccc-000000000001    passes (hCaptcha's test response)
  score:0.3                               passes with "score": 0.3 (as reCAPTCHA v3 answers)
  anything else                           fails: "invalid-input-response"

Controls (no auth):

  GET /sandbox/calls    every siteverify call received, oldest first:
                        {"path", "response", "remoteip", "success"} (the secret is not kept)
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PASSING_TOKENS = {"XXXX.DUMMY.TOKEN.XXXX", "10000000-aaaa-bbbb-cccc-000000000001"}
DEFAULT_SECRET = "1x0000000000000000000000000000000AA"
CALLS = []
LOCK = threading.Lock()


def verdict(secret, expected_secret, token):
    """siteverify's answer for one form."""
    answer = {"success": False, "error-codes": [],
              "challenge_ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "hostname": "localhost", "action": "otp", "cdata": ""}
    if not secret:
        answer["error-codes"] = ["missing-input-secret"]
    elif secret != expected_secret:
        answer["error-codes"] = ["invalid-input-secret"]
    elif not token:
        answer["error-codes"] = ["missing-input-response"]
    elif token in PASSING_TOKENS:
        answer["success"] = True
    elif token.startswith("score:"):
        try:
            answer["score"] = float(token[len("score:"):])
            answer["success"] = True
        except ValueError:
            answer["error-codes"] = ["invalid-input-response"]
    else:
        answer["error-codes"] = ["invalid-input-response"]
    return answer


def make_handler(expected_secret):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if urlparse(self.path).path != "/sandbox/calls":
                return self.reply(404, {"error": "not found"})
            with LOCK:
                calls = list(CALLS)
            self.reply(200, calls)

        def do_POST(self):
            path = urlparse(self.path).path
            if not path.endswith("/siteverify"):
                return self.reply(404, {"error": "not found"})
            if self.headers.get_content_type() != "application/x-www-form-urlencoded":
                return self.reply(400, {"success": False, "error-codes": ["bad-request"]})
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
            if any(len(values) != 1 for values in form.values()):
                return self.reply(400, {"success": False, "error-codes": ["bad-request"]})
            field = lambda name: form.get(name, [""])[0]  # noqa: E731
            answer = verdict(field("secret"), expected_secret, field("response"))
            with LOCK:
                CALLS.append({"path": path, "response": field("response"),
                              "remoteip": field("remoteip"), "success": answer["success"]})
            print(f"SITEVERIFY {path}: success={answer['success']} {answer['error-codes']}", flush=True)
            self.reply(200, answer)

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--secret", default=DEFAULT_SECRET, help="the captcha_secret the service sends")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.secret))
    server.daemon_threads = True
    print(f"captcha sandbox on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
