"""The chamferdb client: one ``Client`` per server, thread-safe like the gRPC channel it holds.

Every call has a deadline (``timeout`` seconds) and carries ``authorization: Bearer <api_key>``
when a key is given. Idempotent calls (everything except creating or dropping collections and
creating or restoring snapshots) are retried on UNAVAILABLE / RESOURCE_EXHAUSTED with
exponential backoff.

Collections of kind JSON (records encoded as MBAT vectors) have their own methods:
``create_json_collection``, ``upsert_records``, ``search_json``, ``probe``, ``get_records``,
``delete_records``. ``count`` and ``scroll`` work on both kinds; ``filter`` arguments are
``chamferdb.v1.Filter`` messages or dicts in protobuf's JSON mapping, e.g.
``{"must": [{"field": {"path": "lang", "equals": "en"}}]}``.
Server errors are raised as ``ChamferDBError`` (``.code`` is the ``grpc.StatusCode``, ``.details``
the server's message); bad arguments are rejected locally with ``ValueError`` before anything
is sent.
"""
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import grpc
import numpy as np

_STUBS = os.environ.get("CHAMFERDB_PYTHON_STUBS")
if _STUBS and _STUBS not in sys.path:
    sys.path.insert(0, _STUBS)
try:
    from chamferdb.v1 import collections_pb2, collections_pb2_grpc  # noqa: E402
    from chamferdb.v1 import documents_pb2, documents_pb2_grpc  # noqa: E402
    from chamferdb.v1 import search_pb2, search_pb2_grpc  # noqa: E402
    from chamferdb.v1 import filter_pb2  # noqa: E402
    from chamferdb.v1 import json_records_pb2, json_records_pb2_grpc  # noqa: E402
    from google.protobuf import json_format  # noqa: E402
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "chamferdb_client needs the generated stubs (package chamferdb.v1): build the project and "
        "put <build>/python on PYTHONPATH or set CHAMFERDB_PYTHON_STUBS") from e

_INDEX = {"flat": collections_pb2.FLAT, "hnsw": collections_pb2.HNSW, "ivf_pq": collections_pb2.IVF_PQ}
_STORAGE = {"f32": collections_pb2.FLOAT32, "f16": collections_pb2.FLOAT16, "int8": collections_pb2.INT8}
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


class ChamferDBError(Exception):
    """A call the server (or the transport) refused."""

    def __init__(self, code: grpc.StatusCode, details: str, method: str):
        super().__init__(f"{method}: {code.name}: {details}")
        self.code = code
        self.details = details
        self.method = method


@dataclass(frozen=True)
class Hit:
    id: str
    score: float                    # exact Chamfer score (the FDE score when rerank=False)
    fde_score: float                # inner product of the query and document FDEs
    metadata: Optional[Dict[str, Any]] = None  # only with include_metadata=True


@dataclass(frozen=True)
class Document:
    id: str
    num_tokens: int
    vectors: Optional[np.ndarray] = None  # num_tokens x dim float32, with include_vectors=True
    metadata: Optional[Dict[str, Any]] = None


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    dim: int
    index: str            # "flat" | "hnsw" | "ivf_pq"
    token_storage: str    # "f32" | "f16" | "int8"
    normalize: bool
    fde_dim: int
    documents: int
    token_vectors: int
    index_state: str      # "READY" | "EXACT" | "BUILDING"
    bytes_on_disk: int
    bytes_in_memory: int
    fde: Dict[str, int] = field(default_factory=dict)  # r_reps, k_sim, d_proj, d_final, seed
    kind: str = "multi_vector"  # "multi_vector" | "json"
    json: Dict[str, Any] = field(default_factory=dict)  # kind "json": {"id_field", "mbat"} (full MBAT config)
    aliases: List[str] = field(default_factory=list)    # aliases pointing at this collection

    @staticmethod
    def _from_pb(info) -> "CollectionInfo":
        c, s = info.config, info.stats
        index = {v: k for k, v in _INDEX.items()}.get(c.index.kind, "flat")
        storage = {v: k for k, v in _STORAGE.items()}.get(c.token_storage, "f32")
        return CollectionInfo(
            name=c.name, dim=c.dim, index=index, token_storage=storage,
            normalize=c.normalize if c.HasField("normalize") else True, fde_dim=s.fde_dim,
            documents=s.documents, token_vectors=s.token_vectors,
            index_state=collections_pb2.IndexState.Name(s.index_state), bytes_on_disk=s.bytes_on_disk,
            bytes_in_memory=s.bytes_in_memory,
            fde={"r_reps": c.fde.r_reps, "k_sim": c.fde.k_sim, "d_proj": c.fde.d_proj,
                 "d_final": c.fde.d_final, "seed": c.fde.seed},
            kind="json" if c.kind == collections_pb2.JSON else "multi_vector",
            json=({"id_field": c.json.id_field,
                   "mbat": json.loads(c.json.mbat_config_json) if c.json.mbat_config_json else {}}
                  if c.kind == collections_pb2.JSON else {}),
            aliases=list(getattr(info, "aliases", [])))


@dataclass(frozen=True)
class JsonHit:
    id: str
    score: float                              # cosine (or containment estimate)
    record: Optional[Dict[str, Any]] = None   # only with include_record=True


@dataclass(frozen=True)
class JsonRecord:
    id: str
    record: Dict[str, Any]


@dataclass(frozen=True)
class ProbeValue:
    value: Any          # a JSON value (str, number, bool, None, {} or [])
    similarity: float


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    collection: str
    created_at: str     # RFC 3339, UTC
    documents: int
    size_bytes: int
    path: str           # on the server

    @staticmethod
    def _from_pb(s) -> "SnapshotInfo":
        return SnapshotInfo(name=s.name, collection=s.collection, created_at=s.created_at, documents=s.documents,
                            size_bytes=s.size_bytes, path=s.path)


def _filter(f) -> Optional["filter_pb2.Filter"]:
    """A chamferdb.v1.Filter from a message or a dict/JSON text in protobuf's JSON mapping."""
    if f is None:
        return None
    if isinstance(f, filter_pb2.Filter):
        return f
    try:
        if isinstance(f, str):
            return json_format.Parse(f, filter_pb2.Filter())
        if isinstance(f, dict):
            return json_format.ParseDict(f, filter_pb2.Filter())
    except json_format.ParseError as e:
        raise ValueError(f"filter is not a chamferdb.v1.Filter: {e}") from None
    raise ValueError(f"filter must be a dict, JSON text or chamferdb.v1.Filter, not {type(f).__name__}")


def _record_text(r, what: str) -> str:
    if isinstance(r, dict):
        return json.dumps(r, ensure_ascii=False)
    if isinstance(r, str):
        try:
            ok = isinstance(json.loads(r), dict)
        except ValueError:
            ok = False
        if ok:
            return r
    raise ValueError(f"{what} must be a dict or the JSON text of an object")


def _tokens(x, what: str, dim: Optional[int] = None) -> np.ndarray:
    """A (num_tokens, dim) little-endian float32 C-contiguous copy of x, validated."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{what}: expected a (num_tokens, dim) array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what}: empty array of shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{what}: dtype {a.dtype} is not a real number type")
    a = np.ascontiguousarray(a, dtype="<f4")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{what}: dimension {a.shape[1]} differs from {dim}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what}: contains NaN or infinity (as float32)")
    return a


class Client:
    """A connection to one chamferdb server.

    address: "host:port". api_key: sent as a bearer token. tls_ca: path to (or bytes of) a PEM CA
    certificate; enables TLS. tls_cert/tls_key: client certificate for mutual TLS.
    tls_server_name: name checked in the server certificate (default: the host of address).
    """

    def __init__(self, address: str = "127.0.0.1:50051", api_key: Optional[str] = None,
                 tls_ca: Union[str, bytes, os.PathLike, None] = None, *,
                 tls_cert: Union[str, bytes, os.PathLike, None] = None,
                 tls_key: Union[str, bytes, os.PathLike, None] = None,
                 tls_server_name: Optional[str] = None, timeout: float = 60.0, retries: int = 5,
                 max_message_mb: int = 256):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if tls_cert is not None and tls_ca is None:
            raise ValueError("tls_cert needs tls_ca")
        self.address = address
        self.timeout = float(timeout)
        self.retries = max(1, int(retries))
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        options = [("grpc.max_receive_message_length", max_message_mb << 20),
                   ("grpc.max_send_message_length", max_message_mb << 20)]
        if tls_ca is not None:
            if tls_server_name:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(tls_ca),
                private_key=_read_pem(tls_key) if tls_key is not None else None,
                certificate_chain=_read_pem(tls_cert) if tls_cert is not None else None)
            self._channel = grpc.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._collections = collections_pb2_grpc.CollectionsStub(self._channel)
        self._documents = documents_pb2_grpc.DocumentsStub(self._channel)
        self._search = search_pb2_grpc.SearchStub(self._channel)
        self._json = json_records_pb2_grpc.JsonRecordsStub(self._channel)

    # ---- plumbing ----

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def _call(self, method: str, rpc, request, idempotent: bool = True):
        attempts = self.retries if idempotent else 1
        delay = 0.1
        for attempt in range(1, attempts + 1):
            try:
                return rpc(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
                if code in _RETRYABLE and attempt < attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, 3.0)
                    continue
                details = e.details() if callable(getattr(e, "details", None)) else str(e)
                raise ChamferDBError(code, details or "", method) from None
        raise AssertionError("unreachable")

    # ---- collections ----

    def create_collection(self, name: str, dim: int, *, index: str = "flat", token_storage: str = "f32",
                          r_reps: int = 0, k_sim: Optional[int] = None, d_proj: int = 0, d_final: int = 0,
                          seed: int = 0, normalize: bool = True, hnsw_m: int = 0, hnsw_ef_construction: int = 0,
                          hnsw_ef_search: int = 0, ivf_nlist: int = 0, pq_m: int = 0,
                          ivf_nprobe: int = 0) -> CollectionInfo:
        """Creates a multi-vector collection; zeros mean the server's defaults."""
        if index not in _INDEX:
            raise ValueError(f"index must be one of {sorted(_INDEX)}, not {index!r}")
        if token_storage not in _STORAGE:
            raise ValueError(f"token_storage must be one of {sorted(_STORAGE)}, not {token_storage!r}")
        fde = collections_pb2.FdeParams(r_reps=r_reps, d_proj=d_proj, d_final=d_final, seed=seed)
        if k_sim is not None:
            fde.k_sim = k_sim
        config = collections_pb2.CollectionConfig(
            name=name, kind=collections_pb2.MULTI_VECTOR, dim=dim, fde=fde,
            index=collections_pb2.IndexParams(kind=_INDEX[index], hnsw_m=hnsw_m,
                                              hnsw_ef_construction=hnsw_ef_construction,
                                              hnsw_ef_search=hnsw_ef_search, ivf_nlist=ivf_nlist, pq_m=pq_m,
                                              ivf_nprobe=ivf_nprobe),
            token_storage=_STORAGE[token_storage])
        if not normalize:
            config.normalize = False
        resp = self._call("Collections.Create", self._collections.Create,
                          collections_pb2.CreateCollectionRequest(config=config), idempotent=False)
        return CollectionInfo._from_pb(resp.collection)

    def get_collection(self, name: str) -> CollectionInfo:
        resp = self._call("Collections.Get", self._collections.Get, collections_pb2.GetCollectionRequest(name=name))
        return CollectionInfo._from_pb(resp.collection)

    def list_collections(self) -> List[CollectionInfo]:
        resp = self._call("Collections.List", self._collections.List, collections_pb2.ListCollectionsRequest())
        return [CollectionInfo._from_pb(c) for c in resp.collections]

    def drop_collection(self, name: str) -> None:
        self._call("Collections.Drop", self._collections.Drop, collections_pb2.DropCollectionRequest(name=name),
                   idempotent=False)

    # ---- documents ----

    def upsert(self, collection: str, ids: Sequence[str], vectors: Sequence[np.ndarray],
               metadata: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *, batch_size: int = 256) -> int:
        """Inserts or replaces documents; vectors[i] is a (num_tokens, dim) array for ids[i].

        Sent in batches of batch_size; each batch is atomic on the server. Returns the number of
        documents upserted. Raises ValueError (nothing sent) for inconsistent input.
        """
        ids = list(ids)
        vectors = list(vectors)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vector arrays")
        if metadata is not None:
            metadata = list(metadata)
            if len(metadata) != len(ids):
                raise ValueError(f"{len(ids)} ids but {len(metadata)} metadata entries")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        docs = []
        dim = None
        for i, (doc_id, v) in enumerate(zip(ids, vectors)):
            if not isinstance(doc_id, str) or not doc_id:
                raise ValueError(f"ids[{i}] must be a non-empty string")
            t = _tokens(v, f"vectors[{i}] (id {doc_id!r})", dim)
            dim = t.shape[1]
            meta = metadata[i] if metadata is not None else None
            if meta is not None and not isinstance(meta, dict):
                raise ValueError(f"metadata[{i}] must be a dict or None")
            docs.append(documents_pb2.Document(id=doc_id, num_tokens=t.shape[0], vectors=t.tobytes(),
                                               metadata_json=json.dumps(meta) if meta is not None else ""))
        total = 0
        for start in range(0, len(docs), batch_size):
            resp = self._call("Documents.Upsert", self._documents.Upsert,
                              documents_pb2.UpsertRequest(collection=collection,
                                                          documents=docs[start:start + batch_size]))
            total += resp.upserted
        return total

    def get(self, collection: str, ids: Iterable[str], *, include_vectors: bool = False) -> List[Document]:
        """The documents that exist, in request order (absent ids are skipped)."""
        resp = self._call("Documents.Get", self._documents.Get,
                          documents_pb2.GetDocumentsRequest(collection=collection, ids=list(ids),
                                                            include_vectors=include_vectors))
        out = []
        for d in resp.documents:
            vec = None
            if include_vectors and d.num_tokens:
                vec = np.frombuffer(d.vectors, dtype="<f4").reshape(d.num_tokens, -1).astype(np.float32)
            out.append(Document(id=d.id, num_tokens=d.num_tokens, vectors=vec,
                                metadata=json.loads(d.metadata_json) if d.metadata_json else None))
        return out

    def delete(self, collection: str, ids: Iterable[str]) -> int:
        """Deletes documents by id; returns how many existed."""
        resp = self._call("Documents.Delete", self._documents.Delete,
                          documents_pb2.DeleteRequest(collection=collection, ids=list(ids)))
        return resp.deleted

    # ---- search ----

    def _search_request(self, collection, query, k, candidates, rerank, ef_search, nprobe, include_metadata,
                        filter=None):
        q = _tokens(query, "query")
        req = search_pb2.SearchRequest(
            collection=collection, k=k, candidates=candidates, ef_search=ef_search, nprobe=nprobe,
            include_metadata=include_metadata,
            query=search_pb2.Query(num_tokens=q.shape[0], vectors=q.tobytes()))
        if not rerank:
            req.rerank = False
        f = _filter(filter)
        if f is not None:
            req.filter.CopyFrom(f)
        return req

    @staticmethod
    def _hits(resp) -> List[Hit]:
        return [Hit(id=h.id, score=h.score, fde_score=h.fde_score,
                    metadata=json.loads(h.metadata_json) if h.metadata_json else None) for h in resp.hits]

    def search(self, collection: str, query: np.ndarray, k: int = 10, *, candidates: int = 0, rerank: bool = True,
               ef_search: int = 0, nprobe: int = 0, include_metadata: bool = False, filter=None) -> List[Hit]:
        """Top-k documents for a (num_tokens, dim) query, best first; only documents whose
        metadata matches `filter` when given."""
        req = self._search_request(collection, query, k, candidates, rerank, ef_search, nprobe, include_metadata,
                                   filter)
        return self._hits(self._call("Search.Search", self._search.Search, req))

    def search_batch(self, collection: str, queries: Sequence[np.ndarray], k: int = 10, **kwargs) -> List[List[Hit]]:
        """search() for many queries in one call; results in query order."""
        reqs = [self._search_request(collection, q, k, kwargs.get("candidates", 0), kwargs.get("rerank", True),
                                     kwargs.get("ef_search", 0), kwargs.get("nprobe", 0),
                                     kwargs.get("include_metadata", False), kwargs.get("filter")) for q in queries]
        resp = self._call("Search.BatchSearch", self._search.BatchSearch,
                          search_pb2.BatchSearchRequest(requests=reqs))
        return [self._hits(r) for r in resp.responses]

    # ---- JSON collections ----

    def create_json_collection(self, name: str, *, dim: int = 0, id_field: Optional[str] = None,
                               mbat: Optional[Dict[str, Any]] = None, index: str = "flat", hnsw_m: int = 0,
                               hnsw_ef_construction: int = 0, hnsw_ef_search: int = 0, ivf_nlist: int = 0,
                               pq_m: int = 0, ivf_nprobe: int = 0) -> CollectionInfo:
        """Creates a collection of JSON records. dim: MBAT dimension (0: the server's, 1024);
        id_field: record field holding the id (None: "id"); mbat: MBAT config fields, e.g.
        {"seed": 7, "str_mode": "tokens", "limits": {"max_depth": 16}} (absent: defaults)."""
        if index not in _INDEX:
            raise ValueError(f"index must be one of {sorted(_INDEX)}, not {index!r}")
        if mbat is not None and not isinstance(mbat, dict):
            raise ValueError("mbat must be a dict of MBAT config fields")
        config = collections_pb2.CollectionConfig(
            name=name, kind=collections_pb2.JSON, dim=dim,
            index=collections_pb2.IndexParams(kind=_INDEX[index], hnsw_m=hnsw_m,
                                              hnsw_ef_construction=hnsw_ef_construction,
                                              hnsw_ef_search=hnsw_ef_search, ivf_nlist=ivf_nlist, pq_m=pq_m,
                                              ivf_nprobe=ivf_nprobe),
            json=collections_pb2.JsonParams(mbat_config_json=json.dumps(mbat) if mbat else "",
                                            id_field=id_field or ""))
        resp = self._call("Collections.Create", self._collections.Create,
                          collections_pb2.CreateCollectionRequest(config=config), idempotent=False)
        return CollectionInfo._from_pb(resp.collection)

    def upsert_records(self, collection: str, records: Sequence[Union[Dict[str, Any], str]], *,
                       ids: Optional[Sequence[str]] = None, id_field: Optional[str] = None,
                       batch_size: int = 256) -> int:
        """Inserts or replaces JSON records (dicts, or JSON text stored verbatim). Ids come from
        `ids` when given, else from each record's `id_field` (None: the collection's). Each
        batch is atomic on the server. Returns the number of records upserted."""
        records = list(records)
        if ids is not None:
            ids = list(ids)
            if len(ids) != len(records):
                raise ValueError(f"{len(ids)} ids but {len(records)} records")
            for i, rid in enumerate(ids):
                if not isinstance(rid, str) or not rid:
                    raise ValueError(f"ids[{i}] must be a non-empty string")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        pbs = [json_records_pb2.JsonRecord(id=ids[i] if ids is not None else "",
                                           json=_record_text(r, f"records[{i}]")) for i, r in enumerate(records)]
        total = 0
        for start in range(0, len(pbs), batch_size):
            resp = self._call("JsonRecords.Upsert", self._json.Upsert,
                              json_records_pb2.UpsertJsonRequest(collection=collection,
                                                                 records=pbs[start:start + batch_size],
                                                                 id_field=id_field or ""))
            total += resp.upserted
        return total

    def search_json(self, collection: str, query: Union[Dict[str, Any], str], k: int = 10, *,
                    scoring: str = "cosine", candidates: int = 0, ef_search: int = 0, nprobe: int = 0,
                    include_record: bool = False, filter=None) -> List[JsonHit]:
        """Records most like `query` (a whole or partial record), best first. scoring:
        "cosine" or "containment" (the fraction of the query's leaves a record contains)."""
        if scoring not in ("cosine", "containment"):
            raise ValueError(f"scoring must be 'cosine' or 'containment', not {scoring!r}")
        req = json_records_pb2.SearchJsonRequest(
            collection=collection, query_json=_record_text(query, "query"), k=k,
            scoring=json_records_pb2.CONTAINMENT if scoring == "containment" else json_records_pb2.COSINE,
            candidates=candidates, ef_search=ef_search, nprobe=nprobe, include_record=include_record)
        f = _filter(filter)
        if f is not None:
            req.filter.CopyFrom(f)
        resp = self._call("JsonRecords.Search", self._json.Search, req)
        return [JsonHit(id=h.id, score=h.score, record=json.loads(h.json) if h.json else None) for h in resp.hits]

    def probe(self, collection: str, path: str, *, id: Optional[str] = None,
              record: Union[Dict[str, Any], str, None] = None, top_n: int = 5) -> List[ProbeValue]:
        """The most likely values at `path` (e.g. "addr.geo.cc", "tags[2]") of a stored record
        (`id`) or of `record` given inline, best first."""
        if (id is None) == (record is None):
            raise ValueError("give exactly one of id and record")
        req = json_records_pb2.ProbeRequest(collection=collection, path=path, top_n=top_n)
        if id is not None:
            req.id = id
        else:
            req.query_json = _record_text(record, "record")
        resp = self._call("JsonRecords.Probe", self._json.Probe, req)
        return [ProbeValue(value=json.loads(v.value_json), similarity=v.similarity) for v in resp.values]

    def get_records(self, collection: str, ids: Iterable[str]) -> List[JsonRecord]:
        """The records that exist, in request order (absent ids are skipped)."""
        resp = self._call("JsonRecords.Get", self._json.Get,
                          json_records_pb2.GetJsonRequest(collection=collection, ids=list(ids)))
        return [JsonRecord(id=r.id, record=json.loads(r.json)) for r in resp.records]

    def delete_records(self, collection: str, ids: Iterable[str]) -> int:
        """Deletes records by id; returns how many existed."""
        resp = self._call("JsonRecords.Delete", self._json.Delete,
                          json_records_pb2.DeleteJsonRequest(collection=collection, ids=list(ids)))
        return resp.deleted

    # ---- scroll and count (both kinds) ----

    def _is_json(self, collection: str) -> bool:
        return self.get_collection(collection).kind == "json"

    def count(self, collection: str, filter=None) -> int:
        """Exact number of documents (records), or of those matching `filter`."""
        req = documents_pb2.CountRequest(collection=collection)
        f = _filter(filter)
        if f is not None:
            req.filter.CopyFrom(f)
        if self._is_json(collection):
            return self._call("JsonRecords.Count", self._json.Count, req).count
        return self._call("Documents.Count", self._documents.Count, req).count

    def scroll(self, collection: str, *, filter=None, page_size: int = 100, include_vectors: bool = False,
               include_metadata: bool = False) -> Iterator[Union[Document, JsonRecord]]:
        """Every document (multi-vector: Document; JSON: JsonRecord) in id order, optionally
        only those matching `filter`, fetched page_size at a time."""
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        f = _filter(filter)
        token = ""
        if self._is_json(collection):
            if include_vectors or include_metadata:
                raise ValueError("include_vectors/include_metadata apply to multi-vector collections only")
            while True:
                req = json_records_pb2.ScrollJsonRequest(collection=collection, limit=page_size, page_token=token)
                if f is not None:
                    req.filter.CopyFrom(f)
                resp = self._call("JsonRecords.Scroll", self._json.Scroll, req)
                for r in resp.records:
                    yield JsonRecord(id=r.id, record=json.loads(r.json))
                token = resp.next_page_token
                if not token:
                    return
        while True:
            req = documents_pb2.ScrollRequest(collection=collection, limit=page_size, page_token=token,
                                              include_vectors=include_vectors, include_metadata=include_metadata)
            if f is not None:
                req.filter.CopyFrom(f)
            resp = self._call("Documents.Scroll", self._documents.Scroll, req)
            for d in resp.documents:
                vec = None
                if include_vectors and d.num_tokens:
                    vec = np.frombuffer(d.vectors, dtype="<f4").reshape(d.num_tokens, -1).astype(np.float32)
                yield Document(id=d.id, num_tokens=d.num_tokens, vectors=vec,
                               metadata=json.loads(d.metadata_json) if d.metadata_json else None)
            token = resp.next_page_token
            if not token:
                return

    # ---- snapshots and aliases ----

    def create_snapshot(self, collection: str) -> SnapshotInfo:
        resp = self._call("Collections.CreateSnapshot", self._collections.CreateSnapshot,
                          collections_pb2.CreateSnapshotRequest(collection=collection), idempotent=False)
        return SnapshotInfo._from_pb(resp.snapshot)

    def list_snapshots(self, collection: Optional[str] = None) -> List[SnapshotInfo]:
        resp = self._call("Collections.ListSnapshots", self._collections.ListSnapshots,
                          collections_pb2.ListSnapshotsRequest(collection=collection or ""))
        return [SnapshotInfo._from_pb(s) for s in resp.snapshots]

    def delete_snapshot(self, name: str) -> None:
        self._call("Collections.DeleteSnapshot", self._collections.DeleteSnapshot,
                   collections_pb2.DeleteSnapshotRequest(name=name))

    def restore_snapshot(self, snapshot: str, collection: str) -> CollectionInfo:
        """Restores `snapshot` into a new collection named `collection`."""
        resp = self._call("Collections.RestoreSnapshot", self._collections.RestoreSnapshot,
                          collections_pb2.RestoreSnapshotRequest(snapshot=snapshot, collection=collection),
                          idempotent=False)
        return CollectionInfo._from_pb(resp.collection)

    def set_alias(self, alias: str, collection: str) -> str:
        """Points `alias` at `collection` (atomically); returns the previous target ("" if new)."""
        resp = self._call("Collections.SetAlias", self._collections.SetAlias,
                          collections_pb2.SetAliasRequest(alias=alias, collection=collection))
        return resp.previous_collection

    def delete_alias(self, alias: str) -> None:
        self._call("Collections.DeleteAlias", self._collections.DeleteAlias,
                   collections_pb2.DeleteAliasRequest(alias=alias))

    def list_aliases(self, collection: Optional[str] = None) -> Dict[str, str]:
        """{alias: collection}, optionally only the aliases of `collection`."""
        resp = self._call("Collections.ListAliases", self._collections.ListAliases,
                          collections_pb2.ListAliasesRequest(collection=collection or ""))
        return {a.alias: a.collection for a in resp.aliases}


def _read_pem(x) -> bytes:
    if isinstance(x, bytes):
        return x
    with open(x, "rb") as f:
        return f.read()
