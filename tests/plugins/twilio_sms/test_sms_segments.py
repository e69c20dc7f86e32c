"""GSM-7 / UCS-2 segment counting and smart encoding (gateway.sms), vectors from GSM 03.38."""

from __future__ import annotations

import pytest

from gateway.sms import (
    GSM7_BASIC_CHARACTERS,
    GSM7_EXTENSION_CHARACTERS,
    MAX_SMS_CHARACTERS,
    count_segments,
    is_gsm7,
    smart_encode,
)

EMOJI = "\U0001f600"  # 😀: one code point, a UTF-16 surrogate pair
FLAG_MX = "\U0001f1f2\U0001f1fd"  # 🇲🇽: two regional indicators, 4 UTF-16 units


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("", "GSM-7", 0, 1, 160),
        ("a" * 160, "GSM-7", 160, 1, 160),
        ("a" * 161, "GSM-7", 161, 2, 153),
        ("a" * 306, "GSM-7", 306, 2, 153),
        ("a" * 307, "GSM-7", 307, 3, 153),
        # extension characters cost two septets
        ("€" * 80, "GSM-7", 160, 1, 160),
        ("€" * 80 + "a", "GSM-7", 161, 2, 153),
        ("{}[]~|^\\\f€", "GSM-7", 20, 1, 160),
        # escape + character never split: 152 septets then "€" does not fit in part one
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2, 153),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3, 153),
        ("a" * 151 + "€" + "a" * 153, "GSM-7", 306, 2, 153),
        # GSM letters with accents stay GSM-7
        ("Ñandu é è ù ì ò Ç Ø å Ä ö ü ß à É", "GSM-7", 33, 1, 160),
        # Spanish á í ó ú ¿ are not all GSM: á forces UCS-2
        ("¿Vendrá mañana?", "UCS-2", 15, 1, 70),
        ("á" * 70, "UCS-2", 70, 1, 70),
        ("á" * 71, "UCS-2", 71, 2, 67),
        ("á" * 134, "UCS-2", 134, 2, 67),
        ("á" * 135, "UCS-2", 135, 3, 67),
        # emoji are two UTF-16 units and are never split across parts
        (EMOJI * 35, "UCS-2", 70, 1, 70),
        (EMOJI * 35 + "a", "UCS-2", 71, 2, 67),
        ("a" * 66 + EMOJI + "a" * 66, "UCS-2", 134, 3, 67),
        ("a" * 65 + EMOJI + "a" * 67, "UCS-2", 134, 2, 67),
        # a flag is two surrogate pairs: 4 units
        (FLAG_MX, "UCS-2", 4, 1, 70),
        ("a" * 66 + FLAG_MX, "UCS-2", 70, 1, 70),
        ("a" * 67 + FLAG_MX, "UCS-2", 71, 2, 67),
        # Chinese, Arabic, Vietnamese
        ("学校明天放假", "UCS-2", 6, 1, 70),
        ("مرحبا بالعائلة", "UCS-2", 14, 1, 70),
        ("Trường học", "UCS-2", 10, 1, 70),
    ],
)
def test_count_segments(text: str, encoding: str, units: int, segments: int,
                        per_segment: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.units, info.segments, info.per_segment) == (
        encoding, units, segments, per_segment,
    )
    assert info.characters == len(text)


def test_one_ucs2_character_switches_the_whole_message() -> None:
    assert count_segments("a" * 100).segments == 1
    mixed = count_segments("a" * 99 + "ó")
    assert (mixed.encoding, mixed.segments, mixed.units) == ("UCS-2", 2, 100)


def test_alphabet_tables() -> None:
    assert len(GSM7_BASIC_CHARACTERS) == 127  # 128 codes minus the escape
    assert len(GSM7_EXTENSION_CHARACTERS) == 10
    assert not GSM7_BASIC_CHARACTERS & GSM7_EXTENSION_CHARACTERS
    assert is_gsm7("@£$¥\n\r_ΔΦΓΛΩΠΨΣΘΞ¤¡¿§{}€")
    assert not is_gsm7("`")  # the backtick is not in GSM 03.38
    assert not is_gsm7("\t")


def test_remaining_units() -> None:
    assert count_segments("a" * 150).remaining == 10
    assert count_segments("a" * 161).remaining == 153 * 2 - 161


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“Hello” ‘world’", "\"Hello\" 'world'"),
        ("Don’t forget – 8:00—9:00…", "Don't forget - 8:00-9:00..."),
        ("a\u00a0b\u2009c\u202fd\u3000e", "a b c d e"),
        ("zero\u200bwidth\ufeff soft\u00adhyphen", "zerowidth softhyphen"),
        ("«Bonjour» • ok", "\"Bonjour\" - ok"),
        # letters are never changed, even when that keeps the text in UCS-2
        ("¿Vendrá mañana?", "¿Vendrá mañana?"),
    ],
)
def test_smart_encode(text: str, expected: str) -> None:
    assert smart_encode(text) == expected


def test_smart_encoding_turns_typographic_text_back_into_gsm7() -> None:
    text = "Reminder: “Picture Day” is Monday — don’t forget… " * 3
    assert count_segments(text).encoding == "UCS-2"
    encoded = count_segments(smart_encode(text))
    assert encoded.encoding == "GSM-7"
    assert encoded.segments < count_segments(text).segments


def test_max_characters() -> None:
    assert MAX_SMS_CHARACTERS == 1600
    assert count_segments("a" * 1600).segments == 11  # ceil(1600 / 153)


def _packed_item_by_item(text: str) -> tuple[str, int, int, int]:
    """The rules spelled out one character at a time (the reference for the fast paths)."""
    if all(ch in GSM7_BASIC_CHARACTERS or ch in GSM7_EXTENSION_CHARACTERS for ch in text):
        encoding, single, multi = "GSM-7", 160, 153
        costs = [2 if ch in GSM7_EXTENSION_CHARACTERS else 1 for ch in text]
    else:
        encoding, single, multi = "UCS-2", 70, 67
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    if sum(costs) <= single:
        return encoding, sum(costs), 1, single
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return encoding, sum(costs), segments, multi


def test_fast_counting_agrees_with_packing_item_by_item() -> None:
    """Random texts of every shape (plain, escapes, accents, Arabic, emoji, mixed, around
    the part boundaries) count the same as packing character by character."""
    import random

    rng = random.Random(20261130)
    alphabets = [
        "abc xyz.,",
        "abc€[]{}^~|\\",
        "héllo ñandú ç",
        "مرحبا بكم في المدرسة",
        "Xin chào các bạn",
        "ab" + EMOJI + FLAG_MX,
        "\U0001f600\U0001f44d\u2764",
        "a€" + EMOJI + "ü",
    ]
    for _ in range(3000):
        alphabet = rng.choice(alphabets)
        bounds = rng.choice([(0, 400), (60, 75), (150, 165), (300, 320)])
        length = rng.randint(*bounds)
        text = "".join(rng.choice(alphabet) for _ in range(length))
        info = count_segments(text)
        counted = (info.encoding, info.units, info.segments, info.per_segment)
        assert counted == _packed_item_by_item(text), text
        assert info.characters == len(text)
