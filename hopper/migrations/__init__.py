"""Numbered SQL migrations per engine (``sqlite/``, ``postgres/``), shipped as package data."""
