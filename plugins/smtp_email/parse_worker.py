"""Parsing incoming mail in a worker process, with a hard time limit.

Parsing a family's mail is CPU work on input anyone can shape. Bounded as it is
(:mod:`.reply_text`), doing it in a thread of ``gateway serve`` would still compete with the
event loop for the GIL (measured: ``/healthz`` answers went from 60 ms to 300-500 ms while three
hostile 100 KB mails were parsed), and a thread cannot be stopped. So it runs in one worker
process (started on first use, spawned: the parent runs threads that a fork would copy
mid-work); a parse that runs past its limit gets the worker terminated (a new one starts with the
next mail) and the caller falls back to the raw text.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from multiprocessing.pool import Pool
from typing import Any

from .inbound_mail import ParsedMail, parse_incoming_mail

__all__ = ["MailParseWorker"]


class MailParseWorker:
    """One worker process parsing mail for one channel."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pool: Pool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> Pool:
        with self._lock:
            if self._pool is None:
                self._pool = multiprocessing.get_context("spawn").Pool(processes=1)
            return self._pool

    async def parse(self, raw: bytes, **kwargs: Any) -> ParsedMail:
        """:func:`~.inbound_mail.parse_incoming_mail` in the worker; raises TimeoutError (the
        worker is ended) past :attr:`timeout`, or what the parse raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ParsedMail] = loop.create_future()

        def resolve(result: Any) -> None:
            if not future.done():
                future.set_result(result)

        def reject(exc: BaseException) -> None:
            if not future.done():
                future.set_exception(exc)

        pool = await asyncio.to_thread(self._get_pool)  # the first start takes a moment
        pool.apply_async(
            parse_incoming_mail,
            (raw,),
            kwargs,
            callback=lambda result: loop.call_soon_threadsafe(resolve, result),
            error_callback=lambda exc: loop.call_soon_threadsafe(reject, exc),
        )
        try:
            return await asyncio.wait_for(future, timeout=self.timeout)
        except TimeoutError:
            await asyncio.to_thread(self._terminate, pool)
            raise

    def _terminate(self, pool: Pool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.terminate()
        pool.join()

    async def close(self) -> None:
        """End the worker process."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(self._close_pool, pool)

    @staticmethod
    def _close_pool(pool: Pool) -> None:
        pool.close()
        pool.terminate()
        pool.join()
