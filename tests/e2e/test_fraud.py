"""End to end, the adaptive defences through `cargo lambda watch`: the CAPTCHA
step-up against the local siteverify stand-in (scripts/captcha_sandbox.py,
which passes Cloudflare's dummy token), and line-type screening against the
Plivo sandbox's Lookup API (scripts/test.sh refuses VoIP lines).
"""

import json
import os
import subprocess
import time
import urllib.request

import pytest

from .service import call, code_in, sandbox, sms_to

pytestmark = pytest.mark.usefixtures("functions_are_built")

CAPTCHA = os.environ.get("E2E_CAPTCHA_URL", "")
WIDGET = {"provider": "turnstile", "siteKey": os.environ.get("E2E_CAPTCHA_SITE_KEY", "")}
DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"


def siteverify_calls():
    with urllib.request.urlopen(CAPTCHA + "/sandbox/calls", timeout=5) as response:
        return json.loads(response.read())


def wrong(code):
    return "".join(str((int(d) + 1) % 10) for d in code)


def test_after_two_wrong_guesses_the_third_needs_a_captcha_that_the_dummy_token_passes():
    phone = "+447400123458"
    assert call("/api/otp/request", {"phoneNumber": phone})[0] == 200
    code = code_in(sms_to(phone)[-1]["text"])
    for _ in range(2):
        status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": wrong(code)})
        assert (status, body["error"]) == (400, "invalid_code")

    status, _, required = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert (status, required["error"], required["captcha"]) == (403, "captcha_required", WIDGET)
    status, _, invalid = call("/api/otp/verify",
                              {"phoneNumber": phone, "otp": code, "captchaToken": "not-solved"})
    assert (status, invalid["error"], invalid["captcha"]) == (403, "captcha_invalid", WIDGET)
    before = len(siteverify_calls())
    status, _, body = call("/api/otp/verify",
                           {"phoneNumber": phone, "otp": code, "captchaToken": DUMMY_TOKEN})
    assert (status, body["status"]) == (200, "approved"), body

    # One check, of the token as sent, with the caller's address.
    checked = siteverify_calls()[before:]
    assert [(c["response"], c["success"]) for c in checked] == [(DUMMY_TOKEN, True)], checked
    assert checked[0]["remoteip"] in ("127.0.0.1", "::1"), checked


def verifications_counted(destination):
    """The pumping breaker's count of verifications for `destination`."""
    key = f"{os.environ['E2E_REDIS_PREFIX']}:dest:{{{destination}}}"
    out = subprocess.run(["redis-cli", "-u", os.environ["E2E_REDIS_URL"], "--raw", "HGET", key, "tv"],
                         capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    return int(out or 0)


def test_a_right_code_counts_toward_its_number_range_once_the_answer_is_out():
    phone = "+447911123456"  # a Guernsey mobile: +44, region GG
    assert call("/api/otp/request", {"phoneNumber": phone})[0] == 200
    code = code_in(sms_to(phone)[-1]["text"])
    before = verifications_counted("GG:791112")

    status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert (status, body["status"]) == (200, "approved"), body

    # Counted by the runtime after the response was posted, before the
    # function asks for its next event.
    deadline = time.monotonic() + 5
    while verifications_counted("GG:791112") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert verifications_counted("GG:791112") == before + 1


def test_a_voip_line_is_refused_and_looked_up_once():
    phone = "+14155550899"
    sandbox("/sandbox/line-type", {"number": phone, "type": "voip"}, method="POST")

    first = call("/api/otp/request", {"phoneNumber": phone})
    second = call("/api/otp/request", {"phoneNumber": phone})

    for status, _, body in (first, second):
        assert (status, body["error"]) == (403, "destination_not_allowed"), body
    assert sms_to(phone) == []
    assert sandbox("/sandbox/lookups?number=%2B14155550899") == [phone]


def test_a_number_plivo_does_not_know_is_an_invalid_phone_number():
    phone = "+14155550898"
    sandbox("/sandbox/line-type", {"number": phone, "type": "missing"}, method="POST")

    status, _, body = call("/api/otp/request", {"phoneNumber": phone})

    assert (status, body["error"]) == (400, "invalid_phone_number"), body
    assert sms_to(phone) == []
