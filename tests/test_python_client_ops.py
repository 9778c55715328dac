"""The Python client's JSON-record and collection-operation methods against the real server:
records stored and read back as sent, search by example finds the record itself first,
probe returns the stored value, count/scroll with a filter equal a Python evaluation of the
filter over the records, filtered search only returns matching records, snapshot restore
gives the state at snapshot time, aliases switch; bad arguments are ValueError (nothing
sent), server refusals ChamferDBError."""
import os
import random
import sys
import unittest

import grpc

import harness

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from chamferdb_client import ChamferDBError, Client, JsonHit, JsonRecord, ProbeValue  # noqa: E402

CITIES = ["paris", "lyon", "berlin", "oslo"]


def make_record(i, rng):
    return {"id": f"r{i:03d}", "name": f"item {i}", "price": round(rng.uniform(1, 500), 2),
            "addr": {"city": rng.choice(CITIES), "geo": {"cc": rng.choice(["fr", "de", "no"])}},
            "tags": rng.sample(["red", "green", "blue", "fast"], 2), "stock": rng.randint(0, 50)}


class PythonClientOpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server().start()
        cls.db = Client(cls.srv.address, timeout=30)
        rng = random.Random(4)
        cls.records = [make_record(i, rng) for i in range(80)]
        info = cls.db.create_json_collection("items", dim=512, mbat={"seed": 3})
        assert info.kind == "json" and info.dim == 512 and info.json["mbat"]["seed"] == 3, info
        assert cls.db.upsert_records("items", cls.records, batch_size=32) == len(cls.records)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        cls.srv.stop()
        cls.srv.cleanup()

    def test_records_search_probe_get_delete(self):
        got = self.db.get_records("items", ["r005", "nope", "r001"])
        self.assertEqual(got, [JsonRecord("r005", self.records[5]), JsonRecord("r001", self.records[1])])
        for r in self.records[:5]:
            hits = self.db.search_json("items", r, k=3, include_record=True)
            self.assertIsInstance(hits[0], JsonHit)
            self.assertEqual((hits[0].id, hits[0].record), (r["id"], r))
            self.assertGreater(hits[0].score, 0.99)
            vals = self.db.probe("items", "addr.geo.cc", id=r["id"], top_n=2)
            self.assertIsInstance(vals[0], ProbeValue)
            self.assertEqual(vals[0].value, r["addr"]["geo"]["cc"])
            self.assertEqual(self.db.probe("items", "tags[1]", id=r["id"])[0].value, r["tags"][1])
        # Explicit ids, JSON text stored verbatim, another id field.
        self.db.create_json_collection("other", id_field="sku")
        self.assertEqual(self.db.upsert_records("other", ['{"sku": "a", "x": 1}', {"sku": 7, "x": 2}]), 2)
        self.assertEqual(self.db.upsert_records("other", [{"x": 3}], ids=["explicit"]), 1)
        self.assertEqual({r.id for r in self.db.scroll("other")}, {"a", "7", "explicit"})
        self.assertEqual(self.db.delete_records("other", ["a", "zz"]), 1)
        self.assertEqual(self.db.count("other"), 2)
        # Local refusals send nothing; server refusals carry the code.
        with self.assertRaises(ValueError):
            self.db.upsert_records("other", [[1, 2]])
        with self.assertRaises(ValueError):
            self.db.upsert_records("other", ['{"a": '])
        with self.assertRaises(ValueError):
            self.db.probe("items", "name")
        with self.assertRaises(ValueError):
            self.db.search_json("items", {}, scoring="dot")
        with self.assertRaises(ValueError):
            self.db.count("items", filter={"must": [{"field": {"path": "a", "equal": 1}}]})
        with self.assertRaises(ChamferDBError) as e:
            self.db.upsert_records("other", [{"x": 1}])  # no "sku" field
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_count_scroll_and_filtered_search_match_a_python_evaluation(self):
        flt = {"must": [{"field": {"path": "addr.geo.cc", "anyOf": ["fr", "no"]}},
                        {"field": {"path": "stock", "range": {"gte": 10}}}],
               "mustNot": [{"field": {"path": "tags", "equals": "red"}}]}
        want = sorted(r["id"] for r in self.records
                      if r["addr"]["geo"]["cc"] in ("fr", "no") and r["stock"] >= 10 and "red" not in r["tags"])
        self.assertGreater(len(want), 3)
        self.assertEqual(self.db.count("items"), len(self.records))
        self.assertEqual(self.db.count("items", filter=flt), len(want))
        self.assertEqual([r.id for r in self.db.scroll("items", filter=flt, page_size=3)], want)
        self.assertEqual([r.id for r in self.db.scroll("items", page_size=7)], sorted(r["id"] for r in self.records))
        hits = self.db.search_json("items", self.records[0], k=50, filter=flt)
        self.assertEqual(sorted(h.id for h in hits), want)  # k exceeds the matches: all of them, nothing else

    def test_snapshot_and_alias(self):
        self.db.create_json_collection("snap")
        self.db.upsert_records("snap", self.records[:10])
        snap = self.db.create_snapshot("snap")
        self.assertEqual((snap.collection, snap.documents), ("snap", 10))
        self.db.upsert_records("snap", self.records[10:15])
        self.assertIn(snap.name, [s.name for s in self.db.list_snapshots("snap")])
        info = self.db.restore_snapshot(snap.name, "snap_r")
        self.assertEqual((info.name, info.kind, info.documents), ("snap_r", "json", 10))
        self.assertEqual([r.record for r in self.db.scroll("snap_r")], self.records[:10])
        self.db.delete_snapshot(snap.name)
        self.assertEqual(self.db.list_snapshots("snap"), [])
        self.assertEqual(self.db.set_alias("live", "snap"), "")
        self.assertEqual(self.db.count("live"), 15)
        self.assertEqual(self.db.set_alias("live", "snap_r"), "snap")
        self.assertEqual(self.db.count("live"), 10)
        self.assertEqual(self.db.list_aliases(), {"live": "snap_r"})
        self.assertEqual(self.db.get_collection("snap_r").aliases, ["live"])
        self.db.delete_alias("live")
        with self.assertRaises(ChamferDBError) as e:
            self.db.delete_alias("live")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
