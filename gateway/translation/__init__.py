"""translation package."""
