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
from gateway.inbound.answers import AnswerMatcher
from gateway.outbox.conversation import queue_conversation
from gateway.outbox.planner import event_context, shown_choices
from gateway.rendering.composer import localize_event
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

__all__ = ["AnsweredReply", "SurveyRuntime", "store_survey", "tapped_button_value"]


@dataclass(frozen=True)
class AnsweredReply:
    """How the survey engine took a reply."""

    classification: str
    label: str | None = None


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
        """Take the reply as an answer if it is one; None when it is not about a survey."""
        guardian = match.guardian
        survey_session = await self._session_for(session, message, guardian.id, match.message)
        if survey_session is None:
            return None
        survey_row = await session.get(Survey, survey_session.survey_id)
        if survey_row is None:
            return None
        spec = SurveySpec.model_validate(survey_row.definition)
        question_id = survey_session.current_question
        if match.message is not None and (match.message.payload or {}).get("question_id"):
            question_id = match.message.payload["question_id"]
        try:
            question = spec.question(question_id or "")
        except KeyError:
            return None
        language = guardian.language
        shown = await self._shown_choices(session, survey_session, spec, question, match.message)
        labels = {str(value): str(label) for value, label, *_ in shown}
        choice = message.choice
        if choice is None:
            choice = tapped_button_value(match.message, message.raw.get("button_index"))
        value = (
            choice if choice is not None else self.matcher.match(question, message.text, language, shown)
        )
        if value is not None and question.type != "text" and value not in {c.value for c in question.choices}:
            value = None
        completed = survey_session.status != "open"
        linked = match.message is not None and (match.message.payload or {}).get("question_id") == question.id
        if completed and question.type == "text" and not linked:
            # The survey is over: a later message is a new conversation for the staff inbox,
            # not a replacement of the family's closing comment.
            return None
        if value is None:
            if completed or _looks_like_free_text(message.text):
                # A question or a story, not a failed attempt at an answer: the staff inbox
                # takes it, and the survey stays where it was.
                return None
            if survey_session.reprompts == 0:
                survey_session.reprompts = 1
                survey_session.updated_at = utcnow()
                await self._send_question(
                    session, survey_session, spec, question, match, template="survey_reprompt"
                )
                record.action = f"re-prompted for {spec.id}/{question.id}"
                return AnsweredReply("survey_unmatched")
            record.action = f"no match for {spec.id}/{question.id} after a re-prompt: filed in the inbox"
            return None
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
                    raw_text=message.text,
                    language=language,
                )
            )
        else:
            previous.value, previous.raw_text, previous.answered_at = value, message.text, utcnow()
        survey_session.reprompts = 0
        survey_session.updated_at = utcnow()
        classification = "rsvp" if question.rsvp else "survey_answer"
        label = labels.get(value, value)
        record.action = f"{'changed' if previous else 'recorded'} answer {value!r} to {spec.id}/{question.id}"
        if previous is not None and completed:
            if question.rsvp:
                await self._confirm_rsvp(session, survey_session, survey_row, value, match)
            return AnsweredReply(classification, label)
        following = spec.next_question(question.id, value)
        if following is not None and not (
            previous is not None and survey_session.current_question != question.id
        ):
            survey_session.current_question = following.id
            await self._send_question(session, survey_session, spec, following, match)
        elif following is None:
            survey_session.status = "completed"
            if question.rsvp:
                await self._confirm_rsvp(session, survey_session, survey_row, value, match)
            else:
                strings = await self.gateway.composer.strings(
                    language, ["survey_closing"], [spec.closing_message, spec.title], session=session
                )
                await queue_conversation(
                    self.gateway,
                    session,
                    template="survey_closing",
                    channel_name=message.channel,
                    address=message.sender,
                    language=language,
                    guardian=guardian,
                    family=match.family,
                    endpoint=match.endpoint,
                    strings=strings,
                    context={
                        "survey": {"id": spec.id, "title": strings.text(spec.title)},
                        "closing": strings.text(spec.closing_message),
                    },
                )
        return AnsweredReply(classification, label)

    async def _session_for(
        self, session: AsyncSession, message: InboundMessage, guardian_id: int, related: OutboxMessage | None
    ) -> SurveySession | None:
        survey_id = (related.payload or {}).get("survey_id") if related is not None else None
        query = select(SurveySession).where(SurveySession.guardian_id == guardian_id)
        if survey_id:
            query = query.where(SurveySession.survey_id == survey_id)
        open_session = await session.scalar(
            query.where(SurveySession.status == "open").order_by(SurveySession.updated_at.desc()).limit(1)
        )
        if open_session is not None:
            return open_session
        return await session.scalar(
            query.where(SurveySession.status == "completed")
            .order_by(SurveySession.updated_at.desc())
            .limit(1)
        )

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


def _looks_like_free_text(text: str) -> bool:
    """More than a few words, or a question: someone is telling or asking us something."""
    from gateway.inbound.normalize import tokens

    return len(tokens(text)) > 3 or any(mark in text for mark in "?？؟;")


async def _find_survey(session: AsyncSession, ref: str | int) -> Survey:
    survey = None
    if isinstance(ref, int) or str(ref).isdigit():
        survey = await session.get(Survey, int(ref))
    if survey is None:
        survey = await session.scalar(select(Survey).where(Survey.external_id == str(ref)))
    if survey is None:
        raise LookupError(f"no survey {ref!r}")
    return survey
