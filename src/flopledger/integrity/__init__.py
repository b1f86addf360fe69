"""Integrity layer."""
