"""Helpers the web tests share (importable, unlike conftest)."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    """The CSRF token in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
