"""Security and operations against the real server: TLS and mutual TLS, the two API-key
roles, Prometheus metrics over HTTP, and graceful shutdown on SIGTERM."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import grpc
import numpy as np

import harness
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import documents_pb2, documents_pb2_grpc
from chamferdb.v1 import search_pb2, search_pb2_grpc

DIM = 8


def make_certs(d):
    """A CA, a server certificate for 'localhost' and a client certificate, via openssl."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=chamferdb-test-ca")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={'localhost' if name == 'server' else 'client'}")
        ext = os.path.join(d, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if name == "server" else "extendedKeyUsage=clientAuth\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", ext)
    return {n: open(os.path.join(d, n), "rb").read() for n in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def create(channel, name="c", metadata=None):
    return collections_pb2_grpc.CollectionsStub(channel).Create(
        collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(name=name, dim=DIM)),
        metadata=metadata, timeout=10)


def tokens(n, seed=0):
    t = np.random.default_rng(seed).standard_normal((n, DIM))
    return (t / np.linalg.norm(t, axis=1, keepdims=True)).astype("<f4")


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="chamferdb-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.certs = make_certs(cls.dir)

    def test_tls_serves_encrypted_and_rejects_plaintext(self):
        creds = grpc.ssl_channel_credentials(root_certificates=self.certs["ca.pem"])
        with harness.Server(extra_args=["--tls-cert", os.path.join(self.dir, "server.pem"),
                                        "--tls-key", os.path.join(self.dir, "server.key")],
                            credentials=creds, target_name="localhost") as srv:
            self.assertEqual(create(srv.channel).collection.config.name, "c")
            plain = grpc.insecure_channel(srv.address)
            with self.assertRaises(grpc.RpcError) as ctx:
                create(plain, "d")
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_mutual_tls_requires_a_client_certificate(self):
        with_cert = grpc.ssl_channel_credentials(root_certificates=self.certs["ca.pem"],
                                                 private_key=self.certs["client.key"],
                                                 certificate_chain=self.certs["client.pem"])
        without = grpc.ssl_channel_credentials(root_certificates=self.certs["ca.pem"])
        with harness.Server(extra_args=["--tls-cert", os.path.join(self.dir, "server.pem"),
                                        "--tls-key", os.path.join(self.dir, "server.key"),
                                        "--tls-client-ca", os.path.join(self.dir, "ca.pem")],
                            credentials=with_cert, target_name="localhost") as srv:
            self.assertEqual(create(srv.channel).collection.config.name, "c")
            with self.assertRaises(grpc.RpcError) as ctx:
                create(srv.new_channel(without), "d")
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)


class ApiKeys(unittest.TestCase):
    def test_admin_and_read_only_roles(self):
        # Keys from the environment, as a deployment would pass them.
        with harness.Server(env={"CHAMFERDB_ADMIN_KEY": "admin-secret", "CHAMFERDB_READ_KEY": "reader"}) as srv:
            admin = [("authorization", "Bearer admin-secret")]
            reader = [("authorization", "Bearer reader")]
            for md, code in ((None, grpc.StatusCode.UNAUTHENTICATED),
                             ([("authorization", "Bearer wrong")], grpc.StatusCode.UNAUTHENTICATED),
                             ([("authorization", "admin-secret")], grpc.StatusCode.UNAUTHENTICATED),
                             (reader, grpc.StatusCode.PERMISSION_DENIED)):
                with self.assertRaises(grpc.RpcError) as ctx:
                    create(srv.channel, metadata=md)
                self.assertEqual(ctx.exception.code(), code)
            create(srv.channel, metadata=admin)
            docs = documents_pb2_grpc.DocumentsStub(srv.channel)
            up = documents_pb2.UpsertRequest(collection="c", documents=[
                documents_pb2.Document(id="a", num_tokens=2, vectors=tokens(2).tobytes())])
            with self.assertRaises(grpc.RpcError) as ctx:
                docs.Upsert(up, metadata=reader)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            docs.Upsert(up, metadata=admin)
            # The read key may search, get and list.
            r = search_pb2_grpc.SearchStub(srv.channel).Search(search_pb2.SearchRequest(
                collection="c", k=1, query=search_pb2.Query(num_tokens=2, vectors=tokens(2).tobytes())), metadata=reader)
            self.assertEqual(r.hits[0].id, "a")
            got = docs.Get(documents_pb2.GetDocumentsRequest(collection="c", ids=["a"]), metadata=reader)
            self.assertEqual(got.documents[0].id, "a")
            collections_pb2_grpc.CollectionsStub(srv.channel).List(collections_pb2.ListCollectionsRequest(), metadata=reader)
            # Health checks stay open without a key.
            self.assertEqual(srv.channel.unary_unary("/grpc.health.v1.Health/Check")(b""), b"\x08\x01")


class Metrics(unittest.TestCase):
    def test_prometheus_endpoint_reports_rpcs_and_collections(self):
        port = harness.free_port()
        with harness.Server(extra_args=["--metrics-port", str(port)]) as srv:
            create(srv.channel)
            docs = documents_pb2_grpc.DocumentsStub(srv.channel)
            docs.Upsert(documents_pb2.UpsertRequest(collection="c", documents=[
                documents_pb2.Document(id=f"d{i}", num_tokens=3, vectors=tokens(3, i).tobytes()) for i in range(7)]))
            with self.assertRaises(grpc.RpcError):
                docs.Upsert(documents_pb2.UpsertRequest(collection="missing", documents=[]))
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            self.assertIn('chamferdb_requests_total{rpc="Documents.Upsert",code="OK"} 1', body)
            self.assertIn('chamferdb_requests_total{rpc="Documents.Upsert",code="NOT_FOUND"} 1', body)
            self.assertIn('chamferdb_request_seconds_count{rpc="Collections.Create"} 1', body)
            self.assertIn('chamferdb_collection_documents{collection="c"} 7', body)
            self.assertIn('chamferdb_collection_token_vectors{collection="c"} 21', body)
            self.assertIn('chamferdb_documents_ingested_total{collection="c"} 7', body)
            self.assertIn("chamferdb_collection_bytes_on_disk", body)


class GracefulShutdown(unittest.TestCase):
    def test_sigterm_finishes_in_flight_requests_and_exits_zero(self):
        srv = harness.Server(extra_args=["--shutdown-grace-seconds", "30"]).start()
        try:
            colls = collections_pb2_grpc.CollectionsStub(srv.channel)
            colls.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
                name="big", dim=128, fde=collections_pb2.FdeParams(r_reps=128, k_sim=6, d_final=4096))))
            rng = np.random.default_rng(1)
            batch = documents_pb2.UpsertRequest(collection="big", documents=[
                documents_pb2.Document(id=f"d{i}", num_tokens=48,
                                       vectors=rng.standard_normal((48, 128)).astype("<f4").tobytes())
                for i in range(1500)])
            fut = documents_pb2_grpc.DocumentsStub(srv.channel).Upsert.future(batch, timeout=120)
            time.sleep(0.5)  # the batch is being encoded now
            if fut.done():
                fut.result()  # surfaces an error instead of a vague failure
            self.assertFalse(fut.done(), "batch finished too early to test an in-flight request")
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(fut.result().upserted, 1500)
            self.assertEqual(srv.proc.wait(timeout=60), 0)
            # Acknowledged data is there after the restart.
            srv2 = harness.Server(data_dir=srv.data_dir).start()
            try:
                stats = collections_pb2_grpc.CollectionsStub(srv2.channel).Get(
                    collections_pb2.GetCollectionRequest(name="big")).collection.stats
                self.assertEqual(stats.documents, 1500)
            finally:
                srv2.stop()
        finally:
            srv.stop()
            srv.cleanup()



class HealthProbe(unittest.TestCase):
    def test_probe_mode_reports_serving_and_down(self):
        with harness.Server() as srv:
            ok = subprocess.run([harness.BIN, "--health-probe", "--listen", srv.address], capture_output=True)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            port = srv.port
        down = subprocess.run([harness.BIN, "--health-probe", "--listen", f"127.0.0.1:{port}"], capture_output=True)
        self.assertEqual(down.returncode, 1)


if __name__ == "__main__":
    unittest.main()
