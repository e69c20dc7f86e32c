"""The aiohttp application: channel webhooks, one-click unsubscribe, health, metrics, API."""
