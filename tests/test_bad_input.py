"""Bad input over the real gRPC API: each case gets the documented status code with a
message naming the problem, nothing of a rejected batch is applied, and the server keeps
serving (health check) afterwards. Also checks that health and reflection are on."""
import os
import unittest

import grpc
import numpy as np

import harness
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import documents_pb2, documents_pb2_grpc
from chamferdb.v1 import search_pb2, search_pb2_grpc

DIM = 8
C = grpc.StatusCode


def tokens(n, dim=DIM, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("<f4")


def doc(doc_id, t, n=None, meta=""):
    return documents_pb2.Document(id=doc_id, num_tokens=len(t) if n is None else n, vectors=t.tobytes(),
                                  metadata_json=meta)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(extra_args=["--max-message-mb", "1"]).start()
        ch = cls.srv.channel
        cls.colls = collections_pb2_grpc.CollectionsStub(ch)
        cls.docs = documents_pb2_grpc.DocumentsStub(ch)
        cls.search = search_pb2_grpc.SearchStub(ch)
        cls.colls.Create(collections_pb2.CreateCollectionRequest(
            config=collections_pb2.CollectionConfig(name="c", dim=DIM)))
        cls.docs.Upsert(documents_pb2.UpsertRequest(collection="c", documents=[doc("seed", tokens(3))]))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    def expect(self, code, substring, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args, **kwargs)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        self.assertIn(substring, ctx.exception.details())

    def count(self):
        return self.colls.Get(collections_pb2.GetCollectionRequest(name="c")).collection.stats.documents

    def upsert(self, *documents, collection="c"):
        return self.docs.Upsert(documents_pb2.UpsertRequest(collection=collection, documents=list(documents)))

    def query(self, t, n=None, k=10, collection="c", **kw):
        return self.search.Search(search_pb2.SearchRequest(
            collection=collection, k=k, query=search_pb2.Query(num_tokens=len(t) if n is None else n, vectors=t.tobytes()), **kw))

    def test_documents(self):
        before = self.count()
        self.expect(C.NOT_FOUND, '"nope"', self.upsert, doc("a", tokens(2)), collection="nope")
        self.expect(C.INVALID_ARGUMENT, "dimension mismatch", self.upsert, doc("a", tokens(2, dim=DIM + 1)))
        self.expect(C.INVALID_ARGUMENT, "num_tokens is 0", self.upsert, doc("a", tokens(0)))
        self.expect(C.INVALID_ARGUMENT, "exceeds the limit of 4096", self.upsert, doc("a", tokens(2), n=5000))
        nan = tokens(2)
        nan[1, 3] = np.nan
        self.expect(C.INVALID_ARGUMENT, "token 1 coordinate 3", self.upsert, doc("a", nan))
        inf = tokens(2)
        inf[0, 0] = np.inf
        self.expect(C.INVALID_ARGUMENT, "NaN/Inf", self.upsert, doc("a", inf))
        self.expect(C.INVALID_ARGUMENT, "id is empty", self.upsert, doc("", tokens(2)))
        self.expect(C.INVALID_ARGUMENT, "exceeds the limit of 512", self.upsert, doc("x" * 513, tokens(2)))
        self.expect(C.INVALID_ARGUMENT, "metadata_json", self.upsert, doc("a", tokens(2), meta="[1]"))
        # A bad document anywhere fails the whole batch; the good ones are not applied.
        self.expect(C.INVALID_ARGUMENT, "documents[2]", self.upsert,
                    doc("g1", tokens(2)), doc("g2", tokens(2)), doc("bad", tokens(2, dim=3)))
        self.expect(C.INVALID_ARGUMENT, "empty", self.upsert)
        self.assertEqual(self.count(), before)

    def test_search(self):
        q = tokens(4)
        self.expect(C.NOT_FOUND, '"nope"', self.query, q, collection="nope")
        self.expect(C.INVALID_ARGUMENT, "k 0", self.query, q, k=0)
        self.expect(C.INVALID_ARGUMENT, "k 1001", self.query, q, k=1001)
        self.expect(C.INVALID_ARGUMENT, "num_tokens is 0", self.query, tokens(0))
        self.expect(C.INVALID_ARGUMENT, "dimension mismatch", self.query, tokens(2, dim=5))
        self.expect(C.INVALID_ARGUMENT, "exceeds the limit of 1024", self.query, tokens(2), n=2000)
        bad = tokens(2)
        bad[0, 1] = np.nan
        self.expect(C.INVALID_ARGUMENT, "NaN/Inf", self.query, bad)
        self.expect(C.INVALID_ARGUMENT, "candidates 50001 exceeds the limit of 50000", self.query, q, candidates=50001)
        batch = search_pb2.BatchSearchRequest(requests=[
            search_pb2.SearchRequest(collection="c", k=1, query=search_pb2.Query(num_tokens=4, vectors=q.tobytes())),
            search_pb2.SearchRequest(collection="c", k=0, query=search_pb2.Query(num_tokens=4, vectors=q.tobytes()))])
        self.expect(C.INVALID_ARGUMENT, "requests[1]", self.search.BatchSearch, batch)

    def test_collections(self):
        self.expect(C.ALREADY_EXISTS, '"c"', self.colls.Create,
                    collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(name="c", dim=DIM)))
        self.expect(C.INVALID_ARGUMENT, "config.dim", self.colls.Create,
                    collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(name="d")))
        self.expect(C.INVALID_ARGUMENT, "k_sim 11", self.colls.Create,
                    collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
                        name="d", dim=DIM, fde=collections_pb2.FdeParams(k_sim=11))))
        self.expect(C.INVALID_ARGUMENT, "may only contain", self.colls.Create,
                    collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(name="a b", dim=DIM)))
        self.expect(C.NOT_FOUND, '"ghost"', self.colls.Drop, collections_pb2.DropCollectionRequest(name="ghost"))

    def test_oversized_request_is_resource_exhausted(self):
        big = tokens(4000, dim=DIM * 16)  # 2 MiB > --max-message-mb 1
        self.expect(C.RESOURCE_EXHAUSTED, "", self.upsert, doc("big", big))

    def test_health_and_reflection_are_on_and_server_survives(self):
        health = self.srv.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(health(b""), b"\x08\x01")  # status: SERVING
        reflect = self.srv.channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        replies = b"".join(reflect(iter([b"\x3a\x00"])))  # list_services: ""
        services = [b"chamferdb.v1.Collections", b"chamferdb.v1.Documents", b"chamferdb.v1.Search",
                    b"chamferdb.v1.JsonRecords"]
        # The sanitizer job runs this suite against the data-plane-only server.
        if os.environ.get("CHAMFERDB_DATAPLANE_ONLY") != "1":
            services.append(b"chamferdb.v1.Kernels")
        for service in services:
            self.assertIn(service, replies)


if __name__ == "__main__":
    unittest.main()
