"""Text the gateway writes for staff outside the web app's templates — notes on replies, problems
with an audience — kept as a message id and parameters so that each staff member reads it in the
interface language (the ``web`` catalog, ``make catalogs``). Its English text is what the command
line and the JSON API show.

``S_("...")`` marks such a string anywhere in the code for extraction into ``web.pot`` (``N_``
marks what families read, for ``gateway.pot``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["S_", "StaffNote", "english"]


def S_(message: str) -> str:  # the gettext convention, for extraction into the staff catalog
    """Mark a string staff read for extraction into the interface catalog."""
    return message


def english(message: str, /, **params: Any) -> str:
    """``gettext`` that leaves the message in English (the source language of the interface)."""
    return message % params if params else message


@dataclass(frozen=True)
class StaffNote:
    """A message id, its parameters, and which parameters are message ids too (a reason such
    as "the survey has closed", translated before it is put in)."""

    msgid: str
    params: Mapping[str, str] = field(default_factory=dict)
    translated: tuple[str, ...] = ()

    def text(self, gettext: Callable[..., str] = english) -> str:
        """The note in the language ``gettext(message, **params)`` translates into (English by
        default)."""
        params = {k: (gettext(v) if k in self.translated else v) for k, v in self.params.items()}
        return gettext(self.msgid, **params)

    def __str__(self) -> str:
        return self.text()

    def as_json(self) -> dict[str, Any]:
        """A JSON-able form (what an inbox record stores as ``note_data``)."""
        return {"msgid": self.msgid, "params": dict(self.params), "translated": list(self.translated)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StaffNote | None:
        """The note :meth:`as_json` stored, or None."""
        if not data or not data.get("msgid"):
            return None
        return cls(
            str(data["msgid"]),
            {str(k): str(v) for k, v in (data.get("params") or {}).items()},
            tuple(data.get("translated") or ()),
        )
