"""Tokens as a backend checks them, with PyJWT and nothing but the JWK Set
URL (the dev secret has derived_token_key, as a new stack's secret does);
and messages in the number's language, or the one the client asks for.

scripts/test.sh starts everything and sets the E2E_* variables.
"""

import base64
import json

import jwt
import pytest

from .service import JWKS_URL, call, code_in, post, sms_to

pytestmark = pytest.mark.usefixtures("functions_are_built")


def verified_token(phone):
    status, _, body = call("/api/otp/request", {"phoneNumber": phone})
    assert status == 200, body
    code = code_in(sms_to(phone)[-1]["text"])
    status, _, body = call("/api/otp/verify", {"phoneNumber": phone, "otp": code})
    assert status == 200, body
    return body["verificationToken"]


def backend_decode(token):
    """What the README tells a backend to do: a cached key set, ES256 pinned."""
    key = jwt.PyJWKClient(JWKS_URL, cache_keys=True).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["ES256"], issuer="otp-service",
                      options={"require": ["exp", "iat", "iss", "sub", "jti"]})


def test_a_token_verifies_with_pyjwt_through_the_jwks_url_and_nothing_else():
    phone = "+447400123457"
    token = verified_token(phone)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"]
    claims = backend_decode(token)
    assert claims["sub"] == claims["phone_number"] == phone
    assert claims["phone_number_verified"] is True


def test_the_jwk_set_is_public_cacheable_json_with_the_signing_key():
    status, headers, raw = post(JWKS_URL, None, method="GET")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "public, max-age=300"
    keys = json.loads(raw)["keys"]
    assert [(k["kty"], k["crv"], k["alg"], k["use"]) for k in keys] == [("EC", "P-256", "ES256", "sig")]
    assert all("d" not in k for k in keys), "no private part"
    status, headers, _ = post(JWKS_URL, b"{}")
    assert (status, headers["allow"]) == (405, "GET")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_token_minted_with_only_the_public_keys_is_refused():
    genuine = verified_token("+447400123459")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    claims["sub"] = claims["phone_number"] = "+15005550006"
    kid = jwt.get_unverified_header(genuine)["kid"]
    jwk = json.loads(post(JWKS_URL, None, method="GET")[2])["keys"][0]
    public_point = b"\x04" + b64url_decode(jwk["x"]) + b64url_decode(jwk["y"])

    # HS256 "signed" with the public key's bytes: refused, ES256 is pinned.
    forged = jwt.encode(claims, public_point, algorithm="HS256", headers={"kid": kid})
    with pytest.raises(jwt.InvalidAlgorithmError):
        backend_decode(forged)
    # No signature at all.
    unsigned = ".".join([b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode()),
                         b64url(json.dumps(claims).encode()), ""])
    with pytest.raises(jwt.PyJWTError):
        backend_decode(unsigned)
    # The genuine signature over other claims.
    head, _, signature = genuine.split(".")
    with pytest.raises(jwt.PyJWTError):
        backend_decode(".".join([head, b64url(json.dumps(claims).encode()), signature]))


def test_a_spanish_number_gets_spanish_and_the_locale_field_overrides_it():
    assert call("/api/otp/request", {"phoneNumber": "+34612345670"})[0] == 200
    assert call("/api/otp/request", {"phoneNumber": "+34612345671", "locale": "fr"})[0] == 200

    assert sms_to("+34612345670")[-1]["text"].startswith("Tu código de ")
    assert sms_to("+34612345671")[-1]["text"].startswith("Votre code de vérification ")
    status, _, body = call("/api/otp/request", {"phoneNumber": "+34612345672", "locale": 7})
    assert (status, body["error"]) == (400, "invalid_request")
