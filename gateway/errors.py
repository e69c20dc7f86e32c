"""The gateway's exception tree.

```
GatewayError
├── ConfigError                  bad configuration: names the key path and the reason
├── ImportRowError               one bad CSV row (never sinks the rest of the file)
├── TemplateError                template syntax / undefined name / sandbox refusal, with name and line
├── AudienceError                an audience expression that cannot be parsed
├── PluginError                  a plugin that cannot be loaded or configured
├── TranslationError             an engine failed or broke a placeholder (``reason`` says which)
│   ├── EngineUnavailableError   the engine cannot be reached or loaded: server down, timeout, no model
│   └── EngineRefusedError       the engine answered with a refusal: 4xx/5xx with the server's text
└── SendError                    raised by a channel's ``send``; only the outbox turns it into a status
    ├── RetryableSendError       throttled, 5xx, connection refused: try again later
    ├── PermanentSendError       invalid address, recipient opted out, 5xx SMTP: never retry
    └── DeliveryUnknownError     the provider may have accepted it (timeout after the request left)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gateway.staff_text import StaffNote

__all__ = [
    "AudienceError",
    "ConfigError",
    "DeliveryUnknownError",
    "EndpointState",
    "EngineRefusedError",
    "EngineUnavailableError",
    "GatewayError",
    "ImportRowError",
    "PermanentSendError",
    "PluginError",
    "RetryableSendError",
    "SendError",
    "TemplateError",
    "TranslationError",
]

EndpointState = Literal["opted_out", "invalid"]


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration is wrong; the message names the file, the key path and the reason."""


class ImportRowError(GatewayError):
    """One row of an import file is wrong."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.value = value
        self.reason = reason


class TemplateError(GatewayError):
    """A template cannot be rendered: the message names the template and the line."""

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {reason}")
        self.template = template
        self.line = line
        self.reason = reason


class StaffFacingError(GatewayError):
    """An error staff read in the web app: ``note`` says why in any interface language, the
    message (``str(error)``) in English."""

    def __init__(self, note: StaffNote) -> None:
        super().__init__(note.text())
        self.note = note


class AudienceError(StaffFacingError):
    """An audience expression is malformed."""


class PluginError(GatewayError):
    """A plugin cannot be loaded, found or configured."""


class TranslationError(GatewayError):
    """A translation engine failed, or its output lost a protected placeholder.

    ``reason`` is a short, stable word for notes, logs and counters (``"failed"``,
    ``"unreachable"``, ``"timeout"``, ``"refused"``, ``"placeholder lost"``); the message says
    the rest. Neither ever holds the text being translated.
    """

    reason: str = "failed"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class EngineUnavailableError(TranslationError):
    """The engine could not be asked at all: its server is unreachable or timed out, or its
    model cannot be loaded. Another engine (or a later try) may succeed."""

    reason = "unreachable"


class EngineRefusedError(TranslationError):
    """The engine answered, and refused: ``status`` is the HTTP status (400, 403, 429, 500...)
    and ``detail`` the server's own error text (``{"error": ...}``)."""

    reason = "refused"

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class SendError(GatewayError):
    """A channel could not hand a message to its provider.

    ``retryable`` tells the outbox whether to try again; ``code`` is the provider's own
    error code (``"21211"``, ``"550"``, ``"403"``); ``retry_after`` (seconds) is honoured
    by the backoff; ``endpoint_state`` asks the core to mark the address opted out or invalid.
    """

    retryable: bool = False

    def __init__(
        self,
        reason: str,
        *,
        code: str | int | None = None,
        retry_after: float | None = None,
        endpoint_state: EndpointState | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(reason if code is None else f"[{code}] {reason}")
        self.reason = reason
        self.code = None if code is None else str(code)
        self.retry_after = retry_after
        self.endpoint_state = endpoint_state
        if retryable is not None:
            self.retryable = retryable


class RetryableSendError(SendError):
    """A transient failure: throttling, a 5xx answer, a refused connection."""

    retryable = True


class PermanentSendError(SendError):
    """A final failure for this message: retrying cannot help."""

    retryable = False


class DeliveryUnknownError(SendError):
    """The request left but no answer came back: the provider may have accepted it.

    The outbox marks the message ``unknown`` and reconciles it (where the channel can)
    before any resend, so a timeout never turns into a double send on its own.
    """

    retryable = False
