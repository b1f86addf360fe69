"""Settings declared once: each feeds a CLI option, config validation and the docs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SETTINGS", "Setting", "default_db_path", "setting_is_set", "setting_value"]


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str
    help: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("db", "FLOPLEDGER_DB", "flopledger.duckdb", "DuckDB file that holds the ledger."),
        Setting(
            "overrides",
            "FLOPLEDGER_OVERRIDES",
            "flopledger-prices.toml",
            "TOML file of negotiated discounts and private model prices (optional).",
        ),
        Setting(
            "budgets",
            "FLOPLEDGER_BUDGETS",
            "flopledger-budgets.toml",
            "TOML file of monthly budgets per team, project or API key (see `flopledger budgets check`).",
        ),
        Setting(
            "fingerprint_key",
            "FLOPLEDGER_FINGERPRINT_KEY",
            "",
            "Secret key for prompt fingerprints; set it to keep fingerprints unlinkable outside your org.",
        ),
    )
}


def setting_value(name: str) -> str:
    """The value of a setting: its environment variable, else its default."""
    s = SETTINGS[name]
    return os.environ.get(s.env) or s.default


def setting_is_set(name: str) -> bool:
    """Whether the user set the setting's environment variable (rather than leaving its default)."""
    return bool(os.environ.get(SETTINGS[name].env))


def default_db_path() -> Path:
    """The ledger file: ``$FLOPLEDGER_DB`` or ``./flopledger.duckdb``."""
    return Path(setting_value("db"))
