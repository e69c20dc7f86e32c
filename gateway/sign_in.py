"""Sign-in throttling of the web app, per account and per client address.

Every wrong password adds two rows to ``sign_in_failures``: one keyed by the account (the
normalised e-mail) and one by the client address. When ``http.sign_in.max_failures_per_account``
rows of an account, or ``max_failures_per_address`` rows of an address, fall within
``window_minutes``, signing in is refused — without checking the password — until
``lockout_minutes`` after the last failure. A correct password clears its account's count.
The rows live in the database, so every ``serve`` process and a restart see the same count.

Keys are stored as SHA-256 (neither the e-mail nor the address is kept); an IPv6 client counts
by its /64 network (one household or office gets a whole /64). The client address is the
peer's, or — only when the peer is one of ``http.trusted_proxies`` — the right-most address of
``X-Forwarded-For`` that is not a trusted proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, select

from gateway.audit import audit
from gateway.privacy import mask_address
from gateway.storage.models import SignInFailure, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.config import SignInConfig

__all__ = ["Lockout", "account_locked", "clear_account", "client_address", "locked_out", "record_failure"]

log = logging.getLogger("gateway.sign_in")
Scope = Literal["account", "address"]


@dataclass(frozen=True)
class Lockout:
    """Signing in is refused until ``until`` (UTC) because of too many failures for ``scope``."""

    scope: Scope
    until: datetime

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until signing in is possible again (at least 1)."""
        return max(1, int((self.until - (now or utcnow())).total_seconds() + 0.999))


def _key(scope: Scope, value: str) -> str:
    return hashlib.sha256(f"{scope}\n{value}".encode()).hexdigest()


def account_key(email: str) -> str:
    """The stored key of an account: its e-mail as typed, trimmed and lower-cased."""
    return _key("account", email.strip().lower())


def address_key(address: str) -> str:
    """The stored key of a client address (an IPv6 address counts by its /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _key("address", address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _key("address", str(ip.ipv4_mapped))
        return _key("address", str(ipaddress.ip_network(f"{ip}/64", strict=False)))
    return _key("address", str(ip))


def _limits(settings: SignInConfig) -> dict[Scope, int]:
    return {"account": settings.max_failures_per_account, "address": settings.max_failures_per_address}


async def _lock(session: Any, settings: SignInConfig, scope: Scope, key: str) -> Lockout | None:
    now = utcnow()
    limit = _limits(settings)[scope]
    times = list(
        await session.scalars(
            select(SignInFailure.at)
            .where(
                SignInFailure.scope == scope,
                SignInFailure.key == key,
                SignInFailure.at >= now - timedelta(minutes=settings.window_minutes),
            )
            .order_by(SignInFailure.at.desc())
            .limit(limit)
        )
    )
    if len(times) < limit:
        return None
    until = times[0] + timedelta(minutes=settings.lockout_minutes)
    return Lockout(scope, until) if until > now else None


async def locked_out(gw: Gateway, email: str, address: str) -> Lockout | None:
    """The lockout that applies to signing in as ``email`` from ``address``, or ``None``."""
    settings = gw.config.http.sign_in
    async with gw.db.session() as session:
        found = [
            lock
            for lock in (
                await _lock(session, settings, "account", account_key(email)),
                await _lock(session, settings, "address", address_key(address)),
            )
            if lock is not None
        ]
    return max(found, key=lambda lock: lock.until) if found else None


async def account_locked(gw: Gateway, email: str) -> Lockout | None:
    """The lockout of an account (whatever the address), or ``None`` (for the staff page)."""
    async with gw.db.session() as session:
        return await _lock(session, gw.config.http.sign_in, "account", account_key(email))


async def record_failure(gw: Gateway, email: str, address: str) -> Lockout | None:
    """Count a wrong password; the lockout it starts (or ``None``). Old rows are deleted."""
    settings = gw.config.http.sign_in
    now = utcnow()
    keep = timedelta(minutes=max(settings.window_minutes, settings.lockout_minutes))
    async with gw.db.session() as session:
        session.add(SignInFailure(scope="account", key=account_key(email), at=now))
        session.add(SignInFailure(scope="address", key=address_key(address), at=now))
        await session.execute(delete(SignInFailure).where(SignInFailure.at < now - keep))
        await session.commit()
    lock = await locked_out(gw, email, address)
    if lock is not None:  # this failure started it (a locked sign-in is not counted)
        account = email.strip().lower()
        log.warning(
            "sign-in locked until %s: too many failures for the %s (%s)",
            lock.until.isoformat(timespec="seconds"),
            lock.scope,
            mask_address(account) if lock.scope == "account" else "client address",
        )
        await audit(
            gw,
            "sign-in",
            "sign_in.locked",
            account[:200] if lock.scope == "account" else None,
            {"scope": lock.scope, "until": lock.until.isoformat(timespec="seconds")},
        )
    return lock


async def clear_account(gw: Gateway, email: str) -> None:
    """Forget an account's failures (a correct password, or an admin resetting it)."""
    async with gw.db.session() as session:
        await session.execute(
            delete(SignInFailure).where(
                SignInFailure.scope == "account", SignInFailure.key == account_key(email)
            )
        )
        await session.commit()


def _networks(trusted: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in trusted]


def _trusted(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[str]) -> str:
    """Who is signing in: ``peer`` (the TCP peer), or, when the peer is a trusted proxy, the
    right-most ``X-Forwarded-For`` hop that is not a trusted proxy (earlier hops are whatever
    the client wrote and are never believed)."""
    peer = peer or "unknown"
    networks = _networks(trusted)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _trusted(hop, networks):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return peer  # a proxy wrote something that is not an address: count the proxy
    return hops[0] if hops else peer
