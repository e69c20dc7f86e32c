"""Routing by channel: which channel writes to which of a guardian's endpoints, in what order.

Channels, not address kinds, are what a family chooses: SMS and WhatsApp may both reach one
phone number, and each family gets the one it chose (``preferred_channel``), then the others in
``channel_order`` as fallbacks. A channel reaches the guardian's endpoints of its address kind,
or — when the guardian has none and the kind ``defaults_from`` another — the endpoints of that
kind (WhatsApp on the family's phone number). Consent is read per channel: STOP by SMS leaves
WhatsApp and e-mail as they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import StaffFacingError
from gateway.staff_text import S_, StaffNote
from gateway.storage.endpoints import ChannelState, effective_state

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.channels import Channel

__all__ = [
    "FallbackStep",
    "address_for_channel",
    "check_max_length",
    "endpoint_for_channel",
    "parse_fallback",
    "route",
]

FallbackStep = tuple[str | None, int]
"""``(channel name, endpoint id)``; the channel is None in rows planned before routing by
channel (the first channel of the endpoint's kind is used)."""


class _Guardian(Protocol):
    preferred_channel: str | None
    endpoints: Any


def address_for_channel(gw: Gateway, channel: Channel, kind: str, address: str) -> str | None:
    """The address ``channel`` writes to for an endpoint of ``kind``: the address itself when
    the kinds match; for a channel whose kind defaults from ``kind``, the address in that kind's
    form; None when the channel cannot reach it."""
    if kind == channel.kind:
        return address
    own = gw.address_kinds.get(channel.kind)
    if own is None or own.defaults_from != kind:
        return None
    try:
        return own.normalise(address)
    except ValueError:
        return None


def endpoint_for_channel(gw: Gateway, channel: Channel, endpoints: Sequence[Any]) -> list[Any]:
    """The endpoints ``channel`` reaches among ``endpoints`` (planner rows, dataclasses): those
    of its kind, else (for a kind that defaults from another) those of the parent kind, with
    the address in the channel's kind's form (the id, and so the consent, stays the parent
    endpoint's)."""
    own = [e for e in endpoints if e.kind == channel.kind]
    if own:
        return own
    derived = []
    for endpoint in endpoints:
        address = address_for_channel(gw, channel, endpoint.kind, endpoint.address)
        if address is None:
            continue
        derived.append(
            endpoint if address == endpoint.address else dataclasses.replace(endpoint, address=address)
        )
    return derived


def _state(endpoint: Any, channel: str) -> ChannelState:
    """A planner endpoint's consent on ``channel``."""
    return effective_state(
        endpoint.opted_out, endpoint.invalid, None, getattr(endpoint, "channel_states", None), channel
    )


def route(
    gw: Gateway, guardian: _Guardian, channels: Sequence[Channel], policy: str
) -> tuple[list[tuple[Channel, Any]], str]:
    """Usable ``(channel, endpoint)`` pairs for ``guardian`` in preference order (the preferred
    channel first, then ``channels``' order), or the reason there are none. With policy
    ``all``, each endpoint once (on the first channel that may write to it)."""
    preferred = gw.resolve_preferred(guardian.preferred_channel)
    ranked: list[tuple[int, int, int, Channel, Any]] = []
    for rank, channel in enumerate(channels):
        for endpoint in endpoint_for_channel(gw, channel, guardian.endpoints):
            first = 0 if channel.name == preferred else 1
            ranked.append((first, rank, endpoint.id, channel, endpoint))
    ranked.sort(key=lambda item: item[:3])
    usable = [(c, e) for *_, c, e in ranked if _state(e, c.name).usable]
    if policy == "all":
        once: dict[int, tuple[Channel, Any]] = {}
        for channel, endpoint in usable:
            once.setdefault(endpoint.id, (channel, endpoint))
        usable = list(once.values())
    if usable:
        return usable, ""
    if not guardian.endpoints:
        return [], "no endpoint"
    if not ranked:
        return [], f"no endpoint on channels {', '.join(c.name for c in channels)}"
    if all(_state(e, c.name).opted_out for *_, c, e in ranked):
        return [], "opted out"
    return [], "invalid address"


def parse_fallback(value: Any) -> list[FallbackStep]:
    """``payload['fallback']`` as steps: ``[channel, endpoint id]`` pairs, or the endpoint ids
    rows planned before routing by channel hold."""
    steps: list[FallbackStep] = []
    for item in value or []:
        if isinstance(item, list | tuple) and len(item) == 2:
            steps.append((str(item[0]) if item[0] else None, int(item[1])))
        elif isinstance(item, int):
            steps.append((None, item))
    return steps


#: A broadcast refused for a message longer than a channel takes (read by staff).
TOO_LONG = S_(
    "channel %(channel)s: the %(language)s message is %(length)s characters, more than the "
    "%(limit)s the channel takes; shorten the text (nothing was sent or queued)"
)


def check_max_length(channel: Channel, language: str, body: str) -> None:
    """Refuse a message longer than ``channel`` takes (:attr:`ChannelCapabilities.max_length`),
    naming the channel, the language and both lengths (in the staff member's language on the
    web: a :class:`~gateway.errors.StaffFacingError`)."""
    limit = channel.features.max_length
    if limit is not None and len(body) > limit:
        params = {
            "channel": channel.name,
            "language": language,
            "length": f"{len(body):,}",
            "limit": f"{limit:,}",
        }
        raise StaffFacingError(StaffNote(TOO_LONG, params))
