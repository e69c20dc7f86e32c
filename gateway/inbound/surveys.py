"""Surveys at run time: storing a survey, matching replies to open sessions, moving families
to the next question, one re-prompt, RSVP confirmations, results."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.channels import InboundMessage
from gateway.domain.surveys import Question, SurveySpec
from gateway.inbound import notes
from gateway.inbound.answers import AnswerMatcher, ReplyReading
from gateway.inbound.normalize import tokens
from gateway.outbox.conversation import queue_conversation
from gateway.outbox.planner import event_context, shown_choices
from gateway.rendering.composer import localize_event
from gateway.staff_text import StaffNote
from gateway.storage.models import (
    Event,
    InboundRecord,
    OutboxMessage,
    Student,
    Survey,
    SurveyAnswer,
    SurveySession,
    utcnow,
)

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["AnsweredReply", "Prompt", "SurveyRuntime", "store_survey", "tapped_button_value"]


@dataclass(frozen=True)
class AnsweredReply:
    """How the survey engine took a reply to a prompt it sent."""

    classification: str
    label: str | None = None
    inbox: bool = False
    """A person should read the reply (it asks or says more, it is late, it is free text)."""


@dataclass
class Prompt:
    """The open question a reply is bound to: the most recent survey question or RSVP sent to
    the endpoint (or the message a button or an e-mail token names)."""

    survey_session: SurveySession
    survey: Survey
    spec: SurveySpec
    question: Question
    message: OutboxMessage | None
    closed: str | None = None
    """Why this prompt no longer takes answers (``the event has already started``...)."""
    passed_over: Prompt | None = None
    """A later prompt the family got that no longer takes answers: the reply may have meant it."""


#: A reply of more words than this that is not an answer goes to staff without a re-prompt.
SHORT_REPLY_WORDS = 3
#: Outbox statuses of a prompt the family got (or is getting).
SEEN = ("sent", "delivered", "read", "unknown", "sending", "queued")


async def store_survey(session: AsyncSession, spec: SurveySpec, event_id: int | None = None) -> Survey:
    """Create or update the survey row for ``spec``."""
    row = await session.scalar(select(Survey).where(Survey.external_id == spec.id))
    definition = spec.model_dump(mode="json")
    if row is None:
        row = Survey(
            external_id=spec.id,
            title=spec.title,
            definition=definition,
            event_id=event_id,
            close_at=spec.close_at,
        )
        session.add(row)
    else:
        row.title, row.definition, row.close_at = spec.title, definition, spec.close_at
        row.event_id = event_id or row.event_id
    await session.flush()
    return row


class SurveyRuntime:
    """Survey sessions: answers in, next questions out."""

    def __init__(self, gateway: Gateway, matcher: AnswerMatcher) -> None:
        self.gateway = gateway
        self.matcher = matcher

    async def handle_reply(
        self, session: AsyncSession, message: InboundMessage, record: InboundRecord, match: Any
    ) -> AnsweredReply | None:
        """Read the reply against the prompt it answers; None when no prompt was sent to this
        endpoint (the reply is not about a survey or an RSVP)."""
        prompt = await self.prompt_for(session, match)
        if prompt is None:
            return None
        question, spec, survey_session = prompt.question, prompt.spec, prompt.survey_session
        if prompt.message is not None:
            record.in_reply_to_id = prompt.message.id
        record.survey_id, record.question_id = prompt.survey.id, question.id
        choice = message.choice
        if choice is None:
            choice = tapped_button_value(match.message, message.raw.get("button_index"))
        if choice is not None and choice not in {c.value for c in question.choices}:
            choice = None
        if prompt.closed is not None:
            _leave_note(record, notes.LATE_ANSWER, spec, question, why=prompt.closed)
            record.action = f"late answer to {spec.id}/{question.id}: filed in the inbox"
            return AnsweredReply("late_answer", inbox=True)
        language = match.guardian.language
        shown = await self._shown_choices(session, survey_session, spec, question, prompt.message)
        if choice is not None:
            reading = ReplyReading(value=choice)
        else:
            reading = self.matcher.read(question, message.text, language, shown)
        if reading.value is None:
            return await self._not_an_answer(session, prompt, reading, message, record, match)
        if (
            question.type == "text"
            and survey_session.status != "open"
            and match.message is None
            and await self._answered(session, survey_session, question)
        ):
            # The survey is over and its last question answered: a later message is a new
            # conversation for staff, not a replacement of the family's closing comment.
            record.survey_id = record.question_id = None
            record.action = f"after {spec.id} was completed: filed in the inbox"
            return AnsweredReply("free_text", inbox=True)
        label = {str(v): str(lab) for v, lab, *_ in shown}.get(reading.value, reading.value)
        # Staff read the answer in the survey's own words, not the family's language.
        staff_label = {c.value: c.label for c in question.choices}.get(reading.value, reading.value)
        classification = await self.apply_answer(
            session, prompt, reading.value, message.text, match, record=record
        )
        # Free text is an answer and a message for a person; so is an answer that says more, and
        # one recorded for an older question while the latest had closed (it may have meant that).
        inbox = question.type == "text" or reading.more or prompt.passed_over is not None
        if prompt.passed_over is not None:
            _leave_note(record, notes.PASSED_OVER, spec, question, answer=staff_label,
                        later=prompt.passed_over.spec.title)
        elif question.type == "text":
            _leave_note(record, notes.TEXT_ANSWER, spec, question)
        elif reading.more:
            _leave_note(record, notes.ANSWER_SAYS_MORE, spec, question, answer=staff_label)
        return AnsweredReply(classification, label, inbox=inbox)

    async def _not_an_answer(
        self,
        session: AsyncSession,
        prompt: Prompt,
        reading: ReplyReading,
        message: InboundMessage,
        record: InboundRecord,
        match: Any,
    ) -> AnsweredReply:
        spec, question, survey_session = prompt.spec, prompt.question, prompt.survey_session
        if reading.acknowledgement:
            record.action = f"thanks, no answer to {spec.id}/{question.id}"
            return AnsweredReply("acknowledgement")
        record.suggested_answer = reading.suggested
        words = len(tokens(message.text))
        answered = await self._answered(session, survey_session, question)
        short = not reading.asks and words <= SHORT_REPLY_WORDS
        if short and survey_session.status == "open" and not answered and survey_session.reprompts == 0:
            survey_session.reprompts = 1
            survey_session.updated_at = utcnow()
            await self._send_question(
                session, survey_session, spec, question, match, template="survey_reprompt"
            )
            record.action = f"re-prompted for {spec.id}/{question.id}"
            return AnsweredReply("survey_unmatched")
        record.action = f"not an answer to {spec.id}/{question.id}: filed in the inbox"
        if reading.suggested:
            _leave_note(record, notes.POSSIBLE_ANSWER, spec, question, answer=reading.suggested)
        return AnsweredReply("free_text", inbox=True)

    async def apply_answer(
        self,
        session: AsyncSession,
        prompt: Prompt,
        value: str,
        raw_text: str,
        match: Any,
        *,
        record: InboundRecord | None = None,
        confirm: bool = True,
    ) -> str:
        """Record ``value`` for the prompt's question (replacing an earlier answer), move the
        family on (next question, closing message, RSVP confirmation unless ``confirm`` is
        false); returns the classification (``rsvp`` or ``survey_answer``)."""
        spec, question = prompt.spec, prompt.question
        survey_session, survey_row = prompt.survey_session, prompt.survey
        language = survey_session.language
        previous = await session.scalar(
            select(SurveyAnswer).where(
                SurveyAnswer.session_id == survey_session.id, SurveyAnswer.question_id == question.id
            )
        )
        if previous is None:
            session.add(
                SurveyAnswer(
                    session_id=survey_session.id,
                    survey_id=survey_row.id,
                    question_id=question.id,
                    value=value,
                    raw_text=raw_text,
                    language=language,
                )
            )
        else:
            previous.value, previous.raw_text, previous.answered_at = value, raw_text, utcnow()
        completed = survey_session.status != "open"
        survey_session.reprompts = 0
        survey_session.updated_at = utcnow()
        classification = "rsvp" if question.rsvp else "survey_answer"
        if record is not None:
            record.recorded_answer = value
            verb = "changed" if previous else "recorded"
            record.action = f"{verb} answer {value!r} to {spec.id}/{question.id}"
        if previous is not None and completed:
            if question.rsvp and confirm:
                await self._confirm_rsvp(session, survey_session, survey_row, value, match)
            return classification
        following = spec.next_question(question.id, value)
        moved_on = previous is not None and survey_session.current_question != question.id
        if following is not None and not moved_on:
            survey_session.current_question = following.id
            await self._send_question(session, survey_session, spec, following, match)
        elif following is None:
            survey_session.status = "completed"
            if question.rsvp:
                if confirm:
                    await self._confirm_rsvp(session, survey_session, survey_row, value, match)
            elif confirm:
                strings = await self.gateway.composer.strings(
                    language, ["survey_closing"], [spec.closing_message, spec.title], session=session
                )
                await queue_conversation(
                    self.gateway,
                    session,
                    template="survey_closing",
                    channel_name=survey_session.channel,
                    address=survey_session.address,
                    language=language,
                    guardian=match.guardian,
                    family=match.family,
                    endpoint=match.endpoint,
                    strings=strings,
                    context={
                        "survey": {"id": spec.id, "title": strings.text(spec.title)},
                        "closing": strings.text(spec.closing_message),
                    },
                )
        return classification

    async def _answered(
        self, session: AsyncSession, survey_session: SurveySession, question: Question
    ) -> bool:
        found = await session.scalar(
            select(SurveyAnswer.id).where(
                SurveyAnswer.session_id == survey_session.id, SurveyAnswer.question_id == question.id
            )
        )
        return found is not None

    async def prompt_for(self, session: AsyncSession, match: Any) -> Prompt | None:
        """The prompt a reply answers: the message it names (a button, an e-mail token), else the
        most recent open survey question or RSVP sent to this endpoint; a closed one only when
        no open one was sent (the reply is then a late answer)."""
        if match.guardian is None:
            return None
        candidates: list[OutboxMessage] = []
        if match.message is not None and (match.message.payload or {}).get("question_id"):
            candidates.append(match.message)
        else:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.guardian_id == match.guardian.id, OutboxMessage.status.in_(SEEN))
                .order_by(OutboxMessage.id.desc())
                .limit(200)
            )
            endpoint_id = match.endpoint.id if match.endpoint is not None else None
            for row in rows:
                payload = row.payload or {}
                if payload.get("question_id") and payload.get("survey_id") and row.endpoint_id == endpoint_id:
                    candidates.append(row)
        closed: Prompt | None = None
        seen: set[tuple[int, str]] = set()
        for row in candidates:
            payload = row.payload or {}
            key = (int(payload["survey_id"]), str(payload["question_id"]))
            if key in seen:
                continue
            seen.add(key)
            prompt = await self._prompt(session, row, match.guardian.id, key)
            if prompt is None:
                continue
            if prompt.closed is None:
                prompt.passed_over = closed  # the open prompt is older than a closed one
                return prompt
            closed = closed or prompt
        return closed

    async def _prompt(
        self, session: AsyncSession, row: OutboxMessage, guardian_id: int, key: tuple[int, str]
    ) -> Prompt | None:
        survey_id, question_id = key
        survey_row = await session.get(Survey, survey_id)
        if survey_row is None:
            return None
        survey_session = await session.scalar(
            select(SurveySession).where(
                SurveySession.survey_id == survey_id, SurveySession.guardian_id == guardian_id
            )
        )
        if survey_session is None:
            return None
        spec = SurveySpec.model_validate(survey_row.definition)
        try:
            question = spec.question(question_id)
        except KeyError:
            return None
        now = utcnow()
        closed = None
        if survey_session.status == "closed" or (
            survey_row.close_at is not None and survey_row.close_at <= now
        ):
            closed = notes.SURVEY_CLOSED
        elif question.rsvp and survey_row.event_id:
            event = await session.get(Event, survey_row.event_id)
            if event is not None and event.starts_at <= now:
                closed = notes.EVENT_STARTED
        return Prompt(survey_session, survey_row, spec, question, row, closed)

    async def record_for_staff(self, inbound_id: int, value: str, staff: str | None = None) -> str:
        """Record (or correct) the answer of an inbox item in one action, for the prompt it was
        bound to; the family moves on as with its own answer (no RSVP confirmation: staff answer
        the family themselves). Returns the classification."""
        from gateway.storage.models import Endpoint, Family, Guardian

        async with self.gateway.db.session() as session:
            record = await session.get(InboundRecord, inbound_id)
            if record is None or record.survey_id is None or record.guardian_id is None:
                raise LookupError(f"inbox item {inbound_id} answers no survey question or RSVP")
            guardian = await session.get(Guardian, record.guardian_id)
            survey_row = await session.get(Survey, record.survey_id)
            survey_session = await session.scalar(
                select(SurveySession).where(
                    SurveySession.survey_id == record.survey_id,
                    SurveySession.guardian_id == record.guardian_id,
                )
            )
            if guardian is None or survey_row is None or survey_session is None:
                raise LookupError(f"inbox item {inbound_id}: its survey or family is gone")
            spec = SurveySpec.model_validate(survey_row.definition)
            question = spec.question(record.question_id or "")
            if question.type != "text" and value not in {c.value for c in question.choices}:
                allowed = ", ".join(c.value for c in question.choices)
                raise ValueError(f"{value!r} is not an answer to {question.id} (use one of: {allowed})")
            message = (
                await session.get(OutboxMessage, record.in_reply_to_id) if record.in_reply_to_id else None
            )
            prompt = Prompt(survey_session, survey_row, spec, question, message)
            family = await session.get(Family, guardian.family_id)
            endpoint = await session.get(Endpoint, record.endpoint_id) if record.endpoint_id else None
            match = _StaffMatch(guardian, family, endpoint)
            classification = await self.apply_answer(
                session, prompt, value, record.text, match, record=record, confirm=False
            )
            record.action = f"answer {value!r} recorded by {staff or 'staff'}"
            # The note says what is recorded now, not what the gateway had read before.
            label = {c.value: c.label for c in question.choices}.get(value, value)
            _leave_note(record, notes.STAFF_RECORDED, spec, question, answer=label)
            record.read = True
            await session.commit()
            return classification

    async def _shown_choices(
        self,
        session: AsyncSession,
        survey_session: SurveySession,
        spec: SurveySpec,
        question: Question,
        related: OutboxMessage | None,
    ) -> list[list[Any]]:
        """The choices of ``question`` exactly as the family was shown them (labels and synonyms in
        their language): from the message the reply answers, else the last one that asked this
        question, else composed again (same strings, from the translation memory)."""
        for candidate in (related, await self._last_question_message(session, survey_session, question)):
            payload = (candidate.payload or {}) if candidate is not None else {}
            if payload.get("question_id") == question.id and payload.get("choices"):
                return list(payload["choices"])
        composer = self.gateway.composer
        strings = await composer.strings(
            survey_session.language, (), composer.question_texts(question, spec), session=session
        )
        return shown_choices(composer.question_context(question, spec, strings))

    async def _last_question_message(
        self, session: AsyncSession, survey_session: SurveySession, question: Question
    ) -> OutboxMessage | None:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.guardian_id == survey_session.guardian_id,
                OutboxMessage.channel == survey_session.channel,
            )
            .order_by(OutboxMessage.id.desc())
            .limit(20)
        )
        for row in rows:
            payload = row.payload or {}
            if (payload.get("survey_id"), payload.get("question_id")) == (
                survey_session.survey_id,
                question.id,
            ):
                return row
        return None

    async def _send_question(
        self,
        session: AsyncSession,
        survey_session: SurveySession,
        spec: SurveySpec,
        question: Question,
        match: Any,
        template: str = "survey_question",
    ) -> None:
        gw = self.gateway
        language = survey_session.language
        strings = await gw.composer.strings(
            language, [template], gw.composer.question_texts(question, spec), session=session
        )
        question_ctx = gw.composer.question_context(question, spec, strings)
        await queue_conversation(
            gw,
            session,
            template=template,
            channel_name=survey_session.channel,
            address=survey_session.address,
            language=language,
            guardian=match.guardian,
            family=match.family,
            endpoint=match.endpoint,
            strings=strings,
            context={"question": question_ctx, "survey": {"id": spec.id, "title": strings.text(spec.title)}},
            payload={
                "survey_id": survey_session.survey_id,
                "question_id": question.id,
                "choices": shown_choices(question_ctx),
            },
        )

    async def _confirm_rsvp(
        self,
        session: AsyncSession,
        survey_session: SurveySession,
        survey_row: Survey,
        value: str,
        match: Any,
    ) -> None:
        gw = self.gateway
        event = await session.get(Event, survey_row.event_id) if survey_row.event_id else None
        if event is None:
            return
        language = survey_session.language
        ctx = event_context(event)
        strings = await gw.composer.strings(
            language, ["rsvp_confirmation"], [ctx["title"], ctx["description"], ctx["place"]], session=session
        )
        for key in ("title", "description", "place"):
            ctx[key] = strings.text(ctx[key])
        await queue_conversation(
            gw,
            session,
            template="rsvp_confirmation",
            channel_name=survey_session.channel,
            address=survey_session.address,
            language=language,
            guardian=match.guardian,
            family=match.family,
            endpoint=match.endpoint,
            strings=strings,
            context={"event": localize_event(ctx, match.guardian.timezone), "answer": value},
        )

    # -- results ------------------------------------------------------------------------
    async def results(self, survey_ref: str | int, schools_scope: list[str] | None = None) -> dict[str, Any]:
        """Answers by question, language and school, respondents and response rate."""
        async with self.gateway.db.session() as session:
            survey = await _find_survey(session, survey_ref)
            spec = SurveySpec.model_validate(survey.definition)
            sessions = list(
                await session.scalars(select(SurveySession).where(SurveySession.survey_id == survey.id))
            )
            schools: dict[int, set[str]] = defaultdict(set)
            family_ids = {s.family_id for s in sessions}
            if family_ids:
                for family_id, school in await session.execute(
                    select(Student.family_id, Student.school).where(Student.family_id.in_(family_ids))
                ):
                    if school:
                        schools[family_id].add(school)
            if schools_scope is not None:
                allowed = {s.casefold() for s in schools_scope}
                sessions = [s for s in sessions if {x.casefold() for x in schools[s.family_id]} & allowed]
            by_session = {s.id: s for s in sessions}
            answers = [
                a
                for a in await session.scalars(
                    select(SurveyAnswer).where(SurveyAnswer.survey_id == survey.id)
                )
                if a.session_id in by_session
            ]
        questions = []
        for question in spec.questions:
            counts: Counter[str] = Counter()
            by_language: dict[str, Counter[str]] = defaultdict(Counter)
            by_school: dict[str, Counter[str]] = defaultdict(Counter)
            for answer in answers:
                if answer.question_id != question.id:
                    continue
                counts[answer.value] += 1
                by_language[answer.language][answer.value] += 1
                for school in schools[by_session[answer.session_id].family_id] or {"(none)"}:
                    by_school[school][answer.value] += 1
            questions.append(
                {
                    "id": question.id,
                    "type": question.type,
                    "text": question.text,
                    "answers": dict(counts),
                    "by_language": {k: dict(v) for k, v in sorted(by_language.items())},
                    "by_school": {k: dict(v) for k, v in sorted(by_school.items())},
                }
            )
        respondents = len({a.session_id for a in answers})
        return {
            "survey_id": spec.id,
            "title": spec.title,
            "questions": questions,
            "sessions": len(sessions),
            "respondents": respondents,
            "response_rate": round(respondents / len(sessions), 4) if sessions else 0.0,
        }

    async def non_respondents(self, survey_id: int) -> set[int]:
        """Guardians with an open session and no answer yet."""
        async with self.gateway.db.session() as session:
            answered = select(SurveyAnswer.session_id).where(SurveyAnswer.survey_id == survey_id)
            rows = await session.scalars(
                select(SurveySession.guardian_id).where(
                    SurveySession.survey_id == survey_id,
                    SurveySession.status == "open",
                    SurveySession.id.not_in(answered),
                )
            )
            return set(rows)

    async def declined(self, survey_id: int) -> set[int]:
        """Guardians who answered ``no`` to the RSVP question."""
        async with self.gateway.db.session() as session:
            rows = await session.scalars(
                select(SurveySession.guardian_id)
                .join(SurveyAnswer, SurveyAnswer.session_id == SurveySession.id)
                .where(SurveySession.survey_id == survey_id, SurveyAnswer.value == "no")
            )
            return set(rows)

    async def rsvp_counts(self, event_external_id: str) -> dict[str, int]:
        """yes / no / maybe counts for an event."""
        async with self.gateway.db.session() as session:
            rows = await session.execute(
                select(SurveyAnswer.value, func.count(SurveyAnswer.id))
                .join(Survey, Survey.id == SurveyAnswer.survey_id)
                .join(Event, Event.id == Survey.event_id)
                .where(Event.external_id == event_external_id, SurveyAnswer.question_id == "rsvp")
                .group_by(SurveyAnswer.value)
            )
            return {value: count for value, count in rows}


def tapped_button_value(related: OutboxMessage | None, index: Any) -> str | None:
    """The value of button ``index`` of the outbox message a tap came from (Telegram hands a
    button's position when its value does not fit in ``callback_data``); None when unknown."""
    if related is None or isinstance(index, bool) or not isinstance(index, int | str):
        return None
    try:
        position = int(index)
    except ValueError:
        return None
    buttons = (related.payload or {}).get("buttons") or []
    if not 0 <= position < len(buttons):
        return None
    button = buttons[position]
    return str(button[0]) if isinstance(button, list | tuple) and button else None


def _leave_note(
    record: InboundRecord,
    forms: dict[bool, str],
    spec: SurveySpec,
    question: Question,
    *,
    why: str | None = None,
    answer: str | None = None,
    later: str | None = None,
) -> None:
    """Leave staff a note about the prompt a reply answers (the RSVP to an event, or a survey
    question): its English text, and its message id for the interface language."""
    params = {"title": spec.title, "question": question.id}
    if why is not None:
        params["why"] = why
    if answer is not None:
        params["answer"] = answer
    if later is not None:
        params["later"] = later
    note = StaffNote(forms[question.rsvp], params, ("why",) if why is not None else ())
    record.note = note.text()
    record.note_data = note.as_json()


@dataclass
class _StaffMatch:
    """Who an answer recorded by staff is for (the shape of the pipeline's match)."""

    guardian: Any
    family: Any
    endpoint: Any
    message: Any = None


async def _find_survey(session: AsyncSession, ref: str | int) -> Survey:
    survey = None
    if isinstance(ref, int) or str(ref).isdigit():
        survey = await session.get(Survey, int(ref))
    if survey is None:
        survey = await session.scalar(select(Survey).where(Survey.external_id == str(ref)))
    if survey is None:
        raise LookupError(f"no survey {ref!r}")
    return survey
