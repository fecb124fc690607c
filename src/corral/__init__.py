"""Corral: distributed command execution over one core and four API dialects."""

__version__ = "0.1.0"
