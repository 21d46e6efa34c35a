"""End to end: the built functions served by `cargo lambda watch` behind the
API's real paths, Plivo played by the local sandbox, a code read back from
the SMS, and the token checked with PyJWT (a JWT library not our own)
through the JWK Set, as a backend does.

scripts/test.sh starts everything and sets the E2E_* variables.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import jwt
import pytest

from .service import API, JWKS_URL, ROOT, call, code_in, received, sms_to, spoken_codes

pytestmark = pytest.mark.usefixtures("functions_are_built")


def test_a_client_requests_a_code_receives_it_by_sms_and_verifies_it():
    phone = "+447400123456"
    status, headers, body = call("/api/otp/request", {"phoneNumber": phone})
    assert status == 200, body
    assert body == {"status": "pending", "message": "OTP has been sent successfully.",
                    "expiresInSeconds": 300, "retryAfterSeconds": 30, "channel": "sms"}
    assert headers["content-type"] == "application/json"

    messages = sms_to(phone)
    assert len(messages) == 1
    assert messages[0]["src"] == "+14155550100"
    code = code_in(messages[0]["text"])

    status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert status == 200, body
    assert body["status"] == "approved"
    assert body["expiresInSeconds"] == 600
    token = body["verificationToken"]
    key = jwt.PyJWKClient(JWKS_URL).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["ES256"],
                        issuer="otp-service", options={"require": ["exp", "iat", "iss", "sub", "jti"]})
    assert claims["sub"] == phone
    assert claims["phone_number"] == phone
    assert claims["phone_number_verified"] is True
    assert claims["exp"] - claims["iat"] == 600

    # The same code again (a double tap): no second token, and no failure.
    status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert (status, body["error"]) == (400, "code_already_used")
    assert "verificationToken" not in body


def test_errors_come_back_as_documented_json():
    status, headers, body = call("/api/otp/request", {"phoneNumber": "4155552671"})
    assert (status, body["error"]) == (400, "invalid_phone_number")
    status, headers, body = call("/api/otp/verify", {"phoneNumber": "+14155552671", "otp": 123456})
    assert (status, body["error"]) == (400, "invalid_request")
    status, headers, body = call("/api/otp/request", method="GET")
    assert (status, body["error"]) == (405, "method_not_allowed")
    status, headers, body = call("/api/otp/request", {"phoneNumber": "+19005550123"})
    assert (status, body["error"]) == (403, "destination_not_allowed")


def test_a_second_request_inside_the_cooldown_is_refused_with_retry_after():
    phone = "+491701234567"
    assert call("/api/otp/request", {"phoneNumber": phone})[0] == 200
    status, headers, body = call("/api/otp/request", {"phoneNumber": phone})
    assert (status, body["error"]) == (429, "too_many_requests")
    # Whole minutes: not the seconds since someone asked for a code.
    assert int(headers["retry-after"]) == 60
    assert len(sms_to(phone)) == 1


def invoke(function, event):
    result = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--data-file", f"events/{event}",
         "--invoke-address", "127.0.0.1", "--invoke-port", API.rsplit(":", 1)[1]],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("function,event", [
    ("request-otp", "request-otp-http-api.json"),
    ("request-otp", "request-otp-rest-api.json"),
    ("request-otp", "request-otp-voice-http-api.json"),
])
def test_cargo_lambda_invoke_runs_the_sample_events(function, event):
    # All three ask for +14155552671; the later ones land in the cooldown.
    response = invoke(function, event)
    body = json.loads(response["body"])
    assert response["statusCode"] in (200, 429), response
    if response["statusCode"] == 200:
        assert body["status"] == "pending"
    else:
        assert body["error"] == "too_many_requests"


@pytest.mark.parametrize("event", [
    "plivo-webhook-answer-http-api.json",
    "plivo-webhook-hangup-http-api.json",
    "plivo-webhook-status-http-api.json",
])
def test_cargo_lambda_invoke_checks_the_signature_of_the_sample_webhook_events(event):
    # The samples are signed for the API Gateway URL in the event; here
    # PUBLIC_BASE_URL (the local URL) is the URL Plivo signs, so they are refused.
    response = invoke("plivo-webhook", event)
    assert response["statusCode"] == 403, response
    assert json.loads(response["body"])["error"] == "invalid_signature"


def test_function_logs_are_json_with_masked_numbers_and_no_codes():
    log = Path(os.environ["E2E_FUNCTION_LOG"]).read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "otp verified" for line in lines)
    # Metrics travel as CloudWatch Embedded Metric Format lines, no API call.
    emf = [line for line in lines if "_aws" in line]
    assert any(line.get("OtpSent") == 1 and line["Country"] == "GB" for line in emf), emf
    assert any(line.get("OtpVerified") == 1 for line in emf), emf
    codes = {code_in(m["text"]) for m in received(kind="sms")}
    codes.update(code for m in received(kind="call") for code in spoken_codes(m["text"]))
    for line in log.splitlines():
        assert "+447400123456" not in line and "447400123456" not in line, line
        # Whole digit runs, outside the fields that hold times and random ids.
        if line.startswith("{"):
            fields = {k: v for k, v in json.loads(line).items()
                      if k not in ("timestamp", "span", "_aws", "message_uuid")}
            line = json.dumps(fields)
        assert not codes & set(re.findall(r"\d+", line)), line
        assert not codes & set(spoken_codes(line)), line
