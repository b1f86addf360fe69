"""Keyed prompt fingerprints computed at ingest, so prompt text need not be stored.

The columns below are added to the ``events`` table; integrity detectors read them. Every hash is
keyed (BLAKE2b with the configured key), so fingerprints made under one key cannot be linked to
fingerprints made under another, and a dictionary attack needs the key.

The work is vectorised: RE2 (Arrow compute) masks template slots in three passes; words are split by
a NumPy byte-table lookup over the whole batch (a regular expression costs per match, and every word
boundary is one); NumPy combines hashes into word 3-gram shingles and takes the per-prompt minimum of
:data:`NUM_PERM` hash permutations in place on a cache-sized buffer. Only the distinct words of a
batch pass through Python (for the keyed BLAKE2b), once each.

>>> table = fingerprint_prompts(["Explain step by step why 2 + 2 = 4.", None], b"k")
>>> table.column("fp_cot_elicitation").to_pylist()
[True, None]
>>> len(table.column("fp_minhash")[0])
64
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flopledger.ledger.schema import Column

__all__ = [
    "FINGERPRINT_COLUMNS",
    "LSH_BANDS",
    "LSH_ROWS",
    "NUM_PERM",
    "SHINGLE_WORDS",
    "estimate_jaccard",
    "fingerprint_prompts",
]

NUM_PERM = 64
"""Hash permutations per MinHash signature; the Jaccard estimate's standard error is about 1/8."""
LSH_BANDS = 16
LSH_ROWS = 4
"""16 bands of 4 rows: two prompts share a band key with probability 1-(1-J^4)^16, 1/2 near J=0.5."""
SHINGLE_WORDS = 3
"""Words per shingle; a prompt shorter than this is one shingle of all its words."""

FINGERPRINT_COLUMNS: tuple[Column, ...] = (
    Column("fp_minhash", "UINTEGER[]", "Keyed MinHash signature over word shingles."),
    Column("fp_lsh_keys", "UBIGINT[]", "LSH band keys of the signature (shared key = near-duplicate)."),
    Column(
        "fp_template_hash",
        "UBIGINT",
        "Keyed hash of the template skeleton (numbers, strings, code, names masked).",
    ),
    Column("fp_opening_hash", "UBIGINT", "Keyed hash of the prompt's opening words."),
    Column("fp_cot_elicitation", "BOOLEAN", "The prompt asks for step-by-step reasoning."),
    Column(
        "fp_topic_hash", "UBIGINT", "Keyed min-hash of the prompt's content words (equal: same topic word)."
    ),
    Column("fp_word_count", "INTEGER", "Words in the prompt."),
)

_U64 = npt.NDArray[np.uint64]
_MASK_RULES: tuple[tuple[str, str], ...] = (
    # Literal slots: code blocks, inline code, URLs and e-mail addresses, quoted strings. One pass:
    # only the single-quote branch has a group (an opening context), empty for the other branches.
    (
        r"```(?s:.*?)(?:```|$)|`[^`\n]+`|(?:https?://|www\.)\S+|\S+@\S+\.\w+"
        r"|\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»|(^|[\s(\[:=,])'[^'\n]*'",
        "\\1 _str_ ",
    ),
    # Identifiers and numbers: tokens with code punctuation, dotted or snake names, camelCase.
    (
        r"\S*[{};=<>\[\]]\S*|\b[A-Za-z]+[_.][A-Za-z_.]*[A-Za-z]\b|\b\p{Ll}+\p{Lu}\w*|[-+]?\d+(?:[.,:/]\d+)*",
        " _code_ ",
    ),
    # Names: a run of capitalised words not opening a sentence, masked as one slot.
    (r"([^.!?:\s]\s+)\p{Lu}[\pL\pN_]*(?:\s+\p{Lu}[\pL\pN_]*)*", "\\1_name_"),
)
_COT_PATTERN = (
    r"(?i)step[- ]by[- ]step|chain[- ]of[- ]thought|think (it )?through|let'?s think|"
    r"(show|explain|walk me through|describe) (your|the) (reasoning|work|thought process|steps)|"
    r"reason (carefully|step)|before answering, (think|reason)|<think>"
)
_NON_WORD_UNICODE = r"[^\x00-\x7f\pL\pN\pM]+"
"""Non-ASCII characters that are not part of a word (Unicode punctuation, symbols, spaces)."""
_WORD_LUT = np.array(
    [c if chr(c).isalnum() or c == ord("_") or c >= 0x80 else ord(" ") for c in range(256)], dtype=np.uint8
)
"""Byte map: ASCII letters, digits and ``_`` (and every non-ASCII byte) kept, other ASCII to a space."""
_STOPWORD_TEXT = """
a an the and or but if of to in on at by for with from as is are was were be been being this that these
those it its i me my we our you your he she they them their what which who whom how why when where can
could would should will shall may might must do does did have has had not no yes so than then there here
about into over under up down out please write give make tell explain following given use using some any
all each more most other such only own same too very just also one two new like get want need help
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: _U64) -> _U64:
    """SplitMix64 finaliser: a bijective avalanche on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _keyed(key: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=32, person=purpose[:16]).digest()


def _hash_vocabulary(words: list[str], key: bytes, purpose: bytes) -> _U64:
    subkey = _keyed(key, purpose)
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8, key=subkey).digest(), "little")
            for w in words
        ),
        dtype=np.uint64,
        count=len(words),
    )


def _hash_strings(values: pa.Array, key: bytes, purpose: bytes) -> _U64:
    """Keyed 64-bit hash of each string; distinct strings are hashed once."""
    encoded = pc.dictionary_encode(values)
    table = _hash_vocabulary(encoded.dictionary.to_pylist(), key, purpose)
    indices: npt.NDArray[np.int64] = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return table[indices]


def _permutations(key: bytes) -> tuple[_U64, _U64]:
    raw = hashlib.blake2b(key, digest_size=64, person=b"fl-minhash-perm").digest()
    seed = np.frombuffer(raw, dtype=np.uint64)[:2].copy()
    idx = np.arange(1, 2 * NUM_PERM + 1, dtype=np.uint64)
    stream = _mix64(seed[0] + idx * _GOLDEN) ^ _mix64(seed[1] ^ idx)
    return stream[:NUM_PERM] | np.uint64(1), stream[NUM_PERM:]


def _word_bytes(texts: pa.Array) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The lower-cased UTF-8 bytes of all texts with every non-word byte set to a space, and offsets.

    A word is a run of letters, digits, marks or ``_``. Only rows holding non-ASCII text pass through
    a regular expression (Unicode punctuation and spaces become ASCII spaces, a few rows in most
    logs); every byte of the batch is then classified by one NumPy table lookup. Regular expressions
    cost per match, and a word boundary is a match, so splitting words with one is the slow way.
    """
    low = pc.utf8_lower(texts)
    ascii_rows = pc.string_is_ascii(low)
    if not pc.all(ascii_rows).as_py():
        mask = pc.invert(ascii_rows)
        spaced = pc.replace_substring_regex(pc.filter(low, mask), pattern=_NON_WORD_UNICODE, replacement=" ")
        low = pc.replace_with_mask(low, mask, spaced)
    if isinstance(low, pa.ChunkedArray):
        low = low.combine_chunks()
    _, offsets_buf, data = low.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[low.offset : low.offset + len(low) + 1]
    if data is None or offsets.size == 0:
        return np.zeros(0, dtype=np.uint8), np.zeros(len(low) + 1, dtype=np.int64)
    raw = np.take(_WORD_LUT, np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]])
    return raw, offsets - offsets[0]


def _tokens(texts: pa.Array) -> tuple[pa.Array, npt.NDArray[np.int64]]:
    """Lower-cased words of every text, flattened, with the index of the text each came from.

    No byte is copied to split: token ``i`` is first taken as the bytes from its start to the next
    token's start (its word plus the spaces after it) and then right-trimmed.
    """
    raw, offsets = _word_bytes(texts)
    is_word = raw != np.uint8(32)
    prev_word = np.zeros(raw.size, dtype=bool)
    prev_word[1:] = is_word[:-1]
    starts = offsets[:-1]
    prev_word[starts[starts < raw.size]] = False
    start_at = np.flatnonzero(is_word & ~prev_word)
    spans = pa.Array.from_buffers(
        pa.large_string(),
        start_at.size,
        [None, pa.py_buffer(np.append(start_at, raw.size).astype(np.int64)), pa.py_buffer(raw)],
    )
    parents = np.searchsorted(offsets, start_at, side="right") - 1
    return pc.ascii_rtrim_whitespace(spans), parents.astype(np.int64)


def _shingles(
    token_hash: _U64, parents: npt.NDArray[np.int64], n_docs: int
) -> tuple[_U64, npt.NDArray[np.int64]]:
    """Hashes of word 3-gram shingles, in document order, and each shingle's document."""
    n = token_hash.size
    counts = np.bincount(parents, minlength=n_docs)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(n) - starts[parents]
    combined = token_hash.copy()
    for offset in range(1, SHINGLE_WORDS):
        nxt = np.zeros(n, dtype=np.uint64)
        same = np.zeros(n, dtype=bool)
        same[: n - offset] = parents[offset:] == parents[: n - offset]
        nxt[: n - offset] = token_hash[offset:]
        combined = _mix64(combined * _GOLDEN + np.where(same, nxt, np.uint64(0)) + np.uint64(offset))
    length = counts[parents]
    valid = (pos + SHINGLE_WORDS <= length) | ((pos == 0) & (length < SHINGLE_WORDS))
    return combined[valid], parents[valid]


def _minhash(shingles: _U64, docs: npt.NDArray[np.int64], n_docs: int, key: bytes) -> npt.NDArray[np.uint32]:
    """Per-document MinHash, shape (n_docs, NUM_PERM); documents with no shingle get all-ones.

    Permutation ``i`` maps a shingle hash ``s`` to the high 32 bits of ``a_i * s + b_i`` (mod 2^64),
    a multiply-shift hash. The work runs in place on a cache-sized buffer, and the high words are
    read through a uint32 view rather than shifted and copied: memory traffic, not arithmetic, is
    what bounds this loop.
    """
    a, b = _permutations(key)
    out = np.full((NUM_PERM, n_docs), np.iinfo(np.uint32).max, dtype=np.uint32)
    chunk = 16_384  # 64 x 16k x 8 bytes = 8 MiB: stays in cache
    buf = np.empty((NUM_PERM, min(chunk, max(shingles.size, 1))), dtype=np.uint64)
    high = 1 if np.little_endian else 0
    for lo in range(0, shingles.size, chunk):
        s, d = shingles[lo : lo + chunk], docs[lo : lo + chunk]
        # Permutation-major, so the per-document minimum runs along contiguous memory.
        view = buf[:, : s.size]
        np.multiply(a[:, None], s[None, :], out=view)
        np.add(view, b[:, None], out=view)
        hashed = buf.view(np.uint32)[:, high : 2 * s.size : 2]
        first = np.flatnonzero(np.concatenate(([True], d[1:] != d[:-1])))
        mins = np.minimum.reduceat(hashed, first, axis=1)
        cols = d[first]
        out[:, cols] = np.minimum(out[:, cols], mins)
    return np.ascontiguousarray(out.T)


def _band_keys(signatures: npt.NDArray[np.uint32], key: bytes) -> _U64:
    seed = np.frombuffer(hashlib.blake2b(key, digest_size=8, person=b"fl-lsh-band").digest(), dtype=np.uint64)
    wide = signatures.astype(np.uint64).reshape(len(signatures), LSH_BANDS, LSH_ROWS)
    band = np.arange(LSH_BANDS, dtype=np.uint64)[None, :]
    acc = _mix64(seed[0] ^ (band * _GOLDEN))
    salts = np.arange(1, LSH_ROWS + 1, dtype=np.uint64) * _GOLDEN
    for row in range(LSH_ROWS):
        acc = _mix64(acc ^ (wide[:, :, row] + salts[row]))
    return acc


def _skeleton_hashes(texts: pa.Array, key: bytes) -> _U64:
    """Keyed hash of each text's template skeleton: its words after masking, in order.

    Each masked word's keyed hash is mixed with its position and the mixes are summed per text (mod
    2^64), which is order-sensitive and needs no per-text loop.
    """
    masked = texts
    for pattern, replacement in _MASK_RULES:
        masked = pc.replace_substring_regex(masked, pattern=pattern, replacement=replacement)
    tokens, parents = _tokens(masked)
    word = _hash_strings(tokens, key, b"fl-skeleton")
    n_docs = len(texts)
    counts = np.bincount(parents, minlength=n_docs)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = (np.arange(parents.size) - starts[parents]).astype(np.uint64)
    mixed = _mix64(word ^ _mix64(position * _GOLDEN + np.uint64(1)))
    total = np.zeros(n_docs, dtype=np.uint64)
    present = np.flatnonzero(counts)
    if present.size:
        total[present] = np.add.reduceat(mixed, starts[present])
    return _mix64(total ^ counts.astype(np.uint64))


def _list_column(
    values: npt.NDArray[np.generic], width: int, valid: npt.NDArray[np.bool_], value_type: pa.DataType
) -> pa.Array:
    offsets = pa.array(np.arange(len(valid) + 1, dtype=np.int32) * width, type=pa.int32())
    flat = pa.array(values.reshape(-1), type=value_type)
    return pa.ListArray.from_arrays(offsets, flat, type=pa.list_(value_type), mask=pa.array(~valid))


def fingerprint_prompts(prompts: Sequence[str | None], key: bytes) -> pa.Table:
    """Fingerprint prompts; one row per prompt, the columns of FINGERPRINT_COLUMNS, NULL where no text.

    A prompt with no word at all (empty, or punctuation only) has NULL MinHash and band keys.

    >>> t = fingerprint_prompts(["Write a haiku about rain", "Write a haiku about snow"], b"key")
    >>> t.column("fp_opening_hash")[0] == t.column("fp_opening_hash")[1]
    True
    """
    texts = pa.array(prompts, type=pa.large_string())
    n_docs = len(texts)
    present = texts.is_valid().to_numpy(zero_copy_only=False)
    filled = pc.fill_null(texts, "")

    tokens, parents = _tokens(filled)
    encoded = pc.dictionary_encode(tokens)
    vocabulary: list[str] = encoded.dictionary.to_pylist()
    token_ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    token_hash = _hash_vocabulary(vocabulary, key, b"fl-token")[token_ids]
    is_content = np.fromiter((_is_content(w) for w in vocabulary), dtype=bool, count=len(vocabulary))
    word_count = np.bincount(parents, minlength=n_docs)
    has_words = present & (word_count > 0)

    shingles, docs = _shingles(token_hash, parents, n_docs)
    signatures = _minhash(shingles, docs, n_docs, key)
    band_keys = _band_keys(signatures, key)
    opening = _openings(token_hash, word_count)
    topic = _first_min(token_hash[is_content[token_ids]], parents[is_content[token_ids]], n_docs)

    template = _skeleton_hashes(filled, key)
    cot = pc.match_substring_regex(filled, pattern=_COT_PATTERN).to_numpy(zero_copy_only=False)

    def scalar(values: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_], typ: pa.DataType) -> pa.Array:
        return pa.array(values, type=typ, mask=~valid)

    return pa.table(
        {
            "fp_minhash": _list_column(signatures, NUM_PERM, has_words, pa.uint32()),
            "fp_lsh_keys": _list_column(band_keys, LSH_BANDS, has_words, pa.uint64()),
            "fp_template_hash": scalar(template, present, pa.uint64()),
            "fp_opening_hash": scalar(opening, has_words, pa.uint64()),
            "fp_cot_elicitation": scalar(cot, present, pa.bool_()),
            "fp_topic_hash": scalar(topic, has_words & (topic != np.uint64(0)), pa.uint64()),
            "fp_word_count": scalar(word_count.astype(np.int32), present, pa.int32()),
        }
    )


def _is_content(word: str) -> bool:
    return len(word) > 2 and word not in _STOPWORDS and not word.isdigit()


def _openings(token_hash: _U64, word_count: npt.NDArray[np.int64]) -> _U64:
    """Hash of each prompt's first two words (or its only word)."""
    if not token_hash.size:
        return np.zeros(word_count.size, dtype=np.uint64)
    last = token_hash.size - 1
    starts = np.concatenate(([0], np.cumsum(word_count)[:-1]))
    first = token_hash[np.minimum(starts, last)]
    two = word_count > 1
    second = np.where(two, token_hash[np.minimum(starts + 1, last)], np.uint64(0))
    return _mix64(first * _GOLDEN ^ _mix64(second + two.astype(np.uint64)))


def _first_min(hashes: _U64, docs: npt.NDArray[np.int64], n_docs: int) -> _U64:
    """Minimum hash per document, 0 where a document has none."""
    out = np.zeros(n_docs, dtype=np.uint64)
    if hashes.size:
        first = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1])))
        out[docs[first]] = np.minimum.reduceat(hashes, first)
    return out


def estimate_jaccard(sig_a: Sequence[int], sig_b: Sequence[int]) -> float:
    """Jaccard similarity estimated from two signatures: the share of equal positions."""
    a, b = np.asarray(sig_a, dtype=np.uint32), np.asarray(sig_b, dtype=np.uint32)
    return float(np.mean(a == b))
