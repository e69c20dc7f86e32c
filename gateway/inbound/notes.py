"""Notes the gateway leaves for staff on a reply it files in the inbox ("late answer to the RSVP
to …", "recorded 'yes'; the reply says more", "no machine translation covers …"), as
:class:`~gateway.staff_text.StaffNote` message ids: every staff member reads them in the interface
language; the inbox JSON and the command line show their English text as ``note``."""

from __future__ import annotations

from gateway.staff_text import S_

#: Why a late answer was not recorded.
SURVEY_CLOSED = S_("the survey has closed")
EVENT_STARTED = S_("the event has already started")

#: Each note in two forms: about an RSVP (``True``) or about a survey question (``False``).
LATE_ANSWER = {
    True: S_("Late answer to the RSVP to “%(title)s”: %(why)s; nothing recorded."),
    False: S_("Late answer to question “%(question)s” of “%(title)s”: %(why)s; nothing recorded."),
}
TEXT_ANSWER = {
    True: S_("Answer to the RSVP to “%(title)s”."),
    False: S_("Answer to question “%(question)s” of “%(title)s”."),
}
ANSWER_SAYS_MORE = {
    True: S_("Recorded “%(answer)s” for the RSVP to “%(title)s”; the reply says more."),
    False: S_("Recorded “%(answer)s” for question “%(question)s” of “%(title)s”; the reply says more."),
}
PASSED_OVER = {
    True: S_(
        "Recorded “%(answer)s” for the RSVP to “%(title)s”, which is still open; the family's latest "
        "question, from “%(later)s”, no longer takes answers: check which one they meant."
    ),
    False: S_(
        "Recorded “%(answer)s” for question “%(question)s” of “%(title)s”, which is still open; the "
        "family's latest question, from “%(later)s”, no longer takes answers: check which one they meant."
    ),
}
STAFF_RECORDED = {
    True: S_("“%(answer)s” recorded by staff for the RSVP to “%(title)s”."),
    False: S_("“%(answer)s” recorded by staff for question “%(question)s” of “%(title)s”."),
}
POSSIBLE_ANSWER = {
    True: S_("Possibly “%(answer)s” for the RSVP to “%(title)s”: confirm or correct."),
    False: S_("Possibly “%(answer)s” for question “%(question)s” of “%(title)s”: confirm or correct."),
}

#: Why a reply has no translation for staff.
NO_ENGINE = S_("No machine translation covers %(source)s → %(target)s. Flag it for an interpreter.")
ENGINE_FAILED = S_(
    "The machine translation (%(source)s → %(target)s) failed this time. Flag it for an interpreter."
)

#: A reply whose processing kept failing (``inbound.max_attempts``).
PROCESSING_FAILED = S_(
    "The gateway could not process this reply (%(attempts)s tries, %(error)s): read it and answer by hand."
)

#: A staff answer that cannot go: the family's address is closed on that channel.
REPLY_NOT_ALLOWED = S_(
    "This family cannot be written to on %(channel)s: they opted out there, or the address does not "
    "work. Nothing was sent."
)
