"""rsr-bench: a reproducible evaluation harness for real-world super-resolution."""

__version__ = "0.1.0"
