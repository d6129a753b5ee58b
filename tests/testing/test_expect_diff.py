"""expect.diff: right hunk numbers, and bounded work and output on huge replies (a 30 MB reply once took minutes)."""

from __future__ import annotations

from vapi_dev.testing.expect import DIFF_MAX_LINES, diff


def test_hunk_headers_count_from_the_whole_text_after_the_shared_start_is_set_aside() -> None:
    old = [f"line {i}" for i in range(100)]
    new = list(old)
    new[50] = "changed"
    out = diff(old, new, "recorded", "reply")
    assert out[:3] == ("--- recorded", "+++ reply", "@@ -49,5 +49,5 @@")
    assert "-line 50" in out and "+changed" in out


def test_a_huge_reply_gets_a_diff_cut_at_the_bound_with_a_line_saying_so() -> None:
    old = [f'  "k{i}": {i},' for i in range(1_000_000)]
    new = [f'  "k{i}": {i + 1},' for i in range(1_000_000)]
    out = diff(old, new, "recorded", "reply")
    assert len(out) <= 2 * DIFF_MAX_LINES + 10
    assert out[-1].startswith("… the diff stops here")


def test_identical_texts_have_no_diff() -> None:
    lines = ["a", "b", "c"]
    assert diff(lines, list(lines), "x", "y") == ()
