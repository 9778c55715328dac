"""Metadata filters, scroll, count, snapshots and aliases through the real server.

Filtered search is checked against brute-force exact Chamfer (numpy) over the documents
that match, at filters matching 50%, 5% and 0.1% of the collection; snapshots by writing,
snapshotting, writing more and restoring (over RPC and with --restore-snapshot at start);
aliases by a blue/green switch under concurrent searches."""
import json
import os
import shutil
import tempfile
import threading
import unittest

import grpc
import numpy as np
from google.protobuf import json_format

import harness
from corpus import chamfer
from chamferdb.v1 import collections_pb2 as cpb, collections_pb2_grpc
from chamferdb.v1 import documents_pb2 as dpb, documents_pb2_grpc
from chamferdb.v1 import filter_pb2
from chamferdb.v1 import json_records_pb2 as jr, json_records_pb2_grpc as jr_grpc
from chamferdb.v1 import search_pb2, search_pb2_grpc

C = grpc.StatusCode
DIM = 32
N = 2000


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_corpus(rng):
    docs = []
    for i in range(N):
        n = int(rng.integers(4, 16))
        docs.append({"id": f"d{i:05d}", "tokens": unit(rng.standard_normal((n, DIM)).astype(np.float32)),
                     "meta": {"bucket": i % 1000, "lang": ["en", "fr"][i % 2], "tags": ["t%d" % (i % 7), "all"],
                              "nested": {"score": float(i % 100) / 10}}})
    return docs


def filt(obj):
    return json_format.ParseDict(obj, filter_pb2.Filter())


class DataOps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rng = np.random.default_rng(4)
        cls.docs = make_corpus(cls.rng)
        cls.srv = harness.Server().start()
        ch = cls.srv.channel
        cls.colls = collections_pb2_grpc.CollectionsStub(ch)
        cls.docs_stub = documents_pb2_grpc.DocumentsStub(ch)
        cls.search = search_pb2_grpc.SearchStub(ch)
        cls.colls.Create(cpb.CreateCollectionRequest(config=cpb.CollectionConfig(
            name="c", dim=DIM, index=cpb.IndexParams(kind=cpb.HNSW), fde=cpb.FdeParams(r_reps=8, k_sim=3))))
        cls.upsert("c", cls.docs)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    @classmethod
    def upsert(cls, name, docs):
        for s in range(0, len(docs), 500):
            cls.docs_stub.Upsert(dpb.UpsertRequest(collection=name, documents=[
                dpb.Document(id=d["id"], num_tokens=len(d["tokens"]), vectors=d["tokens"].tobytes(),
                             metadata_json=json.dumps(d["meta"])) for d in docs[s:s + 500]]))

    def query(self, target):
        q = unit(self.rng.standard_normal((6, DIM)).astype(np.float32))
        q[:4] = target["tokens"][:4]  # the target's tokens dominate the query
        return q

    def test_filtered_search_is_exact_among_matches_at_each_selectivity(self):
        for limit, share in ((500, "50%"), (50, "5%"), (1, "0.1%")):
            f = filt({"must": [{"field": {"path": "bucket", "range": {"lt": limit}}}]})
            matching = [d for d in self.docs if d["meta"]["bucket"] < limit]
            self.assertEqual(self.docs_stub.Count(dpb.CountRequest(collection="c", filter=f)).count, len(matching))
            for t in range(8):
                q = self.query(matching[t % len(matching)])
                truth = sorted(matching, key=lambda d: (-chamfer(q, d["tokens"]), d["id"]))[:10]
                req = search_pb2.SearchRequest(collection="c", k=10, filter=f, candidates=len(matching),
                                               query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes()))
                resp = self.search.Search(req)
                self.assertEqual([h.id for h in resp.hits], [d["id"] for d in truth], share)
                self.assertEqual(resp.stats.filter_matches, len(matching))
                # The default candidate budget still returns k matching hits.
                req.candidates = 0
                hits = self.search.Search(req).hits
                self.assertEqual(len(hits), min(10, len(matching)), share)
                ok = {d["id"] for d in matching}
                self.assertTrue(all(h.id in ok for h in hits), share)
                self.assertEqual(hits[0].id, truth[0]["id"], share)

    def test_boolean_combinations_nested_paths_and_batch_search(self):
        f = filt({"must": [{"field": {"path": "lang", "equals": "fr"}},
                           {"field": {"path": "nested.score", "range": {"gte": 5, "lt": 7}}}],
                  "should": [{"field": {"path": "tags", "anyOf": ["t1", "t2"]}},
                             {"filter": {"mustNot": [{"field": {"path": "tags", "equals": "t3"}}]}}],
                  "mustNot": [{"field": {"path": "bucket", "anyOf": [51, 53]}}]})

        def matches(m):
            must = m["lang"] == "fr" and 5 <= m["nested"]["score"] < 7
            should = bool({"t1", "t2"} & set(m["tags"])) or "t3" not in m["tags"]
            return must and should and m["bucket"] not in (51, 53)

        want = sorted(d["id"] for d in self.docs if matches(d["meta"]))
        self.assertEqual(self.docs_stub.Count(dpb.CountRequest(collection="c", filter=f)).count, len(want))
        q = self.query(self.docs[0])
        reqs = [search_pb2.SearchRequest(collection="c", k=5, filter=f,
                                         query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes())),
                search_pb2.SearchRequest(collection="c", k=5,
                                         query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes()))]
        resp = self.search.BatchSearch(search_pb2.BatchSearchRequest(requests=reqs))
        self.assertTrue(all(h.id in set(want) for h in resp.responses[0].hits))
        self.assertEqual(len(resp.responses[1].hits), 5)

    def test_scroll_pages_in_id_order_with_filter_and_count(self):
        f = filt({"must": [{"field": {"path": "tags", "equals": "t3"}}]})
        want = sorted(d["id"] for d in self.docs if "t3" in d["meta"]["tags"])
        got, token = [], ""
        while True:
            page = self.docs_stub.Scroll(dpb.ScrollRequest(collection="c", limit=37, page_token=token, filter=f,
                                                           include_metadata=True))
            got += [d.id for d in page.documents]
            self.assertTrue(all("t3" in json.loads(d.metadata_json)["tags"] for d in page.documents))
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(got, want)
        everything = self.docs_stub.Scroll(dpb.ScrollRequest(collection="c", limit=1000)).documents
        self.assertEqual([d.id for d in everything], sorted(d["id"] for d in self.docs)[:1000])
        self.assertEqual(self.docs_stub.Count(dpb.CountRequest(collection="c")).count, N)

    def test_bad_filters_and_tokens_are_invalid_argument_naming_the_field(self):
        q = self.query(self.docs[0])
        cases = [
            ({"must": [{"field": {"path": "bucket", "range": {}}}]}, "filter.must[0].field.range"),
            ({"should": [{"field": {"path": "", "exists": True}}]}, "filter.should[0].field.path"),
            ({"must": [{"field": {"path": "a", "equals": None}}]}, "filter.must[0].field.equals"),
            ({"must": [{"field": {"path": "a", "anyOf": [1, {"x": 1}]}}]}, "any_of[1]"),
            ({"must": [{}]}, "filter.must[0]"),
        ]
        for obj, needle in cases:
            with self.assertRaises(grpc.RpcError) as e:
                self.search.Search(search_pb2.SearchRequest(collection="c", k=3, filter=filt(obj),
                                                            query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes())))
            self.assertEqual(e.exception.code(), C.INVALID_ARGUMENT, obj)
            self.assertIn(needle, e.exception.details())
        deep = {"must": [{"field": {"path": "a", "exists": True}}]}
        for _ in range(20):
            deep = {"must": [{"filter": deep}]}
        with self.assertRaises(grpc.RpcError) as e:
            self.docs_stub.Count(dpb.CountRequest(collection="c", filter=filt(deep)))
        self.assertEqual(e.exception.code(), C.INVALID_ARGUMENT)
        self.assertIn("deeper", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.docs_stub.Scroll(dpb.ScrollRequest(collection="c", page_token="not-a-token"))
        self.assertEqual(e.exception.code(), C.INVALID_ARGUMENT)

    def test_json_collection_filters_scroll_and_count(self):
        self.colls.Create(cpb.CreateCollectionRequest(config=cpb.CollectionConfig(name="j", kind=cpb.JSON, dim=256)))
        stub = jr_grpc.JsonRecordsStub(self.srv.channel)
        recs = [{"id": f"r{i:03d}", "city": ["paris", "rome", "oslo"][i % 3], "stars": i % 5} for i in range(90)]
        stub.Upsert(jr.UpsertJsonRequest(collection="j", records=[jr.JsonRecord(json=json.dumps(r)) for r in recs]))
        f = filt({"must": [{"field": {"path": "city", "equals": "oslo"}}, {"field": {"path": "stars", "range": {"gte": 3}}}]})
        want = sorted(r["id"] for r in recs if r["city"] == "oslo" and r["stars"] >= 3)
        self.assertEqual(stub.Count(dpb.CountRequest(collection="j", filter=f)).count, len(want))
        hits = stub.Search(jr.SearchJsonRequest(collection="j", query_json='{"city":"paris"}', k=50, filter=f)).hits
        self.assertEqual(sorted(h.id for h in hits), want)
        page = stub.Scroll(jr.ScrollJsonRequest(collection="j", limit=100, filter=f))
        self.assertEqual([r.id for r in page.records], want)
        self.assertEqual(page.next_page_token, "")


class SnapshotsAndAliases(unittest.TestCase):
    def test_snapshot_write_more_restore_is_the_snapshot_state_and_restores_at_start(self):
        rng = np.random.default_rng(9)
        docs = make_corpus(rng)[:300]
        srv = harness.Server().start()
        try:
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            dstub = documents_pb2_grpc.DocumentsStub(srv.channel)
            colls.Create(cpb.CreateCollectionRequest(config=cpb.CollectionConfig(name="src", dim=DIM)))
            DataOps.docs_stub = dstub
            DataOps.upsert("src", docs)
            ids = [d["id"] for d in docs]
            at_snapshot = dstub.Get(dpb.GetDocumentsRequest(collection="src", ids=ids, include_vectors=True)).documents
            snap = colls.CreateSnapshot(cpb.CreateSnapshotRequest(collection="src")).snapshot
            self.assertEqual(snap.documents, 300)
            self.assertEqual(snap.collection, "src")
            # Writes after the snapshot: replace, delete, add.
            changed = dict(docs[0], tokens=unit(rng.standard_normal((3, DIM)).astype(np.float32)))
            DataOps.upsert("src", [changed, dict(docs[1], id="new-doc")])
            dstub.Delete(dpb.DeleteRequest(collection="src", ids=[docs[2]["id"]]))
            listed = colls.ListSnapshots(cpb.ListSnapshotsRequest(collection="src")).snapshots
            self.assertEqual([s.name for s in listed], [snap.name])
            info = colls.RestoreSnapshot(cpb.RestoreSnapshotRequest(snapshot=snap.name, collection="restored")).collection
            self.assertEqual(info.stats.documents, 300)
            got = dstub.Get(dpb.GetDocumentsRequest(collection="restored", ids=[d["id"] for d in docs] + ["new-doc"],
                                                    include_vectors=True))
            self.assertEqual(list(got.missing_ids), ["new-doc"])
            for d, s, g in zip(docs, at_snapshot, got.documents):
                self.assertEqual(g.id, d["id"])
                self.assertEqual(g.vectors, s.vectors)  # bit for bit as stored at snapshot time
                self.assertEqual(json.loads(g.metadata_json), d["meta"])
            with self.assertRaises(grpc.RpcError) as e:
                colls.RestoreSnapshot(cpb.RestoreSnapshotRequest(snapshot=snap.name, collection="restored"))
            self.assertEqual(e.exception.code(), C.ALREADY_EXISTS)
            with self.assertRaises(grpc.RpcError) as e:
                colls.RestoreSnapshot(cpb.RestoreSnapshotRequest(snapshot="nope", collection="x"))
            self.assertEqual(e.exception.code(), C.NOT_FOUND)
            # Copy the snapshot away, as one would to move it to another machine.
            path = os.path.join(tempfile.mkdtemp(prefix="chamferdb-snap-"), "copy")
            shutil.copytree(snap.path, path)
        finally:
            srv.stop()
            srv.cleanup()
        # Another server (empty data dir) restores the snapshot at start, twice (idempotent).
        with harness.Server(extra_args=["--restore-snapshot", f"{path}=fromdisk"]) as s2:
            n = documents_pb2_grpc.DocumentsStub(s2.channel).Count(dpb.CountRequest(collection="fromdisk")).count
            self.assertEqual(n, 300)
            s2.stop()
            s2.start()
            n = documents_pb2_grpc.DocumentsStub(s2.channel).Count(dpb.CountRequest(collection="fromdisk")).count
            self.assertEqual(n, 300)
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    def test_alias_switch_is_atomic_under_concurrent_searches(self):
        rng = np.random.default_rng(10)
        with harness.Server() as srv:
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            dstub = documents_pb2_grpc.DocumentsStub(srv.channel)
            search = search_pb2_grpc.SearchStub(srv.channel)
            DataOps.docs_stub = dstub
            for name in ("blue", "green"):
                colls.Create(cpb.CreateCollectionRequest(config=cpb.CollectionConfig(name=name, dim=DIM)))
                DataOps.upsert(name, [{"id": f"{name}-{i}", "tokens": unit(rng.standard_normal((4, DIM)).astype(np.float32)),
                                       "meta": {}} for i in range(50)])
            self.assertEqual(colls.SetAlias(cpb.SetAliasRequest(alias="prod", collection="blue")).previous_collection, "")
            q = unit(rng.standard_normal((4, DIM)).astype(np.float32))
            req = search_pb2.SearchRequest(collection="prod", k=5, query=search_pb2.Query(num_tokens=4, vectors=q.tobytes()))
            seen, errors, stop = set(), [], threading.Event()

            def searcher():
                while not stop.is_set():
                    try:
                        hits = search.Search(req).hits
                        prefixes = {h.id.split("-")[0] for h in hits}
                        if len(prefixes) != 1:
                            errors.append(prefixes)  # a mix would mean a torn switch
                        seen.update(prefixes)
                    except grpc.RpcError as e:
                        errors.append(e.code())

            threads = [threading.Thread(target=searcher) for _ in range(3)]
            for t in threads:
                t.start()
            for i in range(10):
                target = "green" if i % 2 == 0 else "blue"
                colls.SetAlias(cpb.SetAliasRequest(alias="prod", collection=target))
            stop.set()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(seen, {"blue", "green"})
            self.assertEqual(colls.SetAlias(cpb.SetAliasRequest(alias="prod", collection="green")).previous_collection, "blue")
            aliases = colls.ListAliases(cpb.ListAliasesRequest()).aliases
            self.assertEqual([(a.alias, a.collection) for a in aliases], [("prod", "green")])
            self.assertEqual(list(colls.Get(cpb.GetCollectionRequest(name="prod")).collection.aliases), ["prod"])
            with self.assertRaises(grpc.RpcError) as e:
                colls.Drop(cpb.DropCollectionRequest(name="green"))
            self.assertEqual(e.exception.code(), C.FAILED_PRECONDITION)
            # Aliases survive a restart.
            srv.stop()
            srv.start()
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            self.assertEqual([a.collection for a in colls.ListAliases(cpb.ListAliasesRequest()).aliases], ["green"])
            colls.DeleteAlias(cpb.DeleteAliasRequest(alias="prod"))
            colls.Drop(cpb.DropCollectionRequest(name="green"))


if __name__ == "__main__":
    unittest.main()
