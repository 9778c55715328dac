"""End-to-end tests of the Python client (clients/python/chamferdb_client) against the real server.

Search results are checked against numpy brute-force Chamfer scores; stored documents are read
back and compared with what was sent; errors must surface as ChamferDBError (server) or
ValueError (rejected locally, nothing sent).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from concurrent import futures

import grpc
import numpy as np

import harness
from corpus import chamfer, unit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from chamferdb_client import ChamferDBError, Client, CollectionInfo, Document, Hit  # noqa: E402
from chamferdb.v1 import collections_pb2  # noqa: E402

DIM = 12


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server().start()
        cls.db = Client(cls.srv.address, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        cls.srv.stop()
        cls.srv.cleanup()

    def test_collection_lifecycle(self):
        info = self.db.create_collection("py1", dim=DIM, index="hnsw", token_storage="f16", r_reps=3, k_sim=2,
                                         d_proj=4)
        self.assertIsInstance(info, CollectionInfo)
        self.assertEqual((info.name, info.dim, info.index, info.token_storage), ("py1", DIM, "hnsw", "f16"))
        self.assertEqual(info.fde_dim, 3 * 4 * 4)
        self.assertEqual(info.documents, 0)
        self.assertTrue(info.normalize)
        self.assertIn("py1", [c.name for c in self.db.list_collections()])
        self.assertEqual(self.db.get_collection("py1").fde["r_reps"], 3)
        with self.assertRaises(ChamferDBError) as e:
            self.db.create_collection("py1", dim=DIM)
        self.assertEqual(e.exception.code, grpc.StatusCode.ALREADY_EXISTS)
        self.db.drop_collection("py1")
        with self.assertRaises(ChamferDBError) as e:
            self.db.get_collection("py1")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(ValueError):
            self.db.create_collection("py2", dim=DIM, index="annoy")

    def test_upsert_search_get_delete_against_numpy(self):
        rng = np.random.default_rng(11)
        self.db.create_collection("py3", dim=DIM)
        ids = [f"p{i}" for i in range(150)]
        docs = [unit(rng.standard_normal((int(rng.integers(2, 7)), DIM))) for _ in ids]
        meta = [{"i": i} if i % 2 == 0 else None for i in range(len(ids))]
        self.assertEqual(self.db.upsert("py3", ids, docs, metadata=meta, batch_size=40), 150)
        self.assertEqual(self.db.get_collection("py3").documents, 150)

        queries = [unit(docs[t] + 0.1 * rng.standard_normal(docs[t].shape)) for t in rng.integers(150, size=10)]
        batch = self.db.search_batch("py3", queries, k=5, candidates=150)
        for q, from_batch in zip(queries, batch):
            hits = self.db.search("py3", q, k=5, candidates=150, include_metadata=True)
            self.assertTrue(all(isinstance(h, Hit) for h in hits))
            exact = sorted(((chamfer(q, d), i) for i, d in zip(ids, docs)), reverse=True)[:5]
            self.assertEqual([h.id for h in hits], [i for _, i in exact])
            for h, (score, _) in zip(hits, exact):
                self.assertAlmostEqual(h.score, score, places=4)
                n = int(h.id[1:])
                self.assertEqual(h.metadata, meta[n])
            self.assertEqual([h.id for h in from_batch], [h.id for h in hits])
        fde_order = self.db.search("py3", queries[0], k=3, rerank=False)
        self.assertEqual([h.score for h in fde_order], [h.fde_score for h in fde_order])

        got = self.db.get("py3", ["p4", "missing", "p5"], include_vectors=True)
        self.assertEqual([d.id for d in got], ["p4", "p5"])
        self.assertIsInstance(got[0], Document)
        np.testing.assert_allclose(got[0].vectors, docs[4], atol=1e-6)
        self.assertEqual((got[0].metadata, got[1].metadata), ({"i": 4}, None))
        self.assertIsNone(self.db.get("py3", ["p4"])[0].vectors)
        self.assertEqual(self.db.delete("py3", ["p4", "p5", "missing"]), 2)
        self.assertEqual(self.db.get("py3", ["p4", "p5"]), [])

    def test_bad_input_is_refused_locally(self):
        self.db.create_collection("py4", dim=DIM)
        ok = np.ones((2, DIM), np.float32)
        with self.assertRaisesRegex(ValueError, "2 ids but 1"):
            self.db.upsert("py4", ["a", "b"], [ok])
        with self.assertRaisesRegex(ValueError, "NaN"):
            self.db.upsert("py4", ["a"], [np.full((2, DIM), np.nan)])
        with self.assertRaisesRegex(ValueError, "dimension"):
            self.db.upsert("py4", ["a", "b"], [ok, np.ones((2, DIM + 1))])
        with self.assertRaisesRegex(ValueError, "non-empty"):
            self.db.upsert("py4", [""], [ok])
        with self.assertRaisesRegex(ValueError, "shape"):
            self.db.search("py4", np.ones((2, 2, DIM)))
        self.assertEqual(self.db.get_collection("py4").documents, 0)
        # What only the server can check comes back as ChamferDBError with the server's reason.
        with self.assertRaises(ChamferDBError) as e:
            self.db.upsert("py4", ["z"], [np.zeros((1, DIM))])
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("documents[0]", e.exception.details)
        with self.assertRaises(ChamferDBError) as e:
            self.db.search("py4", ok, k=0)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_unreachable_server_raises_unavailable_after_retries(self):
        with Client(f"127.0.0.1:{harness.free_port()}", timeout=5, retries=2) as db:
            with self.assertRaises(ChamferDBError) as e:
                db.list_collections()
            self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)

    def test_example_script_runs(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(REPO, "clients", "python"),
                                                          os.environ.get("CHAMFERDB_PYTHON_STUBS", "")]))
        p = subprocess.run([sys.executable, os.path.join(REPO, "clients", "python", "example.py"), "--server",
                            self.srv.address], capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("upserted 100 documents", p.stdout)
        first_hit = [line for line in p.stdout.splitlines() if line.startswith("  ")][0]
        self.assertTrue(first_hit.split()[0] == "doc-42", p.stdout)


class PythonClientApiKeyTest(unittest.TestCase):
    def test_api_key_travels_as_bearer_metadata(self):
        try:
            usage = subprocess.run([harness.BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
        except OSError:
            usage = ""
        if "--admin-key" not in usage:
            self.skipTest("the server has no --admin-key flag yet (API keys not implemented)")
        with harness.Server(extra_args=["--admin-key", "py-admin-key"]) as srv:
            with Client(srv.address, retries=1) as anonymous:
                with self.assertRaises(ChamferDBError) as e:
                    anonymous.list_collections()
                self.assertEqual(e.exception.code, grpc.StatusCode.UNAUTHENTICATED)
            with Client(srv.address, api_key="py-admin-key") as admin:
                admin.create_collection("keyed", dim=4)
                self.assertEqual([c.name for c in admin.list_collections()], ["keyed"])


class PythonClientTransportTest(unittest.TestCase):
    """api_key and tls_ca as an independent (plain grpc) server sees them."""

    def serve(self, creds=None):
        seen = []

        def handle(request, context):
            seen.append(dict(context.invocation_metadata()))
            return collections_pb2.ListCollectionsResponse()

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                if details.method != "/chamferdb.v1.Collections/List":
                    return None
                return grpc.unary_unary_rpc_method_handler(
                    handle, request_deserializer=collections_pb2.ListCollectionsRequest.FromString,
                    response_serializer=collections_pb2.ListCollectionsResponse.SerializeToString)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers((Handler(),))
        port = server.add_secure_port("127.0.0.1:0", creds) if creds else server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        return f"127.0.0.1:{port}", seen

    def test_api_key_is_a_bearer_token(self):
        address, seen = self.serve()
        with Client(address, api_key="abc") as db:
            self.assertEqual(db.list_collections(), [])
        with Client(address) as db:
            db.list_collections()
        self.assertEqual(seen[0].get("authorization"), "Bearer abc")
        self.assertNotIn("authorization", seen[1])

    @unittest.skipIf(shutil.which("openssl") is None, "openssl is not installed")
    def test_tls_ca_path_or_bytes(self):
        d = tempfile.mkdtemp(prefix="chamferdb-pytls-")
        self.addCleanup(shutil.rmtree, d, True)

        def ssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=test CA")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "s.key", "-out", "s.csr", "-subj", "/CN=localhost")
        ssl("x509", "-req", "-in", "s.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "s.pem",
            "-days", "2", "-extfile", "ext.cnf")
        with open(os.path.join(d, "s.key"), "rb") as k, open(os.path.join(d, "s.pem"), "rb") as c:
            address, seen = self.serve(grpc.ssl_server_credentials([(k.read(), c.read())]))
        ca = os.path.join(d, "ca.pem")
        with Client(address, api_key="t", tls_ca=ca) as db:
            self.assertEqual(db.list_collections(), [])
        with open(ca, "rb") as f:
            with Client(address, tls_ca=f.read()) as db:
                db.list_collections()
        self.assertEqual(seen[0].get("authorization"), "Bearer t")
        with Client(address, timeout=5, retries=1) as plaintext:
            with self.assertRaises(ChamferDBError):
                plaintext.list_collections()


if __name__ == "__main__":
    unittest.main()
