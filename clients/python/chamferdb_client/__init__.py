"""Python client for chamferdb: numpy in, dataclasses out.

    from chamferdb_client import Client
    with Client("127.0.0.1:50051") as db:
        db.create_collection("docs", dim=128)
        db.upsert("docs", ["a", "b"], [tokens_a, tokens_b], metadata=[{"t": 1}, None])
        for hit in db.search("docs", query_tokens, k=5):
            print(hit.id, hit.score)

The generated gRPC stubs (module ``chamferdb.v1``) are produced by the build into
``<build>/python``; put that folder on ``PYTHONPATH`` or set ``CHAMFERDB_PYTHON_STUBS``.
Works with Debian's python3-grpcio and python3-numpy.
"""
from .client import (  # noqa: F401
    ChamferDBError,
    Client,
    CollectionInfo,
    Document,
    Hit,
    JsonHit,
    JsonRecord,
    ProbeValue,
    SnapshotInfo,
)

__all__ = ["ChamferDBError", "Client", "CollectionInfo", "Document", "Hit", "JsonHit", "JsonRecord", "ProbeValue",
           "SnapshotInfo"]
