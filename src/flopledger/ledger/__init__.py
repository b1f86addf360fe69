"""Ledger layer."""
