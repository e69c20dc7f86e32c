"""``gateway serve`` and ``gateway worker``: long-running processes with graceful shutdown.

``serve`` runs the HTTP app, the dispatcher and (when it wins the election) the scheduler;
``worker`` runs the dispatcher, and on PostgreSQL also stands for scheduler leadership, so jobs
keep running when the ``serve`` process dies. Exactly one process runs the scheduler
(:class:`~gateway.scheduling.leader.LeaderElection`).

SIGTERM/SIGINT: stop claiming, finish the batch in flight (messages still waiting for their
rate-limit slot are released, not sent), put any remaining claims back in the queue, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import TYPE_CHECKING, Any

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.logs import configure_logging

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["serve_forever"]

log = logging.getLogger("gateway.server")


class _SchedulerRole:
    """Starts the job runner when elected, shuts it down when demoted."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.scheduler: Any = None

    async def elected(self) -> None:
        from gateway.scheduling.scheduler import start_scheduler

        self.scheduler = await start_scheduler(self.gw)

    async def demoted(self) -> None:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.shutdown()
        if self.gw.scheduler is scheduler:
            self.gw.scheduler = None


async def serve_forever(
    config: GatewayConfig, role: str = "serve", stop: asyncio.Event | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): HTTP + scheduler + dispatcher, or dispatcher only."""
    from gateway.scheduling.leader import LeaderElection

    configure_logging(config.logging, sql_echo=config.database.echo)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    gw = Gateway(config)
    runner: web.AppRunner | None = None
    election: LeaderElection | None = None
    processor: asyncio.Task[None] | None = None
    intake: asyncio.Task[None] | None = None
    try:
        await gw.migrate()
        # Replies and reports spooled while the database was away (this run or an earlier one)
        # are replayed in the background, before and alongside new arrivals.
        intake = asyncio.create_task(gw.intake.run(stop), name="intake-replay")
        await gw.start()
        if config.scheduler.enabled and (role == "serve" or not gw.db.is_sqlite):
            scheduler_role = _SchedulerRole(gw)
            election = LeaderElection(config.database_url, scheduler_role.elected, scheduler_role.demoted)
            await election.start()
        if role == "serve":
            from aiohttp import web

            from gateway.web.app import create_app

            runner = web.AppRunner(create_app(gw), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, config.http.host, config.http.port)
            await site.start()
            log.info("listening on http://%s:%s", config.http.host, config.http.port)
        log.info("%s started (worker %s)", role, gw.dispatcher.worker_id)
        # What start-up loaded (modules, catalogs, plugins) lives as long as the process: kept
        # out of the garbage collector's full passes, which then only walk what work creates.
        gc.freeze()
        if role == "serve":
            # Replies that webhooks stored (also any left pending by a crash) are processed here.
            processor = asyncio.create_task(gw.inbound.run_processor(stop), name="inbound-processor")
        await gw.dispatcher.run_forever(stop)
    finally:
        log.info("%s stopping", role)
        stop.set()
        if processor is not None:
            await processor
        if intake is not None:
            await intake
        if election is not None:
            await election.stop()
        if runner is not None:
            await runner.cleanup()
        released = await gw.dispatcher.release_claims()
        if released:
            log.info("released %d claimed message(s) back to the queue", released)
        await gw.dispatcher.limiter.close()
        await gw.close()
