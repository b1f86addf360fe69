"""A best-effort JSON cache file of the flattened price catalog: model resolutions and flat rows.

One file per catalog version and flattening code (the caller names it by a digest of both), under
the user cache directory (``$XDG_CACHE_HOME/flopledger``, else ``~/.cache/flopledger``). An
unreadable, damaged or unwritable file only costs the cache: the rows are derived again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DiskCache", "cache_file", "digest_of", "load_cache"]


@dataclass
class DiskCache:
    """Flat rows and model resolutions of one catalog version, as kept in (and loaded from) ``path``."""

    path: Path | None
    models: dict[str, list[str] | None]
    rows: dict[str, list[dict[str, Any]]]
    dirty: bool = False  # holds entries the file does not have yet

    def save(self) -> None:
        """Write the file if it lacks entries; atomic, so a concurrent reader sees the old file or the new."""
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"models": self.models, "rows": self.rows}, fh)
            os.replace(tmp, self.path)
        except OSError:
            return
        self.dirty = False


def cache_file(digest: str) -> Path | None:
    """The cache file named by ``digest``, or None without a home directory."""
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:
        return None
    return root / "flopledger" / f"catalog-{digest[:20]}.json"


def load_cache(path: Path | None) -> DiskCache:
    """The cache kept at ``path`` (empty when missing or damaged)."""
    try:
        raw = json.loads(path.read_text("utf-8")) if path is not None else {}
        models, rows = dict(raw["models"]), dict(raw["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        models, rows = {}, {}
    return DiskCache(path, models, rows)


def digest_of(parts: Iterable[bytes]) -> str:
    """A hex digest naming a cache file by everything its contents depend on."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()
