"""Mounts the staff side of the server: the JSON admin API and the liaison web app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.web.api import add_api_routes
from gateway.web.auth import CODEC_KEY, SessionCodec, load_secret
from gateway.web.pages import add_page_routes
from gateway.web.staff_pages import add_staff_routes

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["register"]


def register(app: web.Application, gw: Gateway) -> None:
    """Add ``/api/...``, the pages (staff accounts among them) and ``/static/`` to ``app``."""
    app[CODEC_KEY] = SessionCodec(load_secret(gw.data_dir))
    add_api_routes(app)
    add_page_routes(app)
    add_staff_routes(app)
