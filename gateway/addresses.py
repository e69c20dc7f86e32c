"""Address kinds: what an endpoint address is, how it is normalised and validated, how it is shown.

The built-in kinds are ``phone`` (E.164), ``email`` and ``telegram`` (a chat id). A channel plugin
reaching another kind of address declares it on its class::

    from gateway import AddressKind, Channel

    APP = AddressKind(name="app", normalise=normalise_device_id, mask=lambda a: a[:4] + "…")

    class AppPushChannel(Channel):
        plugin = "app_push"
        address_kind = APP

The families CSV then takes an ``address:app`` column, the planner routes ``app`` endpoints to the
channels of that kind, and staff see the addresses masked with ``mask``.

``defaults_from`` names another kind whose address a guardian's endpoint uses when the guardian
has none of this kind: WhatsApp reaches a family's phone number unless the family gave another
(``AddressKind(name="whatsapp", ..., defaults_from="phone")``). Such an endpoint is the parent
endpoint itself (its consent is still kept per channel); its address is the parent's address
passed through ``normalise``, and ``to_default`` turns a sender's address of this kind back into
the parent kind's form (identity when not given) so replies find the family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from gateway.domain.contacts import (
    current_region,
    normalize_email,
    normalize_phone,
    normalize_telegram,
    phone_region,
)
from gateway.errors import PluginError
from gateway.privacy import mask_address

__all__ = [
    "BUILTIN_KINDS",
    "EMAIL",
    "PHONE",
    "TELEGRAM",
    "AddressKind",
    "AddressKinds",
    "current_region",
    "phone_region",
]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")


@dataclass(frozen=True, slots=True)
class AddressKind:
    """One kind of endpoint address.

    ``normalise(raw) -> str`` returns the canonical form (what is stored and compared) or raises
    ``ValueError`` with a reason a person can act on ("not a valid phone number for region US").
    ``mask(address) -> str`` is how the address appears to staff and in logs.
    """

    name: str
    normalise: Callable[[str], str]
    mask: Callable[[str], str] = mask_address
    defaults_from: str | None = None
    """Another kind whose address is used when a guardian has none of this one."""
    to_default: Callable[[str], str] | None = None
    """An address of this kind in the ``defaults_from`` kind's form (inbound lookups); identity
    when None."""
    variant: str = "sms"
    """The built-in template form channels of this kind render when a template has no block for
    the channel or the kind: ``sms`` (plain text), ``telegram`` (Telegram HTML) or ``email``."""
    label: str = ""
    """How staff read the kind's name (defaults to ``name``)."""
    columns: tuple[str, ...] = field(default=())
    """Older families CSV column names for this kind (``phone``, ``email``, ``telegram_chat_id``),
    besides ``address:<name>``."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise PluginError(
                f"address kind {self.name!r}: use 1-16 lower-case letters, digits or '_' "
                "(starting with a letter)"
            )
        if self.variant not in ("sms", "telegram", "email"):
            raise PluginError(f"address kind {self.name!r}: variant must be sms, telegram or email")

    @property
    def column(self) -> str:
        """The families CSV column of this kind: ``address:<name>``."""
        return f"address:{self.name}"

    def parse(self, raw: str, *, region: str | None = None) -> str:
        """``normalise(raw)`` with national phone numbers read in ``region``; ValueError when bad."""
        with phone_region(region):
            return self.normalise(raw.strip())

    def default_address(self, address: str) -> str:
        """A sender address of this kind in the ``defaults_from`` kind's form."""
        return self.to_default(address) if self.to_default else address


PHONE = AddressKind(name="phone", normalise=normalize_phone, variant="sms", label="phone", columns=("phone",))
EMAIL = AddressKind(
    name="email", normalise=normalize_email, variant="email", label="e-mail", columns=("email",)
)
TELEGRAM = AddressKind(
    name="telegram",
    normalise=normalize_telegram,
    variant="telegram",
    label="Telegram",
    columns=("telegram_chat_id",),
)
BUILTIN_KINDS: tuple[AddressKind, ...] = (PHONE, EMAIL, TELEGRAM)


class AddressKinds(Mapping[str, AddressKind]):
    """Every declared address kind by name: the built-in ones and those channel plugins declare."""

    def __init__(self, kinds: Iterable[tuple[AddressKind, str]] = ()) -> None:
        self._kinds: dict[str, AddressKind] = {k.name: k for k in BUILTIN_KINDS}
        self._owners: dict[str, str] = {k.name: "the gateway" for k in BUILTIN_KINDS}
        for kind, owner in kinds:
            self.add(kind, owner)
        self.check_defaults()

    def check_defaults(self) -> None:
        """Every ``defaults_from`` names a declared kind."""
        for kind in self._kinds.values():
            if kind.defaults_from is not None and kind.defaults_from not in self._kinds:
                raise PluginError(
                    f"address kind {kind.name!r} ({self._owners[kind.name]}) defaults from "
                    f"{kind.defaults_from!r}, which no plugin declares (known: {', '.join(self)})"
                )

    def add(self, kind: AddressKind, owner: str) -> None:
        """Declare ``kind``; the same name declared twice differently is an error."""
        other = self._kinds.get(kind.name)
        if other is not None and other != kind:
            raise PluginError(
                f"address kind {kind.name!r} is declared by both {self._owners[kind.name]} and {owner}"
            )
        self._kinds[kind.name] = kind
        self._owners.setdefault(kind.name, owner)

    def __getitem__(self, name: str) -> AddressKind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def get_kind(self, name: str, where: str) -> AddressKind:
        """The kind called ``name``; PluginError naming ``where`` and the known kinds otherwise."""
        kind = self._kinds.get(name)
        if kind is None:
            raise PluginError(f"{where}: unknown address kind {name!r} (declared: {', '.join(self)})")
        return kind

    def for_column(self, column: str) -> AddressKind | None:
        """The kind a families CSV column holds (``address:<kind>`` or an older name), if any."""
        if column.startswith("address:"):
            return self._kinds.get(column.removeprefix("address:"))
        for kind in self._kinds.values():
            if column in kind.columns:
                return kind
        return None

    def derived(self, name: str) -> list[AddressKind]:
        """Kinds that default from ``name``."""
        return [k for k in self._kinds.values() if k.defaults_from == name]

    def mask(self, kind: str, address: str) -> str:
        """``address`` masked the way its kind shows it (the generic mask for unknown kinds)."""
        found = self._kinds.get(kind)
        return found.mask(address) if found else mask_address(address)
