"""One error root for everything flopledger raises on purpose.

The CLI turns any :class:`FlopledgerError` into one line on stderr and exit code 1; a traceback
means a bug.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FlopledgerError",
    "InputError",
    "LedgerUnreadable",
    "SolverError",
    "UnknownNameError",
]


class FlopledgerError(Exception):
    """Base class of every error flopledger raises deliberately."""


class InputError(FlopledgerError):
    """A file, row or argument given by the user cannot be used.

    The message names the file, line and field where they are known, and says what to do.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = ":".join(str(part) for part in (path, line) if part is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field!r})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class LedgerUnreadable(InputError):
    """A ledger file exists but cannot be read now (not a ledger, or held by a writer)."""


class ConfigError(FlopledgerError):
    """A configuration file or setting is invalid (names the file and key)."""


class UnknownNameError(FlopledgerError):
    """A registry lookup failed; the message suggests the closest known names."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        import difflib

        self.kind = kind
        self.name = name
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = "" if close else f"; known: {', '.join(sorted(known)[:20])}"
        super().__init__(f"unknown {kind} {name!r}{hint}{listing}")


class SolverError(FlopledgerError):
    """An optimisation problem is infeasible or could not be solved (names the conflict)."""
