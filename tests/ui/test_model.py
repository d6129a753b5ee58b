"""What the inspector holds (bounded, newest last) and its display filter, without a screen."""

from __future__ import annotations

from tests.support.exchanges import make_exchange
from tests.ui.conftest import fixed, sample_exchanges
from vapi_dev.redact import Masker
from vapi_dev.ui.filters import Filter, has_problem, parse, problem_mark
from vapi_dev.ui.model import Rows


def test_pending_then_finished_replaces_in_place() -> None:
    rows = Rows(Masker())
    ex = fixed(make_exchange("tool-calls", None, status=None, took_s=None), 1)
    assert rows.add([ex]) == (1, False)
    done = fixed(make_exchange("tool-calls", {"results": []}), 1)
    assert rows.add([done]) == (0, True)
    assert rows.all == [done] and rows.shown == [done] and rows.get(done.id) is done


def test_a_filter_sees_an_exchange_that_now_matches() -> None:
    rows = Rows(Masker())
    rows.set_filter(Filter(problems=True))
    ex = fixed(make_exchange("tool-calls", None, status=None, took_s=None), 1)
    rows.add([ex])
    assert rows.shown == []
    failed = fixed(make_exchange("tool-calls", None, status=None), 1, error="connection refused")
    assert rows.add([failed]) == (0, True)
    assert rows.shown == [failed]


def test_bounded_by_count_in_chunks() -> None:
    rows = Rows(Masker(), max_rows=100)
    for start in range(0, 1000, 10):
        rows.add([fixed(make_exchange("status-update", {}), n) for n in range(start, start + 10)])
        assert len(rows.all) <= 100
    assert rows.all[-1].id == "ex_test_000999" and rows.dropped == 1000 - len(rows.all)
    assert rows.shown == rows.all
    assert rows.get("ex_test_000000") is None


def test_bounded_by_bytes() -> None:
    rows = Rows(Masker(), max_rows=1000, max_bytes=50_000)
    big = b"x" * 10_000
    for n in range(20):
        rows.add([fixed(make_exchange(None, None, body=big, raw=big), n)])
    assert 1 <= len(rows.all) <= 5
    assert rows.all[-1].id == "ex_test_000019"


def test_older_rows_fill_only_the_room_left() -> None:
    rows = Rows(Masker(), max_rows=5)
    rows.add([fixed(make_exchange("status-update", {}), n) for n in (8, 9)])
    shown = rows.add_older([fixed(make_exchange("status-update", {}), n) for n in range(1, 8)])
    assert shown == 3 and [ex.id[-1] for ex in rows.all] == ["5", "6", "7", "8", "9"]


def test_filter_words_and_tokens() -> None:
    flt = parse("Sunny type:tool-calls call:call_a is:problem is:reply")
    assert flt == Filter("sunny", "tool-calls", "call_a", True, True)
    assert parse(flt.describe()) == flt
    assert parse("") == Filter() and not Filter().active
    assert Filter(type="transcript").matches(make_exchange("transcript", {}), Masker())  # its variants too
    assert Filter(type="http").matches(make_exchange(None, None, method="GET"), Masker())
    assert Filter(type="x").toggled("type", "x") == Filter()


def test_free_text_looks_in_the_summary() -> None:
    ex = make_exchange("tool-calls", {"results": []})
    assert Filter(text="get_weather").matches(ex, Masker())
    assert not Filter(text="nowhere-to-be-found").matches(ex, Masker())


def test_problem_marks() -> None:
    exs = {ex.id[-1]: ex for ex in sample_exchanges()}
    assert [problem_mark(exs[n])[0] for n in "123456"] == [" ", " ", "✗", " ", " ", "✗"]
    assert [has_problem(exs[n]) for n in "36"] == [True, True]
