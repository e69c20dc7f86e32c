"""The staff inbox: free-text replies and unmatched answers, urgent first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.languages import display_name
from gateway.domain.surveys import SurveySpec
from gateway.inbound.notes import ENGINE_FAILED, NO_ENGINE
from gateway.staff_text import StaffNote
from gateway.storage.models import Event, Family, Guardian, InboundRecord, Student, Survey

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["flag_interpreter", "list_inbox", "staff_note", "translation_note"]


def translation_note(
    gw: Gateway, record: InboundRecord, gettext: Callable[..., str] | None = None, ui_language: str = "en"
) -> str | None:
    """Why there is no translation of a reply, in plain words for staff (in ``ui_language``
    through ``gettext``; English by default); None when there is one or none is needed."""
    staff = gw.config.translation.staff_language
    language = record.language
    if record.translation is not None or not language or language.split("-")[0] == staff.split("-")[0]:
        return None
    names = {"source": display_name(language, ui_language), "target": display_name(staff, ui_language)}
    why = NO_ENGINE if not gw.translation.can_translate(language, staff) else ENGINE_FAILED
    note = StaffNote(why, names)
    return note.text(gettext) if gettext else note.text()


def staff_note(record: InboundRecord, gettext: Callable[..., str] | None = None) -> str | None:
    """The note the gateway left on a reply, in the interface language of ``gettext``."""
    note = StaffNote.from_json(record.note_data)
    if note is None or gettext is None:
        return record.note
    return note.text(gettext)


async def list_inbox(
    gw: Gateway,
    *,
    unread: bool = False,
    schools: list[str] | None = None,
    needs_interpreter: bool | None = None,
    urgent: bool | None = None,
    language: str | None = None,
    limit: int = 500,
    gettext: Callable[..., str] | None = None,
    ui_language: str = "en",
) -> list[dict[str, Any]]:
    """The ``inbox --json`` shape; notes for staff in English, or through ``gettext`` in
    ``ui_language`` (the web app's interface language)."""
    async with gw.db.session() as session:
        query = (
            select(InboundRecord, Family.external_id)
            .outerjoin(Family, Family.id == InboundRecord.family_id)
            .where(InboundRecord.inbox)
            .order_by(InboundRecord.urgent.desc(), InboundRecord.received_at.desc())
            .limit(limit)
        )
        if unread:
            query = query.where(InboundRecord.answered_at.is_(None), InboundRecord.read.is_(False))
        if needs_interpreter is not None:
            query = query.where(InboundRecord.needs_interpreter.is_(needs_interpreter))
        if urgent is not None:
            query = query.where(InboundRecord.urgent.is_(urgent))
        if language:
            query = query.where(InboundRecord.language == language)
        if schools is not None:
            from sqlalchemy import func

            from gateway.storage.models import Student

            query = query.where(
                InboundRecord.family_id.in_(
                    select(Student.family_id).where(
                        func.lower(Student.school).in_([s.casefold() for s in schools])
                    )
                )
            )
        rows = (await session.execute(query)).all()
        details = await _details(session, [record for record, _ in rows])
    items = []
    for record, family_id in rows:
        guardian, students, prompt = details(record)
        items.append(
            {
                "id": record.id,
                "family_id": family_id,
                "guardian_id": record.guardian_id,
                "guardian": guardian,
                "students": students,
                "channel": record.channel,
                "received_at": record.received_at.isoformat(),
                "text": record.text,
                "language": record.language,
                "detected_language": record.detected_language,
                "translation": record.translation,
                "translation_engine": record.translation_engine,
                "note": staff_note(record, gettext),
                "translation_note": translation_note(gw, record, gettext, ui_language),
                "needs_interpreter": record.needs_interpreter,
                "classification": record.classification,
                "in_reply_to": prompt,
                "recorded_answer": record.recorded_answer,
                "suggested_answer": record.suggested_answer,
                "possible_opt_out": record.possible_opt_out,
                "urgent": record.urgent,
                "answered": record.answered_at is not None,
                "truncated": record.truncated,
            }
        )
    return items


async def _details(session: AsyncSession, records: list[InboundRecord]) -> Any:
    """Guardian names, children and the prompt each reply answers, in three queries."""
    guardian_ids = {r.guardian_id for r in records if r.guardian_id}
    family_ids = {r.family_id for r in records if r.family_id}
    survey_ids = {r.survey_id for r in records if r.survey_id}
    names = dict(
        (await session.execute(select(Guardian.id, Guardian.name).where(Guardian.id.in_(guardian_ids)))).all()
    )
    children: dict[int, list[dict[str, Any]]] = {}
    for family_id, name, school, grade in await session.execute(
        select(Student.family_id, Student.name, Student.school, Student.grade)
        .where(Student.family_id.in_(family_ids))
        .order_by(Student.id)
    ):
        children.setdefault(family_id, []).append({"name": name, "school": school, "grade": grade})
    surveys: dict[int, tuple[str, dict[str, Any], str | None]] = {}
    for survey in await session.scalars(select(Survey).where(Survey.id.in_(survey_ids))):
        spec = SurveySpec.model_validate(survey.definition)
        event_id = None
        if survey.event_id:
            event_id = await session.scalar(select(Event.external_id).where(Event.id == survey.event_id))
        questions = {
            q.id: {"text": q.text, "type": q.type, "choices": [c.value for c in q.choices]}
            for q in spec.questions
        }
        surveys[survey.id] = (spec.id, questions, event_id)

    def details(record: InboundRecord) -> tuple[str | None, list[dict[str, Any]], dict[str, Any] | None]:
        prompt = None
        if record.survey_id in surveys:
            survey_id, questions, event_id = surveys[record.survey_id]
            question = questions.get(record.question_id or "") or {}
            prompt = {
                "message_id": record.in_reply_to_id,
                "survey_id": survey_id,
                "question_id": record.question_id,
                "question": question.get("text"),
                "type": question.get("type"),
                "choices": question.get("choices", []),
                "event_id": event_id,
            }
        elif record.in_reply_to_id:
            prompt = {"message_id": record.in_reply_to_id}
        return names.get(record.guardian_id), children.get(record.family_id or 0, []), prompt

    return details


async def flag_interpreter(gw: Gateway, inbound_id: int, needed: bool = True) -> bool:
    """Mark (or unmark) an inbox item as needing an interpreter; False when there is no such item."""
    async with gw.db.session() as session:
        record = await session.get(InboundRecord, inbound_id)
        if record is None or not record.inbox:
            return False
        record.needs_interpreter = needed
        await session.commit()
        return True
