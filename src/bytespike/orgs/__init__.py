"""Organisations and their members."""
