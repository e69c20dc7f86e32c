"""The one word staff read for what a family got, and where the "here it is in English" note
came from: a note nothing translated is never called "in their language"."""

from __future__ import annotations

from gateway.rendering.composer import (
    RECEIVED_LABELS,
    RECEIVED_SEVERITY,
    fallback_note_origin,
    what_families_got,
)
from gateway.rendering.messages import MT_NOTE, PARTIAL_FALLBACK_NOTE, SOURCE_FALLBACK_NOTE
from gateway.translation.strings import Origin

TITLE = "Reading at Home"


def test_english_text_with_a_translated_note_is_english() -> None:
    # The template is translated, the event's title is not: the note says part is English.
    pieces = {
        ("template", "Will you come?", Origin.REVIEWED),
        ("template", PARTIAL_FALLBACK_NOTE, Origin.REVIEWED),
        ("text", TITLE, Origin.FALLBACK),
    }
    note = fallback_note_origin(pieces)
    assert note is Origin.REVIEWED
    assert what_families_got((o for _, _, o in pieces), note) == "english"
    # A note nothing translated is English, whichever of the two it is.
    untranslated = {("template", PARTIAL_FALLBACK_NOTE, Origin.FALLBACK), ("text", TITLE, Origin.FALLBACK)}
    assert what_families_got((o for _, _, o in untranslated), fallback_note_origin(untranslated)) == (
        "english_only"
    )


def test_english_text_with_an_english_note_is_english_only() -> None:
    pieces = {
        ("template", "Will you come?", Origin.FALLBACK),
        ("template", SOURCE_FALLBACK_NOTE, Origin.FALLBACK),
        ("text", TITLE, Origin.FALLBACK),
    }
    assert what_families_got((o for _, _, o in pieces), fallback_note_origin(pieces)) == "english_only"
    assert RECEIVED_LABELS["english_only"] == "English, with a note in English"


def test_pooled_messages_report_the_least_translated_note() -> None:
    # Two messages of one language: the note machine-translated in one, English in the other.
    pieces = [
        ("template", SOURCE_FALLBACK_NOTE, Origin.MACHINE),
        ("template", SOURCE_FALLBACK_NOTE, Origin.FALLBACK),
        ("template", MT_NOTE, Origin.MACHINE),
    ]
    assert fallback_note_origin(pieces) is Origin.FALLBACK
    assert fallback_note_origin(list(reversed(pieces))) is Origin.FALLBACK


def test_without_english_text_the_note_does_not_matter() -> None:
    assert fallback_note_origin([("template", MT_NOTE, Origin.MACHINE)]) is None
    assert what_families_got([Origin.MACHINE, Origin.REVIEWED], None) == "machine"
    assert what_families_got(["reviewed"], Origin.FALLBACK) == "reviewed"
    assert what_families_got([Origin.HELD, Origin.FALLBACK], Origin.FALLBACK) == "held"
    assert what_families_got([], None) == "source"


def test_a_message_stored_before_notes_were_told_apart_stays_english() -> None:
    # Its stored sources carry origins only: nothing says where its note came from.
    assert what_families_got(["fallback", "reviewed"]) == "english"


def test_every_word_has_a_label_and_a_place_in_the_order() -> None:
    assert set(RECEIVED_LABELS) == set(RECEIVED_SEVERITY)
    order = RECEIVED_SEVERITY.index
    assert order("machine") < order("english") < order("english_only") < order("held")
