"""SQLAlchemy models: the gateway's whole state, one table per concept.

```
families ─┬─ guardians ── endpoints (kind, address, opted_out, invalid) ── endpoint_consents (per channel)
          └─ students (school, grade, tags)
events ── broadcasts ── outbox_messages ── message_status_events
surveys ── survey_sessions ── survey_answers
inbound_messages                translation_memory      translation_stats
link_tokens   staff   audit_log   dispatch_counters
pending_status_reports (delivery reports waiting for their provider id)
scheduled_jobs (reminders and closes; the scheduler is fed from it)
```
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AttachmentFile",
    "AuditEntry",
    "Base",
    "Broadcast",
    "Endpoint",
    "EndpointConsent",
    "Event",
    "Family",
    "Guardian",
    "InboundRecord",
    "LinkToken",
    "OutboxMessage",
    "PendingStatusReport",
    "RateCounter",
    "ScheduledJob",
    "SignInFailure",
    "StaffMember",
    "StatusEvent",
    "Student",
    "Survey",
    "SurveyAnswer",
    "SurveySession",
    "TranslationMemoryEntry",
    "TranslationStat",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, aware, UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Family(Base):
    """A household: guardians and students under one ``family_id`` from the district's SIS."""

    __tablename__ = "families"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    """The folded family id, guardian and student names (:mod:`gateway.domain.search_text`),
    kept current by every import: what the accent- and case-insensitive search matches."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    guardians: Mapped[list[Guardian]] = relationship(
        back_populates="family", cascade="all, delete-orphan", order_by="Guardian.id"
    )
    students: Mapped[list[Student]] = relationship(
        back_populates="family", cascade="all, delete-orphan", order_by="Student.id"
    )


class Guardian(Base):
    """A parent or carer, with their own language, time zone and endpoints."""

    __tablename__ = "guardians"
    __table_args__ = (UniqueConstraint("family_id", "name_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(35), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    timezone_assumed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The import gave no time zone: ``timezone`` is the district default, and quiet hours use
    the most restrictive window across the district's time zones."""
    preferred_channel: Mapped[str | None] = mapped_column(String(32))
    family: Mapped[Family] = relationship(back_populates="guardians")
    endpoints: Mapped[list[Endpoint]] = relationship(
        back_populates="guardian", cascade="all, delete-orphan", order_by="Endpoint.id"
    )


class Endpoint(Base):
    """One address of a guardian of one address kind.

    ``opted_out`` / ``invalid`` here apply to every channel reaching the address (the family
    said STOP ALL, staff opted them out everywhere, or the state predates per-channel consent);
    what one channel learns (STOP by SMS, a blocked bot, a bounce) is kept per channel in
    :class:`EndpointConsent`.
    """

    __tablename__ = "endpoints"
    __table_args__ = (
        UniqueConstraint("guardian_id", "kind", "address"),
        Index("ix_endpoints_kind_address", "kind", "address"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None]
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    invalid_reason: Mapped[str | None] = mapped_column(String(200))
    guardian: Mapped[Guardian] = relationship(back_populates="endpoints")


class EndpointConsent(Base):
    """The state of one endpoint on one channel: opted out there (STOP sent on that channel, a
    bot blocked) or invalid there (a provider said the address does not exist for it). Other
    channels reaching the same address are not affected."""

    __tablename__ = "endpoint_consents"
    __table_args__ = (UniqueConstraint("endpoint_id", "channel"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    opted_out_at: Mapped[datetime | None]
    invalid: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    invalid_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Student(Base):
    """A child: school, grade and tags are what audiences filter on."""

    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("family_id", "name_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    school: Mapped[str | None] = mapped_column(String(200), index=True)
    grade: Mapped[str | None] = mapped_column(String(16))
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    family: Mapped[Family] = relationship(back_populates="students")


class LinkToken(Base):
    """A single-use onboarding token (Telegram deep link) for one guardian."""

    __tablename__ = "link_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="telegram")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Event(Base):
    """A workshop or school event that invitations and reminders are about."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    school: Mapped[str | None] = mapped_column(String(200))
    place: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    timezone: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(Text, default="")
    rsvp: Mapped[bool] = mapped_column(Boolean, default=False)
    reminders: Mapped[list[Any]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Survey(Base):
    """A sequence of questions (an RSVP is a survey of one question tied to an event)."""

    __tablename__ = "surveys"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    close_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Broadcast(Base):
    """Template + context + audience + channel policy + send time."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="message")
    template: Mapped[str] = mapped_column(String(100))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audience: Mapped[str] = mapped_column(Text, default="")
    channels: Mapped[list[Any] | None] = mapped_column(JSON)
    policy: Mapped[str] = mapped_column(String(16), default="preferred")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    send_at: Mapped[datetime] = mapped_column(default=utcnow)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    #: SHA-256 of the canonical request the key was first used with (a reuse with another
    #: request is refused); the key is cleared once it expires (``http.idempotency_key_hours``).
    idempotency_hash: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttachmentFile(Base):
    """A file (PDF or image) a liaison attached to an announcement: kept in the data folder and
    served at an unguessable URL (``/files/{token}/{filename}``)."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """One message for one endpoint, written before any send; the dispatcher's work queue."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at", "id"),
        Index("ix_outbox_provider", "channel", "provider_message_id"),
        Index("ix_outbox_broadcast", "broadcast_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"))
    family_id: Mapped[int | None] = mapped_column(ForeignKey("families.id", ondelete="SET NULL"))
    guardian_id: Mapped[int | None] = mapped_column(
        ForeignKey("guardians.id", ondelete="SET NULL"), index=True
    )
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("endpoints.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(35))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    conversation: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    reply_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_reason: Mapped[str | None] = mapped_column(Text)
    cost_units: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusEvent(Base):
    """The status history of an outbox message."""

    __tablename__ = "message_status_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundRecord(Base):
    """A reply as received, what the pipeline made of it, and the staff inbox state."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        # The last message per sender on a channel (WhatsApp's 24-hour window).
        Index("ix_inbound_channel_sender", "channel", "sender", "received_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str] = mapped_column(String(320))
    family_id: Mapped[int | None] = mapped_column(ForeignKey("families.id", ondelete="SET NULL"))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id", ondelete="SET NULL"))
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("endpoints.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(35))
    """The language the reply is taken to be in (the guardian's, or what detection found)."""
    detected_language: Mapped[str | None] = mapped_column(String(35))
    """What language detection said, when it said anything."""
    translation: Mapped[str | None] = mapped_column(Text)
    """The reply in ``translation.staff_language``; None when not needed or not possible."""
    translation_origin: Mapped[str | None] = mapped_column(String(16))
    translation_engine: Mapped[str | None] = mapped_column(String(64))
    needs_interpreter: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Staff asked for a person to read (and answer) it: no engine covers the language."""
    classification: Mapped[str] = mapped_column(String(32), default="unknown")
    action: Mapped[str | None] = mapped_column(Text)
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id"))
    """The message the reply answers: the prompt (a survey question or an RSVP) it was bound to,
    or the message a button or an e-mail token names."""
    survey_id: Mapped[int | None] = mapped_column(Integer)
    question_id: Mapped[str | None] = mapped_column(String(100))
    recorded_answer: Mapped[str | None] = mapped_column(String(200))
    """The answer value recorded from this reply (by the gateway or confirmed by staff)."""
    suggested_answer: Mapped[str | None] = mapped_column(String(200))
    """An answer the reply mentions, for staff to confirm; never recorded on its own."""
    note: Mapped[str | None] = mapped_column(Text)
    #: The note as message id + parameters, read in each staff member's interface language.
    note_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Why the reply is in the inbox when that is not obvious (a late answer, a closed survey)."""
    possible_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    inbox: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The text was cut at ``inbound.max_text_chars``; the whole text is in ``raw``."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Processing attempts that raised (see ``inbound.max_attempts``)."""
    next_attempt_at: Mapped[datetime | None]
    """A pending reply is not processed again before this (backoff after a failure, or the
    lease of the process handling it right now)."""
    last_error: Mapped[str | None] = mapped_column(Text)


class PendingStatusReport(Base):
    """A delivery report for a provider id that no outbox message carries yet: the provider
    called back before the send returned. Applied when the id is recorded; dropped (with a
    metric) when older than ``intake.pending_reports_max_age_hours`` or beyond
    ``intake.pending_reports_max``. One row per status, so a repeated report is stored once."""

    __tablename__ = "pending_status_reports"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", "status"),
        Index("ix_pending_status_reports_received_at", "received_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_reason: Mapped[str | None] = mapped_column(Text)
    endpoint_state: Mapped[str | None] = mapped_column(String(16))
    retry_after: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledJob(Base):
    """A timed job (event reminder, survey reminder or close), written in the same transaction
    as what it belongs to. The source of truth the leader's scheduler is fed from.

    ``status``: ``pending`` → ``running`` → ``done`` | ``failed``; ``missed`` when the gateway
    was down for longer than ``scheduler.misfire_grace_seconds`` past ``run_at``; ``cancelled``
    when what it belongs to was cancelled before it ran.
    """

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_status", "status", "run_at"),)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    func: Mapped[str] = mapped_column(String(200))
    """``module:function`` of an async or plain function taking ``args``."""
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    run_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SurveySession(Base):
    """One guardian's progress through one survey."""

    __tablename__ = "survey_sessions"
    __table_args__ = (UniqueConstraint("survey_id", "guardian_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"))
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(35))
    current_question: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="open")
    reprompts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurveyAnswer(Base):
    """The current answer of one session to one question (a changed answer replaces it)."""

    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("session_id", "question_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("survey_sessions.id", ondelete="CASCADE"))
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(35))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranslationMemoryEntry(Base):
    """A translated string, reused for every family and broadcast after the first time."""

    __tablename__ = "translation_memory"
    __table_args__ = (UniqueConstraint("source_language", "target_language", "source_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source_language: Mapped[str] = mapped_column(String(35))
    target_language: Mapped[str] = mapped_column(String(35))
    source_key: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    translated_text: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), default="machine")
    engine: Mapped[str | None] = mapped_column(String(32))
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranslationStat(Base):
    """Counters per target language: where the texts families read came from."""

    __tablename__ = "translation_stats"
    __table_args__ = (UniqueConstraint("language", "counter"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(35))
    counter: Mapped[str] = mapped_column(String(32))
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class RateCounter(Base):
    """Sends per channel (or recipient) per time slot, shared by every worker process."""

    __tablename__ = "dispatch_counters"
    __table_args__ = (UniqueConstraint("key", "slot"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    slot: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[float] = mapped_column(Float, default=0)


class StaffMember(Base):
    """A district staff account (admin or liaison), scoped to schools."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    schools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str | None] = mapped_column(String(128), index=True)
    language: Mapped[str] = mapped_column(String(35), default="en")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who changed what, when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SignInFailure(Base):
    """A wrong password at the web app's sign-in, counted per account and per client address
    (:mod:`gateway.sign_in`); rows older than the throttling window are deleted."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key", "scope", "key", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    """``account`` or ``address``."""
    key: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the normalised e-mail or the client address (neither is stored as such)."""
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
