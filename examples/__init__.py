"""Examples: the demo app, the demo script, shared process helpers."""
