"""Message ids of the gateway's own strings, outside templates.

Every constant is wrapped in :func:`N_` so that ``pybabel extract`` (see ``babel.cfg``) puts it
into ``locales/gateway.pot`` and the reviewed catalogs translate it. The constants hold the
English msgid; code translates them at the moment of use, in the reader's language, through the
same catalogs the templates use (e.g. ``context.gettext(language, messages.MT_NOTE)``).
"""

from __future__ import annotations

__all__ = [
    "COMPOSER_MESSAGES",
    "FALLBACK_NOTES",
    "MAYBE",
    "MT_NOTE",
    "N_",
    "NO",
    "PARTIAL_FALLBACK_NOTE",
    "RATING_HINT",
    "SOURCE_FALLBACK_NOTE",
    "TELEGRAM_LINK_INVALID",
    "TELEGRAM_RESUBSCRIBED",
    "TELEGRAM_WELCOME",
    "UNSUBSCRIBE",
    "YES",
]


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (returns it unchanged)."""
    return message


MT_NOTE = N_("This message was translated automatically.")
"""Appended to a message whose free text was machine-translated."""

SOURCE_FALLBACK_NOTE = N_(
    "We could not translate this message into your language yet. Here it is in English."
)
"""Prepended when nothing in the message could be translated and the English source is sent
instead."""

PARTIAL_FALLBACK_NOTE = N_(
    "Part of this message is still in English: we could not translate it into your language yet."
)
"""Prepended instead of :data:`SOURCE_FALLBACK_NOTE` when the message is translated except for
some of its text (an event's title, a liaison's own words) that nothing could translate."""

#: The notes that say a message carries English the family's language could not replace.
FALLBACK_NOTES = frozenset({SOURCE_FALLBACK_NOTE, PARTIAL_FALLBACK_NOTE})

YES = N_("Yes")
"""Choice label of a yes / RSVP-yes answer."""

NO = N_("No")
"""Choice label of a no / RSVP-no answer."""

MAYBE = N_("Maybe")
"""Choice label of an RSVP-maybe answer."""

RATING_HINT = N_("1 = not at all, 5 = very much")
"""What the ends of the 1..5 rating scale mean."""

UNSUBSCRIBE = N_("Unsubscribe")
"""Text of the unsubscribe link in emails."""

TELEGRAM_WELCOME = N_("Welcome, %(name)s! You will now receive school messages here.")
"""Telegram: a deep link connected this chat to a guardian (``name``)."""

TELEGRAM_LINK_INVALID = N_("Sorry, this link is not valid any more. Please ask your school for a new one.")
"""Telegram: the onboarding token was unknown, revoked or already used."""

TELEGRAM_RESUBSCRIBED = N_("You will receive school messages here again.")
"""Telegram: a chat that had blocked the bot or sent STOP came back."""

COMPOSER_MESSAGES: tuple[str, ...] = (
    MT_NOTE, SOURCE_FALLBACK_NOTE, PARTIAL_FALLBACK_NOTE, YES, NO, MAYBE, RATING_HINT, UNSUBSCRIBE,
)
"""The strings the composer itself may put into a message (notes, answer labels)."""
