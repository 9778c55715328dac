#include "server/services.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"

#include "server/convert.h"
#include "server/handler.h"

namespace chamferdb {

// ---- Collections ----

grpc::Status CollectionsService::Create(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                                        v1::CreateCollectionResponse* resp) {
  return RunHandler(ctx, "Collections.Create", [&]() -> absl::Status {
    auto spec = SpecFromProto(req->config());
    if (!spec.ok()) return spec.status();
    auto c = registry_->Create(*std::move(spec));
    if (!c.ok()) return c.status();
    InfoToProto(**c, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::Get(grpc::ServerContext* ctx, const v1::GetCollectionRequest* req,
                                     v1::GetCollectionResponse* resp) {
  return RunHandler(ctx, "Collections.Get", [&]() -> absl::Status {
    auto c = registry_->Get(req->name());
    if (!c.ok()) return c.status();
    InfoToProto(**c, resp->mutable_collection());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::List(grpc::ServerContext* ctx, const v1::ListCollectionsRequest*,
                                      v1::ListCollectionsResponse* resp) {
  return RunHandler(ctx, "Collections.List", [&]() -> absl::Status {
    for (const auto& c : registry_->List()) InfoToProto(*c, resp->add_collections());
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

}  // namespace chamferdb
