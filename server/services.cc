#include "server/services.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"
#include "common/status_macros.h"
#include "server/convert.h"
#include "server/handler.h"

namespace chamferdb {

namespace {

void DocumentToProto(StoredDocument&& d, v1::Document* out) {
  out->set_id(std::move(d.id));
  out->set_num_tokens(d.num_tokens);
  if (!d.vectors.empty()) out->set_vectors(reinterpret_cast<const char*>(d.vectors.data()), d.vectors.size() * 4);
  out->set_metadata_json(std::move(d.metadata_json));
}

}  // namespace

// ---- Collections ----

grpc::Status CollectionsService::Create(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                                        v1::CreateCollectionResponse* resp) {
  return RunHandler(ctx, "Collections.Create", [&]() -> absl::Status {
    auto spec = SpecFromProto(req->config());
    if (!spec.ok()) return spec.status();
    auto c = registry_->Create(*std::move(spec));
    if (!c.ok()) return c.status();
    Info(*c, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::Get(grpc::ServerContext* ctx, const v1::GetCollectionRequest* req,
                                     v1::GetCollectionResponse* resp) {
  return RunHandler(ctx, "Collections.Get", [&]() -> absl::Status {
    auto c = registry_->GetEntry(req->name());
    if (!c.ok()) return c.status();
    Info(*c, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::List(grpc::ServerContext* ctx, const v1::ListCollectionsRequest*,
                                      v1::ListCollectionsResponse* resp) {
  return RunHandler(ctx, "Collections.List", [&]() -> absl::Status {
    for (const auto& c : registry_->List()) Info(c, resp->add_collections());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::Drop(grpc::ServerContext* ctx, const v1::DropCollectionRequest* req,
                                      v1::DropCollectionResponse*) {
  return RunHandler(ctx, "Collections.Drop", [&]() -> absl::Status { return registry_->Drop(req->name()); });
}

void CollectionsService::Info(const Registry::Entry& e, v1::CollectionInfo* out) const {
  InfoToProto(e, out);
  for (auto& alias : registry_->AliasesOf(e.spec().name)) out->add_aliases(std::move(alias));
}

namespace {

void SnapshotToProto(const SnapshotInfo& s, v1::SnapshotInfo* out) {
  out->set_name(s.name);
  out->set_collection(s.collection);
  out->set_created_at(s.created_at);
  out->set_documents(s.documents);
  out->set_size_bytes(s.size_bytes);
  out->set_path(s.path);
}

}  // namespace

grpc::Status CollectionsService::CreateSnapshot(grpc::ServerContext* ctx, const v1::CreateSnapshotRequest* req,
                                                v1::CreateSnapshotResponse* resp) {
  return RunHandler(ctx, "Collections.CreateSnapshot", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(CollectionSpec spec, registry_->SpecOf(req->collection()));
    ASSIGN_OR_RETURN(SnapshotInfo info, snapshots_->Create(spec, *registry_->store()));
    SnapshotToProto(info, resp->mutable_snapshot());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::ListSnapshots(grpc::ServerContext* ctx, const v1::ListSnapshotsRequest* req,
                                               v1::ListSnapshotsResponse* resp) {
  return RunHandler(ctx, "Collections.ListSnapshots", [&]() -> absl::Status {
    for (const auto& s : snapshots_->List(req->collection())) SnapshotToProto(s, resp->add_snapshots());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::DeleteSnapshot(grpc::ServerContext* ctx, const v1::DeleteSnapshotRequest* req,
                                                v1::DeleteSnapshotResponse*) {
  return RunHandler(ctx, "Collections.DeleteSnapshot", [&]() -> absl::Status { return snapshots_->Delete(req->name()); });
}

grpc::Status CollectionsService::RestoreSnapshot(grpc::ServerContext* ctx, const v1::RestoreSnapshotRequest* req,
                                                 v1::RestoreSnapshotResponse* resp) {
  return RunHandler(ctx, "Collections.RestoreSnapshot", [&]() -> absl::Status {
    if (req->collection().empty()) return absl::InvalidArgumentError("collection (the new collection's name) is required");
    ASSIGN_OR_RETURN(std::string path, snapshots_->PathOf(req->snapshot()));
    ASSIGN_OR_RETURN(Registry::Entry e, registry_->Restore(path, req->collection()));
    Info(e, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::SetAlias(grpc::ServerContext* ctx, const v1::SetAliasRequest* req,
                                          v1::SetAliasResponse* resp) {
  return RunHandler(ctx, "Collections.SetAlias", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string previous, registry_->SetAlias(req->alias(), req->collection()));
    resp->set_previous_collection(std::move(previous));
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::DeleteAlias(grpc::ServerContext* ctx, const v1::DeleteAliasRequest* req,
                                             v1::DeleteAliasResponse*) {
  return RunHandler(ctx, "Collections.DeleteAlias", [&]() -> absl::Status { return registry_->DeleteAlias(req->alias()); });
}

grpc::Status CollectionsService::ListAliases(grpc::ServerContext* ctx, const v1::ListAliasesRequest* req,
                                             v1::ListAliasesResponse* resp) {
  return RunHandler(ctx, "Collections.ListAliases", [&]() -> absl::Status {
    for (auto& [alias, target] : registry_->ListAliases(req->collection())) {
      auto* a = resp->add_aliases();
      a->set_alias(std::move(alias));
      a->set_collection(std::move(target));
    }
    return absl::OkStatus();
  });
}

// ---- Documents ----

absl::Status DocumentsService::ApplyUpsert(const v1::UpsertRequest& req) {
  auto c = registry_->Get(req.collection());
  if (!c.ok()) return c.status();
  std::vector<DocumentInput> docs;
  docs.reserve(req.documents_size());
  for (const auto& d : req.documents()) {
    docs.push_back(DocumentInput{d.id(), d.num_tokens(), d.vectors(), d.metadata_json()});
  }
  return (*c)->Upsert(docs, registry_->sync());
}

grpc::Status DocumentsService::Upsert(grpc::ServerContext* ctx, const v1::UpsertRequest* req,
                                      v1::UpsertResponse* resp) {
  return RunHandler(ctx, "Documents.Upsert", [&]() -> absl::Status {
    if (absl::Status s = ApplyUpsert(*req); !s.ok()) return s;
    resp->set_upserted(req->documents_size());
    return absl::OkStatus();
  });
}

grpc::Status DocumentsService::UpsertStream(grpc::ServerContext* ctx, grpc::ServerReader<v1::UpsertRequest>* reader,
                                            v1::UpsertResponse* resp) {
  return RunHandler(ctx, "Documents.UpsertStream", [&]() -> absl::Status {
    v1::UpsertRequest req;
    uint64_t applied = 0;
    size_t message = 0;
    while (reader->Read(&req)) {
      if (ctx->IsCancelled()) return absl::CancelledError("stream cancelled by the client");
      if (absl::Status s = ApplyUpsert(req); !s.ok()) {
        return absl::Status(s.code(), fmt::format("stream message {} (after {} documents applied): {}", message,
                                                  applied, s.message()));
      }
      applied += req.documents_size();
      ++message;
    }
    resp->set_upserted(applied);
    return absl::OkStatus();
  });
}

grpc::Status DocumentsService::Delete(grpc::ServerContext* ctx, const v1::DeleteRequest* req, v1::DeleteResponse* resp) {
  return RunHandler(ctx, "Documents.Delete", [&]() -> absl::Status {
    auto c = registry_->Get(req->collection());
    if (!c.ok()) return c.status();
    std::vector<std::string> ids(req->ids().begin(), req->ids().end());
    auto n = (*c)->Delete(ids, registry_->sync());
    if (!n.ok()) return n.status();
    resp->set_deleted(*n);
    return absl::OkStatus();
  });
}

grpc::Status DocumentsService::Get(grpc::ServerContext* ctx, const v1::GetDocumentsRequest* req,
                                   v1::GetDocumentsResponse* resp) {
  return RunHandler(ctx, "Documents.Get", [&]() -> absl::Status {
    auto c = registry_->Get(req->collection());
    if (!c.ok()) return c.status();
    std::vector<std::string> ids(req->ids().begin(), req->ids().end());
    std::vector<std::string> missing;
    auto docs = (*c)->Get(ids, req->include_vectors(), &missing);
    if (!docs.ok()) return docs.status();
    for (auto& d : *docs) DocumentToProto(std::move(d), resp->add_documents());
    for (auto& m : missing) resp->add_missing_ids(std::move(m));
    return absl::OkStatus();
  });
}

namespace {

// The request's filter, when it has one.
absl::StatusOr<std::optional<MetadataFilter>> OptionalFilter(bool has, const v1::Filter& f) {
  if (!has) return std::optional<MetadataFilter>();
  ASSIGN_OR_RETURN(MetadataFilter out, FilterFromProto(f));
  return std::optional<MetadataFilter>(std::move(out));
}

size_t ScrollLimit(uint32_t limit) { return limit == 0 ? 100 : limit; }

}  // namespace

grpc::Status DocumentsService::Scroll(grpc::ServerContext* ctx, const v1::ScrollRequest* req, v1::ScrollResponse* resp) {
  return RunHandler(ctx, "Documents.Scroll", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto c, registry_->Get(req->collection()));
    ASSIGN_OR_RETURN(auto filter, OptionalFilter(req->has_filter(), req->filter()));
    ScrollQuery q{.page_token = req->page_token(), .limit = ScrollLimit(req->limit()),
                  .filter = filter ? &*filter : nullptr, .include_vectors = req->include_vectors(),
                  .include_metadata = req->include_metadata()};
    ASSIGN_OR_RETURN(auto page, c->Scroll(q));
    for (auto& d : page.documents) DocumentToProto(std::move(d), resp->add_documents());
    resp->set_next_page_token(std::move(page.next_page_token));
    return absl::OkStatus();
  });
}

grpc::Status DocumentsService::Count(grpc::ServerContext* ctx, const v1::CountRequest* req, v1::CountResponse* resp) {
  return RunHandler(ctx, "Documents.Count", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto c, registry_->Get(req->collection()));
    ASSIGN_OR_RETURN(auto filter, OptionalFilter(req->has_filter(), req->filter()));
    resp->set_count(c->Count(filter ? &*filter : nullptr));
    return absl::OkStatus();
  });
}

// ---- Search ----

absl::Status SearchService::RunOne(const v1::SearchRequest& req, v1::SearchResponse* resp) {
  auto c = registry_->Get(req.collection());
  if (!c.ok()) return c.status();
  std::vector<float> storage;
  auto query = QueryFromProto(req, (*c)->dim(), &storage);
  if (!query.ok()) return query.status();
  ASSIGN_OR_RETURN(auto filter, OptionalFilter(req.has_filter(), req.filter()));
  query->filter = filter ? &*filter : nullptr;
  auto result = (*c)->Search(*query);
  if (!result.ok()) return result.status();
  ResultToProto(*result, resp);
  return absl::OkStatus();
}

grpc::Status SearchService::Search(grpc::ServerContext* ctx, const v1::SearchRequest* req, v1::SearchResponse* resp) {
  return RunHandler(ctx, "Search.Search", [&]() -> absl::Status { return RunOne(*req, resp); });
}

grpc::Status SearchService::BatchSearch(grpc::ServerContext* ctx, const v1::BatchSearchRequest* req,
                                        v1::BatchSearchResponse* resp) {
  return RunHandler(ctx, "Search.BatchSearch", [&]() -> absl::Status {
    if (req->requests_size() > 1000) {
      return absl::ResourceExhaustedError(fmt::format("{} requests in one batch exceed the limit of 1000", req->requests_size()));
    }
    for (int i = 0; i < req->requests_size(); ++i) {
      if (ctx->IsCancelled()) return absl::DeadlineExceededError("batch search passed its deadline");
      if (absl::Status s = RunOne(req->requests(i), resp->add_responses()); !s.ok()) {
        resp->Clear();
        return absl::Status(s.code(), fmt::format("requests[{}]: {}", i, s.message()));
      }
    }
    return absl::OkStatus();
  });
}

// ---- JSON records ----

grpc::Status JsonRecordsService::Upsert(grpc::ServerContext* ctx, const v1::UpsertJsonRequest* req,
                                        v1::UpsertJsonResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Upsert", [&]() -> absl::Status {
    auto c = registry_->GetJson(req->collection());
    if (!c.ok()) return c.status();
    std::vector<JsonRecordInput> records;
    for (const auto& r : req->records()) records.push_back({r.id(), r.json()});
    if (absl::Status s = (*c)->Upsert(records, req->id_field(), registry_->sync()); !s.ok()) return s;
    resp->set_upserted(req->records_size());
    return absl::OkStatus();
  });
}

grpc::Status JsonRecordsService::Search(grpc::ServerContext* ctx, const v1::SearchJsonRequest* req,
                                        v1::SearchJsonResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Search", [&]() -> absl::Status {
    auto c = registry_->GetJson(req->collection());
    if (!c.ok()) return c.status();
    JsonSearchQuery q{.json = req->query_json(), .k = req->k(), .containment = req->scoring() == v1::CONTAINMENT,
                      .candidates = req->candidates(), .ef_search = req->ef_search(), .nprobe = req->nprobe(),
                      .include_record = req->include_record()};
    ASSIGN_OR_RETURN(auto filter, OptionalFilter(req->has_filter(), req->filter()));
    q.filter = filter ? &*filter : nullptr;
    auto hits = (*c)->Search(q);
    if (!hits.ok()) return hits.status();
    for (auto& h : *hits) {
      auto* out = resp->add_hits();
      out->set_id(h.id);
      out->set_score(h.score);
      if (!h.json.empty()) out->set_json(std::move(h.json));
    }
    return absl::OkStatus();
  });
}

grpc::Status JsonRecordsService::Probe(grpc::ServerContext* ctx, const v1::ProbeRequest* req, v1::ProbeResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Probe", [&]() -> absl::Status {
    auto c = registry_->GetJson(req->collection());
    if (!c.ok()) return c.status();
    if (req->source_case() == v1::ProbeRequest::SOURCE_NOT_SET) {
      return absl::InvalidArgumentError("probe needs id or query_json");
    }
    if (req->top_n() > 1000) return absl::InvalidArgumentError(fmt::format("top_n {} exceeds 1000", req->top_n()));
    auto hits = (*c)->Probe(req->id(), req->query_json(), req->path(), req->top_n());
    if (!hits.ok()) return hits.status();
    for (const auto& h : *hits) {
      auto* v = resp->add_values();
      v->set_value_json(h.value.ToJson());
      v->set_similarity(h.similarity);
    }
    return absl::OkStatus();
  });
}

grpc::Status JsonRecordsService::Get(grpc::ServerContext* ctx, const v1::GetJsonRequest* req, v1::GetJsonResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Get", [&]() -> absl::Status {
    auto c = registry_->GetJson(req->collection());
    if (!c.ok()) return c.status();
    std::vector<std::string> ids(req->ids().begin(), req->ids().end()), missing;
    auto records = (*c)->Get(ids, &missing);
    if (!records.ok()) return records.status();
    for (auto& r : *records) {
      auto* out = resp->add_records();
      out->set_id(std::move(r.id));
      out->set_json(std::move(r.json));
    }
    for (auto& m : missing) resp->add_missing_ids(std::move(m));
    return absl::OkStatus();
  });
}

grpc::Status JsonRecordsService::Delete(grpc::ServerContext* ctx, const v1::DeleteJsonRequest* req,
                                        v1::DeleteJsonResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Delete", [&]() -> absl::Status {
    auto c = registry_->GetJson(req->collection());
    if (!c.ok()) return c.status();
    std::vector<std::string> ids(req->ids().begin(), req->ids().end());
    auto n = (*c)->Delete(ids, registry_->sync());
    if (!n.ok()) return n.status();
    resp->set_deleted(*n);
    return absl::OkStatus();
  });
}

grpc::Status JsonRecordsService::Scroll(grpc::ServerContext* ctx, const v1::ScrollJsonRequest* req,
                                        v1::ScrollJsonResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Scroll", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto c, registry_->GetJson(req->collection()));
    ASSIGN_OR_RETURN(auto filter, OptionalFilter(req->has_filter(), req->filter()));
    ScrollQuery q{.page_token = req->page_token(), .limit = ScrollLimit(req->limit()),
                  .filter = filter ? &*filter : nullptr, .include_metadata = true};
    ASSIGN_OR_RETURN(auto page, c->Scroll(q));
    for (auto& r : page.documents) {
      auto* out = resp->add_records();
      out->set_id(std::move(r.id));
      out->set_json(std::move(r.json));
    }
    resp->set_next_page_token(std::move(page.next_page_token));
    return absl::OkStatus();
  });
}

grpc::Status JsonRecordsService::Count(grpc::ServerContext* ctx, const v1::CountRequest* req, v1::CountResponse* resp) {
  return RunHandler(ctx, "JsonRecords.Count", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto c, registry_->GetJson(req->collection()));
    ASSIGN_OR_RETURN(auto filter, OptionalFilter(req->has_filter(), req->filter()));
    resp->set_count(c->Count(filter ? &*filter : nullptr));
    return absl::OkStatus();
  });
}

}  // namespace chamferdb
