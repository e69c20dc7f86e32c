"""Unit tests of splitting Telegram HTML at 4,096 characters."""

from __future__ import annotations

import pytest
from gateway_plugins.telegram.html_split import split_telegram_html, utf16_length

from gateway.testing.telegram_server import parse_telegram_html


def words(text: str) -> list[str]:
    return text.split()


def test_short_message_is_untouched():
    body = "<b>Hello</b> &amp; welcome\n\nSee you"
    assert split_telegram_html(body) == [body]


def test_empty_message_has_no_parts():
    assert split_telegram_html("  \n ") == []


def test_cuts_at_line_breaks_when_there_are_some():
    lines = [f"line {n:03d} " + "x" * 40 for n in range(300)]
    parts = split_telegram_html("\n".join(lines), limit=1000)
    assert len(parts) > 1
    for part in parts:
        assert utf16_length(part) <= 1000
        assert all(line in lines for line in part.split("\n"))  # whole lines only
    assert "\n".join(parts) == "\n".join(lines)


def test_cuts_at_spaces_inside_a_long_line():
    body = " ".join(f"word{n}" for n in range(1000))
    parts = split_telegram_html(body, limit=500)
    assert all(utf16_length(p) <= 500 for p in parts)
    assert words(" ".join(parts)) == words(body)  # no word cut in two


def test_never_cuts_inside_a_tag_or_a_character_reference_and_reopens_tags():
    body = (
        "<b>bold start "
        + " ".join(f'<a href="https://example.org/{n}">l{n}</a> &amp; &lt;{n}&gt;' for n in range(400))
        + " bold end</b>"
    )
    parts = split_telegram_html(body, limit=700)
    assert len(parts) > 5
    plain = []
    for part in parts:
        assert utf16_length(part) <= 700
        text, entities = parse_telegram_html(part)  # raises on a broken tag or reference
        assert any(e["type"] == "bold" for e in entities)  # the <b> runs through every part
        plain.append(text)
    assert words(" ".join(plain)) == words(parse_telegram_html(body)[0])


def test_a_word_longer_than_the_limit_is_cut_between_graphemes():
    family = "👨\u200d👩\u200d👧"  # one grapheme of 5 code points, 8 UTF-16 units
    accented = "e\u0301"  # e + combining acute
    body = (family + accented) * 300
    parts = split_telegram_html(body, limit=100)
    assert all(utf16_length(p) <= 100 for p in parts)
    assert "".join(parts) == body
    for part in parts:
        assert not part.startswith(("\u200d", "\u0301"))
        assert not part.endswith("\u200d")


def test_counts_in_utf16_units():
    body = "😀" * 3000  # 6,000 UTF-16 units, 3,000 code points
    parts = split_telegram_html(body)
    assert len(parts) == 2
    assert all(utf16_length(p) <= 4096 for p in parts)


@pytest.mark.parametrize("limit", [64, 257, 4096])
def test_nested_formatting_survives_any_limit(limit):
    body = "<i>intro <b>" + "ámbito " * 2000 + "</b> outro</i>"
    parts = split_telegram_html(body, limit=limit)
    for part in parts:
        assert utf16_length(part) <= limit
        parse_telegram_html(part)
    joined = " ".join(parse_telegram_html(p)[0] for p in parts)
    assert words(joined) == words(parse_telegram_html(body)[0])
