"""A scheduler job for the leadership test: appends ``job-id pid`` to a file."""

from __future__ import annotations

import os


def record_run(path: str, job_id: str) -> None:
    """Record that ``job_id`` ran in this process."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{job_id} {os.getpid()}\n")
