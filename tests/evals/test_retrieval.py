"""Retrieval recall@K against a brute-force count of each pair's rank."""

import numpy as np

from frx.evals import retrieval


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_recall_counts_pairs_whose_partner_ranks_within_k_both_ways():
    rng = np.random.default_rng(0)
    zimg = _unit(rng.normal(size=(300, 16)))
    ztxt = _unit(zimg + rng.normal(size=(300, 16)))
    got = retrieval.recalls(zimg, ztxt)
    sims = zimg @ ztxt.T
    i2t = [int(np.sum(sims[i] > sims[i, i])) for i in range(300)]  # rank of caption i for image i
    t2i = [int(np.sum(sims[:, j] > sims[j, j])) for j in range(300)]
    for k in (1, 5, 10):
        assert got[f"i2t_r{k}"] == np.mean(np.array(i2t) < k)
        assert got[f"t2i_r{k}"] == np.mean(np.array(t2i) < k)
    assert 0 < got["i2t_r1"] < got["i2t_r5"] < got["i2t_r10"] < 1


def test_ranks_are_exact_across_chunks_and_ties_count_for_the_query(monkeypatch):
    monkeypatch.setattr(retrieval, "_ROWS_PER_CHUNK", 7)
    zimg = _unit(np.eye(4, 3, dtype=np.float32) + 0.1)
    ztxt = zimg.copy()
    ztxt[1] = ztxt[0]  # caption 1 is caption 0: image 0 ties with it and still ranks its own first
    assert retrieval.ranks(zimg, ztxt).tolist() == [0, 1, 0, 0]
