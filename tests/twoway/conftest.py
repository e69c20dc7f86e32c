"""Fixtures for the two-way engagement tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twoway_support import EXAMPLES, jcall, twoway_config


@pytest.fixture
def tw_config(tmp_path: Path) -> Path:
    """SQLite config with resources, urgent words and an on-call address."""
    return twoway_config(tmp_path / "gw")


@pytest.fixture
def families(cli: Any, tw_config: Path) -> Path:
    """``tw_config`` with examples/families.csv imported through the CLI."""
    report = jcall(cli, ["families", "import", str(EXAMPLES / "families.csv"), "--json"], tw_config)
    assert report["families_imported"] == 11 and not report["errors"]
    return tw_config
