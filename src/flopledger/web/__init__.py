"""The dashboard, its JSON API and the OpenTelemetry receiver: a thin shell over the ledger.

>>> from pathlib import Path
>>> create_app(WebConfig(db=Path(":memory:"))).openapi()["info"]["title"]
'flopledger'
"""

from __future__ import annotations

from flopledger.web.app import create_app
from flopledger.web.state import WebConfig
from flopledger.web.tokens import create_token, list_tokens, revoke_token

__all__ = ["WebConfig", "create_app", "create_token", "list_tokens", "revoke_token"]
