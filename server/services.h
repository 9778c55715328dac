// gRPC handlers of the data plane: Collections, Documents and Search. Each handler unpacks
// the request, calls one Registry/Collection function and converts, inside RunHandler.
#pragma once

#include "chamferdb/v1/collections.grpc.pb.h"
#include "chamferdb/v1/documents.grpc.pb.h"
#include "chamferdb/v1/json_records.grpc.pb.h"
#include "chamferdb/v1/search.grpc.pb.h"
#include "server/registry.h"
#include "server/snapshot.h"

namespace chamferdb {

class CollectionsService final : public v1::Collections::Service {
 public:
  CollectionsService(Registry* registry, SnapshotManager* snapshots) : registry_(registry), snapshots_(snapshots) {}
  grpc::Status Create(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                      v1::CreateCollectionResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetCollectionRequest* req,
                   v1::GetCollectionResponse* resp) override;
  grpc::Status List(grpc::ServerContext* ctx, const v1::ListCollectionsRequest* req,
                    v1::ListCollectionsResponse* resp) override;
  grpc::Status Drop(grpc::ServerContext* ctx, const v1::DropCollectionRequest* req,
                    v1::DropCollectionResponse* resp) override;
  grpc::Status CreateSnapshot(grpc::ServerContext* ctx, const v1::CreateSnapshotRequest* req,
                              v1::CreateSnapshotResponse* resp) override;
  grpc::Status ListSnapshots(grpc::ServerContext* ctx, const v1::ListSnapshotsRequest* req,
                             v1::ListSnapshotsResponse* resp) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext* ctx, const v1::DeleteSnapshotRequest* req,
                              v1::DeleteSnapshotResponse* resp) override;
  grpc::Status RestoreSnapshot(grpc::ServerContext* ctx, const v1::RestoreSnapshotRequest* req,
                               v1::RestoreSnapshotResponse* resp) override;
  grpc::Status SetAlias(grpc::ServerContext* ctx, const v1::SetAliasRequest* req, v1::SetAliasResponse* resp) override;
  grpc::Status DeleteAlias(grpc::ServerContext* ctx, const v1::DeleteAliasRequest* req,
                           v1::DeleteAliasResponse* resp) override;
  grpc::Status ListAliases(grpc::ServerContext* ctx, const v1::ListAliasesRequest* req,
                           v1::ListAliasesResponse* resp) override;

 private:
  void Info(const Registry::Entry& e, v1::CollectionInfo* out) const;
  Registry* const registry_;
  SnapshotManager* const snapshots_;
};

class DocumentsService final : public v1::Documents::Service {
 public:
  explicit DocumentsService(Registry* registry) : registry_(registry) {}
  grpc::Status Upsert(grpc::ServerContext* ctx, const v1::UpsertRequest* req,
                      v1::UpsertResponse* resp) override;
  grpc::Status UpsertStream(grpc::ServerContext* ctx, grpc::ServerReader<v1::UpsertRequest>* reader,
                            v1::UpsertResponse* resp) override;
  grpc::Status Delete(grpc::ServerContext* ctx, const v1::DeleteRequest* req,
                      v1::DeleteResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetDocumentsRequest* req,
                   v1::GetDocumentsResponse* resp) override;
  grpc::Status Scroll(grpc::ServerContext* ctx, const v1::ScrollRequest* req, v1::ScrollResponse* resp) override;
  grpc::Status Count(grpc::ServerContext* ctx, const v1::CountRequest* req, v1::CountResponse* resp) override;

 private:
  absl::Status ApplyUpsert(const v1::UpsertRequest& req);
  Registry* const registry_;
};

class SearchService final : public v1::Search::Service {
 public:
  explicit SearchService(Registry* registry) : registry_(registry) {}
  grpc::Status Search(grpc::ServerContext* ctx, const v1::SearchRequest* req,
                      v1::SearchResponse* resp) override;
  grpc::Status BatchSearch(grpc::ServerContext* ctx, const v1::BatchSearchRequest* req,
                           v1::BatchSearchResponse* resp) override;

 private:
  absl::Status RunOne(const v1::SearchRequest& req, v1::SearchResponse* resp);
  Registry* const registry_;
};

class JsonRecordsService final : public v1::JsonRecords::Service {
 public:
  explicit JsonRecordsService(Registry* registry) : registry_(registry) {}
  grpc::Status Upsert(grpc::ServerContext* ctx, const v1::UpsertJsonRequest* req,
                      v1::UpsertJsonResponse* resp) override;
  grpc::Status Search(grpc::ServerContext* ctx, const v1::SearchJsonRequest* req,
                      v1::SearchJsonResponse* resp) override;
  grpc::Status Probe(grpc::ServerContext* ctx, const v1::ProbeRequest* req, v1::ProbeResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetJsonRequest* req, v1::GetJsonResponse* resp) override;
  grpc::Status Delete(grpc::ServerContext* ctx, const v1::DeleteJsonRequest* req,
                      v1::DeleteJsonResponse* resp) override;
  grpc::Status Scroll(grpc::ServerContext* ctx, const v1::ScrollJsonRequest* req,
                      v1::ScrollJsonResponse* resp) override;
  grpc::Status Count(grpc::ServerContext* ctx, const v1::CountRequest* req, v1::CountResponse* resp) override;

 private:
  Registry* const registry_;
};

}  // namespace chamferdb
