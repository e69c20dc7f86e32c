"""Configuration of the ``smtp_email`` channel: an SMTP block (required) and an IMAP block."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway import ChannelSettings

__all__ = ["ImapSettings", "SmtpEmailSettings", "SmtpSettings"]

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_ADDR_SPEC = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


class SmtpSettings(BaseModel):
    """How to reach the outgoing mail server and what the mail says it is from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = Field(
        default=True, description="Upgrade with STARTTLS after connecting (submission, port 587)."
    )
    tls: bool = Field(default=False, description="Implicit TLS from the first byte (port 465).")
    validate_certs: bool = True
    from_address: str = Field(description="Envelope sender and From address.")
    from_name: str | None = None
    reply_domain: str | None = Field(
        default=None,
        description="Domain of reply+TOKEN@ and unsubscribe+TOKEN@ addresses "
        "(default: the from_address domain).",
    )
    local_hostname: str | None = Field(
        default=None, description="Name sent in EHLO (default: the from_address domain)."
    )
    pool_size: int = Field(default=2, ge=1, le=64, description="Reused SMTP connections.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per SMTP command.")

    @field_validator("from_address")
    @classmethod
    def _check_from_address(cls, value: str) -> str:
        if not _ADDR_SPEC.match(value):
            raise ValueError("must be a plain address like gateway@district.example")
        return value

    @field_validator("from_name")
    @classmethod
    def _check_from_name(cls, value: str | None) -> str | None:
        if value is not None and len(value.splitlines()) > 1:
            raise ValueError("must be one line")
        return value

    @field_validator("reply_domain", "local_hostname")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError("must be a domain name like district.example")
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.tls and self.starttls:
            raise ValueError("tls (implicit, port 465) and starttls (port 587) exclude each other")
        return self

    @property
    def sender_domain(self) -> str:
        """The domain part of :attr:`from_address`."""
        return self.from_address.rsplit("@", 1)[1].lower()

    @property
    def effective_reply_domain(self) -> str:
        """Where reply and unsubscribe addresses live."""
        return (self.reply_domain or self.sender_domain).lower()


class ImapSettings(BaseModel):
    """The mailbox replies (and bounces) arrive in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=993, ge=1, le=65535)
    username: str
    password: SecretStr
    mailbox: str = "INBOX"
    poll_seconds: float = Field(default=30.0, gt=0, le=1500)
    ssl: bool = Field(default=True, description="IMAP over implicit TLS (port 993).")
    idle: bool = Field(default=True, description="Use IMAP IDLE when the server offers it.")
    processed_folder: str | None = Field(
        default=None, description="Move handled mail here instead of only flagging it \\Seen."
    )
    timeout: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=5000, description="Messages read per poll.")


class SmtpEmailSettings(ChannelSettings):
    """``channels.<name>`` for ``plugin: smtp_email``."""

    smtp: SmtpSettings
    imap: ImapSettings | None = None
