"""What the e2e tests share: the running functions (behind `cargo lambda
watch`), the Plivo sandbox, and readers for what the sandbox received.

scripts/test.sh starts everything and sets the E2E_* variables.
"""

import json
import os
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from .plivo_sign import signed_form

API = os.environ["E2E_API_URL"]
SANDBOX = os.environ["E2E_SANDBOX_URL"]
PLIVO_AUTH_TOKEN = os.environ["E2E_PLIVO_AUTH_TOKEN"]
ROOT = Path(__file__).resolve().parents[2]
SENDER = "+14155550100"
# The public keys that verify tokens, as a backend fetches them.
JWKS_URL = API + "/.well-known/jwks.json"


def call(path, body=None, method="POST", raw=None, timeout=300):
    """A JSON request to the API; (status, headers with lowercase names, decoded JSON body)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(API + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, lowercase(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, lowercase(err.headers), json.loads(err.read())


def lowercase(headers):
    return {name.lower(): value for name, value in headers.items()}


def post(url, data=b"", headers=None, method="POST", timeout=300):
    """Any request; (status, headers with lowercase names, raw body)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, lowercase(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, lowercase(err.headers), err.read()


def post_as_plivo(url, params, auth_token=PLIVO_AUTH_TOKEN):
    """POSTs Plivo's form to url, signed with V3 as Plivo signs it."""
    body, headers = signed_form(auth_token, url, params)
    return post(url, body, headers)


def sandbox(path, body=None, method="GET"):
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = post(SANDBOX + path, data, {"Content-Type": "application/json"}, method, timeout=5)
    assert status in (200, 204), (path, status, raw)
    return json.loads(raw) if raw else None


def received(dst=None, kind=None):
    """What the sandbox received (SMS and calls), newest last."""
    query = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in (("dst", dst), ("kind", kind)) if v)
    return sandbox("/sandbox/messages" + ("?" + query if query else ""))


def sms_to(phone):
    return received(phone, "sms")


def calls_to(phone):
    return received(phone, "call")


def wait_for(what, probe, timeout=10.0):
    """Polls probe() until it returns something truthy, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def code_in(text, length=6):
    """The first run of exactly length digits in an SMS text."""
    return next(run for run in "".join(c if c.isdigit() else " " for c in text).split() if len(run) == length)


def spoken_codes(text):
    """Every code read out digit by digit ("1, 2, 3, 4, 5, 6") in a spoken text."""
    return [re.sub(r"\D", "", group) for group in re.findall(r"\d(?:\s*,\s*\d)+", text)]


def speak_texts(xml_text):
    """The text of every <Speak> of a Plivo XML answer."""
    root = ET.fromstring(xml_text)
    assert root.tag == "Response", xml_text
    return ["".join(speak.itertext()) for speak in root.iter("Speak")]


def answer_params(record):
    """The form Plivo posts to the answer URL when the callee picks up."""
    return {"CallUUID": record["call_uuid"], "From": SENDER[1:], "To": record["dst"][1:],
            "CallStatus": "in-progress", "Direction": "outbound", "Event": "StartApp",
            "RequestUUID": record["request_uuid"], "ALegUUID": record["call_uuid"],
            "ALegRequestUUID": record["request_uuid"], "BillRate": "0.01300"}


def status_params(record, status, error_code=""):
    """The form Plivo posts to a message's status URL."""
    return {"MessageUUID": record["message_uuid"], "ParentMessageUUID": record["message_uuid"],
            "From": SENDER[1:], "To": record["dst"][1:], "Status": status, "ErrorCode": error_code,
            "MessageTime": time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime()), "Units": "1",
            "TotalRate": "0.00500", "TotalAmount": "0.00500", "PartInfo": "1 of 1", "Sequence": "1"}
