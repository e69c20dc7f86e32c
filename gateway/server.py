"""``gateway serve`` and ``gateway worker``: long-running processes with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiohttp import web

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.logs import configure_logging

__all__ = ["serve_forever"]

log = logging.getLogger("gateway.server")


async def serve_forever(
    config: GatewayConfig, role: str = "serve", stop: asyncio.Event | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): HTTP + scheduler + dispatcher, or dispatcher only."""
    configure_logging(config.logging)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    gw = Gateway(config)
    runner: web.AppRunner | None = None
    scheduler: Any = None
    try:
        await gw.migrate()
        await gw.start()
        if role == "serve":
            from gateway.scheduling.scheduler import start_scheduler
            from gateway.web.app import create_app

            if config.scheduler.enabled:
                scheduler = await start_scheduler(gw)
            runner = web.AppRunner(create_app(gw), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, config.http.host, config.http.port)
            await site.start()
            log.info("listening on http://%s:%s", config.http.host, config.http.port)
        log.info("%s started (worker %s)", role, gw.dispatcher.worker_id)
        await gw.dispatcher.run_forever(stop)
    finally:
        log.info("%s stopping", role)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if runner is not None:
            await runner.cleanup()
        await gw.dispatcher.release_claims()
        await gw.close()
