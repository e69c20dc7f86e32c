"""aiohttp application factory.

Each channel plugin declares its webhook actions; the core mounts them at
``POST /webhooks/{channel}/{action}``. Bodies over ``http.max_body_bytes`` get 413 before a
plugin sees them. ``POST /unsubscribe/{token}`` is RFC 8058 one-click; a ``GET`` of the same
URL changes nothing (mail scanners prefetch links).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import func, select

from gateway.storage.db import database_unavailable
from gateway.storage.endpoints import set_channel_state
from gateway.storage.models import Endpoint, OutboxMessage

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["GATEWAY_KEY", "create_app"]

log = logging.getLogger("gateway.web")
GATEWAY_KEY: web.AppKey[Any] = web.AppKey("gateway", object)
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def create_app(gw: Gateway) -> web.Application:
    """Build the application for a gateway (channels started by the caller)."""
    app = web.Application(client_max_size=gw.config.http.max_body_bytes, middlewares=[_errors])
    app[GATEWAY_KEY] = gw
    for name, channel in gw.channels.items():
        for action, handler in channel.webhooks().items():
            app.router.add_post(f"/webhooks/{name}/{action}", _wrap(handler))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/unsubscribe/{token}", unsubscribe_post)
    app.router.add_get("/unsubscribe/{token}", unsubscribe_get)
    app.router.add_get("/files/{token}/{filename}", attachment_file)
    app.router.add_post("/webhooks/{channel}/{action}", _unknown_webhook)
    gw.pm.hook.gateway_web_routes(context=gw.plugin_context, gateway=gw, app=app)
    from gateway.web.routes import register

    register(app, gw)
    return app


def _wrap(handler: Any) -> Any:
    async def webhook(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return webhook


async def _unknown_webhook(request: web.Request) -> web.Response:
    return web.json_response({"error": "no such webhook"}, status=404)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        if database_unavailable(exc):
            log.warning("%s %s: database unavailable (%s)", request.method, request.path, type(exc).__name__)
            return web.json_response(
                {"error": "the database is busy or unreachable; try again"},
                status=503,
                headers={"Retry-After": "5"},
            )
        log.exception("error handling %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


async def attachment_file(request: web.Request) -> web.StreamResponse:
    """An announcement's attached file, at its unguessable address (no sign-in: families open
    it from a text message); unknown and malformed tokens look the same."""
    from gateway.attachments import AttachmentError, attachment_path, find_attachment

    gw = request.app[GATEWAY_KEY]
    token = request.match_info["token"]
    try:
        path = attachment_path(gw, token)
    except AttachmentError:
        raise web.HTTPNotFound() from None
    found = await find_attachment(gw, token)
    if found is None or not path.is_file():
        raise web.HTTPNotFound()
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": found.content_type,
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=86400",
            "Referrer-Policy": "no-referrer",
        },
    )
    return response


async def healthz(request: web.Request) -> web.Response:
    """Liveness plus the outbox's lag, depth and in-flight count."""
    gw = request.app[GATEWAY_KEY]
    try:
        async with gw.db.session() as session:
            in_flight = await session.scalar(select(func.count()).where(OutboxMessage.status == "sending"))
        lag = await gw.dispatcher.queue_lag_seconds()
        depth = await gw.dispatcher.queue_depth()
    except Exception as exc:
        log.warning("health check: the database did not answer: %s", type(exc).__name__)
        return web.json_response({"status": "error", "database": type(exc).__name__}, status=503)
    return web.json_response(
        {
            "status": "ok",
            "lag_seconds": round(lag, 3),
            "in_flight": in_flight or 0,
            "queue_depth": depth,
            "channels": sorted(gw.channels),
            "errors": {f"failed:{c}": n for c, n in gw.metrics.totals("failed").items()},
            # Settings staff must change (e.g. Twilio geo permissions); also a metric.
            "alerts": [a.as_dict() for a in gw.metrics.alerts()],
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format (version 0.0.4), from the gateway's own registry."""
    from prometheus_client import CONTENT_TYPE_LATEST

    gw = request.app[GATEWAY_KEY]
    body = await gw.metrics.render(gw)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _valid_token(token: str) -> bool:
    return 8 <= len(token) <= 64 and set(token) <= TOKEN_CHARS


async def unsubscribe_post(request: web.Request) -> web.Response:
    """RFC 8058 one-click: opt the address out at once, no login, no redirect."""
    gw = request.app[GATEWAY_KEY]
    token = request.match_info["token"]
    if not _valid_token(token):
        return _invalid_link()
    async with gw.db.session() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.reply_token == token))
        if row is None or row.endpoint_id is None:
            return _invalid_link()
        endpoint = await session.get(Endpoint, row.endpoint_id)
        if endpoint is None:
            return _invalid_link()
        # The channel the e-mail came on; the family's other channels are theirs to keep.
        await set_channel_state(session, [endpoint.id], row.channel, "opted_out", "one-click unsubscribe")
        await session.commit()
    log.info("one-click unsubscribe for message %s", row.id)
    return web.Response(text="You are unsubscribed. You will not receive more e-mails from us.\n")


async def unsubscribe_get(request: web.Request) -> web.Response:
    """A page with a button; fetching it changes nothing."""
    token = request.match_info["token"]
    if not _valid_token(token):
        return _invalid_link()
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Unsubscribe</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'></head><body>"
        f"<form method='post' action='/unsubscribe/{token}'>"
        "<p>Stop receiving e-mails from your school district?</p>"
        "<button type='submit'>Unsubscribe</button></form></body></html>"
    )
    return web.Response(text=html, content_type="text/html")


def _invalid_link() -> web.Response:
    return web.Response(status=404, text="This link is not valid.\n")
