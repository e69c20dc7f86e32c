"""Spreadsheet downloads (call lists, survey results and responses, the families export).

Each starts with a UTF-8 byte-order mark: without one, Excel — what most district staff open
a CSV with — reads the file in the computer's legacy code page, and every name or answer in
Vietnamese, Arabic, Spanish or Somali turns into mojibake ("Nguyá»…n"). Other spreadsheet
programs, Python's ``utf-8-sig`` and the gateway's own families import all accept the mark.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

__all__ = ["UTF8_BOM", "csv_download"]

UTF8_BOM = "\ufeff"


def csv_download(text: str, filename: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """``text`` (CSV) as an attachment named ``filename``, marked as UTF-8 for spreadsheets."""
    return web.Response(
        text=UTF8_BOM + text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )
