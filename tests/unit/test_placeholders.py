"""The placeholder guard: what gets protected, how it comes back, and what is rejected."""

from __future__ import annotations

import pytest

from gateway import TranslationError
from gateway.translation.placeholders import Masked, PlaceholderError, mask, unmask


def _protected(masked: Masked) -> dict[str, str]:
    """original text → kind, for assertions that do not depend on token numbers."""
    return {masked.originals[token]: kind for token, kind in masked.kinds.items()}


def test_english_round_trip_protects_every_kind():
    text = (
        "Dear Ana Lopez, Family Math Night is on Thursday, March 4, 2027 at 5:30 PM "
        "(doors 17:00) in room 12. Call +1 913-555-0199 or (913) 555-0199, write "
        "liaison@district.example or see https://district.example/events?id=7. "
        "Fee: $5.00, 50% off, 3rd grade. <b>Hi</b> &amp; {name} %(count)s {{ event.title }}"
    )
    masked = mask(text, names=["Ana Lopez"])
    assert _protected(masked) == {
        "Ana Lopez": "name",
        "Thursday, March 4, 2027": "date",
        "5:30 PM": "time",
        "17:00": "time",
        "12": "number",
        "+1 913-555-0199": "phone",
        "(913) 555-0199": "phone",
        "liaison@district.example": "email",
        "https://district.example/events?id=7": "url",
        "$5.00": "number",
        "50%": "number",
        "3rd": "number",
        "<b>": "html",
        "</b>": "html",
        "&amp;": "html",
        "{name}": "format",
        "%(count)s": "format",
        "{{ event.title }}": "format",
    }
    assert masked.text.startswith("Dear [1], Family Math Night is on [2] at [3] (doors [4])")
    assert "_" not in masked.text
    assert unmask(masked.text, masked) == text


def test_arabic_round_trip():
    text = "مرحباً أحمد، الاجتماع يوم 2027-03-04 الساعة 17:30 في الغرفة ٣. اتصل على +19135550199"
    masked = mask(text, names=["أحمد"])
    assert _protected(masked) == {
        "أحمد": "name",
        "2027-03-04": "date",
        "17:30": "time",
        "٣": "number",
        "+19135550199": "phone",
    }
    assert masked.text == "مرحباً [1]، الاجتماع يوم [2] الساعة [3] في الغرفة [4]. اتصل على [5]"
    # An engine may move tokens around; each comes back where it ends up.
    moved = "اتصل على [5]. [1]: الاجتماع [2] [3] الغرفة [4]"
    assert unmask(moved, masked) == (
        "اتصل على +19135550199. أحمد: الاجتماع 2027-03-04 17:30 الغرفة ٣"
    )


def test_burmese_round_trip():
    text = "မင်္ဂလာပါ Aung Aung၊ အစည်းအဝေး 4 March 2027 ၌ ၅ နာရီ https://district.example/my ။"
    masked = mask(text, names=["Aung Aung"])
    assert _protected(masked) == {
        "Aung Aung": "name",
        "4 March 2027": "date",
        "၅": "number",
        "https://district.example/my": "url",
    }
    assert unmask(masked.text, masked) == text


def test_html_can_be_left_alone():
    text = "<p>Hello 5 world</p>"
    assert mask(text, protect_html=False).text == "<p>Hello [1] world</p>"
    assert mask(text).text == "[1]Hello [2] world[3]"


def test_a_url_wins_over_the_number_and_email_inside_it():
    masked = mask("See https://x.example/a/12?to=me@x.example now")
    assert masked.text == "See [1] now"
    assert masked.kinds == {"[1]": "url"}


def test_trailing_punctuation_stays_outside_urls_emails_and_times():
    masked = mask("Go to www.district.example. Mail a@b.org, then 5 PM.")
    assert masked.text == "Go to [1]. Mail [2], then [3]."


def test_numbers_glued_to_letters_are_left_alone_but_ordinals_are_masked():
    assert mask("Bring the mp3 player, 2nd floor").text == "Bring the mp3 player, [1] floor"


def test_glossary_terms_render_per_language_and_acronyms_match_case():
    terms = {"FAFSA": "FAFSA (ayuda federal)", "IEP": "IEP", "Family Math Night": "Family Math Night"}
    text = "Fill the FAFSA, not the fafsa; your IEP meeting; family math night; IEPs"
    masked = mask(text, glossary_terms=terms)
    assert masked.text == "Fill the [1], not the fafsa; your [2] meeting; [3]; IEPs"
    restored = unmask(masked.text, masked)
    assert restored == (
        "Fill the FAFSA (ayuda federal), not the fafsa; your IEP meeting; family math night; IEPs"
    )


def test_names_are_case_sensitive_whole_words():
    masked = mask("Ana met Anabel and ana.", names=["Ana"])
    assert masked.text == "[1] met Anabel and ana."


def test_text_that_looks_like_a_token_is_protected_too():
    masked = mask("Answer [1] or [ 2 ] please")
    assert masked.text == "Answer [1] or [2] please"
    assert unmask("Responda [1] o [2] por favor", masked) == "Responda [1] o [ 2 ] por favor"


def test_tolerates_spacing_fullwidth_brackets_and_other_digits():
    masked = mask("Call 911 now at 5 PM")
    assert masked.text == "Call [1] now at [2]"
    assert unmask("Llame [ 1 ] ahora a las ［2］", masked) == "Llame 911 ahora a las 5 PM"
    assert unmask("اتصل [١] الآن [٢]", masked) == "اتصل 911 الآن 5 PM"


def test_each_occurrence_gets_its_own_token():
    masked = mask("5 and 5")
    assert masked.text == "[1] and [2]"
    with pytest.raises(PlaceholderError):
        unmask("[1] y [1]", masked)


@pytest.mark.parametrize(
    ("translated", "missing", "duplicated", "unknown"),
    [
        ("Llame a [1] antes.", ("[2]",), (), ()),
        ("Llame a [1] [2] [2].", (), ("[2]",), ()),
        ("Llame a [1] [2] [3].", (), (), ("[3]",)),
        ("Llame a [1) [2].", ("[1]",), (), ()),
        ("Llame a 1 2.", ("[1]", "[2]"), (), ()),
    ],
)
def test_lost_duplicated_invented_or_mangled_tokens_are_rejected(
    translated, missing, duplicated, unknown
):
    masked = mask("Call Ana at 17:30.", names=["Ana"])
    assert masked.text == "Call [1] at [2]."
    with pytest.raises(PlaceholderError) as caught:
        unmask(translated, masked)
    assert isinstance(caught.value, TranslationError)
    assert (caught.value.missing, caught.value.duplicated, caught.value.unknown) == (
        missing,
        duplicated,
        unknown,
    )


def test_text_without_placeholders_is_unchanged():
    masked = mask("Hello families")
    assert masked == Masked("Hello families", {}, {})
    assert unmask("Hola familias", masked) == "Hola familias"


def test_needs_translation():
    assert mask("Hello 5").needs_translation
    assert not mask("5:30 PM, https://x.example").needs_translation
    assert mask("مرحبا 5").needs_translation
