"""Fan-out benchmark (work in progress by the translation engineer)."""
