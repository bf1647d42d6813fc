"""Folder triggers: ``watch:`` entries whose settled files start tasks."""
