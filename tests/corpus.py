"""Synthetic multi-vector corpora and the exact Chamfer reference for the end-to-end tests.

Documents mix 3 of `n_topics` topic directions (Zipfian popularity) with 4 document-specific
aspects plus noise, so near neighbours share topics but differ in aspects; queries are noisy
tokens of a random target document. Every token is unit-norm float32.
"""
import numpy as np


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_corpus(rng, n_docs, dim, n_topics=50):
    topics = unit(rng.standard_normal((n_topics, dim)))
    zipf = 1.0 / np.arange(1, n_topics + 1)
    zipf /= zipf.sum()
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(8, 33))
        doc_topics = rng.choice(n_topics, size=3, replace=False, p=zipf)
        aspects = unit(rng.standard_normal((4, dim)))
        t = topics[rng.choice(doc_topics, size=n)]
        a = aspects[rng.integers(4, size=n)]
        docs.append(unit(t + 0.7 * a + 0.25 * unit(rng.standard_normal((n, dim)))))
    return docs


def make_queries(rng, docs, n_queries, n_tokens):
    queries = []
    for _ in range(n_queries):
        target = docs[int(rng.integers(len(docs)))]
        rows = target[rng.integers(len(target), size=n_tokens)]
        queries.append(unit(rows + 0.35 * unit(rng.standard_normal(rows.shape))))
    return queries


def chamfer(q, d):
    """Exact Chamfer (MaxSim) similarity in float64: sum over query tokens of the best dot."""
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())
