"""The try-it page, driven in headless Chromium against the running functions:
a number typed, the code read back from the Plivo sandbox and typed in, the
verified state with the token's claims, the wrong-code and cooldown messages,
the call channel, the signature check against the JWKS, and CORS doing its
job. Each state is saved as a screenshot (BROWSER_ARTIFACTS)."""

import base64
import json
import re

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from playwright.sync_api import expect

from .support import (api_url, code_from_call, code_from_sms, cross_origin_page, jwks_keys, page_url,
                      received)

SMS_PHONE = "+14155550171"
CALL_PHONE = "+14155550172"
REFUSED_ORIGIN_PHONE = "+14155550173"


def answer_of(response):
    """The decoded JSON body and the Retry-After header of a Playwright response."""
    return response.json(), response.headers.get("retry-after")


def shown_wait(page):
    """The seconds the Resend button counts down from, as the page shows them."""
    return int(page.locator("#resend").get_attribute("data-wait"))


def test_the_page_is_labelled_fits_a_small_screen_and_calls_its_own_origin_by_default(page, shoot):
    page.goto(page_url())
    origin = page.evaluate("location.origin")
    expect(page.locator("#api-base")).to_have_text(origin)

    phone = page.get_by_label("Phone number", exact=True)
    expect(phone).to_have_attribute("type", "tel")
    expect(phone).to_have_attribute("autocomplete", "tel")
    expect(page.get_by_role("radio", name="SMS")).to_be_checked()
    expect(page.get_by_role("radio", name="Phone call")).not_to_be_checked()
    expect(page.get_by_role("group", name="Send the code by")).to_be_visible()
    code = page.locator("#code")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    expect(code).to_have_attribute("inputmode", "numeric")
    expect(page.locator("#status")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#error")).to_have_attribute("role", "alert")

    # Keyboard order: the number, the channel, then the button.
    page.locator("body").focus()
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.value"))
    assert order == ["phone", "sms", "send"]

    # 360 px: nothing sticks out sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shoot("01-start")


def test_a_person_gets_a_code_by_sms_sees_the_cooldown_and_a_wrong_code_then_is_verified(page, shoot):
    page.goto(cross_origin_page())
    expect(page.locator("#api-base")).to_have_text(api_url())

    # Send: the code goes out, the code field takes the focus, Resend waits.
    page.get_by_label("Phone number", exact=True).fill(SMS_PHONE)
    with page.expect_response(lambda r: r.url.endswith("/api/otp/request")) as sent:
        page.get_by_role("button", name="Send code").click()
    body, _ = answer_of(sent.value)
    assert sent.value.status == 200, body
    expect(page.locator("#sent-to")).to_contain_text(f"We sent a code by SMS to {SMS_PHONE}")
    expect(page.locator("#status")).to_contain_text(body["message"])
    expect(page.locator("#code")).to_be_focused()
    resend = page.locator("#resend")
    expect(resend).to_be_disabled()
    expect(resend).to_have_text(re.compile(r"^Resend in \d+ s$"))
    assert body["retryAfterSeconds"] - 2 <= shown_wait(page) <= body["retryAfterSeconds"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shoot("02-code-sent")

    # Send again at once: the API's cooldown message, and a countdown from
    # its Retry-After header (which only CORS's Expose-Headers lets the page read).
    with page.expect_response(lambda r: r.url.endswith("/api/otp/request")) as refused:
        page.get_by_role("button", name="Send code").click()
    body, retry_after = answer_of(refused.value)
    assert refused.value.status == 429, body
    assert body["error"] == "too_many_requests"
    expect(page.locator("#error-message")).to_have_text(body["message"])
    expect(page.locator("#error-code")).to_have_text("too_many_requests")
    expect(page.locator("#code")).to_be_focused()
    expect(page.locator("#code")).not_to_have_attribute("aria-invalid", "true")
    expect(resend).to_be_disabled()
    expect(resend).to_have_text(re.compile(r"^Resend in (\d+ s|\d+:\d\d min)$"))
    first = shown_wait(page)
    assert int(retry_after) - 2 <= first <= int(retry_after)
    page.wait_for_timeout(1500)
    assert shown_wait(page) < first, "the countdown does not count down"
    shoot("03-cooldown")

    # A wrong code: the API's message, on the code field.
    code = code_from_sms(SMS_PHONE)
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    page.locator("#code").fill(wrong)
    with page.expect_response(lambda r: r.url.endswith("/api/otp/verify")) as rejected:
        page.get_by_role("button", name="Verify").click()
    body, _ = answer_of(rejected.value)
    assert (rejected.value.status, body["error"]) == (400, "invalid_code"), body
    expect(page.locator("#error-message")).to_have_text(body["message"])
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#code")).to_be_focused()
    shoot("04-wrong-code")

    # The right code: verified, with the token's claims.
    page.locator("#code").fill(code)
    with page.expect_response(lambda r: r.url.endswith("/api/otp/verify")) as approved:
        page.get_by_role("button", name="Verify").click()
    body, _ = answer_of(approved.value)
    assert approved.value.status == 200, body
    result = page.locator("#result")
    expect(result).to_be_visible()
    expect(page.locator("#result-title")).to_be_focused()
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#request-form")).to_be_hidden()
    claims = jwt.decode(body["verificationToken"], options={"verify_signature": False})
    assert claims["phone_number"] == SMS_PHONE and claims["phone_number_verified"] is True
    for name, value in claims.items():
        shown = page.locator(f'#claims dd[data-claim="{name}"]')
        expected = value if isinstance(value, str) else json.dumps(value)
        expect(shown).to_contain_text(expected)
    expect(page.locator("#token")).to_have_text(body["verificationToken"])

    # The signature: checked in the browser against the JWKS when the API
    # publishes keys; otherwise the page must say why it could not check it.
    signature = page.locator("#signature")
    expect(signature).not_to_have_attribute("data-state", "pending")
    status, keys = jwks_keys()
    if status == 200 and keys:
        expect(signature).to_have_attribute("data-state", "valid")
        expect(signature).to_contain_text("Signature valid: ES256")
    elif status == 200:
        expect(signature).to_have_attribute("data-state", "empty")
        expect(signature).to_contain_text("cannot be checked in the browser")
    else:
        expect(signature).to_have_attribute("data-state", "unavailable")
        expect(signature).to_contain_text(f"HTTP {status}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shoot("05-verified")
    page.set_viewport_size({"width": 1024, "height": 900})
    shoot("05-verified-wide")


def test_a_person_gets_the_code_in_a_phone_call(page, shoot):
    page.goto(cross_origin_page())
    page.get_by_label("Phone number", exact=True).fill(CALL_PHONE)
    page.get_by_role("radio", name="Phone call").check()
    with page.expect_response(lambda r: r.url.endswith("/api/otp/request")) as sent:
        page.get_by_role("button", name="Send code").click()
    body, _ = answer_of(sent.value)
    assert (sent.value.status, body["channel"]) == (200, "voice"), body
    expect(page.locator("#sent-to")).to_contain_text(f"We are calling {CALL_PHONE}")
    shoot("06-calling")

    page.locator("#code").fill(code_from_call(CALL_PHONE))
    with page.expect_response(lambda r: r.url.endswith("/api/otp/verify")) as approved:
        page.get_by_role("button", name="Verify").click()
    assert approved.value.status == 200
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator('#claims dd[data-claim="phone_number"]')).to_have_text(CALL_PHONE)


def test_a_page_from_an_origin_the_api_does_not_allow_cannot_call_it(page, shoot):
    # Same page, same API, but from http://localhost:<port>: an origin that
    # scripts/test.sh does not list, so the preflight gets no CORS headers.
    refused_page = cross_origin_page().replace("127.0.0.1", "localhost", 1)
    page.goto(refused_page)
    page.get_by_label("Phone number", exact=True).fill(REFUSED_ORIGIN_PHONE)
    page.get_by_role("button", name="Send code").click()
    expect(page.locator("#error-code")).to_have_text("network_error")
    expect(page.locator("#error-message")).to_contain_text("does not allow this page's origin")
    assert received(REFUSED_ORIGIN_PHONE, "sms") == [], "the browser sent the request anyway"
    shoot("07-origin-not-allowed")


# ------------------------------------------------------------------ ES256 in the browser
# The page's WebCrypto check, whatever the deployment's algorithm: the page
# calls its own origin, where these responses stand in for the API.

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_token(key, kid, phone):
    claims = {"iss": "otp-service", "sub": phone, "phone_number": phone, "phone_number_verified": True,
              "iat": 1_795_539_243, "exp": 4_102_444_800, "jti": "6f1c0d2e"}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


def jwk_of(key, kid):
    return {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": kid, "alg": "ES256", "use": "sig"}


def stand_in_api(page, token, jwks_status, jwks):
    def answer(status, body, headers=None):
        return lambda route: route.fulfill(status=status, content_type="application/json",
                                           headers=headers or {}, body=json.dumps(body))
    page.route("**/api/otp/request", answer(200, {
        "status": "pending", "message": "OTP has been sent successfully.", "expiresInSeconds": 300,
        "retryAfterSeconds": 30, "channel": "sms"}))
    page.route("**/api/otp/verify", answer(200, {
        "status": "approved", "message": "OTP verified successfully.", "verificationToken": token,
        "expiresInSeconds": 600}))
    page.route("**/.well-known/jwks.json", answer(jwks_status, jwks, {"Cache-Control": "public, max-age=300"}))


def tampered(token):
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("case,token,jwks_status,jwks,state,says", [
    ("valid", signed_token(KEY, "2026-11", "+14155550174"), 200,
     {"keys": [jwk_of(OTHER_KEY, "2026-05"), jwk_of(KEY, "2026-11")]}, "valid", "Signature valid: ES256"),
    ("tampered", tampered(signed_token(KEY, "2026-11", "+14155550174")), 200,
     {"keys": [jwk_of(KEY, "2026-11")]}, "invalid", "Signature INVALID"),
    ("other-key", signed_token(OTHER_KEY, "2026-11", "+14155550174"), 200,
     {"keys": [jwk_of(KEY, "2026-11")]}, "invalid", "Signature INVALID"),
    ("unknown-kid", signed_token(KEY, "2027-01", "+14155550174"), 200,
     {"keys": [jwk_of(KEY, "2026-11")]}, "no-key", "kid \"2027-01\""),
    ("hs256-deployment", jwt.encode({"sub": "+14155550174"}, "a-shared-secret-of-32-bytes-or-more!", "HS256"),
     200, {"keys": []}, "empty", "cannot be checked in the browser"),
    ("no-jwks-route", signed_token(KEY, "2026-11", "+14155550174"), 404,
     {"message": "Not Found"}, "unavailable", "HTTP 404"),
])
def test_the_page_checks_the_es256_signature_against_the_jwks(page, shoot, case, token, jwks_status, jwks,
                                                             state, says):
    stand_in_api(page, token, jwks_status, jwks)
    page.goto(page_url())
    page.get_by_label("Phone number", exact=True).fill("+14155550174")
    page.get_by_role("button", name="Send code").click()
    page.locator("#code").fill("123456")
    page.get_by_role("button", name="Verify").click()
    signature = page.locator("#signature")
    expect(signature).to_have_attribute("data-state", state)
    expect(signature).to_contain_text(says)
    trusted = state not in ("invalid", "no-key")
    expect(page.locator("#result-title")).to_have_text(
        "Phone number verified" if trusted else "Code accepted, but the token does not verify")
    if case in ("valid", "tampered", "no-jwks-route"):
        shoot(f"08-signature-{case}")
