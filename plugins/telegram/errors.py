"""The one place where aiogram's exceptions become the gateway's send errors."""

from __future__ import annotations

import asyncio

import aiohttp
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from gateway import DeliveryUnknownError, PermanentSendError, RetryableSendError, SendError

__all__ = ["send_error_from"]

#: ``Bad Request`` descriptions that mean the address itself is wrong.
_INVALID_CHAT = ("chat not found", "chat_id is empty", "user not found", "peer_id_invalid")


def _description(exc: TelegramAPIError) -> str:
    return exc.message.split("\nOriginal description:")[-1].strip()


def send_error_from(exc: TelegramAPIError) -> SendError:
    """Map an aiogram exception raised while sending to the gateway's error tree.

    * 429 (``TelegramRetryAfter``) → retryable, honouring ``retry_after``;
    * 403 (blocked, deactivated, kicked) → permanent, endpoint opted out;
    * 400 "chat not found" → permanent, endpoint invalid; any other 400 → permanent;
    * 5xx and refused connections → retryable;
    * a timeout or dropped connection once the request left → delivery unknown.
    """
    description = _description(exc)
    if isinstance(exc, TelegramRetryAfter):
        return RetryableSendError(description, code="429", retry_after=float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return PermanentSendError(description, code="403", endpoint_state="opted_out")
    if isinstance(exc, TelegramBadRequest):
        if any(marker in description.lower() for marker in _INVALID_CHAT):
            return PermanentSendError(description, code="400", endpoint_state="invalid")
        return PermanentSendError(description, code="400")
    if isinstance(exc, TelegramMigrateToChat):
        # A group became a supergroup: the stored chat id no longer works.
        return PermanentSendError(description, code="400", endpoint_state="invalid")
    if isinstance(exc, TelegramEntityTooLarge):
        return PermanentSendError(description, code="413")
    if isinstance(exc, TelegramUnauthorizedError):
        # A revoked token is a configuration problem: retrying later may work once it is fixed.
        return RetryableSendError(f"bot token refused: {description}", code="401")
    if isinstance(exc, TelegramNotFound):
        return RetryableSendError(description, code="404")
    if isinstance(exc, TelegramServerError):
        return RetryableSendError(description, code="5xx")
    if isinstance(exc, TelegramNetworkError):
        return _network_error(exc)
    return RetryableSendError(description)


def _network_error(exc: TelegramNetworkError) -> SendError:
    cause = exc.__cause__
    never_left = isinstance(
        cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
    )
    if never_left:
        return RetryableSendError(f"cannot reach the Bot API: {type(cause).__name__}")
    if isinstance(cause, asyncio.TimeoutError | aiohttp.ServerDisconnectedError):
        return DeliveryUnknownError(f"no answer from the Bot API: {type(cause).__name__}")
    return RetryableSendError(f"network error: {_description(exc)}")
