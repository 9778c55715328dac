#!/usr/bin/env python3
"""chamferdb Python client example: create a collection, upsert, search, get, delete, drop.

    PYTHONPATH=build/python:clients/python python3 clients/python/example.py --server 127.0.0.1:50051
"""
import argparse

import numpy as np

from chamferdb_client import ChamferDBError, Client


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="127.0.0.1:50051")
    ap.add_argument("--api-key")
    ap.add_argument("--tls-ca")
    ap.add_argument("--collection", default="example")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    dim = 32
    with Client(args.server, api_key=args.api_key, tls_ca=args.tls_ca) as db:
        try:
            db.drop_collection(args.collection)
        except ChamferDBError:
            pass  # did not exist
        info = db.create_collection(args.collection, dim=dim)
        print(f"created {info.name}: dim={info.dim} fde_dim={info.fde_dim} index={info.index}")

        # 100 documents of 5..20 token vectors each (multi-vector, ColBERT style).
        ids = [f"doc-{i}" for i in range(100)]
        docs = [rng.standard_normal((int(rng.integers(5, 21)), dim)).astype(np.float32) for _ in ids]
        n = db.upsert(args.collection, ids, docs, metadata=[{"n": i} for i in range(len(ids))])
        print(f"upserted {n} documents")

        # Query with noisy tokens of doc-42: it should come first.
        query = docs[42][:4] + 0.05 * rng.standard_normal((4, dim)).astype(np.float32)
        for hit in db.search(args.collection, query, k=3, include_metadata=True):
            print(f"  {hit.id}  score={hit.score:.4f}  metadata={hit.metadata}")

        doc = db.get(args.collection, ["doc-42"], include_vectors=True)[0]
        print(f"doc-42 has {doc.num_tokens} tokens, vectors {doc.vectors.shape}")
        print(f"deleted {db.delete(args.collection, ['doc-1', 'doc-2', 'nope'])}")
        print(f"collections: {[c.name for c in db.list_collections()]}")
        db.drop_collection(args.collection)


if __name__ == "__main__":
    main()
