"""Schemathesis hooks for the run against `cargo lambda watch`.

The local emulator cannot carry a request whose body is not UTF-8 or whose
header values are not visible ASCII: it answers 500 itself, before our code
runs. API Gateway base64-encodes such bodies (`isBase64Encoded`), and the
Rust hostile-input suite sends exactly those events to the handlers, so here
they are skipped rather than blamed on the service.

Plivo's webhooks refuse anything unsigned, so a fuzzer alone never gets past
the signature check. Where a generated webhook request carries a signature
header, it is replaced by a valid signature over the generated form (V3, or
V2 on the status URL), made with the development auth token the way Plivo
makes it; the others stay unsigned. So both sides of the check are fuzzed.
"""

import os
from urllib.parse import urlencode

import schemathesis

from .plivo_sign import new_nonce, v2_signature, v3_signature

WEBHOOKS = {"/api/otp/voice/answer", "/api/otp/voice/hangup", "/api/otp/status"}


def _carried_by_the_emulator(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@schemathesis.hook
def filter_case(context, case):
    headers = case.headers or {}
    header_ok = all(isinstance(v, str) and all(" " <= c <= "~" for c in v) for v in headers.values())
    return header_ok and _carried_by_the_emulator(case.body)


def _flat_strings(value):
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


@schemathesis.hook
def before_call(context, case, kwargs):
    base, token = os.environ.get("E2E_API_URL"), os.environ.get("E2E_PLIVO_AUTH_TOKEN")
    if not (base and token) or case.operation.path not in WEBHOOKS or case.method.upper() != "POST":
        return
    headers = case.headers or {}
    names = {name.lower(): name for name in headers}
    wants_v3 = "x-plivo-signature-v3" in names
    wants_v2 = "x-plivo-signature-v2" in names
    if not (wants_v3 or wants_v2) or not _flat_strings(case.body) or not _flat_strings(case.query or {}):
        return
    if (case.media_type or "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return
    # Sent exactly as signed: the form as a string, the query as urlencode writes it.
    form = dict(case.body)
    case.body = urlencode(form)
    url = base + case.operation.path + ("?" + urlencode(case.query) if case.query else "")
    for name in list(headers):
        if name.lower().startswith("x-plivo-signature"):
            del headers[name]
    nonce = new_nonce()
    if wants_v3:
        headers["X-Plivo-Signature-V3"] = v3_signature(token, url, form, nonce)
        headers["X-Plivo-Signature-V3-Nonce"] = nonce
    else:
        headers["X-Plivo-Signature-V2"] = v2_signature(token, url, nonce)
        headers["X-Plivo-Signature-V2-Nonce"] = nonce
    case.headers = headers
