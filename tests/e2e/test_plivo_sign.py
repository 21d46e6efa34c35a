"""The V3 signature of the e2e helper and of the Plivo sandbox, and the
helper's V2 signature, on the vectors of Plivo's own SDK tests. Needs no
running service."""

import importlib.util
from pathlib import Path

import pytest

from .plivo_sign import v2_signature
from .plivo_sign import v3_signature as helper_v3

ROOT = Path(__file__).resolve().parents[2]


def _sandbox():
    spec = importlib.util.spec_from_file_location("plivo_sandbox", ROOT / "scripts/plivo_sandbox.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOKEN = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
NONCE = "31627761595286130198"
URL = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml"
PARAMS = {
    "Direction": "outbound", "From": "19792014278", "ALegUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallStatus": "in-progress", "BillRate": "0.002", "ParentAuthID": "MANWVLYTK4ZWU1YTY4QA",
    "To": "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
    "ALegRequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "RequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "SIP-H-To": "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
    "SessionStart": "2020-04-08 11:34:33.238707", "Event": "StartApp",
}
VECTORS = [
    (URL + "/?a=b&c=d", "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="),
    (URL, "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="),
]
SIGNERS = {"e2e helper": helper_v3, "sandbox": _sandbox().v3_signature}


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
@pytest.mark.parametrize("url,expected", VECTORS)
def test_v3_signature_matches_plivos_published_vectors(signer, url, expected):
    assert signer(TOKEN, url, dict(PARAMS), NONCE) == expected


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
def test_v3_signature_depends_on_token_nonce_url_and_every_param(signer):
    url, expected = VECTORS[0]
    assert signer("another-token", url, dict(PARAMS), NONCE) != expected
    assert signer(TOKEN, url, dict(PARAMS), NONCE[:-1] + "9") != expected
    assert signer(TOKEN, url.replace("a=b", "a=x"), dict(PARAMS), NONCE) != expected
    assert signer(TOKEN, url, {**PARAMS, "CallStatus": "completed"}, NONCE) != expected


def test_the_sandbox_and_the_helper_agree_on_query_and_body_combinations():
    sandbox = SIGNERS["sandbox"]
    for url in ("http://127.0.0.1:9000/api/otp/status", "http://127.0.0.1:9000/api/otp/status?send=ab12"):
        for params in ({}, {"Status": "delivered", "To": "14155550701"}):
            assert sandbox("t", url, params, "123") == helper_v3("t", url, params, "123")


def test_v2_signature_matches_plivos_published_vector():
    # plivo-python's tests/resources/test_signature.py
    expected = "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="
    assert v2_signature("my_auth_token", "https://answer.url", "12345") == expected
    assert v2_signature("my_auth_tokens", "https://answer.url", "12345") != expected
    # V2 does not sign the query.
    assert v2_signature("my_auth_token", "https://answer.url?send=x", "12345") == expected
