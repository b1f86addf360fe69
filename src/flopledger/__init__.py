"""flopledger: the money questions of AI compute, from a single token to a gigawatt.

tokens -> FLOPs and bytes -> accelerator-seconds -> watts -> dollars.
"""

from __future__ import annotations

from flopledger.errors import ConfigError, FlopledgerError, InputError, SolverError, UnknownNameError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FlopledgerError",
    "InputError",
    "SolverError",
    "UnknownNameError",
    "__version__",
]
