"""Focused checks of how a Telegram index-form button tap is resolved to a choice value."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.inbound.surveys import tapped_button_value
from gateway.storage.models import OutboxMessage


def _row(payload: dict[str, Any] | None) -> OutboxMessage:
    return OutboxMessage(channel="telegram", address="1", language="en", body="?", payload=payload)


BUTTONS = {"buttons": [["no children", "0"], ["one child", "1"], ["two or more", "2+"]]}


@pytest.mark.parametrize(("index", "value"), [(0, "no children"), (1, "one child"), ("2", "two or more")])
def test_index_resolves_to_the_buttons_value(index: Any, value: str) -> None:
    assert tapped_button_value(_row(BUTTONS), index) == value


@pytest.mark.parametrize("index", [None, 3, -1, "x", True, 1.0])
def test_unknown_index_resolves_to_nothing(index: Any) -> None:
    assert tapped_button_value(_row(BUTTONS), index) is None


def test_message_without_buttons_or_unknown_message() -> None:
    assert tapped_button_value(_row({}), 0) is None
    assert tapped_button_value(_row(None), 0) is None
    assert tapped_button_value(None, 0) is None
