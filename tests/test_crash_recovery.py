"""kill -9 in the middle of an ingest: after a restart every acknowledged document is
present with identical vectors and metadata, every batch is all-or-nothing, deleted ids
stay deleted, and the FAISS index agrees with RocksDB (document count, search works).
Runs with and without --sync."""
import json
import random
import threading
import time
import unittest

import grpc
import numpy as np

import harness
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import documents_pb2, documents_pb2_grpc
from chamferdb.v1 import search_pb2, search_pb2_grpc

DIM = 16
BATCH = 20


def batch_tokens(batch_no, i):
    rng = np.random.default_rng(batch_no * 1000 + i)
    t = rng.standard_normal((4 + i % 5, DIM))
    return (t / np.linalg.norm(t, axis=1, keepdims=True)).astype("<f4")


class CrashRecovery(unittest.TestCase):
    def run_cycle(self, extra_args, seconds):
        srv = harness.Server(extra_args=extra_args).start()
        try:
            collections_pb2_grpc.CollectionsStub(srv.channel).Create(collections_pb2.CreateCollectionRequest(
                config=collections_pb2.CollectionConfig(name="crash", dim=DIM, fde=collections_pb2.FdeParams(r_reps=8))))
            stub = documents_pb2_grpc.DocumentsStub(srv.channel)
            acked, attempted, deleted = [], [], []
            stop = threading.Event()

            def writer():
                b = 0
                while not stop.is_set():
                    docs = [documents_pb2.Document(
                        id=f"b{b}-{i}", num_tokens=len(batch_tokens(b, i)), vectors=batch_tokens(b, i).tobytes(),
                        metadata_json=json.dumps({"b": b, "i": i})) for i in range(BATCH)]
                    attempted.append(b)
                    try:
                        stub.Upsert(documents_pb2.UpsertRequest(collection="crash", documents=docs), timeout=10)
                    except grpc.RpcError:
                        return
                    acked.append(b)
                    if b % 5 == 4:  # delete one document of an older acknowledged batch
                        victim = f"b{b - 2}-0"
                        try:
                            stub.Delete(documents_pb2.DeleteRequest(collection="crash", ids=[victim]), timeout=10)
                        except grpc.RpcError:
                            return
                        deleted.append(victim)
                    b += 1

            t = threading.Thread(target=writer)
            t.start()
            time.sleep(seconds * random.uniform(0.5, 1.0))
            srv.kill()  # SIGKILL mid-ingest
            stop.set()
            t.join()
            self.assertGreater(len(acked), 3, "too few batches acknowledged before the crash")

            srv = harness.Server(data_dir=srv.data_dir, extra_args=extra_args).start()
            stub = documents_pb2_grpc.DocumentsStub(srv.channel)
            stats = collections_pb2_grpc.CollectionsStub(srv.channel).Get(
                collections_pb2.GetCollectionRequest(name="crash")).collection.stats
            all_ids = [f"b{b}-{i}" for b in attempted for i in range(BATCH)]
            present = {}
            for start in range(0, len(all_ids), 5000):
                got = stub.Get(documents_pb2.GetDocumentsRequest(
                    collection="crash", ids=all_ids[start:start + 5000], include_vectors=True))
                present.update({d.id: d for d in got.documents})
            for b in attempted:
                ids = [f"b{b}-{i}" for i in range(BATCH)]
                live = [x for x in ids if x not in deleted]
                n_present = sum(1 for x in live if x in present)
                if b in acked:
                    self.assertEqual(n_present, len(live), f"acknowledged batch {b} lost documents")
                else:
                    self.assertIn(n_present, (0, len(live)), f"unacknowledged batch {b} half applied")
                for i, x in enumerate(ids):
                    if x in present:
                        # Stored tokens are the L2-normalized input (already unit: equal to rounding).
                        np.testing.assert_allclose(
                            np.frombuffer(present[x].vectors, dtype="<f4").reshape(-1, DIM), batch_tokens(b, i),
                            rtol=0, atol=1e-6)
                        self.assertEqual(json.loads(present[x].metadata_json), {"b": b, "i": i})
            for victim in deleted:
                self.assertNotIn(victim, present)
            # The index agrees with storage: same count, and every document is findable.
            self.assertEqual(stats.documents, len(present))
            search = search_pb2_grpc.SearchStub(srv.channel)
            for b in acked[:: max(1, len(acked) // 5)]:
                q = batch_tokens(b, 3)
                r = search.Search(search_pb2.SearchRequest(
                    collection="crash", k=1, candidates=min(stats.documents, 10000),
                    query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes())))
                self.assertEqual(r.hits[0].id, f"b{b}-3")
            return len(acked)
        finally:
            srv.stop()
            srv.cleanup()

    def test_kill9_without_sync(self):
        for _ in range(2):
            self.run_cycle([], seconds=3)

    def test_kill9_with_sync(self):
        self.run_cycle(["--sync"], seconds=3)


if __name__ == "__main__":
    unittest.main()
