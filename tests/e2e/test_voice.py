"""End to end, the voice channel and Plivo's callbacks: the functions behind
`cargo lambda watch`, Plivo played by the sandbox (it places the call by
POSTing the answer and hangup URLs, and posts status callbacks for each SMS,
all signed with V3), and the tests playing Plivo themselves where a callback
must be forged or repeated.
"""

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import pytest

from .service import (API, SENDER, answer_params, call, calls_to, post, post_as_plivo, received,
                      sandbox, sms_to, speak_texts, spoken_codes, status_params, wait_for)

pytestmark = pytest.mark.usefixtures("functions_are_built")

WEBHOOKS = ["/api/otp/voice/answer", "/api/otp/voice/hangup", "/api/otp/status"]
CALLING = "A call is on its way with the OTP."
PENDING = {"status": "pending", "message": "OTP has been sent successfully.",
           "expiresInSeconds": 300, "retryAfterSeconds": 30}


def answered_call(phone):
    """The sandbox's record of the call to phone, once its hangup URL answered."""
    return wait_for(f"call to {phone}", lambda: [
        c for c in calls_to(phone) if c["hangup_status"] or c.get("hangup_error")])[-1]


def status_answered(phone, status):
    """The sandbox's record of the SMS to phone once its `status` callback was answered."""
    def probe():
        for sms in sms_to(phone):
            if any(s["status"] == status and s["http_status"] for s in sms["statuses"]):
                return sms
        return None
    return wait_for(f"{status} callback for the SMS to {phone}", probe)


def test_a_code_requested_by_voice_is_spoken_and_verifies_and_is_not_spoken_again():
    phone = "+14155550701"
    status, headers, body = call("/api/otp/request", {"phoneNumber": phone, "channel": "voice"})
    assert (status, body) == (200, {**PENDING, "channel": "voice", "message": CALLING})

    record = answered_call(phone)
    assert record["src"] == SENDER
    assert record["answer_url"].startswith(f"{API}/api/otp/voice/answer?send=")
    assert record["hangup_url"].startswith(f"{API}/api/otp/voice/hangup?send=")
    assert record["answer_status"] == 200 and "error" not in record, record
    assert record["hangup_status"] == 204, record
    assert speak_texts(record["xml"]), record["xml"]
    # The digits one by one, said at least twice, and nothing sent by SMS.
    codes = spoken_codes(record["text"])
    assert len(codes) >= 2 and len(set(codes)) == 1 and len(codes[0]) == 6, record["text"]
    assert all(speak.get("language") == "en-US" for speak in ET.fromstring(record["xml"]).iter("Speak"))
    assert sms_to(phone) == []

    code = codes[0]
    status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert status == 200, body
    assert body["status"] == "approved"

    # Plivo fetching the answer URL again (a retry, a second leg) after the
    # code was used: the answer is valid XML and speaks no code.
    status, headers, xml = post_as_plivo(record["answer_url"], answer_params(record))
    assert status == 200, xml
    assert headers["content-type"].split(";")[0] == "application/xml"
    spoken = " ".join(speak_texts(xml.decode()))
    assert not re.search(r"\d", spoken), spoken
    assert code not in xml.decode()


def test_a_channel_that_is_not_sms_or_voice_is_refused():
    for channel in ("fax", "VOICE", 5):
        status, _, body = call("/api/otp/request", {"phoneNumber": "+14155550705", "channel": channel})
        assert (status, body["error"]) == (400, "invalid_channel"), (channel, body)
    assert received("+14155550705") == []


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_webhook_without_a_valid_signature_is_refused(path):
    url = f"{API}{path}?send=0123456789abcdef0123456789abcdef"
    params = {"CallUUID": "c1", "From": SENDER[1:], "To": "14155550706", "Status": "undelivered",
              "CallStatus": "completed", "ErrorCode": "30005"}
    unsigned = post(url, urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    wrong_token = post_as_plivo(url, params, auth_token="not-the-auth-token")
    for status, headers, body in (unsigned, wrong_token):
        assert status == 403, body
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"] == "invalid_signature"
    status, headers, body = post(url, None, method="GET")
    assert (status, headers.get("allow"), json.loads(body)["error"]) == (405, "POST", "method_not_allowed")


def test_an_undelivered_sms_lifts_the_cooldown_so_a_call_can_follow_at_once():
    phone = "+14155550702"
    sandbox("/sandbox/undeliverable", {"dst": phone}, method="POST")
    try:
        status, _, body = call("/api/otp/request", {"phoneNumber": phone})
        assert (status, body) == (200, {**PENDING, "channel": "sms"})
        sms = status_answered(phone, "undelivered")
    finally:
        sandbox("/sandbox/undeliverable", method="DELETE")
    assert sms["url"].startswith(f"{API}/api/otp/status?send=") and sms["method"] == "POST"
    assert sms["statuses"] == [{"status": "queued", "http_status": 204},
                               {"status": "undelivered", "http_status": 204}]

    status, _, body = call("/api/otp/request", {"phoneNumber": phone, "channel": "voice"})
    assert (status, body) == (200, {**PENDING, "channel": "voice", "message": CALLING})
    code = spoken_codes(answered_call(phone)["text"])[0]
    status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert status == 200, body


def test_a_delivered_sms_or_a_forged_receipt_leaves_the_cooldown_in_place():
    phone = "+14155550703"
    assert call("/api/otp/request", {"phoneNumber": phone})[0] == 200
    sms = status_answered(phone, "delivered")
    assert [s["status"] for s in sms["statuses"]] == ["queued", "delivered"]
    assert all(s["http_status"] == 204 for s in sms["statuses"])

    forged = post_as_plivo(sms["url"], status_params(sms, "undelivered", "30005"), auth_token="forged")
    assert forged[0] == 403
    status, headers, body = call("/api/otp/request", {"phoneNumber": phone, "channel": "voice"})
    assert (status, body["error"]) == (429, "too_many_requests")
    assert int(headers["retry-after"]) == 60
    assert calls_to(phone) == []


def test_voice_and_receipts_are_measured_and_logged_without_codes_or_numbers():
    log = Path(os.environ["E2E_FUNCTION_LOG"]).read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    for metric in ("VoiceCallPlaced", "VoiceCallCompleted", "SmsDelivered", "SmsUndelivered",
                   "WebhookSignatureRejected"):
        assert any(line.get(metric) == 1 for line in emf), metric
    codes = {code for c in received(kind="call") for code in spoken_codes(c["text"])}
    assert codes
    for line in log.splitlines():
        for phone in ("14155550701", "14155550702", "14155550703"):
            assert phone not in line, line
        if line.startswith("{"):
            fields = {k: v for k, v in json.loads(line).items() if k not in ("timestamp", "span", "_aws")}
            line = json.dumps(fields)
        assert not codes & (set(re.findall(r"\d+", line)) | set(spoken_codes(line))), line
