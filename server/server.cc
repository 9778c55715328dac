#include "server/server.h"

#include <fmt/format.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/absl_fmt.h"
#include "server/admission.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace chamferdb {

void RenderCollectionGauges(const Registry& registry, std::string* out) {
  const auto collections = registry.List();
  struct Gauge {
    const char* name;
    const char* help;
    const char* type;
    uint64_t (*get)(const CollectionStats&);
  };
  static const Gauge gauges[] = {
      {"chamferdb_collection_documents", "Documents per collection.", "gauge",
       [](const CollectionStats& s) { return s.documents; }},
      {"chamferdb_collection_token_vectors", "Token vectors per collection.", "gauge",
       [](const CollectionStats& s) { return s.token_vectors; }},
      {"chamferdb_collection_bytes_on_disk", "RocksDB bytes per collection (estimate).", "gauge",
       [](const CollectionStats& s) { return s.bytes_on_disk; }},
      {"chamferdb_collection_bytes_in_memory", "Tokens and index bytes in memory per collection.", "gauge",
       [](const CollectionStats& s) { return s.bytes_in_memory; }},
      {"chamferdb_collection_index_trained", "1 when the index serves approximately (trained), 0 while exact.",
       "gauge", [](const CollectionStats& s) { return uint64_t{s.index_state == IndexState::kReady}; }},
      {"chamferdb_documents_ingested_total", "Documents upserted since start (rate = ingest rate).", "counter",
       [](const CollectionStats& s) { return s.ingested_total; }},
  };
  std::vector<std::pair<std::string, CollectionStats>> stats;
  for (const auto& c : collections) stats.emplace_back(c.spec().name, c.Stats());
  for (const Gauge& g : gauges) {
    *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", g.name, g.help, g.name, g.type);
    for (const auto& [name, st] : stats) *out += fmt::format("{}{{collection=\"{}\"}} {}\n", g.name, name, g.get(st));
  }
}

namespace {

// --restore-snapshot DIR[=NAME]: restore unless NAME already holds that very snapshot.
absl::Status RestoreAtStart(Registry* registry, const std::string& item) {
  const size_t eq = item.find('=');
  const std::string path = item.substr(0, eq);
  std::string name = eq == std::string::npos ? "" : item.substr(eq + 1);
  auto manifest = ReadSnapshotManifest(path);
  if (!manifest.ok()) {
    return absl::Status(manifest.status().code(), fmt::format("--restore-snapshot: {}", manifest.status().message()));
  }
  if (name.empty()) name = manifest->info.collection;
  if (auto existing = registry->SpecOf(name); existing.ok()) {
    if (existing->restored_from == manifest->info.uuid) {
      spdlog::info("--restore-snapshot: collection {:?} already restored from {:?}", name, manifest->info.name);
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(fmt::format(
        "--restore-snapshot: collection {:?} exists and was not restored from {:?}; drop it or restore under another name",
        name, path));
  }
  auto restored = registry->Restore(path, name);
  if (!restored.ok()) {
    return absl::Status(restored.status().code(), fmt::format("--restore-snapshot: {}", restored.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                      std::vector<std::unique_ptr<grpc::Service>> auxiliary) {
  // RSS kept growing under the soak (tests/reliability/soak.py, docs/reliability.md) from
  // glibc malloc behaviour, not from live data: (1) every thread that allocates
  // concurrently gets its own arena (up to 8 per core), and gRPC's request threads each
  // allocate FDEs and candidate lists; (2) freeing a large mmapped buffer (an index
  // rebuild) raises the mmap threshold up to 32 MiB, after which such buffers come from the
  // arenas and fragment them. A few arenas and a fixed 128 KiB threshold (glibc's initial
  // value, which also turns the dynamic adjustment off) keep RSS flat. The corresponding
  // MALLOC_* environment variables still win.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  std::unique_ptr<Server> s(new Server());
  s->config_ = config;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return absl::UnavailableError(fmt::format("--data-dir {:?} cannot be created: {}", config.data_dir, ec.message()));
  RocksStoreOptions ro;
  ro.block_cache_bytes = config.block_cache_mb << 20;
  auto store = OpenRocksStore((std::filesystem::path(config.data_dir) / "db").string(), ro);
  if (!store.ok()) return store.status();
  s->store_ = std::move(store).value();
  auto registry = Registry::Open(s->store_.get(), config.sync);
  if (!registry.ok()) return registry.status();
  s->registry_ = std::move(registry).value();
  s->snapshots_ = std::make_unique<SnapshotManager>(
      config.snapshots_dir.empty() ? (std::filesystem::path(config.data_dir) / "snapshots").string() : config.snapshots_dir);
  for (const std::string& item : config.restore_snapshots) {
    if (absl::Status st = RestoreAtStart(s->registry_.get(), item); !st.ok()) return st;
  }

  s->collections_service_ = std::make_unique<CollectionsService>(s->registry_.get(), s->snapshots_.get());
  s->documents_service_ = std::make_unique<DocumentsService>(s->registry_.get());
  s->search_service_ = std::make_unique<SearchService>(s->registry_.get());
  s->json_service_ = std::make_unique<JsonRecordsService>(s->registry_.get());
  s->auxiliary_services_ = std::move(auxiliary);

  SetAuthPolicy({config.admin_key, config.read_key});
  const uint32_t admitted =
      config.max_concurrent_requests != 0 ? config.max_concurrent_requests : DefaultMaxConcurrentRequests();
  GlobalAdmission().set_limit(admitted);
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!config.tls_cert.empty()) {
    auto read = [](const std::string& path, std::string* out) {
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      *out = ss.str();
      return in.good() || in.eof();
    };
    grpc::SslServerCredentialsOptions ssl;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!read(config.tls_key, &pair.private_key) || !read(config.tls_cert, &pair.cert_chain)) {
      return absl::InvalidArgumentError("cannot read --tls-cert / --tls-key");
    }
    ssl.pem_key_cert_pairs.push_back(pair);
    if (!config.tls_client_ca.empty()) {
      if (!read(config.tls_client_ca, &ssl.pem_root_certs)) return absl::InvalidArgumentError("cannot read --tls-client-ca");
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, creds, &s->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_mb) << 20);
  builder.SetMaxSendMessageSize(256 << 20);
  builder.RegisterService(s->collections_service_.get());
  builder.RegisterService(s->documents_service_.get());
  builder.RegisterService(s->search_service_.get());
  builder.RegisterService(s->json_service_.get());
  for (const auto& service : s->auxiliary_services_) builder.RegisterService(service.get());
  s->grpc_server_ = builder.BuildAndStart();
  if (!s->grpc_server_ || s->port_ == 0) {
    return absl::UnavailableError(fmt::format("cannot listen on {:?} (address in use or invalid)", config.listen));
  }
  s->grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  if (config.metrics_port != 0) {
    const std::string host = config.listen.substr(0, config.listen.rfind(':'));
    Registry* registry = s->registry_.get();
    auto metrics = MetricsHttpServer::Start(host, static_cast<int>(config.metrics_port), [registry] {
      return Metrics::Global().Render([registry](std::string* out) { RenderCollectionGauges(*registry, out); });
    });
    if (!metrics.ok()) return metrics.status();
    s->metrics_server_ = std::move(metrics).value();
    spdlog::info("metrics on http://{}:{}/metrics", host, config.metrics_port);
  }
  spdlog::info("chamferdb serving gRPC on {} (data in {:?}, sync={}, max {} concurrent requests)", config.listen,
               config.data_dir, config.sync, admitted);
  return s;
}

absl::Status Server::Shutdown() {
  if (shut_down_) return absl::OkStatus();
  shut_down_ = true;
  spdlog::info("shutting down: finishing in-flight requests (up to {} s)", config_.shutdown_grace_seconds);
  if (metrics_server_) metrics_server_->Stop();
  if (grpc_server_) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(config_.shutdown_grace_seconds));
    grpc_server_->Wait();
  }
  absl::Status s = store_ ? store_->Flush() : absl::OkStatus();
  spdlog::info("shutdown complete");
  return s;
}

void Server::Wait() {
  if (grpc_server_) grpc_server_->Wait();
}

Server::~Server() { Shutdown().IgnoreError(); }

}  // namespace chamferdb
