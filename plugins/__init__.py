"""Built-in plugins, shipped as ``gateway_plugins`` and registered through entry points."""
