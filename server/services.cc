#include "server/services.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"

#include "server/convert.h"
#include "server/handler.h"

#include "common/absl_fmt.h"

namespace chamferdb {

// ---- Collections ----

grpc::Status CollectionsService::Create(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                                        v1::CreateCollectionResponse* resp) {
  return RunHandler(ctx, "Collections.Create", [&]() -> absl::Status {
    auto spec = SpecFromProto(req->config());
    if (!spec.ok()) return spec.status();
    auto c = registry_->Create(*std::move(spec));
    if (!c.ok()) return c.status();
    InfoToProto(*c, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::Get(grpc::ServerContext* ctx, const v1::GetCollectionRequest* req,
                                     v1::GetCollectionResponse* resp) {
  return RunHandler(ctx, "Collections.Get", [&]() -> absl::Status {
    auto c = registry_->GetEntry(req->name());
    if (!c.ok()) return c.status();
    InfoToProto(*c, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::List(grpc::ServerContext* ctx, const v1::ListCollectionsRequest*,
                                      v1::ListCollectionsResponse* resp) {
  return RunHandler(ctx, "Collections.List", [&]() -> absl::Status {
    for (const auto& c : registry_->List()) InfoToProto(c, resp->add_collections());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::Drop(grpc::ServerContext* ctx, const v1::DropCollectionRequest* req,
                                      v1::DropCollectionResponse*) {
  return RunHandler(ctx, "Collections.Drop", [&]() -> absl::Status { return registry_->Drop(req->name()); });
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
    for (auto& d : *docs) {
      auto* out = resp->add_documents();
      out->set_id(d.id);
      out->set_num_tokens(d.num_tokens);
      if (!d.vectors.empty()) {
        out->set_vectors(reinterpret_cast<const char*>(d.vectors.data()), d.vectors.size() * 4);
      }
      out->set_metadata_json(d.metadata_json);
    }
    for (auto& m : missing) resp->add_missing_ids(std::move(m));
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

}  // namespace chamferdb
