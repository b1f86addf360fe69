"""One deterministic synthetic-data builder for the demo, screenshots and tests."""
