"""Staff accounts: admins and school-scoped liaisons, argon2 passwords, bearer tokens.

Passwords are stored as argon2id hashes; API tokens are random (256 bits) and only their
SHA-256 is stored, so a database leak gives away neither. A liaison's ``schools`` are the scope
every listing, search, export, broadcast, survey result and inbox view is narrowed to; an
admin has no scope (``StaffIdentity.scope`` is ``None``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from gateway.audit import record_audit
from gateway.errors import GatewayError, StaffFacingError
from gateway.sign_in import clear_account
from gateway.staff_text import S_, StaffNote
from gateway.storage.models import StaffMember, Student

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "StaffError",
    "StaffIdentity",
    "add_staff",
    "authenticate_password",
    "authenticate_token",
    "change_password",
    "disable_staff",
    "find_staff",
    "get_staff",
    "known_schools",
    "reset_password",
    "set_disabled",
    "set_staff_language",
    "update_staff",
    "hash_password",
    "hash_token",
    "identity_by_id",
    "list_staff",
    "new_token",
    "verify_password",
]

ROLES = ("admin", "liaison")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "gw_"
_hasher = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so both cases take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffIdentity:
    """Who is asking, and what they may see."""

    id: int
    email: str
    role: str
    schools: tuple[str, ...]
    language: str = "en"
    password_stamp: str = ""
    """Changes whenever the password does: a session started under another password ends."""

    @property
    def is_admin(self) -> bool:
        """Admins see every school."""
        return self.role == "admin"

    @property
    def scope(self) -> list[str] | None:
        """The schools this person is limited to, or ``None`` for no limit."""
        return None if self.is_admin else list(self.schools)

    def in_scope(self, schools: list[str | None] | set[str | None]) -> bool:
        """Whether a family with students at ``schools`` is visible."""
        if self.is_admin:
            return True
        allowed = {s.casefold() for s in self.schools}
        return any(s is not None and s.casefold() in allowed for s in schools)


def _identity(row: StaffMember) -> StaffIdentity:
    return StaffIdentity(
        id=row.id,
        email=row.email,
        role=row.role,
        schools=tuple(row.schools or []),
        language=row.language or "en",
        password_stamp=password_stamp(row.password_hash),
    )


def password_stamp(password_hash: str | None) -> str:
    """A short fingerprint of a password hash, kept in sessions (not the hash itself)."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def hash_password(password: str) -> str:
    """An argon2id hash."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant work when there is no hash)."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh bearer token (shown once)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored for a token: its SHA-256 (the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StaffError(StaffFacingError):
    """A staff account change that cannot be made: ``note`` says why (in any interface
    language), ``field`` names the form field or JSON key it is about."""

    def __init__(self, note: StaffNote, field: str | None = None) -> None:
        super().__init__(note)
        self.field = field


def _normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 320 or " " in email:
        raise StaffError(
            StaffNote(S_("%(email)s is not an e-mail address."), {"email": repr(email)}), "email"
        )
    return email


def _check_role(role: str, schools: list[str]) -> None:
    if role not in ROLES:
        raise StaffError(StaffNote(S_("Role %(role)s: use admin or liaison."), {"role": repr(role)}), "role")
    if role == "liaison" and not schools:
        raise StaffError(StaffNote(S_("A liaison needs at least one school.")), "schools")


def _check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise StaffError(StaffNote(S_("Use a password of at least 8 characters.")), field)
    if len(password) > MAX_PASSWORD:
        raise StaffError(StaffNote(S_("Use a password of at most 1024 characters.")), field)


def _as_dict(row: StaffMember) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "schools": list(row.schools or []),
        "language": row.language,
        "disabled": row.disabled,
        "password": row.password_hash is not None,
        "token": row.token_hash is not None,
        "created_at": row.created_at.isoformat(),
    }


async def add_staff(
    gw: Gateway,
    email: str,
    role: str,
    schools: list[str] | None = None,
    *,
    password: str | None = None,
    token: bool = False,
    language: str = "en",
    actor: str = "cli",
    create_only: bool = False,
) -> dict[str, Any]:
    """Create (or update) an account; the ``staff add --json`` shape (``token`` only when made).

    ``create_only`` refuses an e-mail that already has an account (the web app's "add")."""
    email = _normalize_email(email)
    schools = [s.strip() for s in (schools or []) if s.strip()]
    _check_role(role, schools)
    if password is not None:
        _check_password(password)
    plain_token = new_token() if token else None
    async with gw.db.session() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.email == email))
        created = row is None
        if not created and create_only:
            raise StaffError(
                StaffNote(S_("There is already an account for %(email)s."), {"email": email}), "email"
            )
        if row is None:
            row = StaffMember(email=email, role=role, schools=schools, language=language)
            session.add(row)
        row.role, row.schools, row.language, row.disabled = role, schools, language, False
        if password is not None:
            row.password_hash = hash_password(password)
        if plain_token is not None:
            row.token_hash = hash_token(plain_token)
        await session.flush()
        await record_audit(
            session,
            actor,
            "staff.add" if created else "staff.update",
            email,
            {"role": role, "schools": schools, "password": password is not None, "token": token},
        )
        await session.commit()
    if password is not None and not created:  # a new password lifts a sign-in lockout
        await clear_account(gw, email)
    result: dict[str, Any] = {"email": email, "role": role, "schools": schools}
    if plain_token is not None:
        result["token"] = plain_token
    return result


async def list_staff(gw: Gateway) -> list[dict[str, Any]]:
    """Every account (never a hash)."""
    async with gw.db.session() as session:
        rows = await session.scalars(select(StaffMember).order_by(StaffMember.email))
        return [_as_dict(r) for r in rows]


async def get_staff(gw: Gateway, staff_id: int) -> dict[str, Any] | None:
    """One account (the ``staff list --json`` shape), or ``None``."""
    async with gw.db.session() as session:
        row = await session.get(StaffMember, staff_id)
        return None if row is None else _as_dict(row)


async def find_staff(gw: Gateway, email: str) -> dict[str, Any] | None:
    """The account of an e-mail, or ``None``."""
    async with gw.db.session() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.email == _normalize_email(email)))
        return None if row is None else _as_dict(row)


async def known_schools(gw: Gateway, schools: list[str]) -> list[str]:
    """``schools`` spelled as the imported families spell them; :class:`StaffError` naming the
    first one no student attends (a typo would give a liaison an empty list)."""
    async with gw.db.session() as session:
        found = {s.casefold(): s for s in await session.scalars(select(Student.school).distinct()) if s}
    result = []
    for school in schools:
        school = school.strip()
        if not school:
            continue
        if school.casefold() not in found:
            raise StaffError(
                StaffNote(S_("No student attends %(school)s: check the spelling."), {"school": school}),
                "schools",
            )
        if found[school.casefold()] not in result:
            result.append(found[school.casefold()])
    return result


async def _enabled_admins(session: Any) -> list[int]:
    return list(
        await session.scalars(
            select(StaffMember.id).where(StaffMember.role == "admin", StaffMember.disabled.is_(False))
        )
    )


async def _row(session: Any, staff_id: int) -> StaffMember:
    row = await session.get(StaffMember, staff_id)
    if row is None:
        raise StaffError(StaffNote(S_("There is no such staff account.")))
    return row


async def update_staff(
    gw: Gateway,
    staff_id: int,
    *,
    role: str | None = None,
    schools: list[str] | None = None,
    language: str | None = None,
    actor: str,
) -> dict[str, Any]:
    """Change an account's role, schools or interface language (``None``: unchanged). The last
    enabled admin stays an admin."""
    async with gw.db.session() as session:
        row = await _row(session, staff_id)
        new_role = row.role if role is None else role
        new_schools = (
            list(row.schools or []) if schools is None else [s.strip() for s in schools if s.strip()]
        )
        _check_role(new_role, new_schools)
        if row.role == "admin" and new_role != "admin" and not row.disabled:
            if await _enabled_admins(session) == [row.id]:
                raise StaffError(StaffNote(S_("This is the only admin: make another admin first.")), "role")
        changes = {
            key: value
            for key, value, old in (
                ("role", new_role, row.role),
                ("schools", new_schools, list(row.schools or [])),
                ("language", language, row.language),
            )
            if value is not None and value != old
        }
        row.role, row.schools = new_role, new_schools
        if language is not None:
            row.language = language
        if changes:
            await record_audit(session, actor, "staff.update", row.email, changes)
        await session.commit()
        return _as_dict(row)


async def set_disabled(
    gw: Gateway, staff_id: int, disabled: bool, *, actor: str, actor_id: int | None = None
) -> None:
    """Disable an account (its sessions and token stop at the next request) or enable it again.
    Nobody disables their own account, nor the last enabled admin."""
    async with gw.db.session() as session:
        row = await _row(session, staff_id)
        if disabled and actor_id == row.id:
            raise StaffError(StaffNote(S_("You cannot disable your own account.")), "disabled")
        if disabled and row.role == "admin" and await _enabled_admins(session) == [row.id]:
            raise StaffError(StaffNote(S_("This is the only admin: make another admin first.")), "disabled")
        if row.disabled != disabled:
            row.disabled = disabled
            await record_audit(session, actor, "staff.disable" if disabled else "staff.enable", row.email, {})
        await session.commit()


async def disable_staff(gw: Gateway, email: str, actor: str = "cli") -> None:
    """Disable an account by e-mail (``gateway staff disable``)."""
    found = await find_staff(gw, email)
    if found is None:
        raise GatewayError(f"no staff account {_normalize_email(email)!r}")
    await set_disabled(gw, found["id"], True, actor=actor)


def generate_password() -> str:
    """A one-time password to hand over (16 characters, 96 random bits)."""
    return secrets.token_urlsafe(12)


async def reset_password(
    gw: Gateway, staff_id: int, password: str | None = None, *, actor: str
) -> str | None:
    """Set an account's password (a generated one when ``password`` is ``None``: returned, to
    be shown once) and forget its failed sign-ins. Never logged."""
    generated = None
    if password is None:
        password = generated = generate_password()
    _check_password(password)
    async with gw.db.session() as session:
        row = await _row(session, staff_id)
        row.password_hash = hash_password(password)
        await record_audit(
            session, actor, "staff.password_reset", row.email, {"generated": generated is not None}
        )
        await session.commit()
        email = row.email
    await clear_account(gw, email)
    return generated


async def change_password(gw: Gateway, staff_id: int, current: str, new: str) -> None:
    """A staff member changes their own password (the current one is asked for)."""
    async with gw.db.session() as session:
        row = await _row(session, staff_id)
        if not verify_password(row.password_hash, current):
            raise StaffError(StaffNote(S_("The current password is not right.")), "current_password")
        _check_password(new, "new_password")
        row.password_hash = hash_password(new)
        await record_audit(session, row.email, "staff.password_change", row.email, {})
        await session.commit()


async def authenticate_password(gw: Gateway, email: str, password: str) -> StaffIdentity | None:
    """The identity for a correct e-mail and password of an enabled account, else ``None``."""
    try:
        email = _normalize_email(email)
    except GatewayError:
        verify_password(None, password)
        return None
    async with gw.db.session() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.email == email))
    ok = verify_password(row.password_hash if row else None, password)
    if not ok or row is None or row.disabled:
        return None
    return _identity(row)


async def authenticate_token(gw: Gateway, token: str) -> StaffIdentity | None:
    """The identity behind a bearer token of an enabled account, else ``None``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    async with gw.db.session() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.token_hash == hash_token(token)))
    if row is None or row.disabled:
        return None
    return _identity(row)


async def identity_by_id(gw: Gateway, staff_id: int) -> StaffIdentity | None:
    """The identity of an enabled account by its id (sessions store the id)."""
    async with gw.db.session() as session:
        row = await session.get(StaffMember, staff_id)
    if row is None or row.disabled:
        return None
    return _identity(row)


async def set_staff_language(gw: Gateway, staff_id: int, language: str) -> None:
    """The language a staff member reads the interface in."""
    async with gw.db.session() as session:
        row = await session.get(StaffMember, staff_id)
        if row is not None:
            row.language = language
            await session.commit()
