"""The demo: write the synthetic organisation's raw logs and ingest them through the real ingest path.

>>> # result = build_demo_ledger("demo.duckdb")
>>> # result.ingests[0].reconciles
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flopledger.catalog.overrides import load_overrides
from flopledger.integrity.outcomes import OutcomeIngest, ingest_outcomes
from flopledger.ledger.ingest import IngestResult, ingest_files
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.organisation import DemoFiles, DemoOrganisation, write_demo_logs

__all__ = ["DEMO_FINGERPRINT_KEY", "DemoResult", "build_demo_ledger"]

DEMO_FINGERPRINT_KEY = b"flopledger-demo-key"
"""The demo's fingerprint key; a real deployment sets its own secret (FLOPLEDGER_FINGERPRINT_KEY)."""


@dataclass(frozen=True)
class DemoResult:
    db: Path
    files: DemoFiles
    ingests: tuple[IngestResult, ...]
    outcomes: OutcomeIngest


def build_demo_ledger(
    db: str | Path,
    *,
    seed: int = 0,
    out_dir: str | Path | None = None,
    org: DemoOrganisation | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Write the demo organisation's logs (beside ``db`` unless ``out_dir``) and ingest them into ``db``.

    ``progress`` is called with (step name, bytes done, bytes in all) as each file is ingested.
    """
    db = Path(db)
    target = Path(out_dir) if out_dir is not None else db.parent / "demo-data"
    org = org or DemoOrganisation(seed=seed)
    files = write_demo_logs(target, org)
    overrides = load_overrides(files.overrides)
    con = open_ledger(db)
    try:
        results = []
        for step in files.steps:
            name = step.paths[0].name

            def tick(done: int, total: int, name: str = name) -> None:
                if progress is not None:
                    progress(name, done, total)

            results.append(
                ingest_files(
                    con,
                    list(step.paths),
                    format=step.format,
                    mapping=step.mapping,
                    fixed=step.fixed,
                    overrides=overrides,
                    fingerprint_key=DEMO_FINGERPRINT_KEY,
                    progress=tick,
                )
            )
        outcomes = ingest_outcomes(con, [files.outcomes])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return DemoResult(db=db, files=files, ingests=tuple(results), outcomes=outcomes)
