"""Who answered what, by name: an event's RSVP list and a survey's answers per guardian.

``gateway event rsvps`` / ``GET /api/events/{id}/rsvps`` and ``gateway survey responses`` /
``GET /api/surveys/{id}/responses``, narrowed to a staff member's schools when a scope is given.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.surveys import SurveySpec
from gateway.exports import safe_cell
from gateway.storage.models import Event, Family, Guardian, Student, Survey, SurveyAnswer, SurveySession

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["RSVP_VALUES", "event_rsvps", "responses_csv", "survey_responses"]

RSVP_VALUES = ("yes", "no", "maybe")


def _scoped(scope: list[str] | None) -> Any:
    return select(Student.family_id).where(
        func.lower(Student.school).in_([s.casefold() for s in scope or []])
    )


async def _sessions(
    session: AsyncSession, survey_id: int, scope: list[str] | None
) -> list[tuple[SurveySession, str, str]]:
    """The survey's sessions with the family's id and the guardian's name, in guardian order."""
    query = (
        select(SurveySession, Family.external_id, Guardian.name)
        .join(Guardian, Guardian.id == SurveySession.guardian_id)
        .join(Family, Family.id == SurveySession.family_id)
        .where(SurveySession.survey_id == survey_id)
        .order_by(Family.external_id, Guardian.id)
    )
    if scope is not None:
        query = query.where(SurveySession.family_id.in_(_scoped(scope)))
    return [(row, fid, name) for row, fid, name in (await session.execute(query)).all()]


async def event_rsvps(gw: Gateway, event_ref: str, scope: list[str] | None = None) -> dict[str, Any] | None:
    """``{"event_id", "title", "yes", "no", "maybe", "no_answer"}``, each a list of
    ``{"family_id", "guardian", "language", "channel", "answered_at"}``; None for no such event
    (or one outside ``scope``)."""
    async with gw.db.session() as session:
        event = await session.scalar(select(Event).where(Event.external_id == event_ref))
        if event is None and event_ref.isdigit():
            event = await session.get(Event, int(event_ref))
        if event is None:
            return None
        if (
            scope is not None
            and event.school
            and event.school.casefold() not in {s.casefold() for s in scope}
        ):
            return None
        out: dict[str, Any] = {"event_id": event.external_id, "title": event.title}
        out.update({value: [] for value in (*RSVP_VALUES, "no_answer")})
        survey = await session.scalar(select(Survey).where(Survey.event_id == event.id).order_by(Survey.id))
        if survey is None:
            return out
        spec = SurveySpec.model_validate(survey.definition)
        question = next((q for q in spec.questions if q.rsvp), None)
        if question is None:
            return out
        answers = {
            a.session_id: a
            for a in await session.scalars(
                select(SurveyAnswer).where(
                    SurveyAnswer.survey_id == survey.id, SurveyAnswer.question_id == question.id
                )
            )
        }
        for row, family_id, guardian in await _sessions(session, survey.id, scope):
            answer = answers.get(row.id)
            item = {
                "family_id": family_id,
                "guardian": guardian,
                "language": row.language,
                "channel": row.channel,
                "answered_at": answer.answered_at.isoformat() if answer else None,
            }
            bucket = answer.value if answer is not None and answer.value in RSVP_VALUES else "no_answer"
            out[bucket].append(item)
        return out


async def survey_responses(
    gw: Gateway, survey_ref: str, scope: list[str] | None = None
) -> dict[str, Any] | None:
    """``{"survey_id", "title", "questions": [{"id", "type", "text"}], "responses": [...]}`` with
    one response per guardian: ``{"family_id", "guardian", "language", "channel", "status",
    "answered_at", "answers": {question_id: value}}``; None for no such survey."""
    async with gw.db.session() as session:
        survey = await session.scalar(select(Survey).where(Survey.external_id == survey_ref))
        if survey is None and survey_ref.isdigit():
            survey = await session.get(Survey, int(survey_ref))
        if survey is None:
            return None
        spec = SurveySpec.model_validate(survey.definition)
        answers: dict[int, dict[str, SurveyAnswer]] = {}
        for answer in await session.scalars(select(SurveyAnswer).where(SurveyAnswer.survey_id == survey.id)):
            answers.setdefault(answer.session_id, {})[answer.question_id] = answer
        responses = []
        for row, family_id, guardian in await _sessions(session, survey.id, scope):
            given = answers.get(row.id, {})
            latest = max((a.answered_at for a in given.values()), default=None)
            responses.append(
                {
                    "family_id": family_id,
                    "guardian": guardian,
                    "language": row.language,
                    "channel": row.channel,
                    "status": row.status,
                    "answered_at": latest.isoformat() if latest else None,
                    "answers": {q.id: given[q.id].value for q in spec.questions if q.id in given},
                }
            )
    return {
        "survey_id": spec.id,
        "title": spec.title,
        "questions": [{"id": q.id, "type": q.type, "text": q.text} for q in spec.questions],
        "responses": responses,
    }


def responses_csv(data: dict[str, Any]) -> str:
    """One row per guardian, one column per question (spreadsheet-safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    questions = [q["id"] for q in data["questions"]]
    writer.writerow(["family_id", "guardian", "language", "channel", "status", "answered_at", *questions])
    for row in data["responses"]:
        writer.writerow(
            [
                safe_cell(row[key])
                for key in ("family_id", "guardian", "language", "channel", "status", "answered_at")
            ]
            + [safe_cell(row["answers"].get(q, "")) for q in questions]
        )
    return buffer.getvalue()
