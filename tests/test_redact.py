"""Redaction of secret headers, credential-like payload fields and known secret values."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from vapi_dev.redact import MASK, Masker, is_secret_key, redact_headers, redact_payload, scrub_text
from vapi_dev.vapi.auth import AuthConfig, sign

SECRET = "s3cr3t-Value-9f8e7d"
TOKEN = "tok_live_0123456789abcdef"


@pytest.mark.parametrize(
    "name",
    [
        "X-Vapi-Secret",
        "x-vapi-secret",
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "x-signature",
        "X-Vapi-Signature",
        "X-Api-Key",
        "X-Webhook-Secret",
        "X-Auth-Token",
    ],
)
def test_secret_headers_are_masked(name: str) -> None:
    [(out_name, value)] = redact_headers([(name, SECRET)])
    assert out_name == name and value == MASK


@pytest.mark.parametrize("name", ["x-timestamp", "X-Vapi-Timestamp", "Content-Type", "User-Agent", "X-Call-Id", "Host"])
def test_harmless_headers_stay(name: str) -> None:
    assert redact_headers([(name, "1735732800")]) == [(name, "1735732800")]


def test_bearer_scheme_stays_visible() -> None:
    assert redact_headers([("Authorization", f"Bearer {TOKEN}")]) == [("Authorization", f"Bearer {MASK}")]
    assert redact_headers([("Authorization", TOKEN)]) == [("Authorization", MASK)]


def test_extra_names_and_secret_values() -> None:
    headers = [("X-Custom", TOKEN), ("X-Other", f"id={SECRET};v=1"), ("Accept", "*/*")]
    out = redact_headers(headers, [SECRET], extra_names=["x-custom"])
    assert out == [("X-Custom", MASK), ("X-Other", f"id={MASK};v=1"), ("Accept", "*/*")]
    assert headers[0] == ("X-Custom", TOKEN)  # the input (what is forwarded) is untouched


def test_configured_auth_headers_never_leak() -> None:
    cfg = AuthConfig(
        secret=SECRET,
        bearer=TOKEN,
        auth_header="X-Plain",
        bearer_prefix=False,
        hmac_secret="hmac-key-123",
        hmac_signature_header="X-Plain-Sig",
    )
    headers = [*sign(cfg, method="POST", url="https://x.invalid/", body=b"{}"), ("Accept", "*/*")]
    out = redact_headers(headers, cfg.secret_values(), extra_names=cfg.secret_header_names())
    text = json.dumps(out)
    signature = dict(headers)["X-Plain-Sig"]
    for value in [*cfg.secret_values(), signature]:
        assert value not in text
    assert ("x-timestamp", dict(headers)["x-timestamp"]) in out


@pytest.mark.parametrize(
    "key",
    [
        "twilioAuthToken",
        "twilioApiSecret",
        "twilioApiKey",
        "authToken",
        "apiKey",
        "api_key",
        "API-KEY",
        "secret",
        "secretKey",
        "serverUrlSecret",
        "password",
        "token",
        "accessToken",
        "refresh_token",
        "clientSecret",
        "privateKey",
        "private_key",
        "credential",
        "credentials",
        "Authorization",
    ],
)
def test_credential_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "promptTokens",
        "completionTokens",
        "tokens",
        "maxTokens",
        "tokenizer",
        "credentialId",
        "credentialIds",
        "id",
        "name",
        "number",
        "transcript",
        "type",
        "tokenUrl",
    ],
)
def test_harmless_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_redact_payload_deep() -> None:
    payload: dict[str, Any] = {
        "message": {
            "type": "assistant-request",
            "phoneNumber": {
                "provider": "twilio",
                "number": "+15555550199",
                "twilioAccountSid": "AC123",
                "twilioAuthToken": "auth-tok-1",
                "twilioApiKey": "SK1",
                "twilioApiSecret": "api-sec-1",
            },
            "call": {"id": "call_1", "credentialId": "cred_1"},
            "costs": [{"type": "model", "promptTokens": 120, "completionTokens": 30, "tokens": 150}],
            "server": {"url": "https://x.invalid", "headers": {"X-Api-Key": "hdr-key", "Accept": "json"}, "secret": ""},
            "credentials": [{"provider": "openai", "apiKey": "sk-1"}],
            "apiKeys": ["k1", "k2"],
            "nested": [[{"password": "pw"}]],
            "secretIsBase64": True,
            "token": None,
        }
    }
    before = copy.deepcopy(payload)
    out = redact_payload(payload)
    assert payload == before  # deep copy: the original is untouched
    msg = out["message"]
    assert msg["phoneNumber"] == {
        "provider": "twilio",
        "number": "+15555550199",
        "twilioAccountSid": "AC123",
        "twilioAuthToken": MASK,
        "twilioApiKey": MASK,
        "twilioApiSecret": MASK,
    }
    assert msg["call"] == {"id": "call_1", "credentialId": "cred_1"}
    assert msg["costs"] == before["message"]["costs"]
    assert msg["server"]["headers"] == {"X-Api-Key": MASK, "Accept": "json"}
    assert msg["server"]["secret"] == ""  # nothing to hide
    assert msg["credentials"] == [{"provider": "openai", "apiKey": MASK}]
    assert msg["apiKeys"] == [MASK, MASK]
    assert msg["nested"] == [[{"password": MASK}]]
    assert msg["secretIsBase64"] is True and msg["token"] is None
    text = json.dumps(out)
    for value in ("auth-tok-1", "SK1", "api-sec-1", "hdr-key", "sk-1", "k1", "pw"):
        assert f'"{value}"' not in text


@pytest.mark.parametrize("value", [None, 3, "text", [1, "a"], True])
def test_redact_payload_non_objects(value: Any) -> None:
    assert redact_payload(value) == value


def test_scrub_text() -> None:
    text = f"Authorization: Bearer {TOKEN}\nbody={SECRET}&again={SECRET}"
    out = scrub_text(text, [TOKEN, SECRET, ""])
    assert TOKEN not in out and SECRET not in out
    assert out == f"Authorization: Bearer {MASK}\nbody={MASK}&again={MASK}"
    assert scrub_text("nothing here", [SECRET]) == "nothing here"
    assert scrub_text("x", []) == "x"


def test_scrub_text_longest_first_and_json_escaped() -> None:
    assert scrub_text("abc-123-xyz", ["123", "abc-123-xyz"]) == MASK
    tricky = 'pa"ss\\word/é'
    for text in (json.dumps({"v": tricky}), json.dumps({"v": tricky}, ensure_ascii=False)):
        assert tricky not in text  # only the escaped form is in the JSON text
        assert scrub_text(text, [tricky]) == '{"v": "' + MASK + '"}'


# -- Masker: the one set of rules every output applies ----------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("key", ["sig", "auth", "X-Amz-Signature", "pwd", "passphrase", "access_token"])
def test_more_credential_names(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("token=abc&v=1", f"token={MASK}&v=1"),
        (
            "https://h.invalid/p?api_key=k1&access_token=a%20b&tokens=5",
            f"https://h.invalid/p?api_key={MASK}&access_token={MASK}&tokens=5",
        ),
        ("user=bob&password=pw1&Pass%77ord=pw2", f"user=bob&password={MASK}&Pass%77ord={MASK}"),
        ('{"password": "p\\"w", "promptTokens": "3"', f'{{"password": "{MASK}", "promptTokens": "3"'),
        ("sent Authorization: Bearer abcdefgh123", f"sent Authorization: Bearer {MASK}"),
        ("token=&x=", "token=&x="),  # nothing to hide
        ("no secrets here = fine", "no secrets here = fine"),
    ],
)
def test_masker_text_rules(text: str, masked: str) -> None:
    mask = Masker()
    assert mask.text(text) == masked
    assert mask.text(masked) == masked  # masking twice changes nothing


def test_masker_configured_values_in_every_form() -> None:
    secret = "s3cr3t value/+&"
    mask = Masker([secret])
    for text in (f"x={secret}", f"x={quote(secret, safe='')}", f"x={quote_plus(secret)}", json.dumps({"v": secret})):
        out = mask.text(text)
        assert secret not in out and quote(secret, safe="") not in out and quote_plus(secret) not in out, out
    assert Masker([secret], enabled=False).text(f"x={secret}") == f"x={secret}"


def test_masker_data_masks_keys_values_and_strings() -> None:
    data = {"args": {"password": "pw", "url": "https://h.invalid/?token=t1", "note": f"has {SECRET}"}, "n": 3}
    out = Masker([SECRET]).data(data)
    assert out == {"args": {"password": MASK, "url": f"https://h.invalid/?token={MASK}", "note": f"has {MASK}"}, "n": 3}
    assert Masker(enabled=False).data(data) is data


def test_masker_body_falls_back_to_text() -> None:
    mask = Masker([SECRET])
    assert mask.body(b'{"apiKey": "k"}') == ({"apiKey": MASK}, True)
    cut = b'{"apiKey": "k", "note": "' + SECRET.encode() + b'", "more'  # a body cut short
    assert mask.body(cut) == (f'{{"apiKey": "{MASK}", "note": "{MASK}", "more', False)
    view, is_json = mask.body(DEEP)  # json.loads raises RecursionError: shown as text
    assert not is_json and len(view) == len(DEEP)
    nested: Any = {"password": "pw"}
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(RecursionError):  # callers fall back to the masked text (see output/view.py)
        mask.data(nested)
