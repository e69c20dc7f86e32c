"""Configuration: YAML + ${ENV}, validated at start with the key path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.resources import EXAMPLE_CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_documents_channels() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.ordered_channels() == ["sms", "email", "telegram"]
    assert {c["plugin"] for c in config.channels.values()} == {"sandbox"}
    assert config.quiet_hours.enabled is True


def test_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_NAME", "Lincoln USD")
    path = write(tmp_path, "district:\n  name: ${GW_TEST_NAME}\n  phone: ${GW_MISSING:-+19135550100}\n")
    config = load_config(path)
    assert config.district.name == "Lincoln USD"
    assert config.district.phone == "+19135550100"


def test_missing_env_variable_names_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "channels:\n  sms:\n    plugin: sandbox\n    endpoint: phone\n"
        "    concurrency: 2\ndistrict:\n  email: ${GW_NOT_SET_ANYWHERE}\n",
    )
    with pytest.raises(ConfigError, match=r"district\.email: environment variable GW_NOT_SET_ANYWHERE"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quiet_hours:\n  start: 25:99\n", r"config\.yaml: quiet_hours\.start: "),
        ("quite_hours:\n  enabled: true\n", r"quite_hours: unknown key"),
        ("http:\n  port: 70000\n", r"http\.port: .*less than or equal to 65535"),
        ("families:\n  default_timezone: Mars/Olympus\n", r"families\.default_timezone: .*unknown time zone"),
        ("translation:\n  fallback: guess\n", r"translation\.fallback: "),
        ("http:\n  public_base_url: gateway.district.org\n", r"http\.public_base_url: .*absolute"),
        ("channels:\n  sms: {endpoint: phone}\n", r"channels: .*sms\.plugin: required"),
    ],
)
def test_bad_values_fail_with_key_path_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text))


def test_bad_channel_settings_are_reported_by_the_plugin_with_full_path(tmp_path: Path) -> None:
    config = parse_config(
        {"channels": {"sms": {"plugin": "sandbox", "endpoint": "phone", "concurency": 4}}},
        tmp_path / "c.yaml",
    )
    with pytest.raises(ConfigError, match=r"channels\.sms\.concurency: unknown key"):
        Gateway(config)


def test_unknown_channel_plugin_lists_installed_ones(tmp_path: Path) -> None:
    config = parse_config({"channels": {"sms": {"plugin": "whatsapp_cloud"}}}, tmp_path / "c.yaml")
    with pytest.raises(
        ConfigError, match=r"channels\.sms\.plugin: unknown channel plugin 'whatsapp_cloud'.*sandbox"
    ):
        Gateway(config)


def test_twilio_channel_requires_credentials(tmp_path: Path) -> None:
    config = parse_config(
        {"channels": {"sms": {"plugin": "twilio_sms", "from_number": "+18165550100"}}}, tmp_path / "c.yaml"
    )
    with pytest.raises(ConfigError, match=r"channels\.sms\.account_sid: required"):
        Gateway(config)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.yaml:\d+: not valid YAML"):
        load_config(write(tmp_path, "district:\n  name: [unclosed\n"))


def test_cli_reports_config_errors_with_exit_2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "quiet_hours:\n  start: noon\n")
    result = cli(["families", "list"], path)
    assert result.exit_code == 2
    assert "quiet_hours.start" in result.output
