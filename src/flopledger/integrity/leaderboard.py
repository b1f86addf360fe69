"""A usage leaderboard that resists gaming: outcomes per dollar beside the raw token rank.

Ranking people by tokens rewards burning them; this ranks by outcomes (commits, merged changes,
closed tickets) per dollar, shows the token rank beside it, and marks accounts the token-burn
detector flags, with the strongest evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from flopledger.integrity.detectors import Thresholds
from flopledger.integrity.features import ACCOUNT_SQL, events_have_outcomes
from flopledger.integrity.scan import scan

__all__ = ["LeaderboardRow", "leaderboard"]


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    account: str
    outcomes: float
    cost_usd: float
    outcomes_per_usd: float | None
    tokens: int
    token_rank: int
    flagged: bool
    why: str


def leaderboard(
    con: duckdb.DuckDBPyConnection, *, limit: int = 50, thresholds: Thresholds | None = None
) -> list[LeaderboardRow]:
    """Accounts ranked by outcomes per dollar (then by fewer dollars), flagged token burners marked."""
    outcomes_sql = (
        'SELECT "user" AS account, sum(weight) AS outcomes FROM outcomes GROUP BY 1'
        if events_have_outcomes(con)
        else "SELECT NULL::VARCHAR AS account, NULL::DOUBLE AS outcomes"
    )
    rows = con.execute(
        f"""
        WITH usage AS (
            SELECT {ACCOUNT_SQL} AS account, sum(coalesce(cost_usd, 0)) AS cost_usd,
                sum(coalesce(input_tokens, 0) + coalesce(cache_read_tokens, 0)
                    + coalesce(cache_write_5m_tokens, 0)
                    + coalesce(cache_write_1h_tokens, 0) + coalesce(output_tokens, 0)) AS tokens
            FROM events WHERE {ACCOUNT_SQL} IS NOT NULL GROUP BY 1
        )
        SELECT account, coalesce(o.outcomes, 0) AS outcomes, cost_usd, tokens,
            rank() OVER (ORDER BY tokens DESC) AS token_rank
        FROM usage LEFT JOIN ({outcomes_sql}) o USING (account)
        """
    ).fetchall()
    burn = {f.account: f for f in scan(con, thresholds, flagged_only=True) if f.kind == "token_burn"}

    def per_usd(outcomes: float, cost: float) -> float | None:
        return outcomes / cost if cost > 0 else None

    ordered = sorted(
        rows,
        key=lambda r: (-(per_usd(float(r[1]), float(r[2])) or 0.0), float(r[2]), str(r[0])),
    )
    board: list[LeaderboardRow] = []
    for position, (account, outcomes, cost, tokens, token_rank) in enumerate(ordered[:limit], start=1):
        finding = burn.get(str(account))
        why = (
            "; ".join(f"{e.feature} {e.value:g} vs {e.baseline:g}" for e in finding.evidence)
            if finding
            else ""
        )
        board.append(
            LeaderboardRow(
                rank=position,
                account=str(account),
                outcomes=float(outcomes),
                cost_usd=round(float(cost), 4),
                outcomes_per_usd=per_usd(float(outcomes), float(cost)),
                tokens=int(tokens),
                token_rank=int(token_rank),
                flagged=finding is not None,
                why=why,
            )
        )
    return board
