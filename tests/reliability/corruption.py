#!/usr/bin/python3
"""Corruption: damage the files of a real database (RocksDB table files, WAL, MANIFEST,
CURRENT, OPTIONS) by bit flips and truncation, start the server on the damaged copy, and
check that a damaged file is detected, never served:
  - either the server refuses to start (non-zero exit) with a clear message: DATA_LOSS /
    corruption, naming the damaged file (or, for CURRENT/MANIFEST, the database);
  - or it starts and then every acknowledged document is returned exactly as written (or
    the read fails with DATA_LOSS), the index count equals what storage holds, and search
    finds documents by their own tokens. Silently missing or altered documents fail.

The database holds a multi-vector and a JSON collection, written in two phases: the first
flushed to table files by a graceful stop, the second only in the WAL (killed with -9).
Corrupt persisted encoder parameters and document records are covered by the C++ tests
(RegistryTest.CorruptEncoderParametersRefuseToOpenWithDataLoss and
CorruptDocumentRecordIsDataLossNamingTheKey), which write the damaged value directly.

    /usr/bin/python3 tests/reliability/corruption.py [--quick] [--seed N]
"""
import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
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


def tokens(seed):
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((3 + seed % 6, DIM))
    return (t / np.linalg.norm(t, axis=1, keepdims=True)).astype("<f4")


def write_docs(srv, lo, hi):
    stub = documents_pb2_grpc.DocumentsStub(srv.channel)
    for s in range(lo, hi, 25):
        stub.Upsert(documents_pb2.UpsertRequest(collection="mv", documents=[
            documents_pb2.Document(id=f"d{i}", num_tokens=len(tokens(i)), vectors=tokens(i).tobytes(),
                                   metadata_json=json.dumps({"i": i})) for i in range(s, min(hi, s + 25))]))
    json_records_pb2_grpc.JsonRecordsStub(srv.channel).Upsert(json_records_pb2.UpsertJsonRequest(
        collection="js", records=[json_records_pb2.JsonRecord(json=json.dumps({"id": f"r{i}", "v": i}))
                                  for i in range(lo // 10, hi // 10)]))


def build_database():
    srv = harness.Server().start()
    cs = collections_pb2_grpc.CollectionsStub(srv.channel)
    cs.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
        name="mv", dim=DIM, fde=collections_pb2.FdeParams(r_reps=4))))
    cs.Create(collections_pb2.CreateCollectionRequest(config=collections_pb2.CollectionConfig(
        name="js", kind=collections_pb2.JSON, dim=128)))
    write_docs(srv, 0, 300)
    assert srv.stop() == 0  # graceful: flushed into table files
    srv = harness.Server(data_dir=srv.data_dir).start()
    write_docs(srv, 300, 400)
    srv.kill()  # these stay in the WAL only
    return srv.data_dir, 400, 40


def mutate(path, how, rng):
    data = bytearray(open(path, "rb").read())
    if how == "truncate-half":
        data = data[: len(data) // 2]
    elif how == "truncate-tail":
        data = data[: max(0, len(data) - 7)]
    elif how == "empty":
        data = bytearray()
    else:  # bitflip-N: N random bit flips
        for _ in range(int(how.split("-")[1])):
            if data:
                pos = rng.randrange(len(data))
                data[pos] ^= 1 << rng.randrange(8)
    with open(path, "wb") as f:
        f.write(bytes(data))


def verify_running(srv, ndocs, nrecs):
    """The server started on damaged files: what it serves must be exactly what was written."""
    problems = []
    docs = documents_pb2_grpc.DocumentsStub(srv.channel)
    try:
        got = docs.Get(documents_pb2.GetDocumentsRequest(collection="mv", ids=[f"d{i}" for i in range(ndocs)],
                                                          include_vectors=True), timeout=60)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.DATA_LOSS:
            return "detected at read (DATA_LOSS)", []
        return "", [f"Get failed with {e.code().name}: {e.details()}"]
    found = {d.id: d for d in got.documents}
    missing = [i for i in range(ndocs) if f"d{i}" not in found]
    if missing:
        problems.append(f"{len(missing)} acknowledged documents silently missing (e.g. d{missing[0]})")
    for i in range(ndocs):
        d = found.get(f"d{i}")
        if d is None:
            continue
        if json.loads(d.metadata_json) != {"i": i} or not np.allclose(
                np.frombuffer(d.vectors, dtype="<f4").reshape(-1, DIM), tokens(i), rtol=0, atol=1e-6):
            problems.append(f"d{i} served with different content")
    stats = collections_pb2_grpc.CollectionsStub(srv.channel).Get(
        collections_pb2.GetCollectionRequest(name="mv")).collection.stats
    if stats.documents != len(found):
        problems.append(f"index count {stats.documents} != storage {len(found)}")
    search = search_pb2_grpc.SearchStub(srv.channel)
    for i in (0, 123, 350, 399):
        q = tokens(i)
        r = search.Search(search_pb2.SearchRequest(collection="mv", k=1, candidates=ndocs,
                                                   query=search_pb2.Query(num_tokens=len(q), vectors=q.tobytes())))
        if not r.hits or r.hits[0].id != f"d{i}":
            problems.append(f"search for d{i} returned {[h.id for h in r.hits]}")
    recs = json_records_pb2_grpc.JsonRecordsStub(srv.channel).Get(
        json_records_pb2.GetJsonRequest(collection="js", ids=[f"r{i}" for i in range(nrecs)]))
    if len(recs.records) != nrecs:
        problems.append(f"{nrecs - len(recs.records)} JSON records missing")
    for r in recs.records:
        if json.loads(r.json) != {"id": r.id, "v": int(r.id[1:])}:
            problems.append(f"{r.id} served with different content")
    return "served intact", problems


def run_case(pristine, target_rel, how, rng, ndocs, nrecs):
    scratch = tempfile.mkdtemp(prefix="chamferdb-corrupt-")
    shutil.copytree(pristine, scratch, dirs_exist_ok=True)
    target = os.path.join(scratch, target_rel)
    mutate(target, how, rng)
    port = harness.free_port()
    log_path = os.path.join(tempfile.gettempdir(), f"chamferdb-{port}.log")
    proc = subprocess.Popen([harness.BIN, "--listen", f"127.0.0.1:{port}", "--data-dir", scratch],
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, preexec_fn=harness.die_with_parent)
    outcome, problems = "", []
    srv = None
    try:
        deadline = time.time() + 60
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        while True:
            if proc.poll() is not None:
                break
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                break
            except grpc.FutureTimeoutError:
                if time.time() > deadline:
                    problems.append("server neither started nor exited within 60 s")
                    break
        channel.close()
        if proc.poll() is not None:
            log = open(log_path, errors="replace").read()
            base = os.path.basename(target_rel)
            clear = ("DATA_LOSS" in log or "orrupt" in log) and proc.returncode != 0
            named = base in log or (base in ("CURRENT",) or base.startswith("MANIFEST")) and "db" in log
            outcome = "refused to start"
            if not clear:
                problems.append(f"refused without a clear DATA_LOSS/corruption message: {log[-400:]!r}")
            elif not named:
                problems.append(f"refusal does not name the file {base}: {log[-400:]!r}")
            outcome += f" ({[ln for ln in log.splitlines() if 'DATA_LOSS' in ln or 'orrupt' in ln][-1:]})"
        elif not problems:
            srv = harness.Server(data_dir=scratch, port=port)
            srv.proc = proc
            srv.channel = srv.new_channel()
            outcome, problems = verify_running(srv, ndocs, nrecs)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if srv is not None:
            srv._close_channel()
        shutil.rmtree(scratch, ignore_errors=True)
    return outcome, problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one mutation per file kind (CI)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pristine, ndocs, nrecs = build_database()
    db = os.path.join(pristine, "db")
    kinds = {
        "table": sorted(glob.glob(os.path.join(db, "*.sst"))),
        "wal": sorted(p for p in glob.glob(os.path.join(db, "*.log")) if os.path.getsize(p) > 0),
        "manifest": sorted(glob.glob(os.path.join(db, "MANIFEST-*"))),
        "current": [os.path.join(db, "CURRENT")],
        "options": sorted(glob.glob(os.path.join(db, "OPTIONS-*")))[-1:],
    }
    mutations = {
        "table": ["bitflip-1", "bitflip-8", "truncate-half", "truncate-tail"],
        # Truncating the WAL is not in the list: a WAL cut at a record boundary is exactly a
        # crash before those writes (no format can tell), and a cut mid-record is the torn
        # tail a crash leaves, which recovery drops by design (docs/reliability.md).
        "wal": ["bitflip-1", "bitflip-8", "bitflip-64"],
        "manifest": ["bitflip-1", "truncate-half", "empty"],
        "current": ["empty", "bitflip-1"],
        "options": ["bitflip-8", "truncate-half"],
    }
    if args.quick:
        mutations = {"table": ["bitflip-8"], "wal": ["bitflip-1"], "manifest": ["truncate-half"],
                     "current": ["empty"], "options": []}
    print(f"corruption: seed {args.seed}; files: " + ", ".join(f"{k}={len(v)}" for k, v in kinds.items()), flush=True)
    failures, cases = [], 0
    summary = {}
    try:
        for kind, files in kinds.items():
            for path in files[:1] if args.quick else files:
                rel = os.path.relpath(path, pristine)
                for how in mutations[kind]:
                    outcome, problems = run_case(pristine, rel, how, rng, ndocs, nrecs)
                    cases += 1
                    key = outcome.split(" (")[0] if outcome else "?"
                    summary[key] = summary.get(key, 0) + 1
                    status = "FAIL" if problems else "ok"
                    print(f"  [{status}] {kind:8s} {rel:28s} {how:14s} -> {outcome} {problems[:2]}", flush=True)
                    if problems:
                        failures.append((rel, how, problems))
    finally:
        shutil.rmtree(pristine, ignore_errors=True)
    print(json.dumps({"corruption": {"cases": cases, "failures": len(failures), "outcomes": summary,
                                     "seed": args.seed}}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
