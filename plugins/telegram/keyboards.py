"""Inline keyboards and the ``callback_data`` that comes back when a button is tapped.

Telegram returns only a button's ``callback_data`` (1–64 bytes) on a tap, so it must say which
outbox message and which choice it was, without the label:

* ``a:{message_id}:{value}`` when the value is at most 40 bytes of ``A-Za-z0-9_-`` (survey values
  usually are: ``yes``, ``1``, ``attending``): the value comes straight back as ``choice``.
* ``i:{message_id}:{index}`` otherwise: the 0-based position of the button in the message's
  buttons. There is no persisted map from it back to the value, so the tap is handed to the core
  with ``choice=None``, the button's label as ``text`` and ``raw["button_index"]``; the core can
  resolve the index against the outbox message's buttons (or match the label like a typed reply).
* ``lang:{code}`` for the ``/language`` picker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from gateway import Button

__all__ = [
    "LANGUAGE_CHOICES",
    "MAX_CALLBACK_DATA_BYTES",
    "AnswerCallback",
    "answer_keyboard",
    "encode_answer",
    "language_keyboard",
    "parse_answer",
    "parse_language",
]

MAX_CALLBACK_DATA_BYTES = 64
_SHORT_VALUE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_ANSWER = re.compile(r"^(?P<kind>[ai]):(?P<message>\d{1,19}):(?P<rest>[A-Za-z0-9_-]{1,40})$")
_LANGUAGE = re.compile(r"^lang:(?P<code>[a-z]{2,3})$")

#: Languages offered by ``/language``, each labelled in its own language.
LANGUAGE_CHOICES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "ar": "العربية",
    "so": "Soomaali",
    "sw": "Kiswahili",
    "my": "မြန်မာ",
    "ne": "नेपाली",
    "fr": "Français",
    "vi": "Tiếng Việt",
    "prs": "دری",
}


@dataclass(frozen=True, slots=True)
class AnswerCallback:
    """A decoded survey-button tap: which outbox message, and the value or the button index."""

    message_id: int
    value: str | None
    index: int | None


def encode_answer(message_id: int, index: int, button: Button) -> str:
    """The ``callback_data`` of one answer button (see the module docstring)."""
    data = f"a:{message_id}:{button.value}"
    if _SHORT_VALUE.match(button.value) and len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
        return data
    return f"i:{message_id}:{index}"


def parse_answer(data: str | None) -> AnswerCallback | None:
    """Decode an answer button's ``callback_data``; None when it is not one of ours."""
    match = _ANSWER.match(data or "")
    if match is None:
        return None
    message_id = int(match["message"])
    if match["kind"] == "a":
        return AnswerCallback(message_id, match["rest"], None)
    if not match["rest"].isdigit():
        return None
    return AnswerCallback(message_id, None, int(match["rest"]))


def answer_keyboard(message_id: int, buttons: Sequence[Button]) -> InlineKeyboardMarkup:
    """One button per row, labelled with the (translated) label, carrying a short id."""
    rows = [
        [
            InlineKeyboardButton(
                text=button.label, callback_data=encode_answer(message_id, index, button)
            )
        ]
        for index, button in enumerate(buttons)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def language_keyboard() -> InlineKeyboardMarkup:
    """The ``/language`` picker, two languages per row."""
    buttons = [
        InlineKeyboardButton(text=label, callback_data=f"lang:{code}")
        for code, label in LANGUAGE_CHOICES.items()
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def parse_language(data: str | None) -> str | None:
    """The language code of a ``lang:xx`` callback, if it is one we offered."""
    match = _LANGUAGE.match(data or "")
    if match is None or match["code"] not in LANGUAGE_CHOICES:
        return None
    return match["code"]
