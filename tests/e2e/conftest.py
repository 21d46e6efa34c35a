import time
import urllib.error

import pytest


@pytest.fixture(scope="session")
def functions_are_built():
    """The first call makes cargo lambda watch compile a function: allow for it.
    (Imported lazily: test_plivo_sign.py needs no service and no E2E_* variables.)"""
    from .service import API, call, post

    def request_and_verify_answer(path):
        return call(path, raw=b"{}")[0] == 400

    def webhook_answers(path):
        # No signature: once plivo-webhook is built it refuses the request.
        return post(API + path, b"", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 403

    deadline = time.monotonic() + 600
    for path, answers in (("/api/otp/request", request_and_verify_answer),
                          ("/api/otp/verify", request_and_verify_answer),
                          ("/api/otp/status?send=0", webhook_answers)):
        while True:
            try:
                if answers(path):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            assert time.monotonic() < deadline, f"{path} never answered"
            time.sleep(1)
