"""A local stand-in for Plivo's Message API, for development and end-to-end tests.

It accepts POST /v1/Account/{auth_id}/Message/ exactly as Plivo does (HTTP
Basic auth, a JSON body with src, dst and text), answers 202 with a
message_uuid list, and prints each SMS. GET /sandbox/messages?dst=+1... lists
what it received, newest last, so tests can read a code back.
"""

import argparse
import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MESSAGES = []
LOCK = threading.Lock()


def make_handler(auth_id, auth_token):
    expected_auth = "Basic " + base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode()
    message_path = f"/v1/Account/{auth_id}/Message/"

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/sandbox/messages":
                return self.reply(404, {"error": "not found"})
            dst = parse_qs(url.query).get("dst", [None])[0]
            with LOCK:
                found = [m for m in MESSAGES if dst is None or m["dst"] == dst]
            self.reply(200, found)

        def do_POST(self):
            api_id = str(uuid.uuid4())
            if urlparse(self.path).path != message_path:
                return self.reply(404, {"api_id": api_id, "error": "not found"})
            if self.headers.get("Authorization") != expected_auth:
                self.send_response(401)
                self.end_headers()
                return
            if self.headers.get_content_type() != "application/json":
                return self.reply(400, {"api_id": api_id, "error": "content type must be application/json"})
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                return self.reply(400, {"api_id": api_id, "error": "invalid JSON"})
            if not isinstance(body, dict) or sorted(body) != ["dst", "src", "text"] or not all(
                isinstance(body[k], str) and body[k] for k in body
            ):
                return self.reply(400, {"api_id": api_id, "error": "src, dst and text are required"})
            message_uuid = str(uuid.uuid4())
            with LOCK:
                MESSAGES.append({"message_uuid": message_uuid, **body})
            print(f"SMS {body['src']} -> {body['dst']}: {body['text']!r}", flush=True)
            self.reply(202, {"api_id": api_id, "message": "message(s) queued", "message_uuid": [message_uuid]})

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--auth-id", required=True)
    parser.add_argument("--auth-token", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.auth_id, args.auth_token))
    print(f"plivo sandbox on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
