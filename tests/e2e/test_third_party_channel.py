"""A third-party channel package with an address kind of its own, installed in a temporary folder
and registered through the ``gateway`` entry-point group: families are imported with
``address:app``, a broadcast reaches the families who chose the app through the app (at a local
push server) and the others by SMS on the same phone numbers, and STOP on one channel leaves the
other subscribed."""

from __future__ import annotations

import importlib
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from e2e_support import live_gateway

from gateway.outbox.planner import BroadcastRequest
from gateway.sandbox_tools import inject_reply
from gateway.testing.fakes import free_port
from gateway.web.queries import family_detail

#: The package as a district's app vendor would write it, from docs/plugin_hooks.md alone.
PACKAGE = textwrap.dedent('''
    """District app push notifications."""
    from __future__ import annotations

    import aiohttp
    from aiohttp import web

    from gateway import (
        AddressKind, Channel, ChannelCapabilities, ChannelSettings, InboundMessage,
        PermanentSendError, SendResult, hookimpl, normalize_phone,
    )

    GATEWAY_CONTRACT = "2"


    def normalise(raw: str) -> str:
        """App users are known by their phone number: ``app:+E164``."""
        return "app:" + normalize_phone(raw.strip().removeprefix("app:"))


    APP = AddressKind(
        name="app",
        normalise=normalise,
        mask=lambda address: address[:6] + "…" + address[-2:],
        defaults_from="phone",
        to_default=lambda address: address.removeprefix("app:"),
        label="district app",
    )


    class AppSettings(ChannelSettings):
        push_url: str


    class AppPushChannel(Channel):
        plugin = "app_push"
        address_kind = APP
        Settings = AppSettings
        capabilities = ChannelCapabilities(subject=True, buttons=3, max_length=2000)

        async def start(self) -> None:
            self.http = aiohttp.ClientSession()

        async def stop(self) -> None:
            await self.http.close()

        async def send(self, message):
            payload = {"to": message.address, "title": message.subject, "body": message.body,
                       "key": message.idempotency_key}
            async with self.http.post(self.settings.push_url, json=payload) as response:
                if response.status == 404:
                    raise PermanentSendError("no such app user", code="404", endpoint_state="invalid")
                answer = await response.json()
            return SendResult(provider_message_id=answer["id"])

        def webhooks(self):
            return {"inbound": self.inbound}

        async def inbound(self, request):
            data = await request.json()
            await self.context.receive(InboundMessage(
                channel=self.name, provider_message_id=data["id"], sender=APP.normalise(data["from"]),
                text=data["text"]))
            return web.json_response({"ok": True})


    @hookimpl
    def gateway_channel_types():
        return [AppPushChannel]
''')

MARIA, AMINA, CLAIRE, SARAH = "+19135550101", "+19135550102", "+19135550103", "+19135550104"
FAMILIES = (
    "family_id,guardian_name,language,phone,address:app,preferred_channel,school,student_name\n"
    f"F1,Maria Lopez,es,{MARIA},{MARIA},app,Lincoln,Ana\n"  # the app, on her own app address
    f"F2,Amina Ali,so,{AMINA},,sms,Lincoln,Omar\n"  # SMS
    f"F3,Claire Dubois,fr,{CLAIRE},,app,Lincoln,Luc\n"  # the app, on her phone number
    f"F4,Sarah Smith,en,{SARAH},,,Lincoln,Ben\n"  # no choice: channel_order
)


def install_package(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The package and its dist-info (entry point in the ``gateway`` group) on ``sys.path``."""
    site = root / "site"
    site.mkdir(parents=True)
    (site / "district_app_push.py").write_text(PACKAGE, encoding="utf-8")
    info = site / "district_app_push-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: district-app-push\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[gateway]\napp_push = district_app_push\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


class PushServer:
    """The app vendor's push API: records notifications; unknown users get a 404."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pushes: list[dict[str, Any]] = []
        self.unknown: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    async def push(self, request: web.Request) -> web.Response:
        data = await request.json()
        if data["to"] in self.unknown:
            return web.json_response({"error": "no such user"}, status=404)
        self.pushes.append(data)
        return web.json_response({"id": f"push-{len(self.pushes)}"})


@pytest.fixture
async def push_server() -> AsyncIterator[PushServer]:
    server = PushServer()
    app = web.Application()
    app.router.add_post("/push", server.push)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


async def consent(gw: Any, family_id: str) -> dict[str, str]:
    """``channel → state`` for the family's (first guardian's) address, as the family page shows it."""
    family = await family_detail(gw, family_id, None)
    assert family is not None
    return {c["channel"]: c["state"] for e in family["guardians"][0]["endpoints"] for c in e["channels"]}


async def broadcast(live: Any, text: str) -> dict[str, Any]:
    request = BroadcastRequest(template="announcement", context={"title": "Early release", "body": text})
    summary = await live.gw.planner.plan(request)
    await live.drain()
    return summary.as_dict()


async def sms_to(live: Any, broadcast_id: int) -> set[str]:
    return {r.address for r in await live.outbox(channel="sms", broadcast_id=broadcast_id)}


async def test_app_channel_package_routes_by_channel_and_keeps_consent_per_channel(
    tmp_path: Path, cli: Any, push_server: PushServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_package(tmp_path, monkeypatch)
    channels = {
        "sms": {"plugin": "sandbox", "endpoint": "phone", "echo": False},
        "app": {"plugin": "app_push", "push_url": push_server.url},
    }
    order = ["sms", "app"]
    async with live_gateway(tmp_path / "gw", cli, lambda _base: channels, channel_order=order) as live:
        plugins = {p["name"]: p for p in json.loads(cli(["plugins", "list", "--json"]).stdout)}
        assert plugins["app_push"]["channels"] == ["app_push"]
        assert plugins["app_push"]["address_kinds"] == ["app"] and plugins["app_push"]["contract"] == "2"
        assert plugins["app_push"]["distribution"] == "district-app-push 1.0"

        # An address column of a kind nobody declares is refused, named.
        bad = tmp_path / "bad.csv"
        bad.write_text("family_id,guardian_name,language,address:pager\nF9,Ann,en,123\n", encoding="utf-8")
        result = await live.run("families", "import", str(bad), "--json")
        refused = json.loads(result.stdout)
        assert result.exit_code == 1 and refused["families_imported"] == 0
        assert [(e["line"], e["column"]) for e in refused["errors"]] == [(1, "address:pager")]
        assert "unknown address kind 'pager'" in refused["errors"][0]["reason"]
        assert "app" in refused["errors"][0]["reason"]  # the declared kinds are listed

        path = tmp_path / "families.csv"
        path.write_text(FAMILIES, encoding="utf-8")
        report = (await live.run("families", "import", str(path), "--json")).json()
        assert report["errors"] == [] and report["families_imported"] == 4
        listed = (await live.run("families", "list", "--json")).json()
        maria = next(f for f in listed if f["family_id"] == "F1")["guardians"][0]
        app_address = next(e for e in maria["endpoints"] if e["kind"] == "app")
        assert app_address["address"] == f"app:{MARIA}" and app_address["masked"] == "app:+1…01"
        assert app_address["label"] == "district app"

        # Each family gets the channel it chose, on the same phone numbers.
        first = await broadcast(live, "School closes at noon on Friday.")
        assert first["by_channel"] == {"app": 2, "sms": 2}
        assert sorted(p["to"] for p in push_server.pushes) == [f"app:{MARIA}", f"app:{CLAIRE}"]
        assert all(p["title"] and "noon" not in p["title"] for p in push_server.pushes)  # a title line
        assert await sms_to(live, first["broadcast_id"]) == {AMINA, SARAH}

        # STOP in the app leaves Maria's SMS; STOP by SMS leaves Amina's app.
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                f"{live.base_url}/webhooks/app/inbound",
                json={"id": "in-1", "from": MARIA, "text": "STOP"},
            )
            assert answer.status == 200
        await live.drain()
        await inject_reply(live.gw, AMINA, "STOP", channel="sms")
        assert await consent(live.gw, "F1") == {"sms": "subscribed", "app": "opted_out"}
        assert await consent(live.gw, "F2") == {"sms": "opted_out", "app": "subscribed"}
        confirmations = [p for p in push_server.pushes if p["to"] == f"app:{MARIA}"]
        assert len(confirmations) == 2  # the announcement, then the STOP confirmation in the app

        push_server.pushes.clear()
        second = await broadcast(live, "Picture day is on Tuesday.")
        assert second["by_channel"] == {"app": 2, "sms": 2}
        assert sorted(p["to"] for p in push_server.pushes) == [f"app:{AMINA}", f"app:{CLAIRE}"]
        assert await sms_to(live, second["broadcast_id"]) == {MARIA, SARAH}

        # "STOP ALL" in the app: every channel.
        async with aiohttp.ClientSession() as http:
            await http.post(
                f"{live.base_url}/webhooks/app/inbound",
                json={"id": "in-2", "from": f"app:{CLAIRE}", "text": "stop all"},
            )
        await live.drain()
        assert await consent(live.gw, "F3") == {"sms": "opted_out", "app": "opted_out"}
        third = await broadcast(live, "Library books are due.")
        assert {s["family_id"]: s["reason"] for s in third["skipped"]} == {"F3": "opted out"}
        assert third["by_channel"] == {"app": 1, "sms": 2}

        # A 404 from the app marks the address invalid on the app only.
        push_server.unknown.add(f"app:{AMINA}")
        fourth = await broadcast(live, "Bus 12 is late.")
        assert fourth["by_channel"] == {"app": 1, "sms": 2}
        assert await consent(live.gw, "F2") == {"sms": "opted_out", "app": "invalid"}
        sarah = await consent(live.gw, "F4")
        assert sarah == {"sms": "subscribed", "app": "subscribed"}
