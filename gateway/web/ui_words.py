"""Words the interface shows that come from data, not from a template's literal text: the
navigation, statuses, funnel stages, outcomes, RSVP answers, classifications, roles and what a
family read. Marked here so ``make catalogs`` puts them into the interface catalog
(``locales/<lang>/LC_MESSAGES/web.po``); templates translate them with ``_(value)``."""

from __future__ import annotations

__all__ = ["UI_WORDS"]


def N_(message: str) -> str:  # the gettext convention, for extraction
    """Mark an interface string for extraction."""
    return message


UI_WORDS = (
    # navigation
    N_("Compose"), N_("Broadcasts"), N_("Surveys"), N_("Reach"), N_("Inbox"), N_("Families"), N_("Staff"),
    # broadcast statuses
    N_("planning"), N_("scheduled"), N_("queued"), N_("sending"), N_("done"), N_("empty"), N_("cancelled"),
    N_("dry-run"),
    # message statuses and funnel stages
    N_("held"), N_("sent"), N_("delivered"), N_("read"), N_("failed"), N_("undelivered"), N_("unknown"),
    N_("opted out"), N_("replied"), N_("reached"),
    # family outcomes, and why a family was not reached
    N_("pending"), N_("not reached"), N_("not reached yet"), N_("no endpoint"), N_("opted out everywhere"),
    N_("not in these audiences"),
    # RSVP answers
    N_("yes"), N_("no"), N_("maybe"), N_("no answer"),
    # what a reply was
    N_("rsvp"), N_("survey_answer"), N_("survey_unmatched"), N_("free_text"), N_("opt_out"), N_("opt_in"),
    N_("help"), N_("unknown_sender"), N_("late_answer"), N_("acknowledgement"), N_("language_change"),
    N_("duplicate"),
    # kinds of address (built-in; a plugin's own kind shows its label as it declared it)
    N_("phone"), N_("e-mail"), N_("Telegram"),
    # kinds of broadcast
    N_("invitation"), N_("message"), N_("survey"), N_("survey-reminder"), N_("reminder"),
    # roles and reach tables
    N_("admin"), N_("liaison"), N_("Language"), N_("Channel"), N_("School"),
    # what families read
    N_("original text"), N_("reviewed translation"), N_("machine translation, not reviewed"),
    N_("English, with a note in their language"), N_("English, with a note in English"),
    N_("held until a person translates it"),
    N_("wording"), N_("your text"),
)  # fmt: skip
