"""The channel conformance suite: one table of cases every channel plugin runs against its own
local provider, courier-style.

A channel package supplies a :class:`ChannelAdapter`: its channel, started against its fake
provider with a :class:`ConformanceContext` (the core's side, recording), and how to make that
provider do each thing a case needs (throttle, refuse a recipient, lose an answer; deliver a
reply, a button tap, a forged request, an opt-out). :func:`run_case` plays one case and
asserts the contract of :class:`gateway.Channel`:

==========================================  ====================================================
outgoing case                               the channel must
==========================================  ====================================================
``success``                                 return a provider id; the text is at the provider
``throttled_with_retry_after``              raise ``RetryableSendError`` with the provider's
                                            ``retry_after`` (when the protocol has one)
``permanent_failure_with_endpoint_state``   raise ``PermanentSendError`` (not retryable) naming
                                            the endpoint state (``invalid`` / ``opted_out``)
``unknown_outcome_then_reconcile``          raise ``DeliveryUnknownError`` (never a resend of
                                            its own); ``reconcile`` then finds the message at the
                                            provider, or says None when it cannot ask
==========================================  ====================================================

==================  ==============================================================================
incoming case       the channel must
==================  ==============================================================================
``reply``           hand the reply to the core: sender in the endpoint's form, text, provider id
``button``          hand a tapped button's value over as ``choice``
``duplicate``       answer the provider's redelivery with success and hand it with the same
                    provider id (the core keeps it once)
``bad_signature``   refuse a forged request (no 2xx), hand nothing in, count the failure
``opt_out``         hand the family's STOP to the core (which decides what it means), or mark the
                    endpoint opted out when the provider itself reports it (a blocked bot)
==================  ==============================================================================

A case the channel's protocol has no room for (buttons on SMS, signatures on IMAP, failures of
the sandbox) raises :class:`NotApplicable` from the adapter with the reason. The package
declares those cases, and :func:`check_case` holds it to the list both ways: a case that does
not apply must be declared, and a declared one must not apply — no case is skipped, every one
can fail. A third-party package runs the suite so::

    @pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
    async def test_conformance(case, my_adapter):
        await check_case(my_adapter, case, not_applicable={"button"})
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

from gateway.channels import Channel, InboundMessage, InboundOutcome, OutboundMessage
from gateway.errors import (
    DeliveryUnknownError,
    EndpointState,
    PermanentSendError,
    RetryableSendError,
    SendError,
)
from gateway.testing.fakes import FakeChannelContext

__all__ = [
    "ALL_CASES",
    "INCOMING_CASES",
    "OUTGOING_CASES",
    "PROVIDER_HAS_IT",
    "ChannelAdapter",
    "ConformanceContext",
    "IncomingCase",
    "NotApplicable",
    "OutgoingCase",
    "case_id",
    "check_case",
    "run_case",
]

#: What ``reconcile`` may answer for a message the provider has (its status so far).
PROVIDER_HAS_IT = frozenset({"queued", "accepted", "scheduled", "sending", "sent", "delivered"})


class NotApplicable(Exception):
    """The channel's protocol has no room for this case; the message says why."""


@dataclass(frozen=True, slots=True)
class OutgoingCase:
    """One outgoing row: what the provider does with the next message, what the channel must
    raise or return."""

    id: str
    provider: Literal["accepts", "throttles", "refuses", "loses_answer"]
    expect: Literal["sent", "retryable", "permanent", "unknown"]
    body: str = "Taller de lectura el martes a las 17:00 en la biblioteca."
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class IncomingCase:
    """One incoming row: what the family (or a forger) does, what must reach the core."""

    id: str
    family: Literal["replies", "taps_button", "replies_twice", "forges", "opts_out"]
    text: str


OUTGOING_CASES: tuple[OutgoingCase, ...] = (
    OutgoingCase("success", "accepts", "sent"),
    OutgoingCase("throttled_with_retry_after", "throttles", "retryable", retry_after=7.0),
    OutgoingCase("permanent_failure_with_endpoint_state", "refuses", "permanent"),
    OutgoingCase("unknown_outcome_then_reconcile", "loses_answer", "unknown"),
)

INCOMING_CASES: tuple[IncomingCase, ...] = (
    IncomingCase("reply", "replies", "Sí, iré con mi hija 👍"),
    IncomingCase("button", "taps_button", "yes"),
    IncomingCase("duplicate", "replies_twice", "2"),
    IncomingCase("bad_signature", "forges", "NO"),
    IncomingCase("opt_out", "opts_out", "STOP"),
)

ALL_CASES: tuple[OutgoingCase | IncomingCase, ...] = OUTGOING_CASES + INCOMING_CASES


def case_id(case: OutgoingCase | IncomingCase) -> str:
    """The case's id, for ``pytest.mark.parametrize(ids=...)``."""
    return case.id


@dataclass
class ConformanceContext(FakeChannelContext):
    """The core's side of a channel under test: a :class:`FakeChannelContext` that also keeps
    every message handed in before deduplication (``handed``)."""

    handed: list[InboundMessage] = field(default_factory=list)

    async def receive(self, message: InboundMessage) -> InboundOutcome:
        """Keep ``message`` in :attr:`handed`, then deduplicate like the pipeline."""
        self.handed.append(message)
        return await super().receive(message)


class ChannelAdapter(abc.ABC):
    """How the suite drives one channel and its fake provider. Subclass it per channel.

    Set :attr:`address` (a recipient in the endpoint's form), :attr:`context` (given to the
    channel) and the expectations the protocol sets: :attr:`refused_endpoint_state`,
    :attr:`reports_retry_after`, :attr:`reconciles`, :attr:`opt_out_marks_endpoint`.
    Provider actions not overridden are :class:`NotApplicable`.
    """

    address: str
    context: ConformanceContext
    refused_endpoint_state: EndpointState = "invalid"
    """The endpoint state :meth:`refuse_recipient` must produce."""
    reports_retry_after: bool = True
    """Whether the protocol tells how long to wait when throttled (SMTP does not)."""
    reconciles: bool = True
    """Whether the channel can ask its provider about a message whose answer was lost."""
    opt_out_marks_endpoint: bool = False
    """True when opting out is a provider event the channel turns into an endpoint state
    (a blocked Telegram bot); False when it is a message the core interprets (STOP)."""

    @abc.abstractmethod
    async def channel(self) -> Channel:
        """The channel, started against the fake provider (the same one on every call)."""

    def message(self, body: str, message_id: int = 1) -> OutboundMessage:
        """The outbox message the core would hand the channel for :attr:`address`."""
        return OutboundMessage(
            message_id=message_id, channel=self.context.name, address=self.address,
            language="es", body=body, subject="Taller de lectura",
        )

    @abc.abstractmethod
    async def provider_texts(self) -> list[str]:
        """The texts the provider has accepted for :attr:`address`, oldest first."""

    async def prepare(self) -> None:  # noqa: B027 - optional
        """Bring the recipient into a state where a plain message may go (e.g. open the
        WhatsApp window)."""

    async def throttle_next(self, retry_after: float) -> None:
        """Make the provider answer the next send with "too many requests, retry after"."""
        raise NotApplicable("the provider cannot be made to throttle")

    async def refuse_recipient(self) -> None:
        """Make the provider refuse :attr:`address` for good."""
        raise NotApplicable("the provider cannot be made to refuse a recipient")

    async def lose_next_answer(self) -> None:
        """Make the provider take the next message but never answer in time.

        Like the other provider actions it is called before :meth:`channel`, so the adapter
        may build the channel with a short timeout for this case alone and a generous one for
        every other (a busy machine then never turns a slow local answer into a failure)."""
        raise NotApplicable("the provider cannot be made to lose an answer")

    async def reply(self, text: str, provider_id: str) -> bool:
        """The family sends ``text`` (provider id ``provider_id``); True when the provider's
        delivery was acknowledged (HTTP 2xx, or the poll went through)."""
        raise NotApplicable("replies do not come through this channel")

    async def tap_button(self, value: str, label: str, provider_id: str) -> bool:
        """The family taps the button ``value`` labelled ``label``."""
        raise NotApplicable("the channel has no buttons")

    async def forge(self, text: str, provider_id: str) -> bool:
        """Someone posts ``text`` with a wrong or missing signature; True if acknowledged."""
        raise NotApplicable("the channel's inbound path has no signature to forge")

    async def opt_out(self, text: str, provider_id: str) -> bool:
        """The family opts out the channel's way (by default: replies ``text``)."""
        return await self.reply(text, provider_id)


async def _send_expecting(channel: Channel, message: OutboundMessage, error: type[Exception]
                          ) -> Exception:
    try:
        await channel.send(message)
    except error as exc:
        return exc
    except SendError as exc:
        raise AssertionError(
            f"{channel.name}: send() raised {type(exc).__name__} ({exc}), expected "
            f"{error.__name__}"
        ) from exc
    raise AssertionError(f"{channel.name}: send() returned instead of raising {error.__name__}")


async def _script_provider(adapter: ChannelAdapter, case: OutgoingCase) -> None:
    """Tell the provider what to do with the case's message, before the channel is built."""
    if case.provider == "throttles":
        assert case.retry_after is not None
        await adapter.throttle_next(case.retry_after)
    elif case.provider == "refuses":
        await adapter.refuse_recipient()
    elif case.provider == "loses_answer":
        await adapter.lose_next_answer()


async def _run_outgoing(adapter: ChannelAdapter, case: OutgoingCase) -> None:
    await _script_provider(adapter, case)
    channel = await adapter.channel()
    await adapter.prepare()
    message = adapter.message(case.body)
    before = list(await adapter.provider_texts())
    if case.provider == "accepts":
        result = await channel.send(message)
        assert result.provider_message_id, f"{channel.name}: no provider message id"
        texts = await adapter.provider_texts()
        assert len(texts) == len(before) + 1, f"{channel.name}: not exactly one message sent"
        assert case.body in texts[-1], f"{channel.name}: the text did not reach the provider"
    elif case.provider == "throttles":
        exc = await _send_expecting(channel, message, RetryableSendError)
        assert isinstance(exc, RetryableSendError) and exc.retryable
        if adapter.reports_retry_after:
            assert exc.retry_after == case.retry_after, (
                f"{channel.name}: retry_after {exc.retry_after}, provider said {case.retry_after}"
            )
        assert await adapter.provider_texts() == before, f"{channel.name}: a throttled send went"
    elif case.provider == "refuses":
        exc = await _send_expecting(channel, message, PermanentSendError)
        assert isinstance(exc, PermanentSendError) and not exc.retryable
        assert exc.endpoint_state == adapter.refused_endpoint_state, (
            f"{channel.name}: endpoint state {exc.endpoint_state!r}, expected "
            f"{adapter.refused_endpoint_state!r}"
        )
    else:
        await _send_expecting(channel, message, DeliveryUnknownError)
        texts = await adapter.provider_texts()
        assert len(texts) == len(before) + 1, f"{channel.name}: the provider should have it, once"
        status = await channel.reconcile(message, None)
        if adapter.reconciles:
            assert status in PROVIDER_HAS_IT, f"{channel.name}: reconcile said {status!r}"
        else:
            assert status is None, f"{channel.name}: reconcile guessed {status!r}"
        assert len(await adapter.provider_texts()) == len(texts), (
            f"{channel.name}: reconcile sent the message again"
        )


async def _wait_for(predicate: Callable[[], object], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            return
        await asyncio.sleep(0.02)


async def _run_incoming(adapter: ChannelAdapter, case: IncomingCase) -> None:
    channel = await adapter.channel()
    context = adapter.context
    pid = f"conformance-{case.id}"
    if case.family == "replies":
        assert await adapter.reply(case.text, pid), f"{channel.name}: the reply was not taken"
        await _wait_for(lambda: context.received)
        [message] = context.received
        assert message.channel == channel.name
        assert message.sender == adapter.address, f"{channel.name}: sender {message.sender!r}"
        assert message.text.strip() == case.text
        assert message.provider_message_id
    elif case.family == "taps_button":
        assert await adapter.tap_button(case.text, "Sí", pid), f"{channel.name}: tap not taken"
        await _wait_for(lambda: context.received)
        [message] = context.received
        assert message.choice == case.text, f"{channel.name}: choice {message.choice!r}"
        assert message.sender == adapter.address
    elif case.family == "replies_twice":
        assert await adapter.reply(case.text, pid), f"{channel.name}: the reply was not taken"
        await _wait_for(lambda: context.received)
        assert await adapter.reply(case.text, pid), (
            f"{channel.name}: a redelivery must be acknowledged, or the provider retries it"
        )
        await _wait_for(lambda: len(context.handed) >= 2, within=1.0)
        assert len({m.provider_message_id for m in context.handed}) == 1, (
            f"{channel.name}: one reply, several provider ids"
        )
        assert len(context.received) == 1
    elif case.family == "forges":
        acknowledged = await adapter.forge(case.text, pid)
        assert not acknowledged, f"{channel.name}: a forged request was acknowledged"
        assert context.handed == [] and context.statuses == []
        assert context.signature_failures >= 1, f"{channel.name}: the failure was not counted"
    else:
        assert await adapter.opt_out(case.text, pid), f"{channel.name}: the opt-out was not taken"
        if adapter.opt_out_marks_endpoint:
            await _wait_for(lambda: context.endpoint_states)
            assert (adapter.address, "opted_out") in [
                (address, state) for address, state, _ in context.endpoint_states
            ], f"{channel.name}: endpoint not marked opted out"
        else:
            await _wait_for(lambda: context.received)
            [message] = context.received
            assert message.text.strip().upper() == case.text, (
                f"{channel.name}: the core got {message.text!r}, not the opt-out"
            )


async def run_case(adapter: ChannelAdapter, case: OutgoingCase | IncomingCase) -> None:
    """Play ``case`` on ``adapter``'s channel; AssertionError when the channel breaks the
    contract, :class:`NotApplicable` when its protocol has no room for the case."""
    if isinstance(case, OutgoingCase):
        await _run_outgoing(adapter, case)
    else:
        await _run_incoming(adapter, case)


async def check_case(
    adapter: ChannelAdapter, case: OutgoingCase | IncomingCase, not_applicable: Collection[str] = ()
) -> str | None:
    """:func:`run_case`, with the ids of the cases the channel declares ``not_applicable``: such
    a case must raise :class:`NotApplicable` (its reason is returned), every other case must
    pass (None). AssertionError when the channel breaks the contract, or says a case does not
    apply when it was not declared so, or runs a case declared not to apply."""
    try:
        await run_case(adapter, case)
    except NotApplicable as exc:
        assert case.id in not_applicable, (
            f"{case.id}: the adapter says it does not apply ({exc}); declare it not applicable or make it run"
        )
        return str(exc)
    assert case.id not in not_applicable, f"{case.id}: declared not applicable, yet it ran: undeclare it"
    return None
