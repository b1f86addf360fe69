"""Fingerprints: shape, NULL handling, keying, and the MinHash arithmetic."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flopledger.ledger.fingerprints import (
    FINGERPRINT_COLUMNS,
    LSH_BANDS,
    NUM_PERM,
    estimate_jaccard,
    fingerprint_prompts,
)

KEY = b"test-key"
WORDS = st.sampled_from([f"w{i}" for i in range(60)])


def test_columns_match_the_contract() -> None:
    table = fingerprint_prompts(["hello there world"], KEY)
    assert table.column_names == [c.name for c in FINGERPRINT_COLUMNS]
    assert table.num_rows == 1
    assert len(table.column("fp_minhash")[0]) == NUM_PERM
    assert len(table.column("fp_lsh_keys")[0]) == LSH_BANDS


def test_null_prompt_gives_null_everywhere() -> None:
    table = fingerprint_prompts([None, "a real prompt here", None], KEY)
    for column in table.column_names:
        values = table.column(column).to_pylist()
        assert values[0] is None and values[2] is None, column
        assert values[1] is not None, column


def test_empty_and_punctuation_prompts_have_no_signature() -> None:
    table = fingerprint_prompts(["", "?!", "word"], KEY)
    assert table.column("fp_minhash").to_pylist()[:2] == [None, None]
    assert table.column("fp_word_count").to_pylist() == [0, 0, 1]
    assert fingerprint_prompts([], KEY).num_rows == 0


def test_identical_prompts_identical_fingerprints_and_key_changes_everything() -> None:
    prompt = "Summarise the attached report in three bullet points"
    a = fingerprint_prompts([prompt, prompt], KEY).to_pylist()
    b = fingerprint_prompts([prompt], b"another key").to_pylist()
    assert a[0] == a[1]
    for column in ("fp_minhash", "fp_lsh_keys", "fp_template_hash", "fp_opening_hash", "fp_topic_hash"):
        assert a[0][column] != b[0][column], column


def test_template_skeleton_masks_numbers_strings_code_and_names() -> None:
    prompts = [
        'Translate "good morning" into French for Alice, item 17, using `fmt_text()`',
        'Translate "see you tomorrow" into French for Bob, item 942, using `parse_all()`',
        "Translate this poem into French for me",
    ]
    hashes = fingerprint_prompts(prompts, KEY).column("fp_template_hash").to_pylist()
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]


def test_opening_hash_and_chain_of_thought_flag() -> None:
    table = fingerprint_prompts(
        ["Write a poem about the sea", "Write a story, step by step", "Explain your reasoning: why?", "Hi"],
        KEY,
    )
    openings = table.column("fp_opening_hash").to_pylist()
    assert openings[0] == openings[1] != openings[2]
    assert table.column("fp_cot_elicitation").to_pylist() == [False, True, True, False]


def test_near_duplicates_share_band_keys_and_strangers_do_not() -> None:
    base = "please review this pull request and list every bug you can find in the parser module today"
    table = fingerprint_prompts([base, base + " thanks", "what is the capital of france"], KEY)
    keys = [set(k) for k in table.column("fp_lsh_keys").to_pylist()]
    assert keys[0] & keys[1]
    assert not keys[0] & keys[2]


def test_result_loads_into_duckdb_with_declared_types() -> None:
    import duckdb

    con = duckdb.connect()
    con.register("fp", fingerprint_prompts(["one two three", None], KEY))
    types = {name: typ for name, typ, *_ in con.execute("DESCRIBE fp").fetchall()}
    assert types == {c.name: c.duckdb_type for c in FINGERPRINT_COLUMNS}


def _shingle_jaccard(a: list[str], b: list[str]) -> float:
    def shingles(words: list[str]) -> set[tuple[str, ...]]:
        if len(words) < 3:
            return {tuple(words)}
        return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=40), st.lists(WORDS, min_size=1, max_size=40))
def test_estimate_is_within_sampling_error_of_true_jaccard(a: list[str], b: list[str]) -> None:
    table = fingerprint_prompts([" ".join(a), " ".join(b)], KEY)
    sig = table.column("fp_minhash").to_pylist()
    truth = _shingle_jaccard(a, b)
    # Six standard errors of a mean of NUM_PERM Bernoulli trials, plus 32-bit collision slack.
    bound = 6 * np.sqrt(max(truth * (1 - truth), 1 / NUM_PERM) / NUM_PERM) + 0.02
    assert abs(estimate_jaccard(sig[0], sig[1]) - truth) <= bound
    if truth == 1.0:
        assert sig[0] == sig[1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=60)), max_size=12))
def test_rows_are_independent_of_their_batch(prompts: list[str | None]) -> None:
    together = fingerprint_prompts(prompts, KEY).to_pylist()
    alone = [fingerprint_prompts([p], KEY).to_pylist()[0] for p in prompts]
    assert together == alone


def test_signature_is_the_minimum_over_the_union() -> None:
    """MinHash of a concatenation-free union: sig(A u B) = min(sig(A), sig(B)) per position."""
    a = "alpha beta gamma delta"
    b = "epsilon zeta eta theta"
    table = fingerprint_prompts([a, b, a + " \n " + b], KEY)
    sig = np.array(table.column("fp_minhash").to_pylist()[:2], dtype=np.uint32)
    union = np.array(table.column("fp_minhash").to_pylist()[2], dtype=np.uint32)
    # The joined prompt has the shingles of both parts plus the two straddling the join.
    assert np.all(union <= np.minimum(sig[0], sig[1]))


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_short_prompts_are_one_shingle(size: int) -> None:
    words = " ".join(f"x{i}" for i in range(size))
    table = fingerprint_prompts([words, words.upper()], KEY)
    sig = table.column("fp_minhash").to_pylist()
    assert sig[0] == sig[1]  # case-insensitive
    assert pa.array(sig).null_count == 0
