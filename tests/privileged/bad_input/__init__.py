"""The bad-input corpus of issue 11: cases, their C sources, and the per-case runner."""
