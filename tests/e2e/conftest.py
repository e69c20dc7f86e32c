"""Fixtures of the end-to-end tests (helpers live in ``e2e_support``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite database file for tests that are not about storage."""
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'gateway.db'}"
