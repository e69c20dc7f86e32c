"""Configuration: YAML with ``${ENV}`` substitution, validated at start.

A wrong key or value fails with the file, the key path and the reason, e.g.
``config.yaml: quiet_hours.start: Input should be in a valid time format``.
Channel settings are validated twice: the common keys here, the plugin's own keys by the
plugin's ``Settings`` model when the channel is built (:meth:`GatewayConfig.channel_settings`).
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import ConfigError
from gateway.resources import SHIPPED_LOCALES, SHIPPED_TEMPLATES

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "GatewayConfig",
    "format_validation_error",
    "load_config",
    "substitute_env",
]

DEFAULT_CONFIG_PATH = Path("config.yaml")

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resource(_Section):
    """A community resource listed in the HELP reply."""

    name: str
    kind: str = "other"
    phone: str | None = None
    url: str | None = None


class DistrictConfig(_Section):
    """Who the messages come from."""

    name: str = "Unified School District"
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    timezone: str | None = None
    """The time zone every time a person sees is shown in (default: families.default_timezone)."""
    emergency_number: str = "911"
    """What a family is told to call when someone is in danger (urgent replies)."""
    resources: list[Resource] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


class DatabaseConfig(_Section):
    """Where the gateway keeps its state."""

    url: str = "sqlite+aiosqlite:///{data_dir}/gateway.db"
    echo: bool = False
    pool_size: int = Field(default=5, ge=1, le=100)
    busy_timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=600,
        description="SQLite: how long a write waits for another writer's lock before failing.",
    )


class SignInConfig(_Section):
    """Sign-in throttling of the web app: after ``max_failures_per_account`` wrong passwords
    for one account, or ``max_failures_per_address`` from one client address, within
    ``window_minutes``, signing in is refused for ``lockout_minutes`` after the last failure."""

    max_failures_per_account: int = Field(default=5, ge=1, le=1000)
    max_failures_per_address: int = Field(default=20, ge=1, le=100000)
    window_minutes: float = Field(default=15, gt=0, le=24 * 60)
    lockout_minutes: float = Field(default=15, gt=0, le=24 * 60)


class HttpConfig(_Section):
    """The HTTP server (webhooks, admin API, web app)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_attachment_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    """Largest file a liaison may attach to an announcement (PDF or image)."""
    idempotency_key_hours: float = Field(default=24, gt=0, le=24 * 365)
    sign_in: SignInConfig = Field(default_factory=SignInConfig)
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (``10.0.0.0/8``) of reverse proxies whose ``X-Forwarded-For``
    names the client; from anyone else the header is ignored."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("public_base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+", value):
            raise ValueError("must be an absolute http(s) URL such as https://gateway.district.org")
        return value.rstrip("/") if value else value


class FamiliesConfig(_Section):
    """Defaults applied to imported families."""

    default_region: str = Field(default="US", min_length=2, max_length=2)
    default_language: str = "en"
    default_timezone: str = "America/Chicago"

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)


class TranslationConfig(_Section):
    """Machine translation and the translation memory."""

    source_language: str = "en"
    staff_language: str = "en"
    engines: list[str] = Field(default_factory=lambda: ["argos"])
    fallback: Literal["next_engine", "source_language", "hold"] = "source_language"
    glossary: Path | None = None
    engine_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)


class QuietHoursConfig(_Section):
    """SMS and Telegram messages due inside this window wait for its end."""

    enabled: bool = True
    start: time = time(20, 0)
    end: time = time(8, 0)


class DispatchConfig(_Section):
    """How the outbox dispatcher claims, retries and gives up."""

    batch_size: int = Field(default=200, ge=1, le=10_000)
    lease_seconds: float = Field(default=60, gt=0)
    poll_seconds: float = Field(default=0.5, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    max_age_hours: float = Field(default=48, gt=0)
    backoff_base_seconds: float = Field(default=2, gt=0)
    backoff_max_seconds: float = Field(default=900, gt=0)
    rate_limiter: Literal["auto", "local", "database", "redis"] = "auto"
    redis_url: str | None = None


class SchedulerConfig(_Section):
    """APScheduler: jobs survive a restart; a job missed while down runs late within the grace."""

    enabled: bool = True
    misfire_grace_seconds: int = Field(default=6 * 3600, ge=1)


class InboundConfig(_Section):
    """Replies: keywords, urgent words, who is told about urgent ones, limits."""

    opt_out_words: dict[str, list[str]] = Field(default_factory=dict)
    opt_in_words: dict[str, list[str]] = Field(default_factory=dict)
    help_words: dict[str, list[str]] = Field(default_factory=dict)
    urgent_words: list[str] = Field(
        default_factory=lambda: ["weapon", "gun", "knife", "threat", "suicide", "kill", "abuse"]
    )
    on_call: list[str] = Field(default_factory=list)
    on_call_channel: str = "email"
    max_text_chars: int = Field(
        default=4000,
        ge=160,
        le=100_000,
        description="A reply's text is cut here (flagged truncated; the whole text stays in raw).",
    )
    max_attempts: int = Field(
        default=5, ge=1, le=100, description="Processing attempts of one reply before it is put before staff."
    )
    retry_base_seconds: float = Field(
        default=10, gt=0, description="Wait before the second attempt; doubles each time (at most an hour)."
    )


class IntakeConfig(_Section):
    """What providers hand us (replies, delivery reports) is never lost: when the database cannot
    take it in time it goes to a local durable spool, replayed in order when the database is back."""

    store_deadline_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How long a webhook waits for the database before spooling."
    )
    spool_dir: Path | None = Field(default=None, description="Default: <data_dir>/spool.")
    replay_max_backoff_seconds: float = Field(default=30, gt=0)
    pending_reports_max_age_hours: float = Field(
        default=24, gt=0, description="A delivery report for an unknown provider id is kept this long."
    )
    pending_reports_max: int = Field(default=10_000, ge=1, description="...and at most this many are kept.")


class RenderingConfig(_Section):
    """Limits of one template render (per block), so a hostile or broken template stops with a
    clear error instead of running until the process is killed."""

    time_limit_seconds: float = Field(default=2.0, gt=0, le=600)
    max_output_characters: int = Field(default=200_000, ge=1_000, le=10_000_000)


class LoggingConfig(_Section):
    """Structured logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class PathsConfig(_Section):
    """Folders. Relative paths are relative to the config file."""

    data_dir: Path = Path("data")
    templates: Path | None = None
    locales: Path | None = None


class GatewayConfig(_Section):
    """The whole configuration file."""

    district: DistrictConfig = Field(default_factory=DistrictConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    families: FamiliesConfig = Field(default_factory=FamiliesConfig)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    channel_order: list[str] | None = None
    translation: TranslationConfig = Field(default_factory=TranslationConfig)
    quiet_hours: QuietHoursConfig = Field(default_factory=QuietHoursConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    inbound: InboundConfig = Field(default_factory=InboundConfig)
    rendering: RenderingConfig = Field(default_factory=RenderingConfig)
    intake: IntakeConfig = Field(default_factory=IntakeConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, settings in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name):
                raise ValueError(f"channel name {name!r}: use lower-case letters, digits, '-' or '_'")
            if not isinstance(settings, dict) or not settings.get("plugin"):
                raise ValueError(f"{name}.plugin: required (which plugin implements the channel)")
        return value

    # -- derived paths -------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        """The folder relative paths are resolved against."""
        return self.source.parent if self.source else Path.cwd()

    @property
    def data_dir(self) -> Path:
        """The gateway's data folder (database, sandbox outbox, translation models)."""
        path = self.paths.data_dir
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def spool_dir(self) -> Path:
        """Where replies and delivery reports wait when the database cannot take them."""
        path = self.intake.spool_dir
        if path is None:
            return self.data_dir / "spool"
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def templates_dir(self) -> Path:
        """Where templates are read from."""
        return self._resolve(self.paths.templates, SHIPPED_TEMPLATES)

    @property
    def locales_dir(self) -> Path:
        """Where gettext catalogs are read from."""
        return self._resolve(self.paths.locales, SHIPPED_LOCALES)

    @property
    def database_url(self) -> str:
        """``database.url`` with ``{data_dir}`` filled in."""
        return self.database.url.replace("{data_dir}", str(self.data_dir))

    def _resolve(self, value: Path | None, default: Path) -> Path:
        if value is None:
            return default
        return value if value.is_absolute() else (self.base_dir / value).resolve()

    @property
    def district_timezone(self) -> str:
        """The time zone times are shown in to staff (``district.timezone``, else the families'
        default)."""
        return self.district.timezone or self.families.default_timezone

    def ordered_channels(self) -> list[str]:
        """Channel names in fallback order (``channel_order`` or file order)."""
        names = [n for n, s in self.channels.items() if s.get("enabled", True)]
        if self.channel_order:
            ordered = [n for n in self.channel_order if n in names]
            return ordered + [n for n in names if n not in ordered]
        return names

    def where(self) -> str:
        """The config file name for error messages."""
        return str(self.source) if self.source else "config"


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like America/Chicago)") from exc
    return value


def substitute_env(value: Any, path: str = "", environ: dict[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: substitute_env(v, f"{path}.{k}" if path else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable {name} is not set")

        return _ENV_PATTERN.sub(repl, value)
    return value


def format_validation_error(exc: ValidationError, where: str, prefix: str = "") -> str:
    """One line per problem: ``file: key.path: reason``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after",))
        key = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(top level)"
        reason = err["msg"]
        if err["type"] == "value_error":
            reason = reason.removeprefix("Value error, ")
        elif err["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling; config.example.yaml lists every key)"
        elif err["type"] == "missing":
            reason = "required"
        lines.append(f"{where}: {key}: {reason}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any] | None, source: Path | None = None) -> GatewayConfig:
    """Validate an already-parsed mapping."""
    where = str(source) if source else "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of sections")
    data = substitute_env(data)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None
    config.source = source.resolve() if source else None
    return config


def load_config(path: Path | str | None = None) -> GatewayConfig:
    """Read, substitute and validate a config file.

    ``path`` defaults to ``$GATEWAY_CONFIG`` then ``./config.yaml``. A missing default file
    gives the built-in defaults (sandbox-free: no channels); a missing explicit file is an error.
    """
    explicit = path is not None or "GATEWAY_CONFIG" in os.environ
    file = Path(path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG_PATH)
    if not file.exists():
        if explicit:
            raise ConfigError(f"{file}: no such config file (run `gateway init` to write one)")
        return parse_config({}, None)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, file)
