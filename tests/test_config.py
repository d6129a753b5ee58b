"""Forward targets (#12): what each typed form means, what is refused as ambiguous, and how an incoming
path maps onto the target's path (the trailing slash kept)."""

from __future__ import annotations

import pytest

from vapi_dev.config import DEFAULT_TARGET, Target, TargetError, parse_target
from vapi_dev.errors import ExitStatus


@pytest.mark.parametrize(
    ("typed", "scheme", "host", "port", "path", "query"),
    [
        ("3000", "http", "localhost", 3000, "", ""),
        ("3000/webhook", "http", "localhost", 3000, "/webhook", ""),
        (":3000/webhook", "http", "localhost", 3000, "/webhook", ""),
        (":3000", "http", "localhost", 3000, "", ""),
        ("3000?x=1", "http", "localhost", 3000, "", "x=1"),
        ("3000/webhook/", "http", "localhost", 3000, "/webhook/", ""),
        ("localhost:3000/webhook", "http", "localhost", 3000, "/webhook", ""),
        ("localhost", "http", "localhost", 80, "", ""),
        ("127.0.0.1:8080/a/b?c=d", "http", "127.0.0.1", 8080, "/a/b", "c=d"),
        ("3com.local:81", "http", "3com.local", 81, "", ""),  # a name may start with a digit
        ("my_app:3000", "http", "my_app", 3000, "", ""),  # docker-compose service names
        ("[::1]:3000/x", "http", "::1", 3000, "/x", ""),
        ("[::1]", "http", "::1", 80, "", ""),
        ("http://localhost:5000/api/webhook/", "http", "localhost", 5000, "/api/webhook/", ""),
        ("HTTPS://Example.com/v?a=1&b", "https", "Example.com", 443, "/v", "a=1&b"),
        ("http://[::1]:3000/", "http", "::1", 3000, "/", ""),
        ("https://x.test:8443", "https", "x.test", 8443, "", ""),
        ("  3000/webhook  ", "http", "localhost", 3000, "/webhook", ""),
        ("03000", "http", "localhost", 3000, "", ""),  # leading zeros: still only one reading
    ],
)
def test_typed_forms(typed: str, scheme: str, host: str, port: int, path: str, query: str) -> None:
    assert parse_target(typed) == Target(scheme, host, port, path, query)


def test_default_target_and_urls_as_typed() -> None:
    assert parse_target(DEFAULT_TARGET).url == "http://localhost:3000"
    assert parse_target("3000/webhook").url == "http://localhost:3000/webhook"
    assert parse_target("3000").url == "http://localhost:3000"  # as before #12
    assert parse_target("http://localhost:5000/api/webhook/").url == "http://localhost:5000/api/webhook/"
    assert parse_target("[::1]:3000/x?y").url == "http://[::1]:3000/x?y"


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("3000.5", "'3000.5' is ambiguous: it is neither a port (3000) nor a whole IPv4 address (127.0.0.1)"),
        ("1.2.3", "neither a port"),
        ("127.1", "neither a port"),  # inet_aton would read 127.0.0.1: a guess
        ("01.2.3.4", "neither a port"),  # octal or decimal?
        ("256.1.1.1", "neither a port"),
        ("1.2.3.4.5", "neither a port"),
        ("http://3000/webhook", "to forward to port 3000, write http://localhost:3000"),
        ("localhost:abc", "invalid port 'abc'"),
        ("localhost:+80", "invalid port '+80'"),
        ("localhost:٣٠٠٠", "non-ASCII"),
        ("localhost:", "':' but no port"),
        (":", "':' but no port"),
        ("http://localhost:/x", "':' but no port"),
        ("0", "invalid port '0'"),
        ("70000", "invalid port '70000'"),
        ("65536/x", "invalid port '65536'"),
        ("1234567", "invalid port"),
        ("9" * 5000, "invalid port"),  # no int() of a huge string
        ("http//x", "broken scheme; write http://HOST:PORT/PATH"),
        ("http:/x", "broken scheme"),
        ("https:x", "broken scheme; write https://"),
        ("ftp://x", "only http:// and https://"),
        ("://x", "is not a URL"),
        ("http://:3000", "no host"),
        ("/webhook", "no host"),
        ("::1", "brackets"),
        ("localhost:3000:4000", "more than one ':'"),
        ("[::1", "invalid IPv6 address"),
        ("[nope]:3000", "invalid IPv6 address"),
        ("[::1]3000", "not :PORT"),
        ("a..b", "invalid host"),
        ("bad!host:3000", "invalid host"),
        ("localhost:3000/my hook", "percent-encode"),
        ("localhost:3000/café", "non-ASCII"),
        ("localhost:3000/\x1b[31m", "control"),
        ("localhost:3000/x#top", "#fragment"),
    ],
)
def test_ambiguous_or_broken_targets_are_refused(typed: str, says: str) -> None:
    with pytest.raises(TargetError) as e:
        parse_target(typed)
    assert says in e.value.message
    assert "\n" not in e.value.message and len(e.value.message) < 250
    assert e.value.exit_status == ExitStatus.USAGE


def test_credentials_are_refused_without_quoting_them() -> None:
    with pytest.raises(TargetError) as e:
        parse_target("http://me:hunter2@localhost:3000")
    assert "user:password@" in e.value.message and "hunter2" not in e.value.message


@pytest.mark.parametrize(
    ("target", "incoming", "query", "expected"),
    [
        # the README's rule: the incoming path is appended to the target's; "/" is the target itself
        ("localhost:3000/webhook", "/tools", "x=1", "http://localhost:3000/webhook/tools?x=1"),
        ("localhost:3000/webhook", "/", "", "http://localhost:3000/webhook"),
        ("localhost:3000/webhook", "", "", "http://localhost:3000/webhook"),
        # a trailing slash is kept, and shared with the incoming path's leading one
        ("localhost:5000/api/webhook/", "/", "", "http://localhost:5000/api/webhook/"),
        ("localhost:5000/api/webhook/", "", "", "http://localhost:5000/api/webhook/"),
        ("localhost:5000/api/webhook/", "/tools", "", "http://localhost:5000/api/webhook/tools"),
        ("localhost:5000/api/webhook/", "/tools/", "", "http://localhost:5000/api/webhook/tools/"),
        ("localhost:5000/api/webhook/", "tools", "", "http://localhost:5000/api/webhook/tools"),
        ("localhost:5000/api/webhook/", "/?a=b", "", "http://localhost:5000/api/webhook/%3Fa=b"),
        # no path: the incoming one as it came
        ("localhost:3000", "/", "", "http://localhost:3000/"),
        ("localhost:3000", "/a/b/", "c=d", "http://localhost:3000/a/b/?c=d"),
        ("http://localhost:3000/", "/", "", "http://localhost:3000/"),
        ("http://localhost:3000/", "/tools", "", "http://localhost:3000/tools"),
        # queries joined, the target's first
        ("localhost:3000/hook?key=1", "/", "x=2", "http://localhost:3000/hook?key=1&x=2"),
        ("localhost:3000/hook/?key=1", "/t", "", "http://localhost:3000/hook/t?key=1"),
    ],
)
def test_url_for_maps_incoming_paths(target: str, incoming: str, query: str, expected: str) -> None:
    if "?" in incoming:  # the receiver hands paths and queries over apart: a "?" in a path is not a query
        incoming = incoming.replace("?", "%3F")
    assert parse_target(target).url_for(incoming, query) == expected
