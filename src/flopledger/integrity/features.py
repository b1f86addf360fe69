"""Per-account (or per-cluster) behaviour features computed in DuckDB from the ledger's events.

An *account* is ``user``, else ``api_key``. Features are computed for any grouping of accounts (an
account alone, or a cluster of linked accounts pooled together) by one SQL query over a
``(account, grp)`` mapping, so a campaign spread thin is measured on all its traffic at once.

``usd_per_outcome`` is defined only for accounts that report outcomes (people, not services).

``burstiness`` is Goh and Barabasi's ``(sigma - mu) / (sigma + mu)`` of the gaps: -1 for a metronome,
0 for Poisson arrivals, towards 1 for human sessions. ``beacon_score`` (from the gaps' quartiles) stays
high for a timer even when its owner's own bursty traffic is mixed in, which moves sigma a lot.

Collision rates (opening, template, topic) are the probability that two distinct requests of the group
share the fingerprint: ``sum c(c-1) / n(n-1)``. Unlike "distinct per prompt" this does not drift with
the group's size, so small and large accounts compare fairly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

__all__ = ["ACCOUNT_SQL", "FEATURE_NAMES", "FeatureFrame", "compute_features", "events_have_outcomes"]

_MIN_BEACON_GAPS = 50  # a timer is only evident over many gaps; a few random gaps can look regular
ACCOUNT_SQL = 'coalesce("user", api_key)'

FEATURE_NAMES: tuple[str, ...] = (
    "requests",
    "gap_dispersion",
    "gap_skew",
    "beacon_score",
    "burstiness",
    "active_hour_share",
    "off_hours_share",
    "near_duplicate_rate",
    "output_input_ratio",
    "cache_read_share",
    "tokens_per_active_day",
    "usd_per_outcome",
    "opening_collision",
    "template_collision",
    "topic_collision",
    "cot_share",
    "new_model_day_share",
    "template_reuse",
)


@dataclass(frozen=True)
class FeatureFrame:
    """One row per group; ``values[:, j]`` is feature ``FEATURE_NAMES[j]`` (NaN when undefined)."""

    groups: tuple[str, ...]
    values: npt.NDArray[np.float64]

    def column(self, name: str) -> npt.NDArray[np.float64]:
        return self.values[:, FEATURE_NAMES.index(name)]


def events_have_outcomes(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'outcomes'"
    ).fetchone()
    return bool(row and row[0])


_RELEASE_AFTER_START = dt.timedelta(days=7)
_MIN_RELEASE_DAY_REQUESTS = 2
"""A shift to a new model is judged only on accounts with this many requests on its first day."""


def _newest_model_release(con: duckdb.DuckDBPyConnection) -> tuple[str | None, object]:
    """The model whose traffic began last (ignoring models with a trivial share), and when."""
    row = con.execute(
        """
        SELECT model, min(ts) FROM events WHERE model IS NOT NULL GROUP BY model
        HAVING count(*) >= 0.01 * (SELECT count(*) FROM events)
        ORDER BY min(ts) DESC LIMIT 1
        """
    ).fetchone()
    first = con.execute("SELECT min(ts) FROM events").fetchone()
    if row is None or first is None or first[0] is None:
        return None, None
    # A model first seen in the ledger's first week is where observation starts, not a release.
    if row[1] < first[0] + _RELEASE_AFTER_START:
        return None, None
    return str(row[0]), row[1]


def compute_features(con: duckdb.DuckDBPyConnection, mapping: str | None = None) -> FeatureFrame:
    """Features per group. ``mapping`` names a table or view ``(account, grp)``; None = per account."""
    grp_source = mapping or f"(SELECT DISTINCT {ACCOUNT_SQL} AS account, {ACCOUNT_SQL} AS grp FROM events)"
    model, release = _newest_model_release(con)
    has_outcomes = events_have_outcomes(con)
    outcome_join = (
        "LEFT JOIN (SELECT m.grp, sum(o.weight) AS outcomes FROM outcomes o "
        'JOIN m ON m.account = o."user" GROUP BY m.grp) oc USING (grp)'
        if has_outcomes
        else "LEFT JOIN (SELECT NULL::VARCHAR AS grp, NULL::DOUBLE AS outcomes) oc USING (grp)"
    )
    new_model_sql = (
        "CASE WHEN count(CASE WHEN ts >= $release AND ts < $release + INTERVAL 1 DAY THEN 1 END) >= "
        f"{_MIN_RELEASE_DAY_REQUESTS} THEN "
        "avg(CASE WHEN ts >= $release AND ts < $release + INTERVAL 1 DAY THEN (model = $model)::INT END) END"
        if model is not None
        else "NULL::DOUBLE"
    )
    params: dict[str, object] = {"model": model, "release": release} if model is not None else {}

    def collision(column: str) -> str:
        return f"""(SELECT grp, sum(c * (c - 1)) / nullif(sum(c) * (sum(c) - 1), 0) AS v FROM
            (SELECT grp, {column}, count(*)::DOUBLE AS c FROM e WHERE {column} IS NOT NULL GROUP BY ALL)
            GROUP BY grp)"""

    sql = f"""
    WITH m AS (SELECT * FROM {grp_source}),
    e AS (SELECT ev.rowid AS rid, m.grp, ev.* FROM events ev JOIN m ON m.account = {ACCOUNT_SQL}
          -- rows of usage reports stand for many requests (a daily bucket): they carry no timing
          WHERE coalesce(ev.requests, 1) <= 1),
    g AS (SELECT grp, epoch(ts) - epoch(lag(ts) OVER (PARTITION BY grp ORDER BY ts)) AS gap_s FROM e),
    gaps AS (SELECT grp, quantile_cont(gap_s, [0.25, 0.5, 0.75]) AS q,
                    (stddev_samp(gap_s) - avg(gap_s)) / nullif(stddev_samp(gap_s) + avg(gap_s), 0) AS burst
             FROM g WHERE gap_s > 0 GROUP BY grp),
    base AS (
        SELECT grp, count(*)::DOUBLE AS n,
            sum(coalesce(input_tokens, 0) + coalesce(cache_read_tokens, 0)
                + coalesce(cache_write_5m_tokens, 0) + coalesce(cache_write_1h_tokens, 0))::DOUBLE AS in_tok,
            sum(coalesce(cache_read_tokens, 0))::DOUBLE AS cache_tok,
            sum(coalesce(output_tokens, 0))::DOUBLE AS out_tok,
            sum(coalesce(cost_usd, 0))::DOUBLE AS cost_usd,
            count(DISTINCT date_trunc('hour', ts))::DOUBLE AS active_hours,
            count(DISTINCT date_trunc('day', ts))::DOUBLE AS active_days,
            (epoch(max(ts)) - epoch(min(ts))) / 3600.0 + 1 AS span_hours,
            avg(CASE WHEN hour(ts) < 6 OR hour(ts) >= 22 OR isodow(ts) >= 6 THEN 1.0 ELSE 0.0 END)
                AS off_share,
            avg(fp_cot_elicitation::INT) AS cot_share,
            {new_model_sql} AS new_model_share
        FROM e GROUP BY grp
    ),
    keys AS (SELECT grp, rid, unnest(fp_lsh_keys) AS k FROM e WHERE fp_lsh_keys IS NOT NULL),
    key_counts AS (SELECT grp, k, count(DISTINCT rid) AS c FROM keys GROUP BY ALL),
    dup AS (
        SELECT grp, count(DISTINCT rid)::DOUBLE AS dup_n FROM keys JOIN key_counts USING (grp, k)
        WHERE c > 1 GROUP BY grp
    ),
    fp_n AS (SELECT grp, count(*)::DOUBLE AS fp_n FROM e WHERE fp_lsh_keys IS NOT NULL GROUP BY grp)
    SELECT base.grp, n, q[1], q[2], q[3], burst, active_hours / span_hours, off_share,
        CASE WHEN fp_n > 1 THEN coalesce(dup_n, 0) / fp_n END,
        out_tok / nullif(in_tok, 0), cache_tok / nullif(in_tok, 0),
        (in_tok + out_tok) / active_days,
        {"cost_usd / (oc.outcomes + 1)" if has_outcomes else "NULL::DOUBLE"},
        op.v, tp.v, tc.v, cot_share, new_model_share
    FROM base
    LEFT JOIN gaps USING (grp) LEFT JOIN dup USING (grp) LEFT JOIN fp_n USING (grp)
    {outcome_join}
    LEFT JOIN {collision("fp_opening_hash")} op USING (grp)
    LEFT JOIN {collision("fp_template_hash")} tp USING (grp)
    LEFT JOIN {collision("fp_topic_hash")} tc USING (grp)
    ORDER BY base.grp
    """
    rows = con.execute(sql, params).fetchall()
    groups = tuple(str(r[0]) for r in rows)
    raw = np.array([[np.nan if v is None else float(v) for v in r[1:]] for r in rows], dtype=np.float64)
    raw = raw.reshape(len(rows), 17)
    n, q1, q2, q3, burst = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3], raw[:, 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        dispersion = (q3 - q1) / q2
        skew = (q3 + q1 - 2 * q2) / (q3 - q1)
    skew = np.where(np.isfinite(skew), skew, 0.0)
    beacon = 0.5 * (1 - np.clip(dispersion, 0, 1)) + 0.5 * (1 - np.clip(np.abs(skew), 0, 1))
    beacon = np.where(np.isfinite(dispersion) & (n >= _MIN_BEACON_GAPS), beacon, np.nan)
    # One signal for "templated": a fixed wrapper shows in openings, slot-filling in skeletons.
    reuse = np.fmax(raw[:, 12], raw[:, 13])
    burst = np.where(n >= _MIN_BEACON_GAPS, burst, np.nan)
    values = np.column_stack([n, dispersion, skew, beacon, burst, raw[:, 5:], reuse])
    return FeatureFrame(groups=groups, values=values)
