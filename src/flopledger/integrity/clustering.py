"""Link accounts into clusters through shared keyed attributes, so a thin campaign is seen whole.

Two accounts are linked when they share:

* a keyed attribute in their tags (payment, network, device or IP fingerprint), or
* a *dominant* prompt fingerprint: an LSH band key or template hash carried by at least
  ``DOMINANT_SHARE`` of each account's requests. One shared popular prompt ("hello") does not link
  two humans; a campaign's wrapper, on every request, links all its accounts however many they are;
* synchronised activity: the sets of 10-minute windows in which accounts are active are nearly the
  same (MinHash over window ids, 8 bands of 4 rows, so a pair at Jaccard 0.5 links with probability
  0.4 and a campaign of many such accounts is one component; two office workers at Jaccard 0.05 link
  with probability 5e-5). A band bucket links only when ``SYNC_MIN_ACCOUNTS`` share it, and accounts
  active in more than ``SYNC_MAX_DUTY`` of the windows of their own span are left out: an always-on
  service overlaps everything and so proves no coordination.

Clusters are the connected components of the account-key graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from flopledger.integrity.features import ACCOUNT_SQL

__all__ = [
    "ATTRIBUTE_TAGS",
    "DOMINANT_SHARE",
    "SYNC_MAX_DUTY",
    "SYNC_MIN_ACCOUNTS",
    "Clusters",
    "link_accounts",
]

ATTRIBUTE_TAGS: tuple[str, ...] = ("payment_fp", "network_fp", "device_fp", "ip_fp")
DOMINANT_SHARE = 0.3
_MIN_REQUESTS = 3
SYNC_WINDOW_S = 600
SYNC_MIN_WINDOWS = 8
SYNC_MAX_DUTY = 0.25
SYNC_MIN_ACCOUNTS = 3
_SYNC_BANDS, _SYNC_ROWS = 8, 4
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _sync_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(account, 'sync', bucket) for accounts whose active windows fall in a shared LSH bucket."""
    rows = con.execute(
        f"""
        WITH w AS (SELECT DISTINCT {ACCOUNT_SQL} AS account, (epoch(ts) // {SYNC_WINDOW_S})::BIGINT AS w
                   FROM events WHERE {ACCOUNT_SQL} IS NOT NULL AND ts IS NOT NULL),
        ok AS (SELECT account FROM w GROUP BY account
               HAVING count(*) >= {SYNC_MIN_WINDOWS} AND count(*) <= {SYNC_MAX_DUTY} * (max(w) - min(w) + 1))
        SELECT account, w FROM w JOIN ok USING (account) ORDER BY account, w
        """
    ).fetchall()
    if not rows:
        return []
    names = np.array([r[0] for r in rows], dtype=object)
    windows = np.array([r[1] for r in rows], dtype=np.int64).astype(np.uint64)
    first = np.flatnonzero(np.concatenate(([True], names[1:] != names[:-1])))
    perms = _SYNC_BANDS * _SYNC_ROWS
    salts = _mix64(np.arange(1, perms + 1, dtype=np.uint64) * _GOLDEN)
    hashed = _mix64(windows[None, :] ^ salts[:, None])
    signatures = np.minimum.reduceat(hashed, first, axis=1).T.reshape(first.size, _SYNC_BANDS, _SYNC_ROWS)
    keys = np.zeros((first.size, _SYNC_BANDS), dtype=np.uint64)
    for row in range(_SYNC_ROWS):
        keys = _mix64(keys * _GOLDEN + signatures[:, :, row])
    keys = _mix64(keys ^ np.arange(_SYNC_BANDS, dtype=np.uint64)[None, :])
    flat = keys.reshape(-1)
    unique, counts = np.unique(flat, return_counts=True)
    shared = set(unique[counts >= SYNC_MIN_ACCOUNTS].tolist())
    accounts = names[first]
    return [
        (str(accounts[i]), "sync", str(int(k)))
        for i in range(first.size)
        for k in keys[i]
        if int(k) in shared
    ]


@dataclass(frozen=True)
class Clusters:
    """``cluster_of[account]`` and ``members[cluster]`` for clusters of two or more accounts."""

    cluster_of: dict[str, str]
    members: dict[str, tuple[str, ...]]
    linked_by: dict[str, tuple[str, ...]]
    """Kinds of link that formed each multi-account cluster (attribute name, lsh, template)."""


def _link_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    attrs = " UNION ALL ".join(
        f"SELECT {ACCOUNT_SQL} AS account, '{t}' AS kind, json_extract_string(tags, '$.{t}') AS k FROM events"
        for t in ATTRIBUTE_TAGS
    )
    sql = f"""
    WITH e AS (SELECT rowid AS rid, {ACCOUNT_SQL} AS account, fp_lsh_keys, fp_template_hash FROM events
               WHERE {ACCOUNT_SQL} IS NOT NULL),
    n AS (SELECT account, count(*) AS n FROM e GROUP BY account HAVING count(*) >= {_MIN_REQUESTS}),
    lsh AS (SELECT account, 'lsh' AS kind, k::VARCHAR AS k, count(DISTINCT rid) AS c
            FROM (SELECT account, rid, unnest(fp_lsh_keys) AS k FROM e) GROUP BY ALL),
    tpl AS (SELECT account, 'template' AS kind, fp_template_hash::VARCHAR AS k, count(*) AS c
            FROM e WHERE fp_template_hash IS NOT NULL GROUP BY ALL),
    dominant AS (
        SELECT account, kind, k FROM (SELECT * FROM lsh UNION ALL SELECT * FROM tpl) JOIN n USING (account)
        WHERE c >= {_MIN_REQUESTS} AND c >= {DOMINANT_SHARE} * n
    ),
    attr AS (SELECT DISTINCT account, kind, k FROM ({attrs}) WHERE account IS NOT NULL AND k IS NOT NULL)
    SELECT account, kind, k FROM dominant UNION SELECT account, kind, k FROM attr
    """
    return [(str(a), str(kind), str(k)) for a, kind, k in con.execute(sql).fetchall()]


def link_accounts(con: duckdb.DuckDBPyConnection) -> Clusters:
    """Cluster the ledger's accounts; a cluster id is stable for the same set of members."""
    accounts = [
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT {ACCOUNT_SQL} FROM events WHERE {ACCOUNT_SQL} IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    index = {a: i for i, a in enumerate(accounts)}
    rows = _link_rows(con) + _sync_rows(con)
    keys = sorted({(kind, k) for _, kind, k in rows})
    key_index = {key: len(accounts) + i for i, key in enumerate(keys)}
    size = len(accounts) + len(keys)
    src = np.array([index[a] for a, _, _ in rows], dtype=np.int64)
    dst = np.array([key_index[(kind, k)] for _, kind, k in rows], dtype=np.int64)
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    by_label: dict[int, list[str]] = {}
    for a, i in index.items():
        by_label.setdefault(int(labels[i]), []).append(a)
    kinds_by_label: dict[int, set[str]] = {}
    for a, kind, _ in rows:
        kinds_by_label.setdefault(int(labels[index[a]]), set()).add(kind)
    cluster_of: dict[str, str] = {}
    members: dict[str, tuple[str, ...]] = {}
    linked_by: dict[str, tuple[str, ...]] = {}
    groups = sorted(by_label.items(), key=lambda item: (-len(item[1]), item[1][0]))
    for rank, (label, group) in enumerate(groups):
        if len(group) == 1:
            continue
        cid = f"cluster-{rank + 1:04d}"
        members[cid] = tuple(group)
        linked_by[cid] = tuple(sorted(kinds_by_label.get(label, set())))
        for a in group:
            cluster_of[a] = cid
    return Clusters(cluster_of=cluster_of, members=members, linked_by=linked_by)
