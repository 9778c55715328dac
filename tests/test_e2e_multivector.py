"""End-to-end: the real chamferdb binary, driven over gRPC, checked against brute force.

Creates a FLAT collection, upserts 2,000 generated documents (clustered unit tokens),
searches 100 queries and compares with exact Chamfer top-10 computed in numpy
(recall@10 >= 0.9 with the default candidate count), deletes some documents, restarts the
server on the same data directory and checks that every acknowledged document is still
there, unchanged, and that deleted ids are gone.
"""
import json
import time
import unittest

import numpy as np

import harness
from corpus import chamfer, make_corpus, make_queries, unit
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import documents_pb2, documents_pb2_grpc
from chamferdb.v1 import search_pb2, search_pb2_grpc

DIM = 64


def doc_pb(doc_id, tokens, meta=None):
    return documents_pb2.Document(id=doc_id, num_tokens=len(tokens), vectors=tokens.astype("<f4").tobytes(),
                                  metadata_json=json.dumps(meta) if meta is not None else "")


class MultiVectorEndToEnd(unittest.TestCase):
    def test_ingest_search_delete_restart(self):
        rng = np.random.default_rng(7)
        docs = make_corpus(rng, 2000, DIM)
        ids = [f"doc-{i:05d}" for i in range(len(docs))]
        queries = make_queries(rng, docs, 100, 12)
        srv = harness.Server()
        srv.start()
        try:
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            dstub = documents_pb2_grpc.DocumentsStub(srv.channel)
            sstub = search_pb2_grpc.SearchStub(srv.channel)
            info = colls.Create(collections_pb2.CreateCollectionRequest(
                config=collections_pb2.CollectionConfig(name="e2e", dim=DIM)))
            self.assertEqual(info.collection.stats.fde_dim, 20 * 32 * 16)
            self.assertEqual(info.collection.config.index.kind, collections_pb2.FLAT)

            # Half by unary batches, half through the client stream.
            t0 = time.time()
            for start in range(0, 1000, 250):
                resp = dstub.Upsert(documents_pb2.UpsertRequest(
                    collection="e2e",
                    documents=[doc_pb(ids[i], docs[i], {"n": i, "tag": "t%d" % (i % 7)})
                               for i in range(start, start + 250)]))
                self.assertEqual(resp.upserted, 250)

            def stream():
                for start in range(1000, 2000, 200):
                    yield documents_pb2.UpsertRequest(
                        collection="e2e",
                        documents=[doc_pb(ids[i], docs[i], {"n": i, "tag": "t%d" % (i % 7)})
                                   for i in range(start, start + 200)])
            self.assertEqual(dstub.UpsertStream(stream()).upserted, 1000)
            ingest_s = time.time() - t0
            got = colls.Get(collections_pb2.GetCollectionRequest(name="e2e")).collection.stats
            self.assertEqual(got.documents, 2000)
            self.assertEqual(got.token_vectors, sum(len(d) for d in docs))

            # Search and compare with brute-force exact Chamfer.
            hits_total = 0
            latencies = []
            for qi, q in enumerate(queries):
                exact = np.array([chamfer(q, d) for d in docs])
                truth = set(np.argsort(-exact, kind="stable")[:10].tolist())
                t = time.time()
                r = sstub.Search(search_pb2.SearchRequest(
                    collection="e2e", k=10, include_metadata=(qi == 0),
                    query=search_pb2.Query(num_tokens=len(q), vectors=q.astype("<f4").tobytes())))
                latencies.append(time.time() - t)
                self.assertEqual(len(r.hits), 10)
                self.assertEqual(r.stats.candidates, 100)
                got_ids = [int(h.id.split("-")[1]) for h in r.hits]
                hits_total += len(truth.intersection(got_ids))
                # Reranked scores are exact Chamfer scores, in decreasing order.
                for h in r.hits:
                    idx = int(h.id.split("-")[1])
                    self.assertAlmostEqual(h.score, exact[idx], places=3)
                self.assertEqual([h.score for h in r.hits], sorted([h.score for h in r.hits], reverse=True))
                if qi == 0:
                    meta = json.loads(r.hits[0].metadata_json)
                    self.assertEqual(meta["n"], int(r.hits[0].id.split("-")[1]))
            recall = hits_total / (10.0 * len(queries))
            p50 = sorted(latencies)[len(latencies) // 2] * 1000
            print(f"\nE2E: ingest {2000 / ingest_s:.0f} docs/s, recall@10 {recall:.3f}, "
                  f"search p50 {p50:.2f} ms (client-side, Python)")
            self.assertGreaterEqual(recall, 0.9)

            # rerank=false returns FDE order with FDE scores.
            q = queries[0]
            r = sstub.Search(search_pb2.SearchRequest(
                collection="e2e", k=5, rerank=False,
                query=search_pb2.Query(num_tokens=len(q), vectors=q.astype("<f4").tobytes())))
            self.assertEqual([h.score for h in r.hits], [h.fde_score for h in r.hits])

            # Replace one document, delete some others.
            replaced = unit(rng.standard_normal((5, DIM)))
            dstub.Upsert(documents_pb2.UpsertRequest(collection="e2e", documents=[doc_pb(ids[3], replaced, {"v": 2})]))
            docs[3] = replaced
            deleted = ids[100:150]
            self.assertEqual(dstub.Delete(documents_pb2.DeleteRequest(collection="e2e", ids=deleted + ["nope"])).deleted, 50)

            # Restart on the same data directory (graceful stop: exit code 0).
            self.assertEqual(srv.stop(), 0)
            srv = harness.Server(data_dir=srv.data_dir)
            srv.start()
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            dstub = documents_pb2_grpc.DocumentsStub(srv.channel)
            sstub = search_pb2_grpc.SearchStub(srv.channel)
            stats = colls.Get(collections_pb2.GetCollectionRequest(name="e2e")).collection.stats
            self.assertEqual(stats.documents, 1950)
            resp = dstub.Get(documents_pb2.GetDocumentsRequest(collection="e2e", ids=ids, include_vectors=True))
            self.assertEqual(sorted(resp.missing_ids), sorted(deleted))
            by_id = {d.id: d for d in resp.documents}
            for i, doc_id in enumerate(ids):
                if doc_id in deleted:
                    continue
                stored = np.frombuffer(by_id[doc_id].vectors, dtype="<f4").reshape(-1, DIM)
                np.testing.assert_allclose(stored, docs[i], rtol=0, atol=1e-6)
            self.assertEqual(json.loads(by_id[ids[3]].metadata_json), {"v": 2})
            # Search still finds the replaced document by its new tokens, never deleted ones.
            r = sstub.Search(search_pb2.SearchRequest(
                collection="e2e", k=10,
                query=search_pb2.Query(num_tokens=5, vectors=replaced.astype("<f4").tobytes())))
            self.assertEqual(r.hits[0].id, ids[3])
            for q in queries[:20]:
                r = sstub.Search(search_pb2.SearchRequest(
                    collection="e2e", k=10,
                    query=search_pb2.Query(num_tokens=len(q), vectors=q.astype("<f4").tobytes())))
                self.assertFalse(set(h.id for h in r.hits) & set(deleted))
        finally:
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
