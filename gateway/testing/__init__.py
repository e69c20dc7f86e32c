"""Reusable fakes and helpers for plugin tests (core and third-party alike)."""

from gateway.testing.fakes import FakeChannelContext, free_port

__all__ = ["FakeChannelContext", "free_port"]
