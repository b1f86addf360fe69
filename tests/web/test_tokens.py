"""Tokens: issued once, stored as a hash, revocable; the CLI prints the secret alone on its last line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import InputError
from flopledger.ledger.store import open_ledger
from flopledger.web.tokens import create_token, list_tokens, revoke_token, verify_token

runner = CliRunner()


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    con = open_ledger(db)
    issued = create_token(con, role="viewer", team="agents")
    rows = con.execute("SELECT * FROM api_tokens").fetchall()
    con.close()
    assert issued.secret not in repr(rows)
    assert hashlib.sha256(issued.secret.encode()).hexdigest() in repr(rows)
    assert issued.secret.encode() not in db.read_bytes()


def test_verify_and_revoke() -> None:
    con = open_ledger(":memory:")
    admin = create_token(con, role="admin")
    viewer = create_token(con, role="viewer", team="search")
    assert verify_token(con, admin.secret) is not None and verify_token(con, admin.secret).team is None  # type: ignore[union-attr]
    assert verify_token(con, viewer.secret).team == "search"  # type: ignore[union-attr]
    assert verify_token(con, viewer.secret + "x") is None
    assert verify_token(con, "") is None
    revoked = revoke_token(con, viewer.record.id)
    assert revoked.revoked_at is not None
    assert verify_token(con, viewer.secret) is None
    assert [t.id for t in list_tokens(con)] == [admin.record.id, viewer.record.id]


@pytest.mark.parametrize(
    ("role", "team", "field"),
    [
        ("viewer", None, "team"),
        ("viewer", "  ", "team"),
        ("admin", "agents", "team"),
        ("owner", None, "role"),
    ],
)
def test_bad_token_requests_are_explained(role: str, team: str | None, field: str) -> None:
    with pytest.raises(InputError) as err:
        create_token(open_ledger(":memory:"), role=role, team=team)
    assert err.value.field == field


def test_revoking_an_unknown_id_names_the_known_ones() -> None:
    con = open_ledger(":memory:")
    made = create_token(con, role="admin")
    with pytest.raises(InputError, match=made.record.id):
        revoke_token(con, "nope")


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.duckdb")
    out = runner.invoke(app, ["tokens", "create", "--role", "viewer", "--team", "agents", "--db", db])
    assert out.exit_code == 0, out.output
    secret = out.stdout.strip().splitlines()[-1]
    assert secret.startswith("flt_") and " " not in secret
    con = open_ledger(db)
    principal = verify_token(con, secret)
    con.close()
    assert principal is not None and principal.team == "agents"
    listed = runner.invoke(app, ["tokens", "list", "--db", db, "--format", "json"])
    assert listed.exit_code == 0 and secret not in listed.stdout
    assert principal.token_id in listed.stdout
    assert runner.invoke(app, ["tokens", "revoke", principal.token_id, "--db", db]).exit_code == 0
    con = open_ledger(db)
    assert verify_token(con, secret) is None
    con.close()


def test_a_token_for_a_ledger_not_there_yet_says_a_new_one_is_made(tmp_path: Path) -> None:
    """A mistyped --db would otherwise give a token that works on an empty ledger nobody serves."""
    db = tmp_path / "typo.duckdb"
    first = runner.invoke(app, ["tokens", "create", "--role", "admin", "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert f"there was no ledger at {db}" in first.stderr and "check --db" in first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith("flt_")  # the secret stays alone, last
    again = runner.invoke(app, ["tokens", "create", "--role", "admin", "--db", str(db)])
    assert again.exit_code == 0 and "no ledger" not in again.stderr


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from flopledger.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["tokens", "create", "--role", "viewer", "--db", str(tmp_path / "l.duckdb")])
    assert stop.value.code == 1
