"""Helpers the web tests share (importable, unlike conftest)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway.families import import_families

PASSWORD = "correct horse battery"
#: The header of a families CSV (PRODUCT.md's columns).
FAMILIES_HEADER = (
    "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,school,grade,"
    "student_name,timezone,tags\n"
)


def csrf_from(html: str) -> str:
    """The CSRF token in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def import_rows(gw: Any, folder: Path, rows: str, name: str = "families.csv") -> dict[str, Any]:
    """Import families CSV ``rows`` (without the header) through the real import; its report."""
    path = folder / name
    path.write_text(FAMILIES_HEADER + rows, encoding="utf-8")
    return await import_families(gw, path, progress=False)
