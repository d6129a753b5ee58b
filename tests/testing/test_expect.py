"""The expectation language and the snapshot comparison (vapi_dev/testing/expect.py), directly."""

from __future__ import annotations

import json

import pytest

from vapi_dev.redact import MASK, Masker
from vapi_dev.testing.expect import (
    DEFAULT_IGNORE,
    IGNORED,
    ExpectError,
    blank,
    check_expect,
    compare_snapshot,
    parse_expect,
    parse_path,
    value_at,
)

JSON = [("Content-Type", "application/json")]


def check(expect: dict[str, object], reply: object, ms: float = 1.0) -> list[str]:
    exp = parse_expect(expect, "test")
    assert exp is not None
    body = json.dumps(reply).encode()
    return [f"{f.what}: {f.message}" for f in check_expect(exp, 200, JSON, body, ms, Masker())]


def test_paths() -> None:
    assert parse_path("$.results[0].result") == parse_path("results.0.result") == ["results", "0", "result"]
    data = {"a": [{"b": 1}]}
    assert value_at(data, ["a", "0", "b"]) == 1
    assert value_at(data, ["a", "1", "b"]) is not None and value_at(data, ["a", "1"]) is value_at(data, ["x"])


def test_a_subset_matches_nested_objects_and_whole_arrays() -> None:
    reply = {"results": [{"toolCallId": "c1", "result": "Sunny"}], "extra": True}
    assert check({"json": {"results": [{"result": "Sunny"}]}}, reply) == []
    assert check({"json": {"results": []}}, reply) != []  # arrays have the same length
    assert check({"json": {"extra": 1}}, reply) != []  # true is not 1
    assert check({"json": {"missing": None}}, reply) != []


def test_values_at_paths_equal_or_match_a_regex() -> None:
    reply = {"results": [{"result": "Sunny, 21 C", "n": 2}]}
    assert check({"paths": {"results.0.result": {"regex": r"\d+ C$"}, "results.0.n": 2.0}}, reply) == []
    assert check({"paths": {"results.0.n": {"regex": "2"}}}, reply) == [
        "path results.0.n: expected matching /2/, got 2"
    ]
    assert check({"paths": {"nope": 1}}, reply) == ["path nope: expected 1, got (missing)"]
    assert check({"paths": {"x": {"regex": "a", "other": 1}}}, {"x": {"regex": "a", "other": 1}}) == []  # a value


def test_the_values_quoted_are_masked() -> None:
    out = check({"paths": {"apiKey": "x"}}, {"apiKey": "sk_live_123456789"})
    assert out == [f'path apiKey: expected "x", got "{MASK}"']


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ([], "is not an object"),
        ({"stauts": 200}, "unknown keys stauts"),
        ({"status": "200"}, "not an HTTP status"),
        ({"max_ms": -1}, "not a positive number"),
        ({"paths": []}, "paths is not an object"),
        ({"paths": {"a": {"regex": "["}}}, "is not a regex"),
    ],
)
def test_a_bad_expect_says_where_and_why(raw: object, said: str) -> None:
    with pytest.raises(ExpectError, match="exchange 3") as info:
        parse_expect(raw, "f.json: exchange 3's expect")
    assert said in info.value.message


def test_ignore_patterns_take_one_key_parts_of_keys_and_any_depth() -> None:
    data = {"id": 1, "call": {"id": 2, "createdAt": "t", "name": "n"}, "list": [{"id": 3}]}
    out = blank(data, [parse_path(p) for p in DEFAULT_IGNORE])
    assert out == {
        "id": IGNORED,
        "call": {"id": IGNORED, "createdAt": IGNORED, "name": "n"},
        "list": [{"id": IGNORED}],
    }
    assert blank(data, [parse_path("call.*")])["call"] == dict.fromkeys(data["call"], IGNORED)  # type: ignore[arg-type]
    assert blank(data, [parse_path("list[*].id")])["list"] == [{"id": IGNORED}]


def test_a_snapshot_compares_status_json_and_text() -> None:
    m = Masker()
    assert compare_snapshot(200, b'{"a": 1, "id": 5}', 200, b'{"id":6,"a":1}', DEFAULT_IGNORE, m) == []
    (status,) = compare_snapshot(200, b"{}", 500, b"{}", (), m)
    assert status.message == "status 500, recorded 200"
    (text,) = compare_snapshot(200, b"ok\n", 200, b"not ok\n", (), m)
    assert text.diff[-2:] == ("-ok", "+not ok")
    assert compare_snapshot(200, b'{"token": "a"}', 200, b'{"token": "b"}', (), m) == []  # both masked alike
