// libFuzzer target: every unary data-plane request (Collections with snapshots and aliases,
// Documents, Search, JsonRecords: 24 RPCs) parsed from arbitrary bytes and fed to its real
// handler in-process (the services over a Registry over an in-memory store).
// Input: byte 0 selects the RPC, the rest is the serialized request message. Each call gets
// a fresh grpc::ServerContext not bound to a call (infinite deadline, never cancelled), as
// handlers may consult it. State carries over between inputs: collections "c"
// (multi-vector, dim 4) and "j" (JSON, dim 64) are recreated when dropped, snapshots go to a
// per-process directory in /dev/shm, and everything is reset every 2,000 inputs.
// Oracle beyond ASan/UBSan: a handler never returns INTERNAL, UNKNOWN or DATA_LOSS (an
// exception, a broken invariant, or corruption on a healthy in-memory store).
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "server/registry.h"
#include "server/snapshot.h"
#include "server/services.h"
#include "storage/store.h"

namespace {

using namespace chamferdb;

std::string SnapshotDir() {
  const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(base) + "/chamferdb-fuzz-snapshots-" + std::to_string(getpid());
}

struct World {
  std::unique_ptr<Store> store = NewMemStore();
  std::unique_ptr<Registry> registry;
  std::unique_ptr<SnapshotManager> snapshots;
  std::unique_ptr<CollectionsService> collections;
  std::unique_ptr<DocumentsService> documents;
  std::unique_ptr<SearchService> search;
  std::unique_ptr<JsonRecordsService> json;

  World() {
    auto r = Registry::Open(store.get(), false);
    if (!r.ok()) std::abort();
    registry = std::move(r).value();
    std::filesystem::remove_all(SnapshotDir());
    snapshots = std::make_unique<SnapshotManager>(SnapshotDir());
    collections = std::make_unique<CollectionsService>(registry.get(), snapshots.get());
    documents = std::make_unique<DocumentsService>(registry.get());
    search = std::make_unique<SearchService>(registry.get());
    json = std::make_unique<JsonRecordsService>(registry.get());
  }

  void EnsureCollections() {
    if (!registry->GetEntry("c").ok()) {
      v1::CreateCollectionRequest req;
      auto* c = req.mutable_config();
      c->set_name("c");
      c->set_dim(4);
      c->mutable_fde()->set_r_reps(2);
      c->mutable_fde()->set_k_sim(1);
      c->mutable_fde()->set_d_proj(2);
      v1::CreateCollectionResponse resp;
      if (!collections->Create(nullptr, &req, &resp).ok()) std::abort();
    }
    if (!registry->GetEntry("j").ok()) {
      v1::CreateCollectionRequest req;
      auto* c = req.mutable_config();
      c->set_name("j");
      c->set_kind(v1::JSON);
      c->set_dim(64);
      v1::CreateCollectionResponse resp;
      if (!collections->Create(nullptr, &req, &resp).ok()) std::abort();
    }
  }
};

void Check(const grpc::Status& s, const char* rpc) {
  switch (s.error_code()) {
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      std::fprintf(stderr, "%s returned %d: %s\n", rpc, static_cast<int>(s.error_code()), s.error_message().c_str());
      std::abort();
    default:
      break;
  }
}

template <typename Req, typename Resp, typename Svc, typename Fn>
void Call(Svc* svc, Fn fn, const uint8_t* data, size_t size, const char* rpc) {
  Req req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  Resp resp;
  grpc::ServerContext ctx;  // not bound to a call: no deadline, never cancelled
  Check((svc->*fn)(&ctx, &req, &resp), rpc);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // handlers log rejected requests
  // Parsing arbitrary bytes makes protobuf log every invalid UTF-8 string field.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = nullptr;
  static int inputs = 0;
  if (world == nullptr || ++inputs % 2000 == 0) {
    delete world;
    world = new World();
  }
  world->EnsureCollections();
  if (size < 1) return 0;
  const uint8_t which = data[0] % 24;
  ++data;
  --size;
  World& w = *world;
  auto* cs = w.collections.get();
  auto* ds = w.documents.get();
  auto* ss = w.search.get();
  auto* js = w.json.get();
  switch (which) {
    case 0: Call<v1::CreateCollectionRequest, v1::CreateCollectionResponse>(cs, &CollectionsService::Create, data, size, "Collections.Create"); break;
    case 1: Call<v1::GetCollectionRequest, v1::GetCollectionResponse>(cs, &CollectionsService::Get, data, size, "Collections.Get"); break;
    case 2: Call<v1::ListCollectionsRequest, v1::ListCollectionsResponse>(cs, &CollectionsService::List, data, size, "Collections.List"); break;
    case 3: Call<v1::DropCollectionRequest, v1::DropCollectionResponse>(cs, &CollectionsService::Drop, data, size, "Collections.Drop"); break;
    case 4: Call<v1::UpsertRequest, v1::UpsertResponse>(ds, &DocumentsService::Upsert, data, size, "Documents.Upsert"); break;
    case 5: Call<v1::DeleteRequest, v1::DeleteResponse>(ds, &DocumentsService::Delete, data, size, "Documents.Delete"); break;
    case 6: Call<v1::GetDocumentsRequest, v1::GetDocumentsResponse>(ds, &DocumentsService::Get, data, size, "Documents.Get"); break;
    case 7: Call<v1::SearchRequest, v1::SearchResponse>(ss, &SearchService::Search, data, size, "Search.Search"); break;
    case 8: Call<v1::BatchSearchRequest, v1::BatchSearchResponse>(ss, &SearchService::BatchSearch, data, size, "Search.BatchSearch"); break;
    case 9: Call<v1::UpsertJsonRequest, v1::UpsertJsonResponse>(js, &JsonRecordsService::Upsert, data, size, "JsonRecords.Upsert"); break;
    case 10: Call<v1::SearchJsonRequest, v1::SearchJsonResponse>(js, &JsonRecordsService::Search, data, size, "JsonRecords.Search"); break;
    case 11: Call<v1::ProbeRequest, v1::ProbeResponse>(js, &JsonRecordsService::Probe, data, size, "JsonRecords.Probe"); break;
    case 12: Call<v1::GetJsonRequest, v1::GetJsonResponse>(js, &JsonRecordsService::Get, data, size, "JsonRecords.Get"); break;
    case 13: Call<v1::DeleteJsonRequest, v1::DeleteJsonResponse>(js, &JsonRecordsService::Delete, data, size, "JsonRecords.Delete"); break;
    case 14: Call<v1::ScrollRequest, v1::ScrollResponse>(ds, &DocumentsService::Scroll, data, size, "Documents.Scroll"); break;
    case 15: Call<v1::CountRequest, v1::CountResponse>(ds, &DocumentsService::Count, data, size, "Documents.Count"); break;
    case 16: Call<v1::ScrollJsonRequest, v1::ScrollJsonResponse>(js, &JsonRecordsService::Scroll, data, size, "JsonRecords.Scroll"); break;
    case 17: Call<v1::CountRequest, v1::CountResponse>(js, &JsonRecordsService::Count, data, size, "JsonRecords.Count"); break;
    case 18: Call<v1::CreateSnapshotRequest, v1::CreateSnapshotResponse>(cs, &CollectionsService::CreateSnapshot, data, size, "Collections.CreateSnapshot"); break;
    case 19: Call<v1::ListSnapshotsRequest, v1::ListSnapshotsResponse>(cs, &CollectionsService::ListSnapshots, data, size, "Collections.ListSnapshots"); break;
    case 20: Call<v1::DeleteSnapshotRequest, v1::DeleteSnapshotResponse>(cs, &CollectionsService::DeleteSnapshot, data, size, "Collections.DeleteSnapshot"); break;
    case 21: Call<v1::RestoreSnapshotRequest, v1::RestoreSnapshotResponse>(cs, &CollectionsService::RestoreSnapshot, data, size, "Collections.RestoreSnapshot"); break;
    case 22: Call<v1::SetAliasRequest, v1::SetAliasResponse>(cs, &CollectionsService::SetAlias, data, size, "Collections.SetAlias"); break;
    case 23: Call<v1::DeleteAliasRequest, v1::DeleteAliasResponse>(cs, &CollectionsService::DeleteAlias, data, size, "Collections.DeleteAlias"); break;
  }
  return 0;
}
