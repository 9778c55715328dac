"""chamferdb-cli on JSON collections, end to end against the real server.

`collections create --kind json`, `ingest --format json-records` (skip, abort, resume,
client- and server-side rejections with line numbers), `search --json/--queries`
(a record finds itself first with cosine ~1; containment hits contain the query's leaves),
`probe` (the stored value at a nested path and at an array index), `get`/`delete`, and
errors (non-zero exit, a message naming the problem). What the CLI wrote is read back
over gRPC and compared with the input records (stored verbatim)."""
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest
from concurrent import futures

import grpc

import harness
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import json_records_pb2 as jr, json_records_pb2_grpc as jr_grpc

CLI = os.environ.get("CHAMFERDB_CLI", "")
CITIES = ["paris", "lyon", "berlin", "madrid", "rome", "oslo", "tokyo", "lima"]
TAGS = ["red", "green", "blue", "fast", "slow", "new", "old", "big", "small"]


def make_record(i, rng, id_field="sku"):
    return {id_field: f"s{i:04d}", "name": f"item {i}", "price": round(rng.uniform(1, 500), 2),
            "addr": {"city": rng.choice(CITIES), "geo": {"cc": rng.choice(["fr", "de", "es", "it", "jp"])}},
            "tags": rng.sample(TAGS, 3), "stock": rng.randint(0, 50), "active": rng.random() < 0.5}


def parse_summary(stderr):
    m = re.search(r"summary: (.*)", stderr)
    assert m, f"no summary line in:\n{stderr}"
    return {k: float(v.rstrip("s")) for k, v in re.findall(r"(\w+)=([\d.]+s?)", m.group(1))}


def contains(record, partial):
    """Every leaf of `partial` is in `record` at the same path."""
    if isinstance(partial, dict):
        return isinstance(record, dict) and all(k in record and contains(record[k], v) for k, v in partial.items())
    return record == partial


@unittest.skipUnless(CLI and os.path.exists(CLI), "CHAMFERDB_CLI does not name the chamferdb-cli binary")
class CliJsonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server().start()
        cls.tmp = tempfile.mkdtemp(prefix="chamferdb-cli-json-")
        cls.rng = random.Random(11)
        cls.records = [make_record(i, cls.rng) for i in range(120)]

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cli(self, *args, check=None, timeout=120):
        p = subprocess.run([CLI, "--server", self.srv.address, "--retries", "3", *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        if check is not None:
            self.assertEqual(p.returncode, check, f"args {args}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)

    def stub(self):
        return jr_grpc.JsonRecordsStub(self.srv.channel)

    def count(self, name):
        stub = collections_pb2_grpc.CollectionsStub(self.srv.channel)
        return stub.Get(collections_pb2.GetCollectionRequest(name=name)).collection.stats.documents

    def stored(self, name, ids):
        got = self.stub().Get(jr.GetJsonRequest(collection=name, ids=list(ids)))
        return {r.id: r.json for r in got.records}

    def create(self, name, *extra):
        return json.loads(self.cli("collections", "create", name, "--kind", "json", "--id-field", "sku",
                                   "--seed", 7, *extra, check=0).stdout)

    def write_lines(self, name, lines):
        with open(self.path(name), "w") as f:
            f.write("".join(line + "\n" for line in lines))
        return self.path(name)

    # ---- collections create ----

    def test_create_json_collection_with_mbat_parameters(self):
        info = self.create("c_params", "--dim", 512, "--str-mode", "tokens", "--max-depth", 16, "--index", "hnsw")
        cfg = info["config"]
        self.assertEqual(cfg["kind"], "JSON")
        self.assertEqual(cfg["dim"], 512)
        self.assertEqual(cfg["json"]["idField"], "sku")
        self.assertEqual(cfg["index"]["kind"], "HNSW")
        mbat = json.loads(cfg["json"]["mbatConfigJson"])
        self.assertEqual((mbat["dim"], mbat["seed"], mbat["str_mode"]), (512, 7, "tokens"))
        self.assertEqual(mbat["limits"]["max_depth"], 16)
        self.assertEqual(info["stats"]["fdeDim"], 512)
        # Defaults come from the server.
        info = json.loads(self.cli("collections", "create", "c_defaults", "--kind", "json", check=0).stdout)
        self.assertEqual(info["config"]["dim"], 1024)
        self.assertEqual(info["config"]["json"]["idField"], "id")
        self.assertEqual(json.loads(info["config"]["json"]["mbatConfigJson"])["op_kind"], "srht")
        # Usage errors (2) name the flag; the server's refusal (1) names the field.
        p = self.cli("collections", "create", "c_bad", "--kind", "json", "--r-reps", 4, check=2)
        self.assertIn("--r-reps applies to multi-vector collections only", p.stderr)
        p = self.cli("collections", "create", "c_bad", "--kind", "json", "--op-kind", "haar", check=2)
        self.assertIn("srht|dense_haar|signed_perm", p.stderr)
        p = self.cli("collections", "create", "c_bad", "--kind", "json", "--dim", 1000, check=1)
        self.assertIn("INVALID_ARGUMENT", p.stderr)
        self.assertIn("dim", p.stderr)

    # ---- ingest ----

    def bad_file(self, name):
        """Good records with bad lines at known line numbers; returns (path, good records, bad line numbers
        with the reason expected, the line of each good record by id)."""
        lines, good, bad, line_of = [], [], {}, {}
        for i, r in enumerate(self.records):
            lines.append(json.dumps(r, sort_keys=(i % 2 == 0)))
            good.append(r)
            line_of[r["sku"]] = lines[-1]
            if i == 10:
                lines.append("[1, 2, 3]")                            # not an object
                bad[len(lines)] = "not a JSON object"
            if i == 40:
                lines.append('{"sku": "broken", "name": ')          # invalid JSON
                bad[len(lines)] = "not valid JSON"
            if i == 60:
                lines.append('{"name": "no id"}')                   # no id field
                bad[len(lines)] = 'no "sku" field'
            if i == 80:
                lines.append('{"sku": "deep", "a": ' + "[" * 100000 + "]" * 100000 + "}")
                bad[len(lines)] = "deeper than 64"
        return self.write_lines(name, lines), good, bad, line_of

    def test_ingest_skip_reports_bad_lines_and_stores_the_rest_verbatim(self):
        self.create("c_skip")
        path, good, bad, line_of = self.bad_file("skip.jsonl")
        p = self.cli("ingest", "--collection", "c_skip", "--format", "json-records", "--batch-size", 16, path, check=1)
        s = parse_summary(p.stderr)
        self.assertEqual((s["acknowledged"], s["rejected"]), (len(good), len(bad)))
        for line_no, reason in bad.items():
            self.assertRegex(p.stderr, rf"rejected: {re.escape(path)}:{line_no}: .*{re.escape(reason)}")
        self.assertEqual(self.count("c_skip"), len(good))
        stored = self.stored("c_skip", [r["sku"] for r in good])
        for r in good:
            self.assertEqual(stored[r["sku"]], line_of[r["sku"]])  # verbatim, key order kept
        # --resume: the checkpoint lists every line (rejected ones count as done).
        p = self.cli("ingest", "--collection", "c_skip", "--resume", path, check=0)  # format from the collection
        s = parse_summary(p.stderr)
        self.assertEqual((s["sent"], s["resumed_skip"]), (0, len(good) + len(bad)))

    def test_ingest_duplicate_keys_are_rejected_with_the_line_number(self):
        # The server refuses duplicate keys (a DOM parser would silently keep one); the CLI
        # checks them before sending, so the rest of the batch goes in.
        self.create("c_server")
        lines = [json.dumps(r) for r in self.records[:20]]
        lines.insert(7, '{"sku": "dup", "a": 1, "a": 2}')
        path = self.write_lines("server.jsonl", lines)
        p = self.cli("ingest", "--collection", "c_server", "--id-field", "sku", path, check=1)
        self.assertIn(f"rejected: {path}:8: duplicate key \"a\"", p.stderr)
        self.assertEqual(self.count("c_server"), 20)

    def test_ingest_abort_stops_at_the_first_bad_line(self):
        self.create("c_abort")
        path, good, bad, _ = self.bad_file("abort.jsonl")
        first_bad = min(bad)
        p = self.cli("ingest", "--collection", "c_abort", "--format", "json-records", "--on-error", "abort",
                     "--parallel", 1, "--batch-size", 4, path, check=1)
        self.assertIn(f"rejected: {path}:{first_bad}: not a JSON object", p.stderr)
        self.assertIn("--on-error abort", p.stderr)
        before = good[:first_bad - 1]  # lines before the bad one are records 0..first_bad-2
        self.assertEqual(parse_summary(p.stderr)["acknowledged"], len(before))
        self.assertEqual(self.count("c_abort"), len(before))
        self.assertEqual(set(self.stored("c_abort", [r["sku"] for r in good])), {r["sku"] for r in before})

    def test_ingest_max_docs_then_resume_sends_each_record_once(self):
        self.create("c_resume")
        path = self.write_lines("resume.jsonl", [json.dumps(r) for r in self.records])
        p = self.cli("ingest", "--collection", "c_resume", "--batch-size", 10, "--parallel", 1, "--max-docs", 50,
                     path, check=0)
        self.assertEqual(parse_summary(p.stderr)["acknowledged"], 50)
        p = self.cli("ingest", "--collection", "c_resume", "--batch-size", 10, "--resume", path, check=0)
        s = parse_summary(p.stderr)
        self.assertEqual((s["sent"], s["resumed_skip"]), (len(self.records) - 50, 50))
        self.assertEqual(self.count("c_resume"), len(self.records))

    def test_ingest_format_must_match_the_collection_kind(self):
        self.cli("collections", "create", "c_mv", "--dim", 4, check=0)
        path = self.write_lines("kind.jsonl", [json.dumps(self.records[0])])
        p = self.cli("ingest", "--collection", "c_mv", "--format", "json-records", path, check=1)
        self.assertIn("holds multi-vector documents", p.stderr)
        self.create("c_kind")
        p = self.cli("ingest", "--collection", "c_kind", "--format", "jsonl", path, check=1)
        self.assertIn("holds JSON records; use --format json-records", p.stderr)
        p = self.cli("ingest", "--collection", "c_nope", "--format", "json-records", path, check=1)
        self.assertIn("does not exist", p.stderr)

    # ---- search, probe, get, delete ----

    def loaded(self, name):
        self.create(name)
        path = self.write_lines(name + ".jsonl", [json.dumps(r) for r in self.records])
        self.cli("ingest", "--collection", name, "--no-checkpoint", path, check=0)

    def test_search_by_example_finds_the_record_first(self):
        self.loaded("c_search")
        r = self.records[17]
        p = self.cli("search", "--collection", "c_search", "--json", json.dumps(r), "--k", 5, "--include-record",
                     check=0)
        [line] = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual(line["query"], "1")
        hits = line["hits"]
        self.assertEqual(len(hits), 5)
        self.assertEqual(hits[0]["id"], r["sku"])
        self.assertGreater(hits[0]["score"], 0.99)  # cosine of a vector with itself
        self.assertEqual(hits[0]["record"], r)
        self.assertEqual([h["score"] for h in hits], sorted((h["score"] for h in hits), reverse=True))
        # --queries: one line per query, in input order, each finding its own record.
        targets = self.records[30:40]
        qpath = self.write_lines("queries.jsonl", [json.dumps(t) for t in targets[:5]] + [""] +
                                 [json.dumps(t) for t in targets[5:]])
        p = self.cli("search", "--collection", "c_search", "--queries", qpath, "--k", 3, check=0)
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual([x["query"] for x in lines], ["1", "2", "3", "4", "5", "7", "8", "9", "10", "11"])
        self.assertEqual([x["hits"][0]["id"] for x in lines], [t["sku"] for t in targets])
        self.assertNotIn("record", lines[0]["hits"][0])
        # Containment: a partial query; the best hits contain its leaves.
        partial = {"addr": self.records[9]["addr"]}
        p = self.cli("search", "--collection", "c_search", "--json", json.dumps(partial), "--scoring", "containment",
                     "--k", 3, "--include-record", check=0)
        hits = json.loads(p.stdout)["hits"]
        matching = [x for x in self.records if contains(x, partial)]
        self.assertTrue(contains(hits[0]["record"], partial), hits[0])
        self.assertEqual(sum(contains(h["record"], partial) for h in hits), min(3, len(matching)))
        # --text: a human-readable listing with the same ranking; --output writes a file.
        p = self.cli("search", "--collection", "c_search", "--json", json.dumps(r), "--k", 2, "--text", check=0)
        self.assertRegex(p.stdout.splitlines()[1], rf"^\s+1\. {r['sku']}\s+0\.99\d\d|^\s+1\. {r['sku']}\s+1\.0000")
        self.cli("search", "--collection", "c_search", "--queries", qpath, "--output", self.path("out.jsonl"), check=0)
        with open(self.path("out.jsonl")) as f:
            self.assertEqual([json.loads(x)["hits"][0]["id"] for x in f], [t["sku"] for t in targets])

    def test_probe_returns_the_stored_value_at_a_path(self):
        self.loaded("c_probe")
        for r in self.records[:8]:
            p = self.cli("probe", "--collection", "c_probe", "--id", r["sku"], "--path", "addr.geo.cc", "--top", 3,
                         check=0)
            values = [json.loads(x) for x in p.stdout.splitlines()]
            self.assertEqual(values[0]["value"], r["addr"]["geo"]["cc"])
            self.assertLessEqual(len(values), 3)
            self.assertEqual([v["similarity"] for v in values], sorted((v["similarity"] for v in values), reverse=True))
            p = self.cli("probe", "--collection", "c_probe", "--id", r["sku"], "--path", "tags[2]", check=0)
            self.assertEqual(json.loads(p.stdout.splitlines()[0])["value"], r["tags"][2])
        # A record given inline (not stored) probes the same way; numbers come back as numbers.
        inline = {"addr": {"city": "lima"}, "stock": 12}
        p = self.cli("probe", "--collection", "c_probe", "--json", json.dumps(inline), "--path", "addr.city", check=0)
        self.assertEqual(json.loads(p.stdout.splitlines()[0])["value"], "lima")
        p = self.cli("probe", "--collection", "c_probe", "--id", "s0003", "--path", "tags[0]", "--text", check=0)
        self.assertIn(json.dumps(self.records[3]["tags"][0]), p.stdout.splitlines()[1])

    def test_get_and_delete_records(self):
        self.loaded("c_get")
        p = self.cli("get", "--collection", "c_get", "s0001", "s0002", "zzz", check=1)
        got = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual(got, [{"id": "s0001", "record": self.records[1]}, {"id": "s0002", "record": self.records[2]}])
        self.assertIn("not found: zzz", p.stderr)
        p = self.cli("delete", "--collection", "c_get", "s0001", "zzz", check=0)
        self.assertEqual(json.loads(p.stdout), {"deleted": 1})
        self.assertEqual(self.count("c_get"), len(self.records) - 1)

    def test_errors_exit_non_zero_and_name_the_problem(self):
        self.loaded("c_err")
        p = self.cli("search", "--collection", "c_err", "--json", "[1, 2]", check=2)
        self.assertIn("--json: not a JSON object", p.stderr)
        p = self.cli("search", "--collection", "c_err", "--json", '{"a": ', check=2)
        self.assertIn("not valid JSON", p.stderr)
        p = self.cli("search", "--collection", "c_missing", "--json", "{}", check=1)
        self.assertIn("NOT_FOUND", p.stderr)
        qpath = self.write_lines("badq.jsonl", [json.dumps(self.records[0]), "not json"])
        p = self.cli("search", "--collection", "c_err", "--queries", qpath, check=1)
        self.assertIn(f"{qpath}:2: not valid JSON", p.stderr)
        self.assertEqual(p.stdout, "")  # nothing is searched when a query line is bad
        p = self.cli("search", "--collection", "c_err", "--json", "{}", "--scoring", "overlap", check=2)
        self.assertIn("cosine|containment", p.stderr)
        p = self.cli("probe", "--collection", "c_err", "--id", "s0001", "--path", "addr..cc", check=1)
        self.assertIn("INVALID_ARGUMENT", p.stderr)
        self.assertIn("addr..cc", p.stderr)
        p = self.cli("probe", "--collection", "c_err", "--id", "nope", "--path", "name", check=1)
        self.assertIn("NOT_FOUND", p.stderr)
        self.assertIn('"nope"', p.stderr)
        p = self.cli("probe", "--collection", "c_err", "--path", "name", check=2)
        self.assertIn("exactly one of --id", p.stderr)
        # A JSON collection refuses multi-vector flags, and the other way round.
        p = self.cli("search", "--collection", "c_err", "--json", "{}", "--no-rerank", check=2)
        self.assertIn("--no-rerank applies to multi-vector collections only", p.stderr)
        self.cli("collections", "create", "c_err_mv", "--dim", 4, check=0)
        p = self.cli("probe", "--collection", "c_err_mv", "--id", "x", "--path", "a", check=1)
        self.assertIn("FAILED_PRECONDITION", p.stderr)


class _FakeJsonServer(grpc.GenericRpcHandler):
    """Collections.Get says "kind JSON"; JsonRecords.Upsert refuses any batch holding a record whose
    "bad" field is set, naming it the way the real server does (INVALID_ARGUMENT "records[i]: ..."
    or RESOURCE_EXHAUSTED "records: record i: ..."), and stores the others. Every batch is logged."""

    def __init__(self):
        self.batches, self.stored = [], {}

    def service(self, details):
        if details.method == "/chamferdb.v1.Collections/Get":
            def get(request, context):
                return collections_pb2.GetCollectionResponse(collection=collections_pb2.CollectionInfo(
                    config=collections_pb2.CollectionConfig(name=request.name, kind=collections_pb2.JSON, dim=64,
                                                            json=collections_pb2.JsonParams(id_field="id"))))
            return grpc.unary_unary_rpc_method_handler(
                get, request_deserializer=collections_pb2.GetCollectionRequest.FromString,
                response_serializer=collections_pb2.GetCollectionResponse.SerializeToString)
        if details.method == "/chamferdb.v1.JsonRecords/Upsert":
            def upsert(request, context):
                recs = [json.loads(r.json) for r in request.records]
                self.batches.append([r["id"] for r in recs])
                for i, r in enumerate(recs):
                    if r.get("bad") == "invalid":
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"records[{i}]: duplicate key")
                    if r.get("bad") == "exhausted":
                        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"records: record {i}: too many values")
                for r in recs:
                    self.stored[r["id"]] = r
                return jr.UpsertJsonResponse(upserted=len(recs))
            return grpc.unary_unary_rpc_method_handler(
                upsert, request_deserializer=jr.UpsertJsonRequest.FromString,
                response_serializer=jr.UpsertJsonResponse.SerializeToString)
        return None


@unittest.skipUnless(CLI and os.path.exists(CLI), "CHAMFERDB_CLI does not name the chamferdb-cli binary")
class CliJsonServerRejectionTest(unittest.TestCase):
    """What the CLI does with a batch the server refuses because of one record (the real server's
    checks are all mirrored client-side, so an independent fake server plays the refusal)."""

    def test_a_refused_record_is_reported_and_the_rest_of_its_batch_resent_without_retries(self):
        fake = _FakeJsonServer()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers((fake,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        d = tempfile.mkdtemp(prefix="chamferdb-cli-fake-")
        self.addCleanup(shutil.rmtree, d, True)
        recs = [{"id": f"r{i}"} for i in range(10)]
        recs[2]["bad"] = "invalid"
        recs[6]["bad"] = "exhausted"
        path = os.path.join(d, "in.jsonl")
        with open(path, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in recs))
        p = subprocess.run([CLI, "--server", f"127.0.0.1:{port}", "--retries", "5", "ingest", "--collection", "c",
                            "--batch-size", "4", "--parallel", "1", "--no-checkpoint", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"rejected: {path}:3: server: records[2]: duplicate key", p.stderr)
        self.assertIn(f"rejected: {path}:7: server: records: record 2: too many values", p.stderr)
        self.assertNotIn("retry:", p.stderr)  # RESOURCE_EXHAUSTED naming a record is not load
        self.assertEqual(fake.batches, [["r0", "r1", "r2", "r3"], ["r0", "r1", "r3"],
                                        ["r4", "r5", "r6", "r7"], ["r4", "r5", "r7"], ["r8", "r9"]])
        self.assertEqual(sorted(fake.stored), sorted(r["id"] for r in recs if "bad" not in r))
        s = parse_summary(p.stderr)
        self.assertEqual((s["acknowledged"], s["rejected"], s["retries"]), (8, 2, 0))


if __name__ == "__main__":
    unittest.main()
