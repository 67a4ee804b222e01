"""The passage vector cache: keyed by (encoder fingerprint, text hash), each text encoded once."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from workbench.models import vector_cache
from workbench.models.vector_cache import VectorCache, text_hash


def dense_encoder(calls):
    def encode(texts):
        calls.append(list(texts))
        return np.asarray([[len(t), sum(map(ord, t)) % 97, i] for i, t in enumerate(texts)], dtype=np.float32)
    return encode


def test_each_distinct_text_is_encoded_once_and_rows_follow_the_input(tmp_path):
    calls = []
    cache = VectorCache("a" * 64, "dense", root=tmp_path)
    first = cache.get(["x", "yy", "x", "zzz"], dense_encoder(calls))
    assert calls == [["x", "yy", "zzz"]]  # the duplicate "x" once
    np.testing.assert_array_equal(first[0], first[2])
    second = cache.get(["zzz", "new", "yy"], dense_encoder(calls))
    assert calls[1] == ["new"] and cache.encoded == 4
    np.testing.assert_array_equal(second[0], first[3])
    np.testing.assert_array_equal(second[2], first[1])
    # another process (a new object) reads everything from disk and encodes nothing
    other = VectorCache("a" * 64, "dense", root=tmp_path)
    np.testing.assert_array_equal(other.get(["x", "yy", "zzz", "new"], dense_encoder(calls))[:3], first[[0, 1, 3]])
    assert len(calls) == 2 and other.encoded == 0


def test_hashes_with_trailing_nul_bytes_round_trip(tmp_path):
    # a fixed-width bytes dtype would strip trailing NULs and lose the key
    texts = [f"passage {i}" for i in range(3000)]
    assert any(text_hash(t).endswith(b"\x00") for t in texts)
    calls = []
    VectorCache("b" * 64, "dense", root=tmp_path).get(texts, dense_encoder(calls))
    again = VectorCache("b" * 64, "dense", root=tmp_path)
    again.get(texts, dense_encoder(calls))
    assert len(calls) == 1 and again.encoded == 0


def test_sparse_vectors_and_merging_many_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(vector_cache, "MERGE_AT", 3)
    vocabulary = 50

    def encode(texts):
        rows = [[(ord(c) % vocabulary) for c in t] for t in texts]
        data = [np.ones(len(r), dtype=np.float32) for r in rows]
        matrix = sp.lil_matrix((len(texts), vocabulary), dtype=np.float32)
        for i, (r, d) in enumerate(zip(rows, data)):
            matrix[i, r] = d
        return matrix.tocsr()

    cache = VectorCache("c" * 64, "splade", root=tmp_path)
    texts = [f"t{i}" * (i + 1) for i in range(12)]
    for start in range(0, 12, 2):  # six segments, merged once more than three pile up
        cache.get(texts[start:start + 2], encode)
    assert len(list(tmp_path.glob("seg-*.npz"))) <= 3
    got = VectorCache("c" * 64, "splade", root=tmp_path).get(list(reversed(texts)), encode)
    expected = encode(list(reversed(texts)))
    assert sp.isspmatrix_csr(got) and (got != expected).nnz == 0


def test_an_encoder_returning_the_wrong_number_of_rows_is_an_error(tmp_path):
    from workbench.core.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="returned 1 vectors for 2 texts"):
        VectorCache("d" * 64, "dense", root=tmp_path).get(["a", "b"], lambda texts: np.zeros((1, 3), np.float32))
