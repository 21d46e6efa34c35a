"""A local stand-in for Plivo's Message, Call and Lookup APIs, for development and end-to-end tests.

Plivo's side, with HTTP Basic auth (auth id and token) and JSON bodies, as Plivo takes them:

  POST /v1/Account/{auth_id}/Message/   {"src", "dst", "text"[, "url", "method": "POST"]}
      answers 202 {"api_id", "message": "message(s) queued", "message_uuid": [...]}, prints
      the SMS, then, when `url` is given, posts signed status callbacks to it in the
      background: Status=queued, then Status=delivered (or Status=undelivered with
      ErrorCode=30005 for a number marked undeliverable).
  POST /v1/Account/{auth_id}/Call/      {"from", "to", "answer_url", "answer_method": "POST",
                                         "hangup_url", "hangup_method": "POST"}
      answers 201 {"api_id", "message": "call fired", "request_uuid"}, then in the background
      plays the callee picking up: a signed POST to answer_url, prints the text of every
      <Speak> of the XML it gets back, then a signed POST to hangup_url (CallStatus=completed).

  GET  /v1/Number/{e164}?type=carrier     (Lookup API, same Basic auth)
      answers 200 {"api_id", "phone_number", "country", "format", "carrier": {"mobile_country_code",
      "mobile_network_code", "name", "type", "ported"}, "resource_uri"}, where carrier.type is
      "mobile" unless set otherwise (see /sandbox/line-type); 404 for a number set to "missing".

Each callback waits --delay seconds (0.2) first, as Plivo's do not come back at once.
Callbacks are application/x-www-form-urlencoded with Plivo's form fields and signed as
Plivo signs them: X-Plivo-Signature-V3 = base64(HMAC-SHA256(auth token, message)) with a
random X-Plivo-Signature-V3-Nonce (see v3_signature). A callback that fails is logged and
recorded; it never stops the sandbox.

Controls for tests and dev.sh (no auth):

  GET    /sandbox/messages[?dst=+1...][&kind=sms|call]  what was received, newest last:
         SMS   {"kind": "sms", "message_uuid", "src", "dst", "text", "url", "method",
                "statuses": [{"status", "http_status" (the callback's answer, null if none),
                              "error"?}]}
         calls {"kind": "call", "request_uuid", "call_uuid", "src", "dst", "answer_url",
                "hangup_url", "answer_status", "xml", "text" (every <Speak>, joined by a
                space), "hangup_status", "error"?}  (listed once the answer URL replied)
  POST   /sandbox/undeliverable {"dst": "+1..."}  that number's next SMS come back undelivered
  DELETE /sandbox/undeliverable                   clears every such mark
  POST   /sandbox/line-type {"number": "+1...", "type": "voip"}  what Lookup says of that number:
         mobile, fixed, voip, toll-free, unknown, or missing (a 404)
  DELETE /sandbox/line-type                       every number is a mobile again
  GET    /sandbox/lookups[?number=+1...]          the numbers looked up, oldest first
"""

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

MESSAGES = []
UNDELIVERABLE = set()
LINE_TYPES = {}  # number -> what Lookup answers; "mobile" when absent
LOOKUPS = []
KNOWN_LINE_TYPES = ("mobile", "fixed", "voip", "toll-free", "unknown", "missing")
LOCK = threading.Lock()
CALLBACK_TIMEOUT = 300  # seconds: the first callback may wait for cargo lambda watch to compile
DELAY = 0.2  # seconds before each callback, as a network and a ringing phone take (--delay)


def v3_signature(auth_token, url, params, nonce):
    """Plivo's V3 signature of a POST (plivo-python's validate_v3_signature):
    base64(HMAC-SHA256(auth_token, message)), where message is the URL without its query,
    then "?" and the query's parameters sorted by key as k=v joined by "&" (when there is a
    query or there are POST params), then "." when both are non-empty, then the POST params
    sorted by key as "keyvalue" with no separator, then "." and the nonce."""
    parsed = urlparse(url)
    base = urlunparse((parsed.scheme, parsed.netloc, parsed.path, "", "", ""))
    query = parse_qs(parsed.query, keep_blank_values=True)
    query_string = "&".join(f"{k}={v}" for k in sorted(query) for v in sorted(query[k]))
    message = base
    if query_string or params:
        message += "?" + query_string
    if query_string and params:
        message += "."
    message += "".join(f"{k}{params[k]}" for k in sorted(params))
    message += "." + nonce
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def post_signed(auth_token, url, params):
    """POSTs Plivo's form to url, signed with V3. Returns (status, content type, body);
    status is None when the request did not get an answer at all."""
    nonce = "".join(secrets.choice("0123456789") for _ in range(20))
    request = urllib.request.Request(url, data=urlencode(params).encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "PlivoHTTP/sandbox",
        "X-Plivo-Signature-V3": v3_signature(auth_token, url, params, nonce),
        "X-Plivo-Signature-V3-Nonce": nonce,
    })
    try:
        with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), err.read()


def digits(number):
    return number[1:] if number.startswith("+") else number


def is_url(value):
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def send_status_callbacks(auth_token, record, undeliverable):
    """Plivo's message status callbacks for one SMS, in order."""
    for status in ("queued", "undelivered" if undeliverable else "delivered"):
        params = {
            "MessageUUID": record["message_uuid"], "ParentMessageUUID": record["message_uuid"],
            "From": digits(record["src"]), "To": digits(record["dst"]),
            "Status": status, "ErrorCode": "30005" if status == "undelivered" else "",
            "MessageTime": time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime()),
            "Units": "1", "TotalRate": "0.00500", "TotalAmount": "0.00500",
            "PartInfo": "1 of 1", "Sequence": "1",
        }
        entry = {"status": status, "http_status": None}
        time.sleep(DELAY)
        try:
            entry["http_status"], _, _ = post_signed(auth_token, record["url"], params)
        except Exception as err:  # noqa: BLE001 - a callback must never stop the sandbox
            entry["error"] = repr(err)
        with LOCK:
            record["statuses"].append(entry)
        print(f"STATUS {status} for SMS to {record['dst']}: callback answered "
              f"{entry['http_status'] or entry.get('error')}", flush=True)


def spoken_text(xml_text):
    """The text of every <Speak> in a Plivo XML answer, joined by a space."""
    root = ET.fromstring(xml_text)
    return " ".join("".join(speak.itertext()).strip() for speak in root.iter("Speak"))


def play_call(auth_token, record):
    """The callee picks up (answer URL), listens, and hangs up (hangup URL)."""
    call = {"From": digits(record["src"]), "To": digits(record["dst"]),
            "CallUUID": record["call_uuid"], "RequestUUID": record["request_uuid"],
            "Direction": "outbound"}
    answer = {**call, "CallStatus": "in-progress", "Event": "StartApp",
              "ALegUUID": record["call_uuid"], "ALegRequestUUID": record["request_uuid"],
              "BillRate": "0.01300"}
    time.sleep(DELAY)
    started = time.monotonic()
    try:
        status, content_type, body = post_signed(auth_token, record["answer_url"], answer)
        record["answer_status"] = status
        record["xml"] = body.decode("utf-8", errors="replace")
        if status != 200 or content_type not in ("application/xml", "text/xml"):
            raise ValueError(f"answer URL replied {status} {content_type}")
        record["text"] = spoken_text(record["xml"])
    except Exception as err:  # noqa: BLE001
        record["error"] = repr(err)
    with LOCK:
        MESSAGES.append(record)
    if "error" in record:
        print(f"CALL {record['src']} -> {record['dst']} failed: {record['error']}", flush=True)
    else:
        print(f"CALL {record['src']} -> {record['dst']} speaks: {record['text']!r}", flush=True)
    duration = str(max(1, round(time.monotonic() - started)))
    hangup = {**call, "CallStatus": "completed", "HangupCause": "NORMAL_CLEARING",
              "Duration": duration, "BillDuration": duration, "Event": "Hangup"}
    try:
        status, _, _ = post_signed(auth_token, record["hangup_url"], hangup)
        with LOCK:
            record["hangup_status"] = status
    except Exception as err:  # noqa: BLE001
        with LOCK:
            record["hangup_status"] = None
            record["hangup_error"] = repr(err)
    print(f"HANGUP of the call to {record['dst']}: callback answered "
          f"{record['hangup_status'] or record.get('hangup_error')}", flush=True)


def in_background(target, *args):
    threading.Thread(target=target, args=args, daemon=True).start()


def make_handler(auth_id, auth_token):
    expected_auth = "Basic " + base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode()
    message_path = f"/v1/Account/{auth_id}/Message/"
    call_path = f"/v1/Account/{auth_id}/Call/"
    lookup_prefix = "/v1/Number/"

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body=None):
            self.send_response(status)
            if body is None:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def json_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(length))
            except ValueError:
                return None

        def do_GET(self):
            url = urlparse(self.path)
            if url.path.startswith(lookup_prefix):
                return self.lookup(url)
            if url.path == "/sandbox/lookups":
                number = parse_qs(url.query).get("number", [None])[0]
                with LOCK:
                    found = [n for n in LOOKUPS if number is None or n == number]
                return self.reply(200, found)
            if url.path != "/sandbox/messages":
                return self.reply(404, {"error": "not found"})
            query = parse_qs(url.query)
            dst = query.get("dst", [None])[0]
            kind = query.get("kind", [None])[0]
            with LOCK:
                found = json.loads(json.dumps([
                    m for m in MESSAGES
                    if (dst is None or m["dst"] == dst) and (kind is None or m["kind"] == kind)]))
            self.reply(200, found)

        def do_DELETE(self):
            path = urlparse(self.path).path
            if path not in ("/sandbox/undeliverable", "/sandbox/line-type"):
                return self.reply(404, {"error": "not found"})
            with LOCK:
                (UNDELIVERABLE if path == "/sandbox/undeliverable" else LINE_TYPES).clear()
            self.reply(204)

        def do_POST(self):
            path = urlparse(self.path).path
            if path == "/sandbox/undeliverable":
                return self.mark_undeliverable()
            if path == "/sandbox/line-type":
                return self.set_line_type()
            api_id = str(uuid.uuid4())
            if path not in (message_path, call_path):
                return self.reply(404, {"api_id": api_id, "error": "not found"})
            if self.headers.get("Authorization") != expected_auth:
                return self.reply(401)
            if self.headers.get_content_type() != "application/json":
                return self.reply(400, {"api_id": api_id, "error": "content type must be application/json"})
            body = self.json_body()
            if body is None:
                return self.reply(400, {"api_id": api_id, "error": "invalid JSON"})
            if path == message_path:
                return self.send_sms(api_id, body)
            return self.place_call(api_id, body)

        def mark_undeliverable(self):
            body = self.json_body()
            if not isinstance(body, dict) or not isinstance(body.get("dst"), str) or not body["dst"]:
                return self.reply(400, {"error": 'body must be {"dst": "+1..."}'})
            with LOCK:
                UNDELIVERABLE.add(body["dst"])
            print(f"SMS to {body['dst']} will come back undelivered", flush=True)
            self.reply(204)

        def set_line_type(self):
            body = self.json_body()
            if (not isinstance(body, dict) or not isinstance(body.get("number"), str)
                    or body.get("type") not in KNOWN_LINE_TYPES):
                return self.reply(400, {"error": 'body must be {"number": "+1...", "type": one of '
                                                 + ", ".join(KNOWN_LINE_TYPES) + "}"})
            with LOCK:
                LINE_TYPES[body["number"]] = body["type"]
            print(f"LOOKUP of {body['number']} will answer {body['type']}", flush=True)
            self.reply(204)

        def lookup(self, url):
            """Plivo's Lookup API: GET /v1/Number/{e164}?type=carrier."""
            api_id = str(uuid.uuid4())
            if self.headers.get("Authorization") != expected_auth:
                return self.reply(401)
            number = url.path[len(lookup_prefix):]
            if parse_qs(url.query) != {"type": ["carrier"]}:
                return self.reply(400, {"api_id": api_id, "error": "the query must be type=carrier"})
            if not (number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16):
                return self.reply(400, {"api_id": api_id, "error": "the number must be E.164 with a +"})
            with LOCK:
                LOOKUPS.append(number)
                kind = LINE_TYPES.get(number, "mobile")
            print(f"LOOKUP {number}: {kind}", flush=True)
            if kind == "missing":
                return self.reply(404, {"api_id": api_id, "error": "Phone number is invalid or does not exist."})
            self.reply(200, {
                "api_id": api_id, "phone_number": number,
                "country": {"name": "Sandbox", "iso2": "ZZ", "iso3": "ZZZ"},
                "format": {"e164": number, "national": number, "international": number,
                           "rfc3966": "tel:" + number},
                "carrier": {"mobile_country_code": "001", "mobile_network_code": "01",
                            "name": "Sandbox Carrier", "type": kind, "ported": "no"},
                "resource_uri": f"/v1/Number/{number}?type=carrier",
            })

        def send_sms(self, api_id, body):
            keys = set(body) if isinstance(body, dict) else set()
            if not {"src", "dst", "text"} <= keys <= {"src", "dst", "text", "url", "method"} or not all(
                isinstance(body[k], str) and body[k] for k in ("src", "dst", "text")
            ):
                return self.reply(400, {"api_id": api_id, "error": "src, dst and text are required; "
                                                                   "url and method are the only others"})
            if "url" in body and not is_url(body["url"]):
                return self.reply(400, {"api_id": api_id, "error": "url must be an http(s) URL"})
            if "method" in body and body["method"] != "POST":
                return self.reply(400, {"api_id": api_id, "error": "method must be POST"})
            record = {"kind": "sms", "message_uuid": str(uuid.uuid4()), "src": body["src"],
                      "dst": body["dst"], "text": body["text"], "url": body.get("url"),
                      "method": body.get("method"), "statuses": []}
            with LOCK:
                MESSAGES.append(record)
                undeliverable = record["dst"] in UNDELIVERABLE
            print(f"SMS {body['src']} -> {body['dst']}: {body['text']!r}", flush=True)
            self.reply(202, {"api_id": api_id, "message": "message(s) queued",
                             "message_uuid": [record["message_uuid"]]})
            if record["url"]:
                in_background(send_status_callbacks, auth_token, record, undeliverable)

        def place_call(self, api_id, body):
            keys = ["answer_method", "answer_url", "from", "hangup_method", "hangup_url", "to"]
            if not isinstance(body, dict) or sorted(body) != keys or not all(
                isinstance(body[k], str) and body[k] for k in keys
            ):
                return self.reply(400, {"api_id": api_id, "error": "from, to, answer_url, answer_method, "
                                                                   "hangup_url and hangup_method are required"})
            to = body["to"]
            if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
                return self.reply(400, {"api_id": api_id, "error": "to must be E.164 with a +"})
            if not (is_url(body["answer_url"]) and is_url(body["hangup_url"])):
                return self.reply(400, {"api_id": api_id, "error": "answer_url and hangup_url must be http(s) URLs"})
            if body["answer_method"] != "POST" or body["hangup_method"] != "POST":
                return self.reply(400, {"api_id": api_id, "error": "answer_method and hangup_method must be POST"})
            record = {"kind": "call", "request_uuid": str(uuid.uuid4()), "call_uuid": str(uuid.uuid4()),
                      "src": body["from"], "dst": to, "answer_url": body["answer_url"],
                      "hangup_url": body["hangup_url"], "answer_status": None, "xml": "", "text": "",
                      "hangup_status": None}
            self.reply(201, {"api_id": api_id, "message": "call fired", "request_uuid": record["request_uuid"]})
            in_background(play_call, auth_token, record)

        def log_message(self, *args):
            pass

    return Handler


def main():
    global DELAY
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--auth-id", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--delay", type=float, default=DELAY, help="seconds before each callback")
    args = parser.parse_args()
    DELAY = args.delay
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.auth_id, args.auth_token))
    server.daemon_threads = True
    print(f"plivo sandbox on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
