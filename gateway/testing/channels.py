"""Starting channel plugins in tests, and mounting their webhooks the way the core does.

For plugin tests (the built-in channels' and third-party ones)::

    async with channel_factory(MyChannel, "app", context, {"plugin": "app", ...}) as make:
        channel = await make(timeout=2.0)          # started; stopped when the block ends
        async with mounted_webhooks(channel) as client:
            await client.post("/webhooks/app/inbound", data=...)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.channels import Channel, ChannelContext

__all__ = ["channel_factory", "mounted_webhooks"]

C = TypeVar("C", bound=Channel)


@asynccontextmanager
async def channel_factory(
    cls: type[C], name: str, context: ChannelContext, defaults: Mapping[str, Any]
) -> AsyncIterator[Callable[..., Awaitable[C]]]:
    """``await make(**overrides)`` builds a ``cls`` channel named ``name`` from ``defaults``
    updated with ``overrides`` (an override of None removes the key), validated by the
    channel's own ``Settings``, and starts it; every channel made is stopped on exit."""
    started: list[C] = []

    async def make(**overrides: Any) -> C:
        values = {**defaults, **overrides}
        values = {key: value for key, value in values.items() if value is not None}
        channel = cls(name, cls.Settings.model_validate(values), context)
        await channel.start()
        started.append(channel)
        return channel

    try:
        yield make
    finally:
        for channel in started:
            await channel.stop()


@asynccontextmanager
async def mounted_webhooks(channel: Channel, *, max_body: int = 1024 * 1024) -> AsyncIterator[TestClient]:
    """An aiohttp test client for ``channel``'s webhooks, each at ``/webhooks/{name}/{action}``
    (POST) as the core mounts them, with the core's body-size limit."""
    app = web.Application(client_max_size=max_body)
    for action, handler in channel.webhooks().items():
        app.router.add_post(f"/webhooks/{channel.name}/{action}", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
