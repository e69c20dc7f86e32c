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
from gateway.errors import GatewayError
from gateway.storage.models import StaffMember

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "ROLES",
    "StaffIdentity",
    "add_staff",
    "authenticate_password",
    "authenticate_token",
    "disable_staff",
    "hash_password",
    "hash_token",
    "identity_by_id",
    "list_staff",
    "new_token",
    "verify_password",
]

ROLES = ("admin", "liaison")
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
    )


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


def _normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 320:
        raise GatewayError(f"{email!r} is not an e-mail address")
    return email


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
) -> dict[str, Any]:
    """Create (or update) an account; the ``staff add --json`` shape (``token`` only when made)."""
    email = _normalize_email(email)
    if role not in ROLES:
        raise GatewayError(f"--role {role!r}: use admin or liaison")
    schools = [s.strip() for s in (schools or []) if s.strip()]
    if role == "liaison" and not schools:
        raise GatewayError("a liaison needs at least one --school")
    if password is not None and len(password) < 8:
        raise GatewayError("--password: use at least 8 characters")
    plain_token = new_token() if token else None
    async with gw.db.session() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.email == email))
        created = row is None
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
    result: dict[str, Any] = {"email": email, "role": role, "schools": schools}
    if plain_token is not None:
        result["token"] = plain_token
    return result


async def list_staff(gw: Gateway) -> list[dict[str, Any]]:
    """Every account (never a hash)."""
    async with gw.db.session() as session:
        rows = await session.scalars(select(StaffMember).order_by(StaffMember.email))
        return [
            {
                "email": r.email,
                "role": r.role,
                "schools": list(r.schools or []),
                "language": r.language,
                "disabled": r.disabled,
                "password": r.password_hash is not None,
                "token": r.token_hash is not None,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]


async def disable_staff(gw: Gateway, email: str, actor: str = "cli") -> None:
    """Disable an account: its sessions and token stop working at the next request."""
    email = _normalize_email(email)
    async with gw.db.session() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.email == email))
        if row is None:
            raise GatewayError(f"no staff account {email!r}")
        row.disabled = True
        await record_audit(session, actor, "staff.disable", email, {})
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
