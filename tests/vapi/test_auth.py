"""Auth verification (X-Vapi-Secret, bearer, HMAC) against independently computed Vapi-style headers."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import time

import pytest

from vapi_dev.exchange import AuthResult, Headers
from vapi_dev.vapi.auth import AuthConfig, AuthConfigError, sign, verify

URL = "https://abc123.ngrok.app/tools?x=1"
BODY = json.dumps({"message": {"type": "tool-calls", "note": "{timestamp} {body}"}}).encode()
SECRET = "s3cr3t-Value-9f8e7d"
TOKEN = "tok_live_0123456789abcdef"
HMAC_KEY = "hmac-key-ABCDEFG-123"


def vapi_hmac(key: bytes, algorithm: str, message: bytes, *, encoding: str = "hex", prefix: str = "") -> str:
    """What Vapi sends, computed with hmac/hashlib directly (not via vapi_dev)."""
    digest = hmac.new(key, message, getattr(hashlib, algorithm)).digest()
    return prefix + (digest.hex() if encoding == "hex" else base64.b64encode(digest).decode())


def check(cfg: AuthConfig, headers: Headers, *, body: bytes = BODY, url: str = URL) -> AuthResult:
    """verify() for the signature tests, whose timestamps are fixed (2025): the replay window is off here
    and tested on its own below."""
    result = verify(dataclasses.replace(cfg, hmac_max_skew=0), method="POST", url=url, headers=headers, body=body)
    assert result is not None
    return result


def test_no_auth_configured_gives_none() -> None:
    assert verify(AuthConfig(), method="POST", url=URL, headers=[], body=b"") is None
    assert not AuthConfig(secret="").enabled


# -- X-Vapi-Secret ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["X-Vapi-Secret", "x-vapi-secret", "X-VAPI-SECRET"])
def test_secret_pass(name: str) -> None:
    r = check(AuthConfig(secret=SECRET), [("Content-Type", "application/json"), (name, SECRET)])
    assert r == AuthResult("secret", True, "")


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ([("X-Vapi-Secret", SECRET + "x")], "does not match"),
        ([("X-Vapi-Secret", SECRET[:-1])], "does not match"),
        ([("X-Vapi-Secret", "")], "does not match"),
        ([("Authorization", f"Bearer {SECRET}")], "no X-Vapi-Secret header"),
        ([], "no X-Vapi-Secret header"),
    ],
)
def test_secret_fail(headers: Headers, fragment: str) -> None:
    r = check(AuthConfig(secret=SECRET), headers)
    assert (r.method, r.ok) == ("secret", False)
    assert fragment in r.reason


# -- bearer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "headers"),
    [
        (AuthConfig(bearer=TOKEN), [("Authorization", f"Bearer {TOKEN}")]),
        (AuthConfig(bearer=TOKEN), [("authorization", f"bearer {TOKEN}")]),
        (AuthConfig(bearer=TOKEN, auth_header="X-Api-Token"), [("x-api-token", f"Bearer {TOKEN}")]),
        # The documented migration path for the legacy secret: header X-Vapi-Secret, prefix off.
        (AuthConfig(bearer=TOKEN, auth_header="X-Vapi-Secret", bearer_prefix=False), [("X-Vapi-Secret", TOKEN)]),
        (AuthConfig(bearer=TOKEN, bearer_prefix=False), [("Authorization", TOKEN)]),
    ],
)
def test_bearer_pass(cfg: AuthConfig, headers: Headers) -> None:
    assert check(cfg, headers) == AuthResult("bearer", True, "")


@pytest.mark.parametrize(
    ("cfg", "headers", "fragment"),
    [
        (AuthConfig(bearer=TOKEN), [("Authorization", f"Bearer {TOKEN}0")], "does not match"),
        (AuthConfig(bearer=TOKEN), [("Authorization", TOKEN)], "no 'Bearer ' prefix"),
        (AuthConfig(bearer=TOKEN), [("Authorization", f"Basic {TOKEN}")], "no 'Bearer ' prefix"),
        (AuthConfig(bearer=TOKEN), [], "no Authorization header"),
        (AuthConfig(bearer=TOKEN), [("X-Vapi-Secret", TOKEN)], "no Authorization header"),
        (
            AuthConfig(bearer=TOKEN, auth_header="X-Api-Token"),
            [("Authorization", f"Bearer {TOKEN}")],
            "no X-Api-Token header",
        ),
        (
            AuthConfig(bearer=TOKEN, bearer_prefix=False),
            [("Authorization", f"Bearer {TOKEN}")],
            "prefix is configured off",
        ),
        (AuthConfig(bearer=TOKEN, bearer_prefix=False), [("Authorization", "nope")], "does not match"),
    ],
)
def test_bearer_fail(cfg: AuthConfig, headers: Headers, fragment: str) -> None:
    r = check(cfg, headers)
    assert (r.method, r.ok) == ("bearer", False)
    assert fragment in r.reason
    assert TOKEN not in r.reason


# -- HMAC -------------------------------------------------------------------------------------


def _fill(fmt: str, *, ts: str, method: str = "POST", url: str = URL, body: bytes = BODY) -> bytes:
    # Independent of vapi_dev: plain sequential replacement on the format before the body goes in.
    head = fmt.replace("{timestamp}", ts).replace("{method}", method).replace("{url}", url)
    pieces = head.split("{body}")
    return body.join(p.encode() for p in pieces)


HMAC_CASES = list(
    itertools.product(
        ["sha256", "sha512", "sha1"],
        ["hex", "base64"],
        ["", "sha256="],
        [False, True],  # secret is base64
        ["1735732800", "1735732800123"],  # seconds and milliseconds, accepted as sent
    )
)


@pytest.mark.parametrize(("alg", "enc", "prefix", "b64", "ts"), HMAC_CASES)
def test_hmac_options_pass_and_fail(alg: str, enc: str, prefix: str, b64: bool, ts: str) -> None:
    raw_key = HMAC_KEY.encode()
    secret = base64.b64encode(raw_key).decode() if b64 else HMAC_KEY
    cfg = AuthConfig(
        hmac_secret=secret, hmac_algorithm=alg, hmac_encoding=enc, hmac_prefix=prefix, hmac_secret_is_base64=b64
    )
    sig = vapi_hmac(raw_key, alg, f"{ts}.".encode() + BODY, encoding=enc, prefix=prefix)
    good = [("x-signature", sig), ("x-timestamp", ts)]
    assert check(cfg, good) == AuthResult("hmac", True, "")

    failures = [
        check(cfg, good, body=BODY + b" "),  # body changed in transit
        check(cfg, [("x-signature", sig), ("x-timestamp", str(int(ts) + 1))]),  # other timestamp
        check(
            cfg,
            [
                ("x-signature", vapi_hmac(b"other", alg, f"{ts}.".encode() + BODY, encoding=enc, prefix=prefix)),
                ("x-timestamp", ts),
            ],
        ),  # other key
    ]
    if prefix:
        failures.append(check(cfg, [("x-signature", sig[len(prefix) :]), ("x-timestamp", ts)]))
    if b64:  # Vapi would have used the decoded key; signing with the text form must fail
        text_sig = vapi_hmac(secret.encode(), alg, f"{ts}.".encode() + BODY, encoding=enc, prefix=prefix)
        failures.append(check(cfg, [("x-signature", text_sig), ("x-timestamp", ts)]))
    for r in failures:
        assert (r.method, r.ok) == ("hmac", False)
        assert r.reason and secret not in r.reason and HMAC_KEY not in r.reason
        assert sig not in r.reason and (not sig[len(prefix) :] or sig[len(prefix) :] not in r.reason)


@pytest.mark.parametrize(
    "fmt",
    [
        "{timestamp}.{body}",
        "{body}",
        "{method}\n{url}\n{timestamp}\n{body}",
        "{timestamp}:{method}:{url}:{body}",
        "v1:{timestamp}:{body}",
    ],
)
def test_hmac_payload_formats(fmt: str) -> None:
    cfg = AuthConfig(hmac_secret=HMAC_KEY, hmac_payload_format=fmt)
    ts = "1735732800"
    sig = vapi_hmac(HMAC_KEY.encode(), "sha256", _fill(fmt, ts=ts))
    headers = [("X-Signature", sig), ("X-Timestamp", ts)]
    assert check(cfg, headers).ok
    if "{url}" in fmt:
        r = check(cfg, headers, url="http://127.0.0.1:8000/tools?x=1")  # the local URL is not what Vapi signed
        assert not r.ok and "public URL" in r.reason
    if "{method}" in fmt:
        r2 = verify(cfg, method="PUT", url=URL, headers=headers, body=BODY)
        assert r2 is not None and not r2.ok


def test_hmac_body_containing_placeholders_is_signed_raw() -> None:
    body = b'{"text": "{timestamp} and {url} and {body}"}'
    fmt = "{timestamp}.{url}.{body}"
    sig = vapi_hmac(HMAC_KEY.encode(), "sha256", b"17." + URL.encode() + b"." + body)
    cfg = AuthConfig(hmac_secret=HMAC_KEY, hmac_payload_format=fmt)
    assert check(cfg, [("x-signature", sig), ("x-timestamp", "17")], body=body).ok


def test_hmac_custom_header_names_and_uppercase_hex() -> None:
    cfg = AuthConfig(
        hmac_secret=HMAC_KEY,
        hmac_signature_header="X-Vapi-Signature",
        hmac_timestamp_header="X-Vapi-Timestamp",
        hmac_algorithm="sha512",
    )
    sig = vapi_hmac(HMAC_KEY.encode(), "sha512", b"99." + BODY)
    assert check(cfg, [("x-vapi-signature", sig.upper()), ("x-vapi-timestamp", "99")]).ok
    r = check(cfg, [("x-signature", sig), ("x-timestamp", "99")])
    assert not r.ok and "no X-Vapi-Signature header" in r.reason


def test_hmac_missing_headers() -> None:
    cfg = AuthConfig(hmac_secret=HMAC_KEY)
    sig = vapi_hmac(HMAC_KEY.encode(), "sha256", b"1." + BODY)
    r = check(cfg, [("x-timestamp", "1")])
    assert not r.ok and "no x-signature header" in r.reason
    r = check(cfg, [("x-signature", sig)])
    assert not r.ok and "no x-timestamp header" in r.reason
    # Without {timestamp} in the format, no timestamp header is needed.
    body_only = AuthConfig(hmac_secret=HMAC_KEY, hmac_payload_format="{body}")
    assert check(body_only, [("x-signature", vapi_hmac(HMAC_KEY.encode(), "sha256", BODY))]).ok


def test_hmac_prefix_missing_is_explained() -> None:
    cfg = AuthConfig(hmac_secret=HMAC_KEY, hmac_prefix="sha256=")
    sig = vapi_hmac(HMAC_KEY.encode(), "sha256", b"1." + BODY)
    r = check(cfg, [("x-signature", sig), ("x-timestamp", "1")])
    assert not r.ok and "prefix 'sha256='" in r.reason and sig not in r.reason


def test_invalid_settings() -> None:
    with pytest.raises(AuthConfigError, match="md5"):
        AuthConfig(hmac_secret=HMAC_KEY, hmac_algorithm="md5").validate()
    with pytest.raises(AuthConfigError, match="encoding"):
        AuthConfig(hmac_secret=HMAC_KEY, hmac_encoding="base32").validate()
    with pytest.raises(AuthConfigError, match="base64") as info:
        AuthConfig(hmac_secret="not base64!!", hmac_secret_is_base64=True).validate()
    assert "not base64!!" not in info.value.message
    AuthConfig(secret=SECRET, bearer=TOKEN, hmac_secret=HMAC_KEY).validate()
    # verify() does not raise on bad settings; it reports a failure.
    r = check(
        AuthConfig(hmac_secret="not base64!!", hmac_secret_is_base64=True),
        [("x-signature", "ab"), ("x-timestamp", "1")],
    )
    assert not r.ok and "base64" in r.reason and "not base64!!" not in r.reason


# -- several methods --------------------------------------------------------------------------


def test_all_configured_methods_must_pass() -> None:
    cfg = AuthConfig(secret=SECRET, hmac_secret=HMAC_KEY)
    sig = vapi_hmac(HMAC_KEY.encode(), "sha256", b"5." + BODY)
    good = [("X-Vapi-Secret", SECRET), ("x-signature", sig), ("x-timestamp", "5")]
    assert check(cfg, good) == AuthResult("secret+hmac", True, "")
    r = check(cfg, [("X-Vapi-Secret", "wrong"), ("x-signature", sig), ("x-timestamp", "5")])
    assert r.method == "secret+hmac" and not r.ok and "X-Vapi-Secret" in r.reason
    r = check(cfg, [("X-Vapi-Secret", SECRET), ("x-signature", sig), ("x-timestamp", "6")])
    assert not r.ok and "x-signature" in r.reason and "X-Vapi-Secret" not in r.reason
    three = AuthConfig(secret=SECRET, bearer=TOKEN, hmac_secret=HMAC_KEY)
    r = check(three, [])
    assert r.method == "secret+bearer+hmac" and not r.ok and r.reason.count(";") == 2


def test_reasons_never_contain_secrets_or_received_values() -> None:
    received = "RECEIVED-VALUE-xyz"
    cfgs = [
        AuthConfig(secret=SECRET),
        AuthConfig(bearer=TOKEN),
        AuthConfig(bearer=TOKEN, bearer_prefix=False),
        AuthConfig(hmac_secret=HMAC_KEY, hmac_prefix="v1="),
        AuthConfig(hmac_secret=HMAC_KEY),
    ]
    header_sets: list[Headers] = [
        [
            ("X-Vapi-Secret", received),
            ("Authorization", received),
            ("x-signature", received),
            ("x-timestamp", received),
        ],
        [
            ("X-Vapi-Secret", received),
            ("Authorization", f"Bearer {received}"),
            ("x-signature", f"v1={received}"),
            ("x-timestamp", "1"),
        ],
    ]
    for cfg, headers in itertools.product(cfgs, header_sets):
        r = check(cfg, headers)
        assert not r.ok
        for value in (SECRET, TOKEN, HMAC_KEY, received):
            assert value not in r.reason


# -- sign -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "enc", "prefix", "b64", "ts"), HMAC_CASES[::3])
def test_sign_matches_vapi_and_verifies(alg: str, enc: str, prefix: str, b64: bool, ts: str) -> None:
    secret = base64.b64encode(HMAC_KEY.encode()).decode() if b64 else HMAC_KEY
    cfg = AuthConfig(
        secret=SECRET,
        bearer=TOKEN,
        hmac_secret=secret,
        hmac_algorithm=alg,
        hmac_encoding=enc,
        hmac_prefix=prefix,
        hmac_secret_is_base64=b64,
        hmac_payload_format="{method} {url} {timestamp} {body}",
    )
    headers = sign(cfg, method="POST", url=URL, body=BODY, timestamp=int(ts))
    as_dict = {k.lower(): v for k, v in headers}
    assert as_dict["x-vapi-secret"] == SECRET
    assert as_dict["authorization"] == f"Bearer {TOKEN}"
    assert as_dict["x-timestamp"] == ts
    expected = vapi_hmac(HMAC_KEY.encode(), alg, f"POST {URL} {ts} ".encode() + BODY, encoding=enc, prefix=prefix)
    assert as_dict["x-signature"] == expected
    assert check(cfg, headers) == AuthResult("secret+bearer+hmac", True, "")


def test_sign_defaults_and_custom_names() -> None:
    cfg = AuthConfig(
        bearer=TOKEN,
        auth_header="X-Token",
        bearer_prefix=False,
        hmac_secret=HMAC_KEY,
        hmac_signature_header="Sig",
        hmac_timestamp_header="Ts",
    )
    headers = sign(cfg, method="POST", url=URL, body=BODY)
    names = [k for k, _ in headers]
    assert names == ["X-Token", "Sig", "Ts"]
    assert dict(headers)["X-Token"] == TOKEN
    assert dict(headers)["Ts"].isdigit()
    assert check(cfg, headers).ok
    assert sign(AuthConfig(), method="POST", url=URL, body=BODY) == []


def test_secret_values_and_header_names() -> None:
    cfg = AuthConfig(
        secret=SECRET, bearer=TOKEN, auth_header="X-Token", hmac_secret=HMAC_KEY, hmac_signature_header="Sig"
    )
    assert cfg.secret_values() == [SECRET, TOKEN, HMAC_KEY]
    assert cfg.enabled and cfg.methods == ["secret", "bearer", "hmac"]
    assert cfg.secret_header_names() == ["X-Vapi-Secret", "X-Token", "Sig"]
    assert AuthConfig().secret_values() == []


def _signed(ts: str) -> Headers:
    return [("x-signature", vapi_hmac(HMAC_KEY.encode(), "sha256", f"{ts}.".encode() + BODY)), ("x-timestamp", ts)]


def test_hmac_replay_window() -> None:
    cfg = AuthConfig(hmac_secret=HMAC_KEY)  # default window: 300 s
    now = int(time.time())

    def result(ts: str, c: AuthConfig = cfg) -> AuthResult:
        r = verify(c, method="POST", url=URL, headers=_signed(ts), body=BODY)
        assert r is not None
        return r

    assert result(str(now)).ok and result(str(now - 200)).ok
    assert result(str(now * 1000)).ok  # milliseconds, the unit Vapi's other timestamps use
    stale = result(str(now - 3600))
    # whole seconds, and the clock moves on between the test and verify(): 3600 or 3601
    assert not stale.ok and re.search(r"x-timestamp is 360[01] s old, more than 300 s", stale.reason)
    assert "--hmac-max-skew" in stale.reason
    future = result(str((now + 900) * 1000))
    assert not future.ok and "in the future" in future.reason
    for bad in ("soon", "nan", "inf", ""):
        r = result(bad)
        assert not r.ok and "x-timestamp is not a number" in r.reason, bad
    missing = verify(cfg, method="POST", url=URL, headers=_signed(str(now))[:1], body=BODY)
    assert missing is not None and not missing.ok and "no x-timestamp header" in missing.reason
    assert result(str(now - 3600), dataclasses.replace(cfg, hmac_max_skew=0)).ok  # 0 turns it off
    assert result(str(now - 3600), dataclasses.replace(cfg, hmac_max_skew=7200)).ok


def test_duplicate_secret_header_is_an_auth_failure() -> None:
    r = check(AuthConfig(secret=SECRET), [("X-Vapi-Secret", SECRET), ("x-vapi-secret", "something-else")])
    assert not r.ok and "more than one X-Vapi-Secret header" in r.reason
    r = check(AuthConfig(secret=SECRET), [("X-Vapi-Secret", SECRET), ("X-Vapi-Secret", SECRET)])
    assert not r.ok
