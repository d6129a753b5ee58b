"""The Exchange record's parsed-reply memo follows the body it was parsed from."""

from __future__ import annotations

import dataclasses

from vapi_dev.exchange import Exchange


def test_response_json_follows_the_body() -> None:
    ex = Exchange.begin("POST", "/", "", [], b"{}")
    assert ex.response_json() is None
    ex.response_body = b'{"a": 1}'
    first = ex.response_json()
    assert first == {"a": 1} and ex.response_json() is first  # parsed once
    ex.response_body = b'{"b": 2}'  # e.g. a fallback reply replacing the app's
    assert ex.response_json() == {"b": 2}
    ex.response_body = b"not json"
    assert ex.response_json() is None
    copy = dataclasses.replace(ex, response_body=b'{"c": 3}')
    assert copy.response_json() == {"c": 3}
    ex.response_truncated = True
    assert ex.response_json() is None
