"""Benchmarks of lossgrad; run them with ``make bench``."""
