"""Multilingual family-engagement messaging gateway.

This module is the public plugin API, and only that: what a channel or translation-engine
plugin imports. Everything else in the package is the core's own business.
"""

from __future__ import annotations

import pluggy

from gateway.addresses import EMAIL, PHONE, TELEGRAM, AddressKind, current_region
from gateway.channels import (
    Attachment,
    Button,
    Channel,
    ChannelCapabilities,
    ChannelContext,
    ChannelSettings,
    EndpointKind,
    EndpointLink,
    InboundMessage,
    InboundOutcome,
    OutboundMessage,
    SendResult,
    StatusOutcome,
    StatusUpdate,
    WebhookHandler,
)
from gateway.contract import CONTRACT_VERSION, MessageStatusEvent, PluginContext, QueuedReply
from gateway.domain.contacts import normalize_email, normalize_phone
from gateway.errors import (
    ConfigError,
    DeliveryUnknownError,
    EngineRefusedError,
    EngineUnavailableError,
    GatewayError,
    PermanentSendError,
    PluginError,
    RetryableSendError,
    SendError,
    TranslationError,
)
from gateway.privacy import mask_address, scrub
from gateway.translation.engine import EngineContext, EngineInfo, EngineSettings, TranslationEngine

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("gateway")
"""Decorator marking a function as a gateway hook implementation."""

__all__ = [
    "CONTRACT_VERSION",
    "EMAIL",
    "PHONE",
    "TELEGRAM",
    "AddressKind",
    "Attachment",
    "Button",
    "Channel",
    "ChannelCapabilities",
    "ChannelContext",
    "ChannelSettings",
    "ConfigError",
    "DeliveryUnknownError",
    "EndpointKind",
    "EndpointLink",
    "EngineContext",
    "EngineInfo",
    "EngineRefusedError",
    "EngineSettings",
    "EngineUnavailableError",
    "GatewayError",
    "InboundMessage",
    "InboundOutcome",
    "MessageStatusEvent",
    "OutboundMessage",
    "PermanentSendError",
    "PluginContext",
    "PluginError",
    "QueuedReply",
    "RetryableSendError",
    "SendError",
    "SendResult",
    "StatusOutcome",
    "StatusUpdate",
    "TranslationEngine",
    "TranslationError",
    "WebhookHandler",
    "__version__",
    "current_region",
    "hookimpl",
    "mask_address",
    "normalize_email",
    "normalize_phone",
    "scrub",
]
