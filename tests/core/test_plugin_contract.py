"""The typed, versioned plugin contract: every hook called by the core with a real hookimpl,
``PluginContext`` instead of the gateway, one ``MessageStatusEvent`` whatever the source,
observers isolated from each other, and ``GATEWAY_CONTRACT`` checked at load time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from gateway import (
    CONTRACT_VERSION,
    InboundMessage,
    InboundOutcome,
    MessageStatusEvent,
    PluginContext,
    StatusUpdate,
    hookimpl,
)
from gateway.contract import check_contract
from gateway.errors import PluginError
from gateway.families import import_families
from gateway.outbox.planner import BroadcastRequest
from gateway.resources import SHIPPED_TEMPLATES
from gateway.sandbox_tools import inject_reply
from gateway.storage.models import OutboxMessage
from gateway.testing.engines import DeterministicEnginePlugin
from gateway.testing.harness import open_gateway, write_config
from gateway.web.app import create_app

MARIA = "+19135550101"


class Recorder:
    """A plugin written against contract 2: it only ever sees ``context``."""

    GATEWAY_CONTRACT = "2"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.events: list[MessageStatusEvent] = []
        self.contexts: set[int] = set()

    @hookimpl
    def gateway_template_filters(self) -> dict[str, Any]:
        return {"shout": lambda value: str(value).upper() + "!"}

    @hookimpl
    def gateway_select_translation_engine(self, engines: list[Any], source: str, target: str) -> Any:
        self.calls.append(("select", source, target))
        return next((e for e in engines if e.name == "table2"), None)

    @hookimpl
    def gateway_web_routes(self, context: PluginContext, app: web.Application) -> None:
        async def ping(_request: web.Request) -> web.Response:
            return web.json_response(
                {"district": context.settings.district.name, "url": context.public_url("/plugin/ping")}
            )

        app.router.add_get("/plugin/ping", ping)

    @hookimpl
    async def gateway_startup(self, context: PluginContext) -> None:
        self.contexts.add(id(context))
        self.calls.append(("startup", context.contract_version, context.channel_names()))

    @hookimpl
    def gateway_shutdown(self, context: PluginContext) -> None:
        self.calls.append(("shutdown",))

    @hookimpl
    async def gateway_inbound_processed(
        self, context: PluginContext, inbound: InboundMessage, outcome: InboundOutcome
    ) -> None:
        self.contexts.add(id(context))
        self.calls.append(("inbound", inbound.channel, outcome.classification))
        if outcome.classification == "free_text" and outcome.inbound_id is not None:
            queued = await context.queue_reply(
                outcome.inbound_id, "A person will call you today.", author="bot"
            )
            self.calls.append(("queued", queued.channel, queued.language))
        async with context.session() as session:
            count = len(list(await session.scalars(select(OutboxMessage.id))))
        self.calls.append(("outbox rows", count > 0))

    @hookimpl
    def gateway_message_status(self, event: MessageStatusEvent) -> None:
        self.events.append(event)


class Broken:
    """Observers with bugs: each failure is logged for this plugin; the others still run."""

    @hookimpl(tryfirst=True)
    def gateway_message_status(self, event: MessageStatusEvent) -> None:
        raise RuntimeError("observer bug")

    @hookimpl(tryfirst=True)
    async def gateway_inbound_processed(self, inbound: InboundMessage) -> None:
        raise RuntimeError("async observer bug")


class OldStyle:
    """A plugin written before contract 2 (``gateway``, ``message_id``, ``status``, ``detail``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str, bool]] = []

    @hookimpl
    def gateway_message_status(self, gateway: Any, message_id: int, status: str, detail: Any) -> None:
        self.seen.append((message_id, status, type(detail).__name__, hasattr(gateway, "planner")))


def _config(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    shutil.copytree(SHIPPED_TEMPLATES, templates)
    (templates / "shouty.j2").write_text("{% block sms %}{{ text|shout }}{% endblock %}\n", encoding="utf-8")
    return write_config(
        tmp_path / "gw",
        paths={"data_dir": str(tmp_path / "gw" / "data"), "templates": str(templates)},
        translation={"engines": ["table", "table2"]},
    )


async def test_every_runtime_hook_is_called_with_the_context(tmp_path: Path, caplog: Any) -> None:
    recorder, broken, old, engines = Recorder(), Broken(), OldStyle(), DeterministicEnginePlugin()
    families = tmp_path / "families.csv"
    families.write_text(
        f"family_id,guardian_name,language,phone\nF1,Maria Lopez,es,{MARIA}\n", encoding="utf-8"
    )
    async with open_gateway(_config(tmp_path), extra_plugins=(recorder, broken, old, engines)) as gw:
        await gw.start()
        assert ("startup", CONTRACT_VERSION, ["sms", "email", "telegram"]) in recorder.calls
        assert (await import_families(gw, families, progress=False))["errors"] == []

        # gateway_template_filters + gateway_select_translation_engine, through a broadcast.
        summary = await gw.planner.plan(BroadcastRequest(template="shouty", context={"text": "hello"}))
        assert summary.by_channel == {"sms": 1}
        assert ("select", "en", "es") in recorder.calls
        assert {engine for engine, *_ in engines.recorder.seen} == {"table2"}
        await gw.dispatcher.run_until_idle()
        async with gw.db.session() as session:
            row = await session.scalar(select(OutboxMessage))
        assert row is not None and row.body.endswith("!") and row.body == row.body.upper()

        # gateway_message_status: one event type from a send and from a provider's report.
        sent = [e for e in recorder.events if e.message_id == row.id]
        assert [(e.source, e.status, e.channel) for e in sent] == [("dispatch", "delivered", "sms")]
        report = StatusUpdate(channel="sms", provider_message_id=row.provider_message_id or "", status="read")
        assert await gw.channels["sms"].context.update_status(report)
        read = recorder.events[-1]
        assert (read.source, read.status, read.provider_message_id) == (
            "report",
            "read",
            row.provider_message_id,
        )
        assert old.seen == [
            (row.id, "delivered", "MessageStatusEvent", True),
            (row.id, "read", "MessageStatusEvent", True),
        ]
        assert (
            gw.metrics.value(
                "gateway_plugin_hook_failures_total", hook="gateway_message_status", plugin="Broken"
            )
            == 2
        )

        # gateway_inbound_processed: the plugin answers through the context; the broken
        # observer ran first and failed, logged with its name.
        caplog.clear()
        await inject_reply(gw, MARIA, "Is the bus late today?", channel="sms")
        assert ("inbound", "sms", "free_text") in recorder.calls
        assert ("queued", "sms", "es") in recorder.calls and ("outbox rows", True) in recorder.calls
        assert "plugin Broken: gateway_inbound_processed failed" in caplog.text
        async with gw.db.session() as session:
            answer = (await session.scalars(select(OutboxMessage).where(OutboxMessage.conversation))).all()
        assert [a.status for a in answer] == ["delivered"] and answer[0].address == MARIA

        # gateway_web_routes, with the context's settings and public URL.
        async with TestClient(TestServer(create_app(gw))) as client:
            response = await client.get("/plugin/ping")
            assert await response.json() == {
                "district": "Test District",
                "url": "https://gateway.test/plugin/ping",
            }
        assert len(recorder.contexts) == 1, "one PluginContext for the gateway's whole life"
    assert recorder.calls[-1] == ("shutdown",)


def test_contract_version_is_checked() -> None:
    class Needs:
        def __init__(self, version: str) -> None:
            self.GATEWAY_CONTRACT = version

    major = CONTRACT_VERSION.split(".")[0]
    check_contract(Needs(major), "fine")
    check_contract(Needs(CONTRACT_VERSION), "fine")
    check_contract(object(), "undeclared")
    for wanted in (f"{int(major) + 1}", f"{major}.99", f"{int(major) - 1}"):
        with pytest.raises(
            PluginError, match=rf"plugin 'future' needs plugin contract {wanted}.*{CONTRACT_VERSION}"
        ):
            check_contract(Needs(wanted), "future")
    with pytest.raises(PluginError, match="not MAJOR or MAJOR.MINOR"):
        check_contract(Needs("two"), "odd")


PLUGIN = textwrap.dedent('''
    import typer
    from gateway import hookimpl

    GATEWAY_CONTRACT = "{version}"

    @hookimpl
    def gateway_cli_commands(cli):
        @cli.command("hello")
        def hello(name: str = "world") -> None:
            """Say hello (a plugin's command)."""
            typer.echo(f"hello {{name}} from a plugin")
''')


def _distribution(root: Path, version: str) -> dict[str, str]:
    site = root / f"site-{version}"
    site.mkdir(parents=True)
    (site / "hello_plugin.py").write_text(PLUGIN.format(version=version), encoding="utf-8")
    info = site / "hello_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gateway]\nhello = hello_plugin\n")
    return {**os.environ, "PYTHONPATH": str(site)}


def test_cli_commands_hook_and_a_plugin_needing_another_contract(tmp_path: Path) -> None:
    env = _distribution(tmp_path, CONTRACT_VERSION)
    hello = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "hello", "--name", "Amina"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello Amina from a plugin"

    future = _distribution(tmp_path, "9")
    listing = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=future,
        timeout=120,
        check=False,
    )
    assert listing.returncode != 0
    said = listing.stdout + listing.stderr
    assert f"plugin 'hello' needs plugin contract 9, this gateway implements {CONTRACT_VERSION}" in said
