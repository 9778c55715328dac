#!/usr/bin/python3
"""Crash loop (after RocksDB's db_crashtest and Qdrant's crasher): start the server, drive
concurrent upserts (with metadata), deletes and searches from several client threads plus
a JSON-records writer, kill -9 it at a random moment, restart, verify, repeat.

After every restart, against a model of what was acknowledged (each writer thread owns its
ids, so its acknowledged operations are totally ordered; at most one operation per thread
was in flight at the kill):
  - every acknowledged upsert is present with identical vectors (as stored: L2-normalized;
    the inputs are unit rows, so equal to rounding) and identical metadata;
  - every acknowledged delete is absent;
  - the operation in flight at the kill is all-or-nothing over its whole batch;
  - no phantom or duplicate ids: Get of the whole id universe returns each id at most
    once, and the in-memory index count (collection stats, rebuilt from a full RocksDB
    scan) equals the number of documents Get finds in RocksDB; token_vectors agrees too;
  - search works: sampled documents are their own top hit (exact Chamfer = token count),
    JSON records their own top hit; deleted ones are never returned.
The uncertain outcomes are then resolved from what the server returned, and the next cycle
continues on the same data directory (state accumulates across cycles; ids are reused, so
most upserts are replacements).

    CHAMFERDB_BIN=build/server/chamferdb CHAMFERDB_PYTHON_STUBS=build/python \
      /usr/bin/python3 tests/reliability/crash_loop.py --cycles 20 --modes nosync,sync

Exit status 0 iff every cycle of every mode verified; prints a JSON summary line.
"""
import argparse
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from chamferdb.v1 import collections_pb2, collections_pb2_grpc  # noqa: E402
from chamferdb.v1 import documents_pb2, documents_pb2_grpc  # noqa: E402
from chamferdb.v1 import json_records_pb2, json_records_pb2_grpc  # noqa: E402
from chamferdb.v1 import search_pb2, search_pb2_grpc  # noqa: E402

DIM = 16
IDS_PER_THREAD = 200
COLL = "mv"
JCOLL = "js"


def tokens(seed):
    """Unit rows, 2..9 of them, determined by the seed (the document's version)."""
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((2 + seed % 8, DIM))
    return (t / np.linalg.norm(t, axis=1, keepdims=True)).astype("<f4")


def meta(seed, doc_id):
    return json.dumps({"id": doc_id, "v": seed, "tags": ["t%d" % (seed % 7)], "nested": {"x": seed % 13}})


def record(doc_id, version):
    return json.dumps({"id": doc_id, "version": version, "color": "c%d" % (version % 5),
                       "dims": [version % 3, version % 11]}, separators=(",", ":"))


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Writer:
    """One client thread: a random mix of batch upserts and deletes over its own ids."""

    def __init__(self, idx, channel, state, rng_seed, json_mode=False):
        self.idx = idx
        self.json_mode = json_mode
        self.prefix = ("j%d-" if json_mode else "w%d-") % idx
        self.state = state  # id -> version (int) for present docs; absent ids are not keys
        self.rng = random.Random(rng_seed)
        self.channel = channel
        self.in_flight = None  # (kind, {id: version or None}) of the call not yet acknowledged
        self.acked = 0
        self.errors = []

    def ids(self):
        return [self.prefix + str(i) for i in range(IDS_PER_THREAD)]

    def run(self, stop):
        docs = documents_pb2_grpc.DocumentsStub(self.channel)
        jrec = json_records_pb2_grpc.JsonRecordsStub(self.channel)
        while not stop.is_set():
            if self.rng.random() < 0.8 or not self.state:
                n = self.rng.randint(1, 12)
                chosen = self.rng.sample(range(IDS_PER_THREAD), n)
                change = {self.prefix + str(i): self.rng.randrange(1, 1 << 30) for i in chosen}
                self.in_flight = ("upsert", change)
                try:
                    if self.json_mode:
                        jrec.Upsert(json_records_pb2.UpsertJsonRequest(collection=JCOLL, records=[
                            json_records_pb2.JsonRecord(json=record(i, v)) for i, v in change.items()]), timeout=30)
                    else:
                        req = documents_pb2.UpsertRequest(collection=COLL, documents=[
                            documents_pb2.Document(id=i, num_tokens=len(tokens(v)), vectors=tokens(v).tobytes(),
                                                   metadata_json=meta(v, i)) for i, v in change.items()])
                        docs.Upsert(req, timeout=30)
                except grpc.RpcError as e:
                    self._failed(e)
                    return
            else:
                victims = self.rng.sample(sorted(self.state), min(len(self.state), self.rng.randint(1, 4)))
                if self.rng.random() < 0.3:
                    victims.append(self.prefix + "never")  # deleting an absent id is fine
                change = {v: None for v in victims}
                self.in_flight = ("delete", change)
                try:
                    if self.json_mode:
                        jrec.Delete(json_records_pb2.DeleteJsonRequest(collection=JCOLL, ids=victims), timeout=30)
                    else:
                        docs.Delete(documents_pb2.DeleteRequest(collection=COLL, ids=victims), timeout=30)
                except grpc.RpcError as e:
                    self._failed(e)
                    return
            # Acknowledged: apply to the model.
            for i, v in self.in_flight[1].items():
                if v is None:
                    self.state.pop(i, None)
                else:
                    self.state[i] = v
            self.in_flight = None
            self.acked += 1

    def _failed(self, e):
        # Only the kill may fail a call: the connection drops (UNAVAILABLE / CANCELLED).
        if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                            grpc.StatusCode.INTERNAL):
            self.errors.append(f"{self.prefix}: unexpected {e.code()}: {e.details()}")


class Searcher:
    def __init__(self, channel, seed):
        self.channel = channel
        self.rng = random.Random(seed)
        self.ok = 0
        self.errors = []

    def run(self, stop):
        stub = search_pb2_grpc.SearchStub(self.channel)
        while not stop.is_set():
            q = tokens(self.rng.randrange(1, 1 << 30))
            try:
                stub.Search(search_pb2.SearchRequest(collection=COLL, k=5, query=search_pb2.Query(
                    num_tokens=len(q), vectors=q.tobytes()), include_metadata=True), timeout=30)
                self.ok += 1
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    self.errors.append(f"search: unexpected {e.code()}: {e.details()}")
                return


def fetch_docs(channel, ids):
    stub = documents_pb2_grpc.DocumentsStub(channel)
    out = {}
    for s in range(0, len(ids), 2000):
        got = stub.Get(documents_pb2.GetDocumentsRequest(collection=COLL, ids=ids[s:s + 2000], include_vectors=True),
                       timeout=60)
        for d in got.documents:
            check(d.id not in out, f"duplicate id {d.id} in Get")
            out[d.id] = d
    return out


def fetch_records(channel, ids):
    stub = json_records_pb2_grpc.JsonRecordsStub(channel)
    out = {}
    got = stub.Get(json_records_pb2.GetJsonRequest(collection=JCOLL, ids=ids), timeout=60)
    for r in got.records:
        check(r.id not in out, f"duplicate JSON id {r.id} in Get")
        out[r.id] = r
    return out


def resolve(writer, present_version):
    """Checks the writer's model against what the server holds; resolves the in-flight call."""
    expect = dict(writer.state)
    if writer.in_flight is not None:
        kind, change = writer.in_flight
        after = dict(expect)
        for i, v in change.items():
            if v is None:
                after.pop(i, None)
            else:
                after[i] = v
        sub_before = {i: expect.get(i) for i in change}
        sub_after = {i: after.get(i) for i in change}
        sub_now = {i: present_version.get(i) for i in change}
        check(sub_now in (sub_before, sub_after),
              f"{writer.prefix}: {kind} in flight at the kill was half applied: before={sub_before} "
              f"after={sub_after} found={sub_now}")
        if sub_now == sub_after and sub_after != sub_before:
            expect = after
        writer.in_flight = None
    for i in writer.ids():
        want, got = expect.get(i), present_version.get(i)
        if want is None:
            check(got is None, f"{i}: deleted or never acknowledged, but present (version {got})")
        else:
            check(got == want, f"{i}: acknowledged version {want} but found {got}")
    writer.state.clear()
    writer.state.update(expect)


def verify(srv, writers, jwriter, rng):
    channel = srv.channel
    universe = [i for w in writers for i in w.ids()] + [w.prefix + "never" for w in writers]
    docs = fetch_docs(channel, universe)
    versions = {}
    for i, d in docs.items():
        m = json.loads(d.metadata_json)
        v = m["v"]
        check(m == json.loads(meta(v, i)), f"{i}: metadata {d.metadata_json} is not what was written")
        t = tokens(v)
        check(d.num_tokens == len(t), f"{i}: {d.num_tokens} tokens, wrote {len(t)}")
        got = np.frombuffer(d.vectors, dtype="<f4").reshape(-1, DIM)
        check(np.allclose(got, t, rtol=0, atol=1e-6), f"{i}: vectors differ from what was written (version {v})")
        versions[i] = v
    for w in writers:
        resolve(w, {i: versions[i] for i in w.ids() if i in versions})
    info = collections_pb2_grpc.CollectionsStub(channel).Get(collections_pb2.GetCollectionRequest(name=COLL)).collection
    check(info.stats.documents == len(docs),
          f"index holds {info.stats.documents} documents, RocksDB {len(docs)}: phantom or lost documents")
    check(info.stats.token_vectors == sum(d.num_tokens for d in docs.values()),
          f"token_vectors {info.stats.token_vectors} != {sum(d.num_tokens for d in docs.values())}")
    # Search: sampled documents are their own top hit; absent ones never come back.
    search = search_pb2_grpc.SearchStub(channel)
    sample = rng.sample(sorted(docs), min(10, len(docs)))
    for i in sample:
        q = tokens(versions[i])
        r = search.Search(search_pb2.SearchRequest(collection=COLL, k=3, candidates=min(10000, max(100, len(docs))),
                                                   query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes())),
                          timeout=60)
        check(r.hits and r.hits[0].id == i, f"search for {i}'s own tokens returned {[h.id for h in r.hits]}")
        check(abs(r.hits[0].score - len(q)) < 1e-3, f"self Chamfer of {i} is {r.hits[0].score}, want {len(q)}")
        for h in r.hits:
            check(h.id in docs, f"search returned {h.id}, which is not in storage")
    # JSON records.
    jids = jwriter.ids() + [jwriter.prefix + "never"]
    recs = fetch_records(channel, jids)
    jversions = {}
    for i, r in recs.items():
        v = json.loads(r.json)["version"]
        check(r.json == record(i, v), f"JSON {i}: stored {r.json!r} differs from what was written")
        jversions[i] = v
    resolve(jwriter, jversions)
    jinfo = collections_pb2_grpc.CollectionsStub(channel).Get(collections_pb2.GetCollectionRequest(name=JCOLL)).collection
    check(jinfo.stats.documents == len(recs), f"JSON index {jinfo.stats.documents} != RocksDB {len(recs)}")
    jstub = json_records_pb2_grpc.JsonRecordsStub(channel)
    for i in rng.sample(sorted(recs), min(5, len(recs))):
        r = jstub.Search(json_records_pb2.SearchJsonRequest(collection=JCOLL, query_json=recs[i].json, k=3), timeout=60)
        check(r.hits and r.hits[0].id == i, f"JSON search for {i} returned {[h.id for h in r.hits]}")
        for h in r.hits:
            check(h.id in recs, f"JSON search returned {h.id}, not in storage")
    return len(docs), len(recs)


def run_mode(mode, cycles, seconds, writers_n, searchers_n, seed, log):
    rng = random.Random(seed)
    extra = ["--sync"] if mode == "sync" else []
    srv = harness.Server(extra_args=extra).start()
    data_dir = srv.data_dir
    summary = {"mode": mode, "cycles": 0, "acked_ops": 0, "searches": 0, "max_docs": 0, "kill_after_s": []}
    try:
        cs = collections_pb2_grpc.CollectionsStub(srv.channel)
        cs.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
            name=COLL, dim=DIM, fde=collections_pb2.FdeParams(r_reps=8))))
        cs.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
            name=JCOLL, kind=collections_pb2.JSON, dim=256)))
        writers = [Writer(i, None, {}, rng.randrange(1 << 30)) for i in range(writers_n)]
        jwriter = Writer(0, None, {}, rng.randrange(1 << 30), json_mode=True)
        for cycle in range(cycles):
            channels = [srv.new_channel() for _ in range(writers_n + searchers_n + 1)]
            for w, ch in zip(writers + [jwriter], channels):
                w.channel = ch
            searchers = [Searcher(ch, rng.randrange(1 << 30)) for ch in channels[writers_n + 1:]]
            stop = threading.Event()
            threads = [threading.Thread(target=x.run, args=(stop,)) for x in writers + [jwriter] + searchers]
            for t in threads:
                t.start()
            kill_after = seconds * rng.uniform(0.3, 1.0)
            time.sleep(kill_after)
            srv.kill()  # SIGKILL at a random moment of the traffic
            stop.set()
            for t in threads:
                t.join()
            for ch in channels:
                ch.close()
            errors = [e for x in writers + [jwriter] + searchers for e in x.errors]
            check(not errors, f"unexpected errors during traffic: {errors[:5]}")
            summary["acked_ops"] += sum(w.acked for w in writers + [jwriter])
            summary["searches"] += sum(s.ok for s in searchers)
            for w in writers + [jwriter]:
                w.acked = 0
            summary["kill_after_s"].append(round(kill_after, 2))
            srv = harness.Server(data_dir=data_dir, extra_args=extra).start()
            ndocs, nrecs = verify(srv, writers, jwriter, rng)
            summary["cycles"] += 1
            summary["max_docs"] = max(summary["max_docs"], ndocs + nrecs)
            log(f"[{mode}] cycle {cycle + 1}/{cycles}: killed after {kill_after:.2f}s, verified {ndocs} documents "
                f"+ {nrecs} JSON records")
    finally:
        srv.stop()
        srv.cleanup()
        import shutil
        shutil.rmtree(data_dir, ignore_errors=True)
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=4.0, help="longest traffic time before the kill")
    ap.add_argument("--modes", default="nosync,sync")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--searchers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    log = lambda m: print(m, flush=True)  # noqa: E731
    log(f"crash loop: seed {args.seed}")
    results = []
    for k, mode in enumerate(args.modes.split(",")):
        results.append(run_mode(mode, args.cycles, args.seconds, args.writers, args.searchers, args.seed + k, log))
    print(json.dumps({"crash_loop": results, "seed": args.seed}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"CRASH LOOP FAILED: {e}", flush=True)
        sys.exit(1)
