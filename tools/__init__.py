"""Operational checks and tools (see tools/README.md); measurements live in benchmarks/."""
