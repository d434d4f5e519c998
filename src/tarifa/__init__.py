"""Tarifa: VoIP billing, rating and routing."""

__version__ = "0.1.0"
