"""Local stand-in for what sits in front of the functions in AWS: the try-it
page's static host, and API Gateway's CORS handling. Standard library only.

    python3 scripts/dev_server.py --upstream http://127.0.0.1:9001 \
        --web-port 8000 --api-port 9000 --allowed-origins http://127.0.0.1:8000

Two ports, so that a browser really goes through CORS, as it does when the
page is hosted on another domain than the API:

  --web-port   serves web/ (the try-it page), and also proxies /api/* and
               /.well-known/* to the upstream, for a page that uses its own
               origin as the API (the page's default);
  --api-port   proxies the API's routes to the upstream (`cargo lambda
               watch`), as API Gateway does: the routes template.yaml
               declares (method and path); any other gets API Gateway's
               404 {"message":"Not Found"}. `cargo lambda invoke`'s paths
               (/2015-03-31/functions/...) pass through untouched.

On both, CORS is answered the way an API Gateway HTTP API answers it for a
`CorsConfiguration` (template.yaml; tests/deploy checks that the constants
below match it):

  * a preflight (OPTIONS with Origin and Access-Control-Request-Method) never
    reaches the functions: 204 with no body; when the origin is allowed, with
    Access-Control-Allow-Origin (the origin, or * when * is configured),
    Access-Control-Allow-Methods, Access-Control-Allow-Headers and
    Access-Control-Max-Age; when it is not allowed, with none of them;
  * any other request goes to the functions; CORS headers they send are
    dropped (API Gateway ignores an integration's CORS headers when CORS is
    configured), and when the request's Origin is allowed the answer gets
    Access-Control-Allow-Origin and Access-Control-Expose-Headers;
  * allowed origins are exact origins, `*`, or a scheme wildcard such as
    `https://*`, as API Gateway accepts them. No allowed origin at all is the
    template's default: then no browser page may call the API.
"""

import argparse
import http.client
import json
import mimetypes
import posixpath
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Mirrors template.yaml's Api CorsConfiguration (checked by tests/deploy).
CORS_ALLOW_METHODS = ["GET", "POST"]
CORS_ALLOW_HEADERS = ["content-type", "idempotency-key"]
CORS_EXPOSE_HEADERS = ["retry-after", "idempotent-replayed"]
CORS_MAX_AGE = 600

# The API paths the page's own origin proxies too.
PROXIED_ON_WEB = ("/api/", "/.well-known/")
# The Lambda invoke API of cargo lambda watch (cargo lambda invoke), not API Gateway's.
INVOKE_PATHS = ("/2015-03-31/functions/", "/lambda-url/")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
              "date", "server"}
ROOT = Path(__file__).resolve().parents[1]


def template_routes(template):
    """The (METHOD, path) of every HttpApi event in template.yaml: what API
    Gateway routes. Read with a pattern, as the standard library has no YAML."""
    text = Path(template).read_text()
    routes = set()
    for block in re.split(r"\n\s+Type: HttpApi\s*\n", text)[1:]:
        properties = re.match(r"(\s+Properties:\s*\n(?:\s{6,}\S.*\n?)+)", block)
        if not properties:
            continue
        method = re.search(r"^\s+Method:\s*(\w+)", properties.group(1), re.M)
        path = re.search(r"^\s+Path:\s*(\S+)", properties.group(1), re.M)
        if method and path:
            routes.add((method.group(1).upper(), path.group(1).strip("'\"")))
    return routes
# The first call to a function makes cargo lambda watch compile it.
UPSTREAM_TIMEOUT = 900


def origin_allowed(origin, allowed):
    """Whether API Gateway would treat this Origin as allowed; returns the
    Access-Control-Allow-Origin value to send, or None."""
    if not origin:
        return None
    for pattern in allowed:
        if pattern == "*":
            return "*"
        if pattern.endswith("://*") and origin.lower().startswith(pattern[:-1].lower()):
            return origin
        if origin.lower() == pattern.lower().rstrip("/"):
            return origin
    return None


def make_handler(upstream, allowed_origins, web_dir, serves_web, verbose, routes):
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "otp-dev-server"
        sys_version = ""

        def log_message(self, fmt, *args):
            if verbose:
                sys.stderr.write("dev-server %s %s\n" % (self.address_string(), fmt % args))

        # Every method goes through one place.
        def do_GET(self):
            self.route()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

        def route(self):
            path = urllib.parse.urlsplit(self.path).path
            origin = self.headers.get("Origin")
            if self.command == "OPTIONS" and origin and self.headers.get("Access-Control-Request-Method"):
                return self.preflight(origin)
            if serves_web and not path.startswith(PROXIED_ON_WEB):
                return self.static(path)
            if not serves_web and path.startswith(INVOKE_PATHS):
                return self.proxy(None)
            if (self.command, path) not in routes:
                return self.not_found(origin)
            return self.proxy(origin)

        def not_found(self, origin):
            """API Gateway's answer for a method and path with no route."""
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            data = json.dumps({"message": "Not Found"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.cors_headers(origin)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def cors_headers(self, origin):
            allow = origin_allowed(origin, allowed_origins)
            if allow:
                self.send_header("Access-Control-Allow-Origin", allow)
                self.send_header("Access-Control-Expose-Headers", ",".join(CORS_EXPOSE_HEADERS))

        def preflight(self, origin):
            self.send_response(204)
            allow = origin_allowed(origin, allowed_origins)
            if allow:
                self.send_header("Access-Control-Allow-Origin", allow)
                self.send_header("Access-Control-Allow-Methods", ",".join(CORS_ALLOW_METHODS))
                self.send_header("Access-Control-Allow-Headers", ",".join(CORS_ALLOW_HEADERS))
                self.send_header("Access-Control-Max-Age", str(CORS_MAX_AGE))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def proxy(self, origin):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = self.headers.get("Host") or target.netloc
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=UPSTREAM_TIMEOUT)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except OSError as err:
                connection.close()
                return self.plain(502, f"upstream {upstream} did not answer: {err}\n")
            connection.close()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                lower = name.lower()
                if lower in HOP_BY_HOP or lower.startswith("access-control-"):
                    continue
                self.send_header(name, value)
            self.cors_headers(origin)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def static(self, path):
            if self.command not in ("GET", "HEAD"):
                return self.plain(405, "the page is static: GET only\n", {"Allow": "GET, HEAD"})
            relative = posixpath.normpath(urllib.parse.unquote(path)).lstrip("/")
            if relative in ("", "."):
                relative = "index.html"
            file = (web_dir / relative).resolve()
            if web_dir not in file.parents or not file.is_file():
                return self.plain(404, "not found\n")
            data = file.read_bytes()
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/javascript", "text/javascript"):
                kind += "; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def plain(self, status, text, extra=None):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the functions: cargo lambda watch's URL")
    parser.add_argument("--web-port", type=int, required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--web-dir", default=str(Path(__file__).resolve().parents[1] / "web"))
    parser.add_argument("--allowed-origins", default="",
                        help="comma separated, as the template's AllowedOrigins; empty allows none")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"), help="where the API's routes are")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()

    mimetypes.add_type("text/javascript", ".js")
    allowed = [o.strip() for o in args.allowed_origins.split(",") if o.strip()]
    web_dir = Path(args.web_dir).resolve()
    routes = template_routes(args.template)
    servers = [
        ThreadingHTTPServer((args.address, args.web_port),
                            make_handler(args.upstream, allowed, web_dir, True, args.verbose, routes)),
        ThreadingHTTPServer((args.address, args.api_port),
                            make_handler(args.upstream, allowed, web_dir, False, args.verbose, routes)),
    ]
    for server in servers:
        server.daemon_threads = True
    print(f"dev-server: page http://{args.address}:{args.web_port}/, API http://{args.address}:{args.api_port} "
          f"-> {args.upstream}, CORS origins: {', '.join(allowed) or '(none)'}, routes: "
          f"{', '.join(f'{m} {p}' for m, p in sorted(routes))}", flush=True)
    threading.Thread(target=servers[1].serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
