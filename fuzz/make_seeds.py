#!/usr/bin/python3
"""Writes the seed corpora fuzz/corpus/<target>/ (valid inputs that the fuzzers mutate).

    CHAMFERDB_PYTHON_STUBS=build/python /usr/bin/python3 fuzz/make_seeds.py

Seeds are named seed-*; crashers found by the fuzzers are kept beside them as
regression inputs named crash-<what>."""
import io
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.environ.get("CHAMFERDB_PYTHON_STUBS", "build/python"))
from chamferdb.v1 import collections_pb2, documents_pb2, filter_pb2, json_records_pb2, search_pb2  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def tok(n, dim=4, seed=0):
    t = np.random.default_rng(seed).standard_normal((n, dim)).astype("<f4")
    return t


def services():
    c = collections_pb2
    d = documents_pb2
    s = search_pb2
    j = json_records_pb2
    reqs = [
        (0, "create_mv", c.CreateCollectionRequest(config=c.CollectionConfig(
            name="x", dim=3, fde=c.FdeParams(r_reps=2, k_sim=2, d_proj=2)))),
        (0, "create_hnsw", c.CreateCollectionRequest(config=c.CollectionConfig(
            name="h", dim=4, fde=c.FdeParams(r_reps=1, k_sim=1), index=c.IndexParams(kind=c.HNSW)))),
        (0, "create_json", c.CreateCollectionRequest(config=c.CollectionConfig(
            name="y", kind=c.JSON, dim=64, json=c.JsonParams(mbat_config_json='{"str_mode":"tokens"}')))),
        (1, "get", c.GetCollectionRequest(name="c")),
        (2, "list", c.ListCollectionsRequest()),
        (3, "drop", c.DropCollectionRequest(name="x")),
        (4, "upsert", d.UpsertRequest(collection="c", documents=[
            d.Document(id="a", num_tokens=2, vectors=tok(2).tobytes(), metadata_json='{"k":[1,2,{"z":null}]}'),
            d.Document(id="b", num_tokens=1, vectors=tok(1, seed=1).tobytes())])),
        (5, "delete", d.DeleteRequest(collection="c", ids=["a", "zz"])),
        (6, "get_docs", d.GetDocumentsRequest(collection="c", ids=["a", "b"], include_vectors=True)),
        (7, "search", s.SearchRequest(collection="c", k=3, candidates=10, include_metadata=True,
                                      query=s.Query(num_tokens=2, vectors=tok(2, seed=2).tobytes()))),
        (7, "search_norerank", s.SearchRequest(collection="c", k=1, rerank=False,
                                               query=s.Query(num_tokens=1, vectors=tok(1, seed=3).tobytes()))),
        (8, "batch_search", s.BatchSearchRequest(requests=[s.SearchRequest(
            collection="c", k=2, query=s.Query(num_tokens=1, vectors=tok(1, seed=4).tobytes()))])),
        (9, "upsert_json", j.UpsertJsonRequest(collection="j", records=[
            j.JsonRecord(json='{"id":"r1","a":{"b":[1,"x",true]},"s":"hello world"}'),
            j.JsonRecord(id="r2", json='{"n":-1.5e3,"t":["a","b"]}')])),
        (10, "search_json", j.SearchJsonRequest(collection="j", query_json='{"a":{"b":[1]}}', k=2,
                                                scoring=1, include_record=True)),
        (11, "probe", j.ProbeRequest(collection="j", id="r1", path="a.b[1]", top_n=3)),
        (11, "probe_inline", j.ProbeRequest(collection="j", query_json='{"q":{"r":"s"}}', path="q.r")),
        (12, "get_json", j.GetJsonRequest(collection="j", ids=["r1", "r2", "nope"])),
        (13, "delete_json", j.DeleteJsonRequest(collection="j", ids=["r2"])),
    ]
    f = filter_pb2
    flt = f.Filter(must=[f.Condition(field=f.FieldCondition(path="k", exists=True))],
                   should=[f.Condition(field=f.FieldCondition(path="lang", equals=struct_pb2.Value(string_value="en"))),
                           f.Condition(field=f.FieldCondition(path="n", range=f.Range(gte=1, lt=5)))],
                   must_not=[f.Condition(filter=f.Filter(must=[f.Condition(field=f.FieldCondition(
                       path="t", any_of=struct_pb2.ListValue(values=[struct_pb2.Value(string_value="a")])))]))])
    reqs += [
        (7, "search_filter", s.SearchRequest(collection="c", k=3, filter=flt,
                                             query=s.Query(num_tokens=1, vectors=tok(1, seed=5).tobytes()))),
        (14, "scroll", d.ScrollRequest(collection="c", limit=2, include_vectors=True, include_metadata=True)),
        (14, "scroll_filter", d.ScrollRequest(collection="c", limit=1, filter=flt, page_token="x")),
        (15, "count", d.CountRequest(collection="c", filter=flt)),
        (16, "scroll_json", j.ScrollJsonRequest(collection="j", limit=1)),
        (17, "count_json", d.CountRequest(collection="j")),
        (18, "create_snapshot", c.CreateSnapshotRequest(collection="c")),
        (19, "list_snapshots", c.ListSnapshotsRequest()),
        (20, "delete_snapshot", c.DeleteSnapshotRequest(name="c-1")),
        (21, "restore_snapshot", c.RestoreSnapshotRequest(snapshot="c-1", collection="c2")),
        (22, "set_alias", c.SetAliasRequest(alias="al", collection="c")),
        (23, "delete_alias", c.DeleteAliasRequest(alias="al")),
    ]
    for which, name, msg in reqs:
        write("services_fuzz", name, bytes([which]) + msg.SerializeToString())


def mbat():
    for i, rec in enumerate([
        '{"id":"a","name":"Ada","tags":["x","y"],"addr":{"geo":{"cc":"UK","lat":51.5}}}',
        '{"n":[1,2,3,[4,[5]]],"b":true,"z":null,"s":"caf\\u00e9 \\ud83d\\ude00"}',
        '{"":{"":{"":""}},"k":-0.0,"e":1e308}',
        'addr.geo.cc', 'items[0].sku', '["a.b"][1]',
        '{"dim":256,"op_kind":"srht","str_mode":"trigram","num_transform":"linear","num_scale":2}',
    ]):
        write("mbat_json_fuzz", str(i), rec)


def jsonl():
    lines = [
        '{"id":"d1","vectors":[[0.1,0.2,0.3,0.4],[1,0,0,0]],"metadata":{"lang":"en"}}',
        '{"id":"d2","num_tokens":1,"vectors":[[-1e-3,2.5,3,4]]}\n\n{"id":"d3","vectors":[[1,2,3,4]],"metadata":null}',
        '{"vectors":[[0,0,0,1]]}\n{"id":7,"vectors":[]}\n{"id":"x","vectors":[[1,2],[3]]}\nnot json\n',
        '{"id":"big","vectors":[[1e38,-1e38,1e-45,0]]}\r\n',
    ]
    for i, l in enumerate(lines):
        write("cli_jsonl_fuzz", str(i), l)


def npy_bytes(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def npy():
    vec = npy_bytes(tok(5, dim=4))
    off = npy_bytes(np.array([0, 2, 5], dtype="<i8"))
    ids = b"doc-a\ndoc-b\n"
    for i, (v, o, t) in enumerate([(vec, off, ids), (npy_bytes(tok(1, dim=3)), npy_bytes(np.array([0, 1], dtype="<i8")), b"x\n")]):
        write("cli_npy_fuzz", f"files{i}", bytes([1]) + struct.pack("<HH", len(v), len(o)) + v + o + t)
    write("cli_npy_fuzz", "header_f4", bytes([0]) + vec[:128])
    write("cli_npy_fuzz", "header_i8", bytes([0]) + off[:128])
    v2 = bytearray(npy_bytes(np.zeros((2, 3), dtype="<f4")))
    write("cli_npy_fuzz", "header_fortran", bytes([0]) + bytes(npy_bytes(np.asfortranarray(np.zeros((2, 3), "<f4")))[:128]))
    write("cli_npy_fuzz", "header_v2", bytes([0]) + b"\x93NUMPY\x02\x00" + struct.pack("<I", 118) +
          b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".ljust(117) + b"\n")
    del v2


if __name__ == "__main__":
    services()
    mbat()
    jsonl()
    npy()
    print("seeds written to", os.path.join(HERE, "corpus"))
