"""End-to-end: INT8 token storage and query ball carving on the real server.

INT8 (vector-wise absmax int8 per token, kernels/chamfer/chamfer_int8.h): a FLOAT32 and an
INT8 collection hold the same 1,500 documents; recall@10 of both against exact float Chamfer
(numpy brute force) must agree within 0.005; Get returns dequantized vectors on the int8
grid within the quantization bound of the input; a restart rebuilds exactly the same
vectors and search results. Ball carving (SearchRequest.query_merge_tau): merged queries
score fewer tokens, stay within the carved-Chamfer ≤ Chamfer bound, τ > 1 changes nothing,
and a negative τ is INVALID_ARGUMENT. Rescore storage (CollectionConfig.rescore_storage): an
INT8 collection that keeps FLOAT16 copies on disk returns the float32 collection's answers
with float16-exact scores, Get returns the float16 copies, and the rescore's bad requests are
INVALID_ARGUMENT naming the field.
"""
import unittest

import grpc
import numpy as np

import harness
from corpus import chamfer, make_corpus, make_queries
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import documents_pb2, documents_pb2_grpc
from chamferdb.v1 import search_pb2, search_pb2_grpc

DIM = 64


def query_pb(q):
    return search_pb2.Query(num_tokens=len(q), vectors=q.astype("<f4").tobytes())


class Int8StorageAndBallCarving(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(11)
        cls.docs = make_corpus(rng, 1500, DIM)
        cls.queries = make_queries(rng, cls.docs, 100, 16)
        cls.ids = [f"d{i}" for i in range(len(cls.docs))]
        cls.truth = []
        for q in cls.queries:
            exact = np.array([chamfer(q, d) for d in cls.docs])
            cls.truth.append(np.argsort(-exact, kind="stable")[:10].tolist())
        cls.srv = harness.Server()
        cls.srv.start()
        cls.connect()
        for name, storage, rescore in (("f32", collections_pb2.FLOAT32, None), ("i8", collections_pb2.INT8, None),
                                       ("i8r", collections_pb2.INT8, collections_pb2.FLOAT16)):
            cls.colls.Create(collections_pb2.CreateCollectionRequest(
                config=collections_pb2.CollectionConfig(name=name, dim=DIM, token_storage=storage,
                                                        rescore_storage=rescore)))
            for start in range(0, len(cls.docs), 500):
                cls.dstub.Upsert(documents_pb2.UpsertRequest(collection=name, documents=[
                    documents_pb2.Document(id=cls.ids[i], num_tokens=len(cls.docs[i]),
                                           vectors=cls.docs[i].astype("<f4").tobytes())
                    for i in range(start, min(start + 500, len(cls.docs)))]))

    @classmethod
    def connect(cls):
        cls.colls = collections_pb2_grpc.CollectionsStub(cls.srv.channel)
        cls.dstub = documents_pb2_grpc.DocumentsStub(cls.srv.channel)
        cls.sstub = search_pb2_grpc.SearchStub(cls.srv.channel)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    def search(self, name, q, **kw):
        return self.sstub.Search(search_pb2.SearchRequest(collection=name, k=10, query=query_pb(q), **kw))

    def recall(self, name, **kw):
        hits = 0
        for q, truth in zip(self.queries, self.truth):
            got = [int(h.id[1:]) for h in self.search(name, q, **kw).hits]
            hits += len(set(got) & set(truth))
        return hits / (10.0 * len(self.queries))

    def test_int8_recall_vectors_and_restart(self):
        r32, r8 = self.recall("f32"), self.recall("i8")
        print(f"\nrecall@10 vs exact float Chamfer: float32 {r32:.3f}, int8 {r8:.3f}")
        self.assertGreaterEqual(r32, 0.85)
        self.assertLessEqual(abs(r32 - r8), 0.005)

        stats = self.colls.Get(collections_pb2.GetCollectionRequest(name="i8")).collection
        self.assertEqual(stats.config.token_storage, collections_pb2.INT8)
        self.assertEqual(stats.stats.documents, len(self.docs))

        # Int8 scores are within the quantization error of the exact float scores:
        # |ŝ − s| ≤ Σ_i (‖q_i‖₁·c_d + ‖d̂‖₁·c_q)/254 + …, ≤ 0.03 per query token here.
        for q in self.queries[:10]:
            for h in self.search("i8", q).hits:
                self.assertLess(abs(h.score - chamfer(q, self.docs[int(h.id[1:])])), 0.03 * len(q))

        def get_vectors():
            resp = self.dstub.Get(documents_pb2.GetDocumentsRequest(collection="i8", ids=self.ids, include_vectors=True))
            return {d.id: np.frombuffer(d.vectors, dtype="<f4").reshape(-1, DIM) for d in resp.documents}

        before = get_vectors()
        for i, doc_id in enumerate(self.ids):
            stored, original = before[doc_id], self.docs[i]
            absmax = np.abs(stored).max(axis=1, keepdims=True)
            # Dequantized: every row lies on its own grid code · c/127 with c its absmax...
            grid = stored * 127.0 / absmax
            np.testing.assert_allclose(grid, np.rint(grid), atol=2e-3)
            # ...and within the quantization bound c/254 of the (normalized) input.
            self.assertTrue(np.all(np.abs(stored - original) <= np.abs(original).max(axis=1, keepdims=True) / 254 + 2e-6))
        results_before = [[(h.id, h.score) for h in self.search("i8", q).hits] for q in self.queries[:20]]

        self.assertEqual(self.srv.stop(), 0)
        type(self).srv = harness.Server(data_dir=self.srv.data_dir)
        self.srv.start()
        self.connect()
        after = get_vectors()
        for doc_id in self.ids:
            np.testing.assert_array_equal(after[doc_id], before[doc_id])
        results_after = [[(h.id, h.score) for h in self.search("i8", q).hits] for q in self.queries[:20]]
        self.assertEqual(results_after, results_before)

    def test_rescore_storage(self):
        info = self.colls.Get(collections_pb2.GetCollectionRequest(name="i8r")).collection
        self.assertEqual(info.config.token_storage, collections_pb2.INT8)
        self.assertEqual(info.config.rescore_storage, collections_pb2.FLOAT16)
        same = 0
        halves = [d.astype(np.float16).astype(np.float32) for d in self.docs]
        for q in self.queries:
            # Every document reranked (int8), the best 40 rescored: the exact top 10 over the
            # float16 copies (numpy brute force), unless int8 lost one below rank 40.
            i8r = self.search("i8r", q, candidates=len(self.docs))
            exact = np.array([chamfer(q, d) for d in halves])
            top = np.argsort(-exact, kind="stable")[:10]
            self.assertEqual(i8r.stats.rescored, 40)  # max(4k, 32), k = 10
            # Rescored hits carry exact float Chamfer over float16 tokens: |err| ≤ Σ_i ‖q_i‖₁·2^-11.
            for h in i8r.hits:
                self.assertLess(abs(h.score - chamfer(q, self.docs[int(h.id[1:])])), len(q) * np.sqrt(DIM) * 2.0**-11)
            same += [int(h.id[1:]) for h in i8r.hits] == top.tolist()
        print(f"\nrescore: {same} of {len(self.queries)} top-10 lists equal the float16 brute force")
        self.assertGreaterEqual(same, len(self.queries) - 1)
        r32, r8r = self.recall("f32"), self.recall("i8r")
        print(f"\nrecall@10: float32 {r32:.3f}, int8 + float16 rescore {r8r:.3f}")
        self.assertLessEqual(abs(r32 - r8r), 0.005)
        # Get returns the float16 copies, not the int8 tokens.
        resp = self.dstub.Get(documents_pb2.GetDocumentsRequest(collection="i8r", ids=self.ids[:50], include_vectors=True))
        for d in resp.documents:
            got = np.frombuffer(d.vectors, dtype="<f4").reshape(-1, DIM)
            # The server re-normalizes (an ulp of float32), then rounds to float16: at most one
            # float16 step (2^-10 relative) from numpy's rounding of the input, and never an int8 step.
            want = self.docs[int(d.id[1:])].astype(np.float16).astype(np.float32)
            np.testing.assert_allclose(got, want, rtol=2.0**-10, atol=2.0**-24)
        with self.assertRaises(grpc.RpcError) as err:
            self.search("i8", self.queries[0], rescore_candidates=20)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rescore_candidates", err.exception.details())
        with self.assertRaises(grpc.RpcError) as err:
            self.search("i8r", self.queries[0], candidates=30, rescore_candidates=31)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rescore_candidates 31", err.exception.details())
        with self.assertRaises(grpc.RpcError) as err:
            self.colls.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
                name="bad", dim=DIM, token_storage=collections_pb2.FLOAT32, rescore_storage=collections_pb2.FLOAT16)))
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("config.rescore_storage", err.exception.details())

    def test_ball_carving(self):
        merged_tokens = 0
        for q in self.queries[:30]:
            full = self.search("f32", q)
            carved = self.search("f32", q, query_merge_tau=0.7)
            self.assertEqual(full.stats.rerank_query_tokens, len(q))
            self.assertLessEqual(carved.stats.rerank_query_tokens, len(q))
            merged_tokens += len(q) - carved.stats.rerank_query_tokens
            # Carved Chamfer ≤ Chamfer for the same document.
            exact = {h.id: h.score for h in full.hits}
            for h in carved.hits:
                if h.id in exact:
                    self.assertLessEqual(h.score, exact[h.id] + 1e-4)
            # τ > 1 merges nothing among unit tokens: identical results.
            same = self.search("f32", q, query_merge_tau=1.5)
            self.assertEqual([(h.id, h.score) for h in same.hits], [(h.id, h.score) for h in full.hits])
            self.assertEqual(same.stats.rerank_query_tokens, len(q))
        # The queries repeat target tokens with noise, so the paper's τ = 0.7 merges some.
        self.assertGreater(merged_tokens, 0)
        carved_recall = self.recall("i8", query_merge_tau=0.7)
        print(f"\nrecall@10 with ball carving (tau 0.7, int8): {carved_recall:.3f}")
        self.assertGreaterEqual(carved_recall, 0.6)
        with self.assertRaises(grpc.RpcError) as err:
            self.search("f32", self.queries[0], query_merge_tau=-0.5)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    unittest.main()
