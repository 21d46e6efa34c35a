"""Helpers of the browser tests: the URLs scripts/test.sh passes, and what the
Plivo sandbox received."""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request


def page_url():
    return os.environ["BROWSER_PAGE_URL"]


def api_url():
    return os.environ["BROWSER_API_URL"].rstrip("/")


def sandbox_url():
    return os.environ["E2E_SANDBOX_URL"].rstrip("/")


def cross_origin_page():
    """The page, told to call the API on its other port (CORS)."""
    return page_url() + "?" + urllib.parse.urlencode({"api": api_url()})


def get_json(url, timeout=5):
    """(status, decoded body or None) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read() or b"null")
        except ValueError:
            return err.code, None


def received(phone, kind):
    """What the sandbox received for phone (SMS or calls), newest last."""
    query = urllib.parse.urlencode({"dst": phone, "kind": kind})
    status, records = get_json(f"{sandbox_url()}/sandbox/messages?{query}")
    assert status == 200, status
    return records


def wait_for(what, probe, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)


def code_from_sms(phone, after=0):
    """The code of the newest SMS to phone, once there are more than `after`."""
    messages = wait_for(f"SMS to {phone}", lambda: (lambda m: m if len(m) > after else None)(received(phone, "sms")))
    return re.search(r"\b(\d{6,10})\b", messages[-1]["text"]).group(1)


def code_from_call(phone):
    """The code a call to phone read out, digit by digit ("1, 2, 3, ...")."""
    calls = wait_for(f"call to {phone}", lambda: received(phone, "call"))
    spoken = re.search(r"\d(?:\s*,\s*\d)+", calls[-1]["text"]).group(0)
    return re.sub(r"\D", "", spoken)


def jwks_keys():
    """The API's key set as the page will see it: (HTTP status, keys)."""
    status, body = get_json(api_url() + "/.well-known/jwks.json")
    keys = body.get("keys") if status == 200 and isinstance(body, dict) else None
    return status, keys or []
