"""WhatsApp settings checked at start with their key path, the address kind's functions, and
the plugin registered through its entry point like the built-in twilio_sms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway_plugins.whatsapp import WhatsAppChannel, addresses

from gateway.app import Gateway
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.plugins import channel_types, make_plugin_manager
from gateway.testing.harness import write_config

SID = "HX" + "a" * 32


def whatsapp_config(tmp_path: Path, **keys: Any) -> Path:
    channel = {
        "plugin": "whatsapp",
        "account_sid": "AC" + "1" * 32,
        "auth_token": "secret-token",
        "from_number": "+18165550100",
        **keys,
    }
    return write_config(tmp_path, channels={"whatsapp": channel})


def build(path: Path) -> Gateway:
    return Gateway(load_config(path), make_plugin_manager())


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    assert channel_types(make_plugin_manager())["whatsapp"] is WhatsAppChannel


def test_valid_settings_build_the_channel(tmp_path: Path) -> None:
    gw = build(whatsapp_config(
        tmp_path,
        templates={"default": {"es": {"content_sid": SID, "variables": {"1": "first_line"}}}},
        quick_replies={3: SID},
    ))
    channel = gw.channels["whatsapp"]
    assert isinstance(channel, WhatsAppChannel)
    assert channel.config.from_number == "whatsapp:+18165550100"
    assert channel.kind == "whatsapp"
    assert channel.kind_info is not None and channel.kind_info.defaults_from == "phone"
    assert channel.supports_buttons and channel.features.buttons == 3
    assert not channel.features.subject and channel.features.max_length == 1600


@pytest.mark.parametrize(
    ("keys", "key_path", "reason"),
    [
        ({"templats": {}}, "channels.whatsapp.templats", "unknown key"),
        ({"templates": {"default": {"es": {"content_sid": SID, "vars": {}}}}},
         "channels.whatsapp.templates.default.es.vars", "unknown key"),
        ({"templates": {"default": {"es": {"content_sid": "HX123"}}}},
         "channels.whatsapp.templates.default.es.content_sid", "should match pattern"),
        ({"templates": {"default": {"es": {"content_sid": SID, "variables": {"1": "bodyy"}}}}},
         "channels.whatsapp.templates.default.es.variables", "unknown source 'bodyy'"),
        ({"templates": {"default": {"Spanish": {"content_sid": SID}}}},
         "channels.whatsapp.templates", "'Spanish' is not a language code"),
        ({"quick_replies": {4: SID}}, "channels.whatsapp.quick_replies", "1 to 3 buttons"),
        ({"from_number": "whatsapp:8165550100"}, "channels.whatsapp.from_number", "E.164"),
        ({"from_number": None}, "channels.whatsapp", "exactly one of from_number"),
        ({"window_hours": 48}, "channels.whatsapp.window_hours", "less than or equal to 24"),
    ],
)
def test_bad_settings_fail_with_their_key_path(
    tmp_path: Path, keys: dict[str, Any], key_path: str, reason: str
) -> None:
    path = whatsapp_config(tmp_path, **keys)
    if keys.get("from_number", "") is None:
        text = path.read_text(encoding="utf-8").replace("    from_number: null\n", "")
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build(path)
    message = str(caught.value)
    assert f"{key_path}" in message and reason in message, message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 816 555 0199", "whatsapp:+18165550199"),
        ("whatsapp:+18165550199", "whatsapp:+18165550199"),
        ("WhatsApp: (816) 555-0199", "whatsapp:+18165550199"),
        ("816-555-0199", "whatsapp:+18165550199"),
    ],
)
def test_the_address_kind_normalises_to_the_prefixed_e164_form(raw: str, expected: str) -> None:
    assert addresses.normalise(raw) == expected


@pytest.mark.parametrize("raw", ["", "whatsapp:", "hello", "+1 555"])
def test_the_address_kind_refuses_what_is_not_a_number(raw: str) -> None:
    with pytest.raises(ValueError):
        addresses.normalise(raw)


def test_masking_and_forms() -> None:
    assert addresses.mask("whatsapp:+18165550199") == "whatsapp:+1******0199"
    assert addresses.to_provider("+18165550199") == "whatsapp:+18165550199"
    assert addresses.to_provider("whatsapp:+18165550199") == "whatsapp:+18165550199"
    assert addresses.endpoint_form("whatsapp:+18165550199", "phone") == "+18165550199"
    assert addresses.endpoint_form("whatsapp:+18165550199", "whatsapp") == "whatsapp:+18165550199"
    assert addresses.DEFAULTS_FROM == "phone" and addresses.KIND == "whatsapp"
    assert addresses.to_default("whatsapp:+18165550199") == "+18165550199"


def test_the_address_kind_declaration_is_complete() -> None:
    fields = addresses.address_kind_fields()
    assert fields["name"] == "whatsapp" and fields["defaults_from"] == "phone"
    normalise, to_default = fields["normalise"], fields["to_default"]
    assert callable(normalise) and callable(to_default)
    # A guardian's phone becomes their WhatsApp address, and a reply from it finds the phone.
    assert to_default(normalise("+1 816 555 0199")) == "+18165550199"
