#!/usr/bin/python3
"""Write latency under search load: how long a one-document upsert waits while clients keep
searching the same collection.

Loads --docs documents (32 random unit tokens each, --dim dims) into a FLAT collection with
the default 10240-dim FDE, times --writes single-document upserts on the idle server, then
starts --searchers client threads that search the collection back to back (--candidates
reranked, k = 10) and times --writes more upserts while they run. Prints p50/p95/max of both
and the search rate during the loaded phase, then a JSON line.

A collection's reader/writer lock decides this number: a search holds the shared lock for
its whole index search and rerank (milliseconds), an upsert needs the exclusive lock. With a
reader-preferring lock, overlapping searches keep it shared and the upsert waits until they
happen to leave a gap (seconds); with the writer-preferring lock (common/rw_mutex.h) it waits
for the searches already running only.

    CHAMFERDB_BIN=build/server/chamferdb CHAMFERDB_PYTHON_STUBS=build/python \
      /usr/bin/python3 tests/reliability/write_latency.py --docs 5000 --searchers 2

Exit status 0 unless an RPC fails. It asserts no latency (a measurement, not a test: the
figures depend on the machine's load); docs/reliability.md has the measured figures.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

import numpy as np  # noqa: E402

from chamferdb.v1 import collections_pb2, collections_pb2_grpc  # noqa: E402
from chamferdb.v1 import documents_pb2, documents_pb2_grpc  # noqa: E402
from chamferdb.v1 import search_pb2, search_pb2_grpc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--searchers", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--writes", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)

    def tokens():
        t = rng.standard_normal((32, args.dim))
        return (t / np.linalg.norm(t, axis=1, keepdims=True)).astype("<f4").tobytes()

    def doc(i):
        return documents_pb2.Document(id=f"d{i}", num_tokens=32, vectors=tokens())

    def summary(ms):
        ms = np.array(ms)
        return {"p50_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max())}

    # Admission control must not turn the searchers' load into RESOURCE_EXHAUSTED for the writer.
    with harness.Server(extra_args=["--max-concurrent-requests", str(4 * args.searchers + 8)]) as srv:
        colls = collections_pb2_grpc.CollectionsStub(srv.channel)
        docs = documents_pb2_grpc.DocumentsStub(srv.channel)
        colls.Create(collections_pb2.CreateCollectionRequest(
            config=collections_pb2.CollectionConfig(name="w", dim=args.dim)))
        for start in range(0, args.docs, 500):
            docs.Upsert(documents_pb2.UpsertRequest(
                collection="w", documents=[doc(i) for i in range(start, min(args.docs, start + 500))]))
        query = search_pb2.Query(num_tokens=32, vectors=tokens())
        next_id = [args.docs]

        def timed_writes():
            ms = []
            for _ in range(args.writes):
                d = doc(next_id[0])
                next_id[0] += 1
                t = time.perf_counter()
                docs.Upsert(documents_pb2.UpsertRequest(collection="w", documents=[d]))
                ms.append((time.perf_counter() - t) * 1e3)
            return ms

        idle = summary(timed_writes())
        stop = threading.Event()
        searches = [0] * args.searchers
        errors = []

        def searcher(i):
            stub = search_pb2_grpc.SearchStub(srv.new_channel())
            req = search_pb2.SearchRequest(collection="w", k=10, candidates=args.candidates, query=query)
            try:
                while not stop.is_set():
                    stub.Search(req)
                    searches[i] += 1
            except Exception as e:  # reported below; the writer phase still ends
                errors.append(repr(e))

        threads = [threading.Thread(target=searcher, args=(i,)) for i in range(args.searchers)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # let the searches overlap
        s0, t0 = sum(searches), time.perf_counter()
        loaded = summary(timed_writes())
        rate = (sum(searches) - s0) / (time.perf_counter() - t0)
        stop.set()
        for t in threads:
            t.join()
    if errors:
        print("search errors:", errors[:3], file=sys.stderr)
        return 1
    print(f"upsert of one document, idle:                p50 {idle['p50_ms']:7.1f} ms  p95 {idle['p95_ms']:7.1f}  "
          f"max {idle['max_ms']:7.1f}")
    print(f"upsert of one document, {args.searchers:2d} searching clients: p50 {loaded['p50_ms']:7.1f} ms  "
          f"p95 {loaded['p95_ms']:7.1f}  max {loaded['max_ms']:7.1f}   ({rate:.0f} searches/s meanwhile)")
    print(json.dumps({"docs": args.docs, "searchers": args.searchers, "candidates": args.candidates,
                      "idle": idle, "loaded": loaded, "searches_per_s": rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
