"""The composer: the one path from a template, its context, a guardian and a channel to the
text that is sent.

Every outgoing message goes through it — broadcasts, reminders, survey questions with their
choices and buttons, RSVP confirmations, closing messages, HELP and opt-out confirmations, staff
replies, fallback re-renders — and so does the preview, which is therefore exactly what is sent.

Two steps, because translation is asynchronous and rendering is not:

1. :meth:`MessageComposer.strings` resolves, for one language, every template string of the
   templates involved and every free text (see :mod:`gateway.translation.strings`): reviewed
   catalog, translation memory, machine translation — one engine call per language for all the
   strings still missing, each kept in the memory — or the English source.
2. :meth:`MessageComposer.render` renders one variant for one family with those strings and
   returns a :class:`ComposedMessage` that knows where each of its strings came from. When any
   string the family reads is still English, a note says so at the top of the message — that
   the whole message is in English, or only part of it — in the family's language where a
   catalog or an engine translates the note, otherwise in English (and previews and summaries
   then say "a note in English", not "in their language"); when any is a machine translation,
   e-mail and Telegram messages say so at the end. A message whose text waits for a person
   (``translation.fallback: hold``) is ``held``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.channels import Button, Channel
from gateway.domain.languages import is_rtl
from gateway.domain.surveys import Question, SurveySpec
from gateway.rendering import messages as msg
from gateway.rendering.bidi import isolate, isolate_ltr, strip_bidi_controls
from gateway.rendering.renderer import Piece, RenderedMessage
from gateway.translation.service import Translated
from gateway.translation.strings import LanguageStrings, Origin, TranslatedText

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "RECEIVED_ENGLISH",
    "RECEIVED_LABELS",
    "RECEIVED_SEVERITY",
    "shows_buttons",
    "ComposedMessage",
    "MessageComposer",
    "describe_sources",
    "YESNO_LABELS",
    "localize_event",
    "fallback_note_origin",
    "what_families_got",
]

def shows_buttons(channel: Channel, question: Mapping[str, Any] | None) -> bool:
    """Whether ``channel`` shows ``question``'s choices as buttons: it has buttons, and enough
    of them (:attr:`ChannelCapabilities.buttons`); otherwise the choices are written out."""
    limit = channel.features.buttons
    if limit <= 0:
        return False
    choices = (question or {}).get("choices") or []
    return len(choices) <= limit


#: Catalog labels of the canonical answers.
YESNO_LABELS = {"yes": msg.YES, "no": msg.NO, "maybe": msg.MAYBE}
#: How long a resolved template string is reused before the memory is asked again (a reviewed
#: entry imported by another process shows up within this), and how long a failed one is.
STRINGS_TTL_SECONDS = 300.0
FALLBACK_TTL_SECONDS = 60.0
#: Channels whose messages say "translated automatically" when they carry machine translation
#: (SMS does not: every character costs, and the family can ask).
MACHINE_NOTE_VARIANTS = frozenset({"email", "telegram"})


@dataclass(frozen=True, slots=True)
class ComposedMessage:
    """One message as it is sent, and where each of its strings came from."""

    body: str
    subject: str | None
    html: str | None
    direction: str
    language: str
    pieces: tuple[Piece, ...] = ()
    buttons: tuple[Button, ...] = ()

    @property
    def held(self) -> bool:
        """Whether some of its text waits for a person's translation."""
        return any(p.origin is Origin.HELD for p in self.pieces)

    @property
    def received(self) -> str:
        """What the family reads, in one word (see :func:`what_families_got`)."""
        note = fallback_note_origin((p.kind, p.source, p.origin) for p in self.pieces)
        return what_families_got((p.origin for p in self.pieces), note)

    def origins(self) -> dict[str, dict[str, int]]:
        """``{"template": {origin: n}, "text": {origin: n}}`` — what this message is made of."""
        out: dict[str, Counter[str]] = {"template": Counter(), "text": Counter()}
        for piece in self.pieces:
            out[piece.kind][str(piece.origin)] += 1
        return {kind: dict(counts) for kind, counts in out.items()}


def what_families_got(origins: Iterable[Origin | str], note: Origin | str | None = None) -> str:
    """One word for what a family read: ``held``, ``english`` (some text stayed in the source
    language, with a note in the family's language), ``english_only`` (the same, but the note
    itself is English: nothing translated it either), ``machine`` (some text
    machine-translated), ``reviewed``, or ``source`` (the family reads the source language).

    ``note``: where the note that says the text stayed English came from (see
    :func:`fallback_note_origin`); when it is not known (a message stored before notes were
    told apart) an English text is called ``english``."""
    found = {Origin(o) for o in origins}
    if Origin.HELD in found:
        return "held"
    if Origin.FALLBACK in found:
        return "english_only" if note is not None and Origin(note).untranslated else "english"
    if found & {Origin.MACHINE, Origin.MEMORY}:
        return "machine"
    if Origin.REVIEWED in found:
        return "reviewed"
    return "source"


def fallback_note_origin(pieces: Iterable[tuple[str, str, Origin]]) -> Origin | None:
    """Where the "could not translate, here it is in English" note of rendered ``pieces``
    (``(kind, source, origin)``) came from — the least translated, when several messages are
    pooled; None when no message carried it."""
    found: Origin | None = None
    for _kind, source, origin in pieces:
        if source in msg.FALLBACK_NOTES and (found is None or origin.untranslated):
            found = origin
    return found


#: What :func:`what_families_got` means, in the words staff read in previews and summaries.
RECEIVED_LABELS = {
    "source": "original text",
    "reviewed": "reviewed translation",
    "machine": "machine translation, not reviewed",
    "english": "English, with a note in their language",
    "english_only": "English, with a note in English",
    "held": "held until a person translates it",
}
#: The words of :data:`RECEIVED_LABELS` from most to least translated.
RECEIVED_SEVERITY = ("source", "reviewed", "machine", "english", "english_only", "held")
#: The words that mean the family read (some of) the source language.
RECEIVED_ENGLISH = frozenset({"english", "english_only"})


def describe_sources(sources: Mapping[str, Mapping[str, int]]) -> str:
    """``template: reviewed 12 · free text: machine 3`` for a message's ``origins()``."""
    parts = []
    for kind, label in (("template", "template"), ("text", "free text")):
        counts = sources.get(kind) or {}
        if counts:
            parts.append(f"{label}: " + ", ".join(f"{o} {n}" for o, n in sorted(counts.items())))
    return " · ".join(parts)


def localize_event(event: Mapping[str, Any], timezone: str) -> dict[str, Any]:
    """The event with start/end in the family's time zone."""
    zone = ZoneInfo(timezone)
    localized = dict(event)
    for key in ("start", "end"):
        value = event.get(key)
        if isinstance(value, datetime):
            localized[key] = value.astimezone(zone)
    return localized


@dataclass
class _CachedStrings:
    resolved: dict[str, tuple[Translated, float]] = field(default_factory=dict)


class MessageComposer:
    """Resolves strings per language and renders messages with them (see the module docstring)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.renderer = gateway.renderer
        self.source_language = gateway.config.translation.source_language
        self._cache: dict[str, _CachedStrings] = {}

    # -- strings ------------------------------------------------------------------------------
    def code_message_ids(self) -> tuple[str, ...]:
        """The gateway's own strings a message may carry (notes, answer labels)."""
        return msg.COMPOSER_MESSAGES

    async def strings(
        self,
        language: str,
        templates: Iterable[str] = (),
        texts: Iterable[str | None] = (),
        *,
        session: AsyncSession | None = None,
        names: Sequence[str] = (),
        text_language: str | None = None,
    ) -> LanguageStrings:
        """Every string of ``templates`` and every one of ``texts`` resolved for ``language``.

        Template strings are cached per process for a few minutes (one memory lookup per
        language, not per message); free texts are looked up every time. Strings still missing
        go to the engines in one batch, through the translation service (memory, placeholder
        guard, fallback policy). ``names`` are masked so engines never see them. ``texts`` are
        written in ``text_language`` (default: the source language; a staff answer is written in
        ``translation.staff_language``).
        """
        strings = LanguageStrings(
            language, self.gateway.catalogs, source_language=self.source_language
        )
        wanted_texts = [t for t in dict.fromkeys(t for t in texts if t) if t.strip()]
        text_language = text_language or self.source_language
        if text_language.split("-")[0].lower() != self.source_language.split("-")[0].lower():
            if wanted_texts:
                done = await self.gateway.translation.translate_many(
                    wanted_texts, language, source=text_language, session=session, names=names
                )
                strings.add(dict(zip(wanted_texts, done, strict=True)))
            wanted_texts = []
        if strings.same_language:
            return strings
        msgids: set[str] = set(self.code_message_ids())
        for template in templates:
            msgids |= self.renderer.message_ids(template)
        cache = self._cache.setdefault(language, _CachedStrings())
        now = time.monotonic()
        cached = {
            key: value for key, (value, expires) in cache.resolved.items() if key in msgids and expires > now
        }
        strings.add(cached)
        missing = list(dict.fromkeys([*strings.missing(sorted(msgids)), *wanted_texts]))
        if not missing:
            return strings
        translated = await self.gateway.translation.translate_many(
            missing, language, session=session, names=names
        )
        found = dict(zip(missing, translated, strict=True))
        strings.add(found)
        for key, value in found.items():
            if key in msgids:
                ttl = FALLBACK_TTL_SECONDS if value.origin in ("fallback", "held") else STRINGS_TTL_SECONDS
                cache.resolved[key] = (value, now + ttl)
        return strings

    def forget(self, language: str | None = None) -> None:
        """Drop cached template strings (after reviewed translations were imported)."""
        if language is None:
            self._cache.clear()
        else:
            self._cache.pop(language, None)

    async def sentence(self, language: str, msgid: str, **params: Any) -> str:
        """One sentence outside any template (a channel plugin's own), resolved like a template
        string; ``params`` are filled in afterwards, cleaned and, in a right-to-left language,
        isolated."""
        strings = await self.strings(language, texts=[msgid])
        resolved = strings.gettext(msgid)
        rtl = is_rtl(language)
        values = {}
        for key, value in params.items():
            text = strip_bidi_controls(str(value))
            values[key] = isolate(text) if rtl else text
        text = resolved.text % values if params else resolved.text
        return isolate_ltr(text) if rtl and resolved.origin.untranslated else text

    # -- contexts -------------------------------------------------------------------------------
    def base_context(self, language: str) -> dict[str, Any]:
        """What every template sees, whoever it is for."""
        district = self.gateway.config.district
        return {
            "district": {
                "name": district.name,
                "phone": district.phone,
                "email": district.email,
                "website": district.website,
            },
            "lang": language,
            "dir": "rtl" if is_rtl(language) else "ltr",
            "student_names": "",
            "unsubscribe_url": None,
            "buttons": False,
        }

    @staticmethod
    def question_texts(question: Question, survey: SurveySpec | None) -> list[str]:
        """The free texts of a question a family reads: its text, the survey's title, custom
        choice labels and their synonyms."""
        texts = [question.text]
        if survey is not None:
            texts.append(survey.title)
        for choice in question.choices:
            # Canonical yes / no / maybe have reviewed labels and shipped synonym tables.
            if _custom_label(question, choice.value, choice.label):
                texts.append(choice.label)
                texts += [s for s in choice.synonyms if len(s.strip()) > 2]
        return texts

    def question_context(
        self, question: Question, survey: SurveySpec | None, strings: LanguageStrings
    ) -> dict[str, Any]:
        """The question as templates see it, in the family's language: text, numbered choices with
        their labels as shown, and each choice's synonyms in English and translated."""
        choices = []
        for number, choice in enumerate(question.choices, start=1):
            if not _custom_label(question, choice.value, choice.label):
                label: Any = choice.label
                if choice.value in YESNO_LABELS:
                    resolved = strings.gettext(YESNO_LABELS[choice.value])
                    label = TranslatedText(resolved.text, resolved.origin, resolved.engine, choice.label)
            else:
                label = strings.text(choice.label)
            synonyms = list(choice.synonyms)
            if _custom_label(question, choice.value, choice.label):
                synonyms += [str(strings.text(s)) for s in choice.synonyms if len(s.strip()) > 2]
            synonyms = list(dict.fromkeys(synonyms))
            choices.append(
                {"number": number, "value": choice.value, "label": label, "synonyms": synonyms}
            )
        total = len(survey.questions) if survey else 1
        number = survey.questions.index(question) + 1 if survey else 1
        return {
            "id": question.id,
            "type": question.type,
            "text": strings.text(question.text),
            "number": number,
            "total": total,
            "choices": choices,
            "rsvp": question.rsvp,
        }

    # -- rendering ------------------------------------------------------------------------------
    def render(
        self,
        template: str,
        channel: Channel,
        strings: LanguageStrings,
        context: Mapping[str, Any],
    ) -> ComposedMessage:
        """One message for one family on ``channel``: the template rendered with ``strings``, the
        notes the family needs, and the buttons the channel shows."""
        language = strings.language
        ctx = self.base_context(language)
        ctx.update(context)
        blocks = channel.template_blocks
        rendered = self.renderer.render(template, channel.variant, language, ctx, strings, blocks)
        rendered = self._with_notes(rendered, channel.variant, strings)
        buttons: tuple[Button, ...] = ()
        question = ctx.get("question")
        if question and question.get("choices") and shows_buttons(channel, question):
            buttons = tuple(Button(str(c["value"]), str(c["label"])) for c in question["choices"])
        subject = rendered.subject
        if subject is None and channel.features.subject:
            subject = self.renderer.render_title(template, blocks, language, ctx, strings)
        elif subject is not None and not channel.features.subject:
            subject = None
        return ComposedMessage(
            body=rendered.body,
            subject=subject,
            html=rendered.html,
            direction=rendered.direction,
            language=language,
            pieces=rendered.pieces,
            buttons=buttons,
        )

    def _with_notes(
        self, rendered: RenderedMessage, variant: str, strings: LanguageStrings
    ) -> RenderedMessage:
        if strings.same_language:
            return rendered
        origins = {p.origin for p in rendered.pieces}
        lead = footer = None
        extra: list[Piece] = []
        if origins & {Origin.FALLBACK, Origin.HELD}:
            # The note says what happened: the whole message is English, or only part of it.
            partly = origins & {Origin.REVIEWED, Origin.MACHINE, Origin.MEMORY}
            note = msg.PARTIAL_FALLBACK_NOTE if partly else msg.SOURCE_FALLBACK_NOTE
            lead, piece = self._note(note, strings, rendered.direction)
            extra.append(piece)
        if variant in MACHINE_NOTE_VARIANTS and origins & {Origin.MACHINE, Origin.MEMORY}:
            footer, piece = self._note(msg.MT_NOTE, strings, rendered.direction)
            extra.append(piece)
        if lead is None and footer is None:
            return rendered
        return self.renderer.with_notes(rendered, variant, lead=lead, footer=footer, pieces=tuple(extra))

    @staticmethod
    def _note(msgid: str, strings: LanguageStrings, direction: str) -> tuple[str, Piece]:
        resolved = strings.gettext(msgid)
        text = resolved.text
        if direction == "rtl" and resolved.origin.untranslated:
            text = isolate_ltr(text)
        return text, Piece("template", msgid, resolved.origin)


def _custom_label(question: Question, value: str, label: str) -> bool:
    """Whether a choice label is the survey author's own text (translated as free text) rather
    than a canonical yes / no / maybe label (a catalog string) or a number."""
    if value in YESNO_LABELS and (question.type == "yesno" or label == YESNO_LABELS[value]):
        return False
    return not label.isdigit()
