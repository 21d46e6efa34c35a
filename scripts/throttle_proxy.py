#!/usr/bin/env python3
"""A throttling proxy in front of the Secrets Manager emulator.

It answers the first N calls as Secrets Manager does when a burst of cold
starts exceeds its request rate (HTTP 400, JSON body with `__type`
`ThrottlingException`) and passes every later call through to the upstream
unchanged. `GET /stats` tells how many calls were throttled and forwarded.

    throttle_proxy.py --upstream http://127.0.0.1:5400 --throttle 20 [--port 0]

Prints the port it listens on (on 127.0.0.1), then serves until killed.
Standard library only.
"""

import argparse
import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Hop-by-hop headers, and those the upstream recomputes.
SKIPPED = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


class Counters:
    def __init__(self, throttle):
        self.lock = threading.Lock()
        self.left = throttle
        self.throttled = 0
        self.forwarded = 0

    def should_throttle(self):
        with self.lock:
            if self.left > 0:
                self.left -= 1
                self.throttled += 1
                return True
            self.forwarded += 1
            return False


def handler(upstream, counters):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/stats":
                return self.reply(404, b"")
            with counters.lock:
                stats = {"throttled": counters.throttled, "forwarded": counters.forwarded}
            self.reply(200, json.dumps(stats).encode(), [("Content-Type", "application/json")])

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if counters.should_throttle():
                error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
                return self.reply(
                    400,
                    json.dumps(error).encode(),
                    [("Content-Type", "application/x-amz-json-1.1"),
                     ("x-amzn-RequestId", "throttle-proxy")],
                )
            headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIPPED}
            request = urllib.request.Request(upstream + self.path, data=body, headers=headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, payload, reply_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as error:
                status, payload, reply_headers = error.code, error.read(), error.headers
            kept = [(k, v) for k, v in reply_headers.items() if k.lower() not in SKIPPED]
            self.reply(status, payload, kept)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--throttle", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    counters = Counters(args.throttle)
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 handler(args.upstream.rstrip("/"), counters))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
