"""Third-party plugins: a throwaway distribution with an entry point adds a channel with no
change to the core, exactly like the built-ins are registered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from gateway import hookspecs
from gateway.plugins import make_plugin_manager

PLUGIN = textwrap.dedent('''
    """A pretend WhatsApp channel that writes what it sends to a file."""
    import json, os
    from gateway import Channel, SendResult, hookimpl

    class PretendWhatsApp(Channel):
        plugin = "pretend_whatsapp"
        endpoint_kind = "phone"

        async def send(self, message):
            with open(os.environ["PRETEND_LOG"], "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"to": message.address, "language": message.language,
                                     "body": message.body}) + "\\n")
            return SendResult(provider_message_id=f"wa-{message.message_id}")

    @hookimpl
    def gateway_channel_types():
        return [PretendWhatsApp]
''')


def make_distribution(root: Path) -> Path:
    """A minimal installed distribution: module + dist-info with an entry point."""
    site = root / "site"
    site.mkdir(parents=True)
    (site / "pretend_whatsapp.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "pretend_whatsapp-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pretend-whatsapp\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gateway]\npretend_whatsapp = pretend_whatsapp\n")
    return site


def run_gateway(args: list[str], site: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "PRETEND_LOG": str(tmp_path / "sent.jsonl")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_installed_distribution_adds_a_channel_without_core_changes(tmp_path: Path) -> None:
    site = make_distribution(tmp_path)
    listing = run_gateway(["plugins", "list", "--json"], site, tmp_path)
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    assert plugins["pretend_whatsapp"]["channels"] == ["pretend_whatsapp"]
    assert plugins["pretend_whatsapp"]["distribution"] == "pretend-whatsapp 0.1"
    # the built-ins come through the very same entry-point group
    assert plugins["sandbox"]["distribution"].startswith("family-engagement-gateway")

    from gateway.testing.harness import write_config

    config = write_config(tmp_path / "gw", channels={"whatsapp": {"plugin": "pretend_whatsapp"}})
    csv = tmp_path / "f.csv"
    csv.write_text(
        "family_id,guardian_name,language,phone,school,grade,student_name\n"
        "F1,Maria Lopez,es,(913) 555-0101,Lincoln,6,Ana\n",
        encoding="utf-8",
    )
    assert (
        run_gateway(["families", "import", str(csv), "--config", str(config)], site, tmp_path).returncode == 0
    )
    sent = run_gateway(
        ["broadcast", "send", "opt_in_confirmation", "--config", str(config), "--json"], site, tmp_path
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["by_channel"] == {"whatsapp": 1}
    script = (
        "import asyncio,sys;from gateway.testing.harness import open_gateway\n"
        "async def m():\n async with open_gateway(sys.argv[1]) as gw: await gw.dispatcher.run_until_idle()\n"
        "asyncio.run(m())"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "PRETEND_LOG": str(tmp_path / "sent.jsonl")}
    subprocess.run([sys.executable, "-c", script, str(config)], env=env, check=True, timeout=120)
    lines = [json.loads(x) for x in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert lines == [{"to": "+19135550101", "language": "es", "body": lines[0]["body"]}]
    assert "START" in lines[0]["body"] or lines[0]["body"]


def test_every_hook_has_a_docstring_and_a_caller() -> None:
    pm = make_plugin_manager()
    names = [n for n in dir(hookspecs) if n.startswith("gateway_")]
    assert len(names) >= 10
    core = Path(__file__).resolve().parents[2] / "gateway"
    sources = "\n".join(p.read_text(encoding="utf-8") for p in core.rglob("*.py"))
    for name in names:
        assert getattr(hookspecs, name).__doc__, name
        assert hasattr(pm.hook, name)
        if name != "gateway_cli_commands":
            assert f"hook.{name}" in sources or f'"{name}"' in sources, f"{name} is never called by the core"
