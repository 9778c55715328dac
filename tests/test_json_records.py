"""JSON collections end to end: records encoded as MBAT vectors through the real server.
Ingest, query by example (cosine and containment), probe values by path, get, delete,
restart, and bad input (invalid JSON, non-object root, 100,000-deep nesting, duplicate
keys, oversize records) with clear statuses."""
import json
import random
import unittest

import grpc

import harness
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import json_records_pb2 as jr, json_records_pb2_grpc as jr_grpc

C = grpc.StatusCode
CITIES = ["paris", "lyon", "berlin", "madrid", "rome", "oslo", "tokyo", "lima"]
TAGS = ["red", "green", "blue", "fast", "slow", "new", "old", "big", "small"]


def make_record(i, rng):
    return {"id": f"r{i}", "name": f"item {i}", "price": round(rng.uniform(1, 500), 2),
            "addr": {"city": rng.choice(CITIES), "geo": {"cc": rng.choice(["fr", "de", "es", "it", "no", "jp", "pe"])}},
            "tags": rng.sample(TAGS, 3), "stock": rng.randint(0, 50), "active": rng.random() < 0.5}


class JsonRecords(unittest.TestCase):
    def test_ingest_search_probe_restart_and_bad_input(self):
        rng = random.Random(3)
        records = [make_record(i, rng) for i in range(300)]
        srv = harness.Server().start()
        try:
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            info = colls.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
                name="items", kind=collections_pb2.JSON, dim=1024,
                json=collections_pb2.JsonParams(mbat_config_json='{"seed": 7}'))))
            self.assertEqual(info.collection.config.kind, collections_pb2.JSON)
            self.assertEqual(info.collection.stats.fde_dim, 1024)
            stub = jr_grpc.JsonRecordsStub(srv.channel)
            # ids from the "id" field; keys in any order.
            for start in range(0, 300, 100):
                stub.Upsert(jr.UpsertJsonRequest(collection="items", records=[
                    jr.JsonRecord(json=json.dumps(r, sort_keys=(i % 2 == 0))) for i, r in enumerate(records[start:start + 100])]))
            self.assertEqual(colls.Get(collections_pb2.GetCollectionRequest(name="items")).collection.stats.documents, 300)

            # Query by example: a record finds itself first with cosine ~1.
            for r in records[:20]:
                hits = stub.Search(jr.SearchJsonRequest(collection="items", query_json=json.dumps(r), k=3)).hits
                self.assertEqual(hits[0].id, r["id"])
                self.assertGreater(hits[0].score, 0.99)
            # A near-duplicate (one field changed) still finds its source first.
            near = dict(records[5], stock=records[5]["stock"] + 1)
            hits = stub.Search(jr.SearchJsonRequest(collection="items", query_json=json.dumps(near), k=1,
                                                    include_record=True)).hits
            self.assertEqual(hits[0].id, "r5")
            self.assertEqual(json.loads(hits[0].json)["name"], "item 5")
            # Containment: a partial query scores records containing its leaves near 1.
            partial = {"addr": {"city": records[9]["addr"]["city"], "geo": {"cc": records[9]["addr"]["geo"]["cc"]}}}
            hits = stub.Search(jr.SearchJsonRequest(collection="items", query_json=json.dumps(partial), k=10,
                                                    scoring=jr.CONTAINMENT, include_record=True)).hits
            for h in hits[:3]:
                rec = json.loads(h.json)
                self.assertEqual(rec["addr"], partial["addr"])
                self.assertGreater(h.score, 0.7)

            # Probe: values at a path, cleaned up against the per-path dictionary.
            for r in records[:10]:
                vals = stub.Probe(jr.ProbeRequest(collection="items", id=r["id"], path="addr.geo.cc", top_n=3)).values
                self.assertEqual(json.loads(vals[0].value_json), r["addr"]["geo"]["cc"])
                vals = stub.Probe(jr.ProbeRequest(collection="items", id=r["id"], path="tags[1]")).values
                self.assertEqual(json.loads(vals[0].value_json), r["tags"][1])

            # Bad input.
            def expect(code, substring, req):
                with self.assertRaises(grpc.RpcError) as ctx:
                    stub.Upsert(req)
                self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
                self.assertIn(substring, ctx.exception.details())
            up = lambda text, rid="x": jr.UpsertJsonRequest(collection="items", records=[jr.JsonRecord(id=rid, json=text)])
            expect(C.INVALID_ARGUMENT, "records", up("{not json"))
            expect(C.INVALID_ARGUMENT, "records", up("[1, 2]"))
            expect(C.INVALID_ARGUMENT, "records", up('{"a": 1, "a": 2}'))
            expect(C.INVALID_ARGUMENT, "records", up('{"a": ' + "[" * 100000 + "]" * 100000 + "}"))
            expect(C.RESOURCE_EXHAUSTED, "records", up('{"a": [' + ",".join(["1"] * 20000) + "]}"))
            expect(C.INVALID_ARGUMENT, "no \"id\" field", up('{"b": 1}', rid=""))
            with self.assertRaises(grpc.RpcError) as ctx:
                stub.Probe(jr.ProbeRequest(collection="items", id="r1", path="addr..cc"))
            self.assertEqual(ctx.exception.code(), C.INVALID_ARGUMENT)
            with self.assertRaises(grpc.RpcError) as ctx:
                stub.Search(jr.SearchJsonRequest(collection="missing", query_json="{}", k=1))
            self.assertEqual(ctx.exception.code(), C.NOT_FOUND)
            for bad_id in ("", "x" * 100000):
                with self.assertRaises(grpc.RpcError) as ctx:
                    stub.Delete(jr.DeleteJsonRequest(collection="items", ids=["r5", bad_id]))
                self.assertEqual(ctx.exception.code(), C.INVALID_ARGUMENT)
                self.assertIn("ids[1]", ctx.exception.details())
            self.assertEqual(colls.Get(collections_pb2.GetCollectionRequest(name="items")).collection.stats.documents, 300)

            # Delete, restart, everything acknowledged is back (records verbatim).
            self.assertEqual(stub.Delete(jr.DeleteJsonRequest(collection="items", ids=["r0", "r1", "zz"])).deleted, 2)
            self.assertEqual(srv.stop(), 0)
            srv = harness.Server(data_dir=srv.data_dir).start()
            stub = jr_grpc.JsonRecordsStub(srv.channel)
            got = stub.Get(jr.GetJsonRequest(collection="items", ids=["r0", "r2", "r299"]))
            self.assertEqual(list(got.missing_ids), ["r0"])
            self.assertEqual(json.loads(got.records[0].json), records[2])
            hits = stub.Search(jr.SearchJsonRequest(collection="items", query_json=json.dumps(records[42]), k=1)).hits
            self.assertEqual(hits[0].id, "r42")
            vals = stub.Probe(jr.ProbeRequest(collection="items", id="r42", path="addr.city")).values
            self.assertEqual(json.loads(vals[0].value_json), records[42]["addr"]["city"])
        finally:
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
