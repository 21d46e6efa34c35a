"""Plivo's V3 webhook signature, computed the way Plivo signs its callbacks,
so the e2e tests can play Plivo themselves. No service, no environment:
test_plivo_sign.py proves it (and the sandbox's copy) on Plivo's vectors."""

import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse


def v3_signature(auth_token, url, params, nonce):
    """base64(HMAC-SHA256(auth_token, message)) as plivo-python's
    validate_v3_signature("POST", url, nonce, auth_token, sig, params) expects.

    message = URL without its query
              + "?" + query params sorted by key as k=v joined by "&"  (if a query or POST params)
              + "." if both the query and the POST params are non-empty
              + POST params sorted by key as "keyvalue", no separators
              + "." + nonce
    """
    parsed = urlparse(url)
    message = urlunparse((parsed.scheme, parsed.netloc, parsed.path, "", "", ""))
    query = parse_qs(parsed.query, keep_blank_values=True)
    query_string = "&".join(f"{k}={v}" for k in sorted(query) for v in sorted(query[k]))
    if query_string or params:
        message += "?" + query_string
    if query_string and params:
        message += "."
    message += "".join(f"{k}{params[k]}" for k in sorted(params)) + "." + nonce
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha256).digest()).decode()


def v2_signature(auth_token, url, nonce):
    """Plivo's V2 signature: base64(HMAC-SHA256(auth_token, URL without its query + nonce))."""
    parsed = urlparse(url)
    message = urlunparse((parsed.scheme, parsed.netloc, parsed.path, "", "", "")) + nonce
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha256).digest()).decode()


def new_nonce():
    """Plivo's nonces are 20 random digits."""
    return "".join(secrets.choice("0123456789") for _ in range(20))


def signed_form(auth_token, url, params, nonce=None):
    """(body, headers) for a POST of params to url as Plivo sends it."""
    nonce = nonce or new_nonce()
    return urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Plivo-Signature-V3": v3_signature(auth_token, url, params, nonce),
        "X-Plivo-Signature-V3-Nonce": nonce,
    }
